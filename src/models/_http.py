"""HTTP clients for the OpenAI SDK: one TLS context for all, connection pools reused from run to run.

Each AsyncOpenAI would build its own httpx client, and building its TLS context (loading the CA bundle)
costs ~30 ms of CPU; the context is immutable once built and safe to share. A model client also gets a
connection pool that earlier model clients of the same event loop used and gave back: a run reuses their
keep-alive connections instead of connecting (and building a pool) for each agent. A pool serves one model
client at a time (one pool shared by a hundred concurrent runs would spend its time scanning its own
connections). Requests carry their own credentials, so a reused pool carries no secret.
"""

from __future__ import annotations

import asyncio
import ssl
import weakref
from functools import lru_cache

import httpx2
from openai import DefaultAsyncHttpxClient

MAX_IDLE_POOLS = 256


@lru_cache(maxsize=1)
def shared_tls_context() -> ssl.SSLContext:
    return httpx2.create_ssl_context()


class _ReusablePool(DefaultAsyncHttpxClient):  # type: ignore[misc]
    """A pool that the model client's `close()` gives back for the next one instead of closing."""

    def __init__(self, idle: list[_ReusablePool]) -> None:
        super().__init__(verify=shared_tls_context())
        self._idle = idle

    async def aclose(self) -> None:
        if len(self._idle) < MAX_IDLE_POOLS and self not in self._idle:
            self._idle.append(self)
        else:
            await self.close_pool()

    async def close_pool(self) -> None:
        await super().aclose()


_idle_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_ReusablePool]] = weakref.WeakKeyDictionary()


def new_http_client() -> httpx2.AsyncClient:
    """A client with the OpenAI SDK's defaults and the shared TLS context: on an event loop, a pool given back
    by an earlier model client (or a new one); outside a loop, a client of its own."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return DefaultAsyncHttpxClient(verify=shared_tls_context())
    idle = _idle_pools.setdefault(loop, [])
    while idle:
        pool = idle.pop()
        if not pool.is_closed:
            return pool
    return _ReusablePool(idle)


async def close_shared_http_client() -> None:
    """Close the running loop's idle pools (when the process that runs models stops)."""
    for pool in _idle_pools.pop(asyncio.get_running_loop(), []):
        await pool.close_pool()
