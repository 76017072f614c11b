"""Workspace files as the API serves them: listing, reading, and refusing escapes."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import pytest
from autobots.errors import InvalidRequest, NotFound

if TYPE_CHECKING:
    from tests.support.sandbox import StartManager



@pytest.fixture
async def manager(start_manager: StartManager):
    return await start_manager(sandbox="none")


def populate(manager, run_id: str = "w1") -> None:
    workspace = manager.workspace_path(run_id)
    (workspace / "out").mkdir(parents=True)
    (workspace / "out" / "a.txt").write_text("hello world!")
    (workspace / ".autobots").mkdir()
    (workspace / ".autobots" / "code_1.py").write_text("print(1)")


class TestListFiles:
    async def test_lists_regular_files_without_code_files(self, manager) -> None:
        populate(manager)
        files = manager.list_files("w1")
        assert [(f["path"], f["size"]) for f in files] == [("out/a.txt", 12)]

    async def test_unknown_run_is_empty(self, manager) -> None:
        assert manager.list_files("nothing-here") == []

    async def test_symlinks_are_not_listed(self, manager) -> None:
        populate(manager)
        os.symlink("/etc/passwd", manager.workspace_path("w1") / "passwd")
        assert [f["path"] for f in manager.list_files("w1")] == ["out/a.txt"]


class TestReadFile:
    async def test_reads(self, manager) -> None:
        populate(manager)
        assert manager.read_file("w1", "out/a.txt") == b"hello world!"

    @pytest.mark.parametrize("path", ["../w2/secret.txt", "/etc/passwd", "out/../../w2/secret.txt", "", "out",
                                      "out/a.txt\x00", "a\x00b"])
    async def test_traversal_is_not_found(self, manager, path: str) -> None:
        populate(manager)
        populate(manager, "w2")
        (manager.workspace_path("w2") / "secret.txt").write_text("other run")
        with pytest.raises(NotFound) as caught:
            manager.read_file("w1", path)
        assert (caught.value.status, caught.value.param) == (404, "path")

    async def test_symlink_escape_is_not_found(self, manager, tmp_path) -> None:
        populate(manager)
        secret = tmp_path / "secret.txt"
        secret.write_text("TOPSECRET")
        os.symlink(secret, manager.workspace_path("w1") / "link.txt")
        os.symlink(tmp_path, manager.workspace_path("w1") / "dirlink")
        for path in ("link.txt", "dirlink/secret.txt"):
            with pytest.raises(NotFound):
                manager.read_file("w1", path)

    async def test_bad_run_id(self, manager) -> None:
        with pytest.raises(InvalidRequest):
            manager.read_file("../etc", "passwd")
