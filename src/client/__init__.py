"""A Python client of the autobots HTTP API: `Client` (sync) and `AsyncClient`, typed results, retries with
backoff, automatic idempotency keys, and run event streams that resume after a dropped connection."""

from autobots.client._async import AsyncClient
from autobots.client._base import DEFAULT_BASE_URL, RetryPolicy
from autobots.client._sync import Client
from autobots.client.errors import (
    APIConnectionError,
    AuthenticationError,
    AutobotsAPIError,
    AutobotsClientError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
)
from autobots.client.models import (
    TERMINAL_STATUSES,
    GalleryItem,
    Message,
    Page,
    PostedMessage,
    Run,
    RunEvent,
    Session,
    Usage,
    Workflow,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "TERMINAL_STATUSES",
    "APIConnectionError",
    "AsyncClient",
    "AuthenticationError",
    "AutobotsAPIError",
    "AutobotsClientError",
    "Client",
    "ConflictError",
    "GalleryItem",
    "InvalidRequestError",
    "Message",
    "NotFoundError",
    "Page",
    "PermissionDeniedError",
    "PostedMessage",
    "RateLimitError",
    "RetryPolicy",
    "Run",
    "RunEvent",
    "ServerError",
    "Session",
    "Usage",
    "Workflow",
]
