"""Load generator (its own process): start one run per session at once, follow each to its end.

    python -m bench.loadgen --base-url URL --sessions FILE [--timeout-s 300]

Every POST /api/v1/sessions/{id}/messages (no wait, 202) is sent at once; each run is then followed
over its SSE event stream (`GET /api/v1/runs/{id}/events`, served from memory while live) until `done`.
Prints one JSON line: the makespan (first POST sent -> last `done` received) and per-run latencies.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from pathlib import Path
from typing import Any

import httpx

from bench._common import TASK


async def one(client: httpx.AsyncClient, session_id: str, t0: float, deadline: float) -> dict[str, Any]:
    response = await client.post(f"/api/v1/sessions/{session_id}/messages", json={"content": TASK})
    accepted = time.perf_counter() - t0
    if response.status_code != 202:
        return {"session_id": session_id, "error": f"POST {response.status_code}: {response.text[:200]}"}
    run_id = response.json()["run"]["id"]
    status = None
    try:
        async with client.stream("GET", f"/api/v1/runs/{run_id}/events",
                                 headers={"accept": "text/event-stream"},
                                 timeout=httpx.Timeout(max(1.0, deadline - time.perf_counter()))) as stream:
            async for line in stream.aiter_lines():
                if line.startswith("data: "):
                    event = json.loads(line[6:])
                    if event["type"] == "done":
                        status = event["data"].get("status")
                        break
                if time.perf_counter() > deadline:
                    break
    except httpx.HTTPError as exc:
        return {"session_id": session_id, "run_id": run_id, "error": f"events: {type(exc).__name__}"}
    return {"session_id": session_id, "run_id": run_id, "status": status, "accepted_s": accepted,
            "done_s": time.perf_counter() - t0}


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    sessions = json.loads(Path(args.sessions).read_text())
    limits = httpx.Limits(max_connections=len(sessions) * 2 + 10, max_keepalive_connections=len(sessions) * 2)
    async with httpx.AsyncClient(base_url=args.base_url, limits=limits, timeout=args.timeout_s) as client:
        await client.get("/healthz")
        t0 = time.perf_counter()
        deadline = t0 + args.timeout_s
        results = await asyncio.gather(*(one(client, s, t0, deadline) for s in sessions))
    done = [r["done_s"] for r in results if "done_s" in r]
    return {"runs": len(sessions), "finished": len(done), "makespan_s": max(done) if done else None,
            "errors": [r for r in results if "error" in r][:10],
            "statuses": {s: sum(1 for r in results if r.get("status") == s) for s in {r.get("status") for r in results}},
            "accepted_max_s": max((r["accepted_s"] for r in results if "accepted_s" in r), default=None),
            "run_latencies_s": sorted(done)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--sessions", required=True, help="JSON file: list of session ids")
    parser.add_argument("--timeout-s", type=float, default=300.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main_async(args)), default=str), flush=True)


if __name__ == "__main__":
    main()
