"""Sandboxed code execution for agents: docker (hardened), process (bubblewrap) or local (unsafe).

`SandboxManager` picks a backend at startup (`start()` returns a `BackendChoice`) and opens a
`SandboxExecutor` (an AutoGen `CodeExecutor`) per run; `image.build_image` builds the docker image.
"""

from autobots.sandbox._common import BackendKind
from autobots.sandbox._errors import SandboxError
from autobots.sandbox._executor import SandboxExecutor
from autobots.sandbox._manager import SandboxManager
from autobots.sandbox._select import BackendChoice
from autobots.sandbox._workspace import WorkspaceFile, WorkspaceListing

__all__ = ["BackendChoice", "BackendKind", "SandboxError", "SandboxExecutor", "SandboxManager",
           "WorkspaceFile", "WorkspaceListing"]
