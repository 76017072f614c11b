"""HTTP clients for the OpenAI SDK that share one TLS context.

Each AsyncOpenAI builds its own httpx2 client, and building its TLS context (loading the CA bundle)
costs ~30 ms of CPU on the event loop; a run creates one client per agent, so 200 concurrent runs
would stall the loop for seconds. The context is immutable once built and safe to share; the HTTP
clients themselves stay per model client, since their connection pools belong to one event loop.
"""

from __future__ import annotations

import ssl
from functools import lru_cache

import httpx2
from openai import DefaultAsyncHttpxClient


@lru_cache(maxsize=1)
def shared_tls_context() -> ssl.SSLContext:
    return httpx2.create_ssl_context()


def new_http_client() -> httpx2.AsyncClient:
    """A client with the OpenAI SDK's defaults (limits, redirects) and the shared TLS context."""
    return DefaultAsyncHttpxClient(verify=shared_tls_context())
