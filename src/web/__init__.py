"""The HTTP layer: FastAPI app factory, routers, auth, errors, SSE."""

from autobots.web.app import create_app

__all__ = ["create_app"]
