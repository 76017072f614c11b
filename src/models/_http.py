"""HTTP clients for the OpenAI SDK: one TLS context for all, one connection pool per event loop.

Each AsyncOpenAI would build its own httpx client, and building its TLS context (loading the CA bundle)
costs ~30 ms of CPU; the context is immutable once built and safe to share. The connection pool is shared
too, by every model client built on the same event loop: a run reuses the keep-alive connections that
earlier runs opened to the same endpoint, instead of connecting (and building a pool) for each agent of
each run. Requests carry their own credentials, so sharing a pool shares no secret.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from functools import lru_cache

import httpx2
from openai import DefaultAsyncHttpxClient


@lru_cache(maxsize=1)
def shared_tls_context() -> ssl.SSLContext:
    return httpx2.create_ssl_context()


class _SharedPool(DefaultAsyncHttpxClient):  # type: ignore[misc]
    """A pool that outlives the model clients using it: their `close()` leaves it open."""

    async def aclose(self) -> None:
        return None

    async def close_pool(self) -> None:
        await super().aclose()


_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _SharedPool] = weakref.WeakKeyDictionary()


def new_http_client() -> httpx2.AsyncClient:
    """The running event loop's shared client (the OpenAI SDK's defaults, the shared TLS context); outside a
    loop, a client of its own."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return DefaultAsyncHttpxClient(verify=shared_tls_context())
    pool = _pools.get(loop)
    if pool is None or pool.is_closed:
        pool = _pools[loop] = _SharedPool(verify=shared_tls_context())
    return pool


async def close_shared_http_client() -> None:
    """Close the running loop's shared pool (when the process that runs models stops)."""
    pool = _pools.pop(asyncio.get_running_loop(), None)
    if pool is not None:
        await pool.close_pool()
