"""Fallback HTTP load generator when `wrk` is missing: httpx in several processes.

    python -m bench.httpload --url URL --duration-s D [--processes 2] [--connections 8]

Each process runs `connections` asyncio loops that GET the URL back to back for `duration-s`.
Prints one JSON line: total requests, errors, requests/s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import time

import httpx


async def _worker(url: str, duration_s: float, connections: int) -> tuple[int, int]:
    ok = errors = 0
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        end = time.perf_counter() + duration_s

        async def loop() -> None:
            nonlocal ok, errors
            while time.perf_counter() < end:
                try:
                    response = await client.get(url)
                    response.read()
                    ok += response.status_code == 200
                    errors += response.status_code != 200
                except httpx.HTTPError:
                    errors += 1

        await asyncio.gather(*(loop() for _ in range(connections)))
    return ok, errors


def _process(args: tuple[str, float, int]) -> tuple[int, int]:
    return asyncio.run(_worker(*args))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--duration-s", type=float, default=10.0)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--connections", type=int, default=8)
    args = parser.parse_args()
    started = time.perf_counter()
    with multiprocessing.Pool(args.processes) as pool:
        parts = pool.map(_process, [(args.url, args.duration_s, args.connections)] * args.processes)
    elapsed = time.perf_counter() - started
    ok, errors = sum(p[0] for p in parts), sum(p[1] for p in parts)
    print(json.dumps({"requests": ok, "errors": errors, "seconds": elapsed, "rps": ok / args.duration_s}))


if __name__ == "__main__":
    main()
