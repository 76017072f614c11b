"""Failures of the sandbox itself, told apart from anything the code did."""

from __future__ import annotations

from autobots.errors import AutobotsError


class SandboxError(AutobotsError):
    """The sandbox could not run the code (it did not start after retries, no host uid was free, ...).

    Raised by `SandboxExecutor.execute_code_blocks` instead of a result, so that a failure of the sandbox never
    reaches an agent as if it were the code's own output and exit status; a run it ends fails with
    `error.type = "sandbox_error"`.
    """

    status = 503
    type = "server_error"
    code = "sandbox_error"
