"""Which network addresses a spec's own `base_url` may reach, checked when validating and when connecting.

A user of a shared server must not make it call its own neighbours (the database, a cloud metadata service,
anything on a private network). Validation resolves a URL's host and refuses it when any answer is not a public
address; since a name can answer differently a second later, the model client's connections go through
`GuardedNetworkBackend`, which resolves again, refuses the same addresses, and connects to the very address it
checked (the TLS handshake still verifies the certificate against the URL's host name).
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# host, port -> the addresses the name stands for (a literal address, in any notation, stands for itself).
Resolver = Callable[[str, int], Awaitable[list[str]]]
RESOLVE_TIMEOUT_S = 5.0
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class RefusedAddress(OSError):
    """A connection to an address that the caller may not reach (an OSError, so HTTP clients report it as a
    connection error)."""


def refusal(address: IPAddress) -> str | None:
    """Why `address` may not be reached by a user's model entry, or None when it is a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded)
        if address.teredo is not None:
            return "a Teredo tunnel address"
    for test, reason in (("is_loopback", "a loopback address"), ("is_link_local", "a link-local address"),
                         ("is_multicast", "a multicast address"), ("is_unspecified", "the unspecified address"),
                         ("is_private", "a private address"), ("is_reserved", "a reserved address")):
        if getattr(address, test):
            return reason
    if not address.is_global:
        return "not a public address"
    return None


async def system_resolver(host: str, port: int) -> list[str]:
    """The addresses `host` resolves to, by the system's resolver, off the event loop."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def split_url(url: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, path) of an http(s) URL, the host in lower case without brackets.

    Raises:
        ValueError: Not an http(s) URL with a host.
    """
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("must be an http:// or https:// URL")
    host = (parts.hostname or "").lower()
    if not host:
        raise ValueError("must name a host")
    port = parts.port or (443 if scheme == "https" else 80)  # .port raises ValueError when out of range
    return scheme, host, port, parts.path or "/"


async def check_host(host: str, port: int, resolver: Resolver = system_resolver) -> list[str]:
    """The addresses of `host`, when every one of them is public.

    Raises:
        RefusedAddress: An address is not public, or the name does not resolve.
    """
    try:
        addresses = await asyncio.wait_for(resolver(host, port), RESOLVE_TIMEOUT_S)
    except (TimeoutError, OSError) as err:
        raise RefusedAddress(f"{host} could not be resolved ({type(err).__name__})") from err
    if not addresses:
        raise RefusedAddress(f"{host} has no address")
    for text in addresses:
        reason = refusal(ipaddress.ip_address(text.split("%", 1)[0]))
        if reason is not None:
            shown = host if host == text else f"{host} ({text})"
            raise RefusedAddress(f"{shown} is {reason}, which models of a shared server may not reach")
    return addresses


class GuardedNetworkBackend:
    """An httpcore network backend that connects only to public addresses, to the address it checked.

    Wraps the backend the HTTP library would use (httpcore's or httpcore2's: they share this interface).
    """

    def __init__(self, inner: Any, connect_error: type[Exception], resolver: Resolver = system_resolver) -> None:
        self._inner = inner
        self._connect_error = connect_error  # the library's own, so clients report a refusal as a connect error
        self._resolver = resolver

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's)
                          local_address: str | None = None, socket_options: Any = None) -> Any:
        try:
            addresses = await check_host(host, port, self._resolver)
        except RefusedAddress as err:
            raise self._connect_error(str(err)) from err
        return await self._inner.connect_tcp(addresses[0], port, timeout=timeout, local_address=local_address,
                                             socket_options=socket_options)

    async def connect_unix_socket(self, path: str, timeout: float | None = None,  # noqa: ASYNC109 (httpcore's)
                                  socket_options: Any = None) -> Any:
        raise self._connect_error("unix sockets may not be reached by a user's model")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def guarded_transport_httpx2(resolver: Resolver = system_resolver, **kwargs: Any) -> Any:
    """An httpx2 transport (OpenAI and Anthropic SDKs) whose connections pass `GuardedNetworkBackend`."""
    import httpcore2
    import httpx2

    transport = httpx2.AsyncHTTPTransport(trust_env=False, **kwargs)
    transport._pool = _guarded_pool(httpcore2, transport._pool, resolver)
    return transport


def guarded_transport_httpx(resolver: Resolver = system_resolver, **kwargs: Any) -> Any:
    """An httpx transport (the Ollama client) whose connections pass `GuardedNetworkBackend`."""
    import httpcore
    import httpx

    transport = httpx.AsyncHTTPTransport(trust_env=False, **kwargs)
    transport._pool = _guarded_pool(httpcore, transport._pool, resolver)
    return transport


def _guarded_pool(core: Any, built: Any, resolver: Resolver) -> Any:
    """A connection pool like the one the transport built, with the guard as its network backend.

    The transports take no network backend, so the pool they built (no proxy: trust_env is off) is replaced by
    an equal one; tests check that requests really pass the guard, so a library change cannot go unnoticed.
    """
    return core.AsyncConnectionPool(
        ssl_context=built._ssl_context,
        max_connections=built._max_connections,
        max_keepalive_connections=built._max_keepalive_connections,
        keepalive_expiry=built._keepalive_expiry,
        http1=built._http1,
        http2=built._http2,
        retries=built._retries,
        socket_options=built._socket_options,
        network_backend=GuardedNetworkBackend(core.AnyIOBackend(), core.ConnectError, resolver),
    )
