"""The `local` backend: a plain subprocess in the workspace. NO isolation; unsafe for untrusted code.

Only usable when explicitly configured and the server listens on loopback. The code runs as the
service's own user and can read anything that user can; only the timeout, the output cap and a
minimal environment (no service secrets are inherited) apply.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from autobots.sandbox._common import BackendKind, BoundedOutput, Outcome
from autobots.sandbox._subprocess import run_subprocess
from autogen_core import CancellationToken

_PATH = "/usr/local/bin:/usr/bin:/bin"


class LocalRunner:
    """Runs commands directly on the host with the workspace as working directory.

    Args:
        workspace: Host directory the commands run in.
    """

    kind: BackendKind = "local"

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace

    async def prepare(self) -> None:
        self.workspace.mkdir(parents=True, exist_ok=True)

    async def run(
        self,
        argv: Sequence[str],
        *,
        timeout_s: float,
        output: BoundedOutput,
        cancellation_token: CancellationToken | None,
    ) -> Outcome:
        env = {"PATH": _PATH, "HOME": str(self.workspace), "LANG": "C.UTF-8", "PYTHONUNBUFFERED": "1"}
        return await run_subprocess(
            argv,
            cwd=str(self.workspace),
            env=env,
            timeout_s=timeout_s,
            output=output,
            cancellation_token=cancellation_token,
        )

    async def close(self) -> None:
        """Nothing to release: each command's process group is gone when it returns."""
