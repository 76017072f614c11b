"""Read-latency sampler (its own process): GET /api/v1/sessions/{id}/messages while runs execute.

    python -m bench.reader --base-url URL --sessions FILE --stop-file PATH [--interval-ms 50] [--max-s 300]

One request at a time over a keep-alive connection, cycling through the sessions, every
`interval-ms`, until the stop file appears (or `max-s` passes). Prints one JSON line of latencies (ms).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import httpx


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--sessions", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--interval-ms", type=float, default=50.0)
    parser.add_argument("--max-s", type=float, default=300.0)
    args = parser.parse_args()
    sessions = json.loads(Path(args.sessions).read_text())
    stop = Path(args.stop_file)
    latencies: list[float] = []
    sent_at: list[float] = []  # seconds since the first sample, per latency: where in the load it fell
    errors = 0
    end = time.monotonic() + args.max_s
    with httpx.Client(base_url=args.base_url, timeout=30) as client:
        client.get("/healthz")
        i = 0
        t0 = time.perf_counter()
        while not stop.exists() and time.monotonic() < end:
            session_id = sessions[i % len(sessions)]
            i += 1
            started = time.perf_counter()
            try:
                response = client.get(f"/api/v1/sessions/{session_id}/messages", params={"limit": 100})
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            if ok:
                latencies.append(elapsed)
                sent_at.append(started - t0)
            else:
                errors += 1
            time.sleep(max(0.0, args.interval_ms / 1000 - elapsed / 1000))
    print(json.dumps({"latencies_ms": latencies, "sent_at_s": sent_at, "errors": errors}), flush=True)


if __name__ == "__main__":
    main()
