"""Credentials a `base_url` may carry (user info, a key in the query) kept out of what is stored or shown."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

REDACTED = "REDACTED"
# Query parameters that configure an endpoint rather than authenticate to it; every other value is redacted.
PUBLIC_QUERY_PARAMS = frozenset({"api-version", "api_version"})


def redact_url(url: str) -> str:
    """`url` with its user info and its query values (but `api-version`) replaced by REDACTED."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a malformed port, like the clients would
    except ValueError:
        return REDACTED
    netloc = parts.netloc
    if "@" in netloc:
        netloc = f"{REDACTED}@{netloc.rsplit('@', 1)[1]}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, v if k.lower() in PUBLIC_QUERY_PARAMS else REDACTED) for k, v in pairs], safe="")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment and REDACTED))


def carries_secret(url: str) -> bool:
    """True when redacting `url` changes it: it holds user info or query values."""
    return redact_url(url) != url
