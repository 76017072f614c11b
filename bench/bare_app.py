"""The read-path baseline: a bare FastAPI route returning a fixed JSON document from memory.

    python -m bench.bare_app --port P --json FILE

Served with the same `uvicorn.run` arguments as `python -m autobots serve` (host, port, log level from
AUTOBOTS_LOG_LEVEL or INFO, graceful shutdown), so the only difference is what the route does.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI


def create_app(document: dict[str, Any]) -> FastAPI:
    app = FastAPI(title="bare")

    @app.get("/api/v1/sessions/{session_id}/messages")
    async def messages(session_id: str) -> dict[str, Any]:
        return document

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--json", required=True)
    args = parser.parse_args()
    document = json.loads(Path(args.json).read_text())
    level = os.environ.get("AUTOBOTS_LOG_LEVEL", "INFO").lower()
    access_log = os.environ.get("AUTOBOTS_ACCESS_LOG", "false").lower() == "true"
    uvicorn.run(create_app(document), host="127.0.0.1", port=args.port, log_level=level,
                access_log=access_log, timeout_graceful_shutdown=10)


if __name__ == "__main__":
    main()
