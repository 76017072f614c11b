"""/api/v1/runs/{id}/files: a bounded listing, and downloads streamed whole or refused, never cut short."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
from autobots.sandbox._workspace import MAX_LIST_DEPTH, MAX_LIST_ENTRIES
from autobots.web.run_files import CHUNK_BYTES

from tests.support.api import create_session, send_and_wait
from tests.support.specs import sequential_spec

MIB = 1024 * 1024


async def finished_run(client: httpx.AsyncClient) -> str:
    session = await create_session(client, sequential_spec())
    return str((await send_and_wait(client, session["id"], "hello"))["run"]["id"])


def workspace(app: Any, run_id: str) -> Path:
    path: Path = app.state.services.sandbox.workspace_path(run_id)
    path.mkdir(parents=True, exist_ok=True)
    return path


def make_tree(root: Path, depth: int, files: dict[int, str]) -> None:
    """root/d/d/.../d, `depth` directories deep (made level by level: the path grows past PATH_MAX), with
    `files[n]` written in the directory at depth n."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, depth + 1):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            if level in files:
                os.close(os.open(files[level], os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd))
    finally:
        os.close(fd)


def remove_tree(root: Path) -> None:
    """Undo `make_tree` one level at a time (shutil.rmtree recurses once per level)."""
    while (root / "d").is_dir():
        if (root / "d" / "d").is_dir():
            os.rename(root / "d" / "d", root / "d-below")
        for entry in os.scandir(root / "d"):
            os.unlink(entry.path)
        os.rmdir(root / "d")
        if (root / "d-below").is_dir():
            os.rename(root / "d-below", root / "d")


async def asgi_get(app: Any, path: str) -> tuple[int, dict[bytes, bytes], list[int], bytes]:
    """GET through the ASGI interface itself (httpx's transport buffers the body): the status, the headers,
    the size of each body message, and the last bytes of the body."""
    start: dict[str, Any] = {}
    sizes: list[int] = []
    tail = b""
    never = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not sizes and not start:
            return {"type": "http.request", "body": b"", "more_body": False}
        await never.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal tail
        if message["type"] == "http.response.start":
            start.update(message)
        elif message.get("body"):
            sizes.append(len(message["body"]))
            tail = (tail + message["body"])[-16:]

    scope = {"type": "http", "asgi": {"version": "3.0", "spec_version": "2.4"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(), "root_path": "",
             "query_string": b"", "headers": [(b"host", b"127.0.0.1")], "client": ("127.0.0.1", 50000),
             "server": ("127.0.0.1", 80)}
    await app(scope, receive, send)
    return start["status"], dict(start["headers"]), sizes, tail


class TestDownloadRunFile:
    async def test_streams_the_file_in_bounded_chunks(self, app, client):
        run_id = await finished_run(client)
        content = os.urandom(3 * MIB + 5)
        (workspace(app, run_id) / "data.bin").write_bytes(content)
        status, headers, sizes, tail = await asgi_get(app, f"/api/v1/runs/{run_id}/files/data.bin")
        assert status == 200 and headers[b"content-length"] == str(len(content)).encode()
        assert sum(sizes) == len(content) and tail == content[-16:]
        assert len(sizes) > 1 and max(sizes) <= CHUNK_BYTES  # never the whole file in one piece
        response = await client.get(f"/api/v1/runs/{run_id}/files/data.bin")
        assert response.content == content

    async def test_a_file_over_64_mib_is_sent_whole(self, app, client):
        run_id = await finished_run(client)
        size = 64 * MIB + 7
        with (workspace(app, run_id) / "big.bin").open("wb") as handle:  # sparse: no 64 MiB written to disk
            handle.truncate(size - 3)
            handle.seek(size - 3)
            handle.write(b"END")
        status, headers, sizes, tail = await asgi_get(app, f"/api/v1/runs/{run_id}/files/big.bin")
        assert (status, headers[b"content-length"], sum(sizes), tail[-3:]) == (200, str(size).encode(), size, b"END")

    async def test_a_file_over_the_limit_is_refused_not_cut_short(self, settings):
        from autobots.web import create_app

        application = create_app(settings.model_copy(update={"max_download_bytes": 1000}))
        async with application.router.lifespan_context(application):
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=60) as client:
                run_id = await finished_run(client)
                (workspace(application, run_id) / "out.txt").write_bytes(b"x" * 1001)
                (workspace(application, run_id) / "ok.txt").write_bytes(b"y" * 1000)
                response = await client.get(f"/api/v1/runs/{run_id}/files/out.txt")
                assert response.status_code == 422
                assert response.json() == {"error": {
                    "type": "invalid_request_error", "code": "file_too_large", "param": "path",
                    "message": "the file 'out.txt' is 1001 bytes, more than the download limit of 1000 bytes "
                               "(max_download_bytes)"}}
                assert (await client.get(f"/api/v1/runs/{run_id}/files/ok.txt")).content == b"y" * 1000

    async def test_a_quote_in_the_name_cannot_inject_parameters(self, app, client):
        run_id = await finished_run(client)
        name = 'a"; filename=evil.sh; x=".txt'
        (workspace(app, run_id) / name).write_bytes(b"data")
        response = await client.get(f"/api/v1/runs/{run_id}/files/{name}")
        assert response.status_code == 200 and response.content == b"data"
        assert response.headers["content-disposition"] == (
            "attachment; filename=\"a_; filename=evil.sh; x=_.txt\"; "
            "filename*=UTF-8''a%22%3B%20filename%3Devil.sh%3B%20x%3D%22.txt")

    async def test_a_non_ascii_name_is_percent_encoded(self, app, client):
        run_id = await finished_run(client)
        (workspace(app, run_id) / "résumé €.txt").write_bytes(b"cv")
        response = await client.get(f"/api/v1/runs/{run_id}/files/résumé €.txt")
        assert response.headers["content-disposition"] == (
            "attachment; filename=\"r_sum_ _.txt\"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%E2%82%AC.txt")

    async def test_a_nul_byte_in_the_path_is_400(self, app, client):
        run_id = await finished_run(client)
        (workspace(app, run_id) / "a").write_text("a")
        response = await client.get(f"/api/v1/runs/{run_id}/files/a%00b.txt")
        assert response.status_code == 400
        assert response.json() == {"error": {"type": "invalid_request_error", "code": "invalid_path",
                                             "param": "path", "message": "the URL path contains a NUL byte"}}

    async def test_a_symlink_planted_by_the_sandbox_is_not_followed(self, app, client, tmp_path):
        run_id = await finished_run(client)
        secret = tmp_path / "secret.txt"
        secret.write_text("TOPSECRET")
        os.symlink(secret, workspace(app, run_id) / "link.txt")
        response = await client.get(f"/api/v1/runs/{run_id}/files/link.txt")
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "file_not_found"


class TestListRunFiles:
    async def test_small_workspace_is_listed_whole(self, app, client):
        run_id = await finished_run(client)
        (workspace(app, run_id) / "out").mkdir()
        (workspace(app, run_id) / "out" / "a.txt").write_text("hello")
        body = (await client.get(f"/api/v1/runs/{run_id}/files")).json()
        assert [(f["object"], f["path"], f["size"]) for f in body["data"]] == [("run.file", "out/a.txt", 5)]
        assert (body["has_more"], body["truncated"]) == (False, False)

    async def test_a_1500_level_tree_is_listed_to_the_depth_limit(self, app, client):
        run_id = await finished_run(client)
        root = workspace(app, run_id)
        (root / "top.txt").write_text("top")
        make_tree(root, 1500, {MAX_LIST_DEPTH: "edge.txt", 1500: "bottom.txt"})
        try:
            response = await client.get(f"/api/v1/runs/{run_id}/files")
        finally:
            remove_tree(root)
        assert response.status_code == 200
        body = response.json()
        assert [f["path"] for f in body["data"]] == ["/".join(["d"] * MAX_LIST_DEPTH + ["edge.txt"]), "top.txt"]
        assert (body["has_more"], body["truncated"]) == (True, True)

    async def test_more_entries_than_the_limit_are_cut_and_marked(self, app, client):
        run_id = await finished_run(client)
        root = workspace(app, run_id)
        for index in range(MAX_LIST_ENTRIES + 5):
            (root / f"f{index:05}").touch()
        body = (await client.get(f"/api/v1/runs/{run_id}/files")).json()
        assert len(body["data"]) == MAX_LIST_ENTRIES
        assert body["truncated"] is True

    async def test_a_name_that_is_not_utf8_is_skipped(self, app, client):
        run_id = await finished_run(client)
        root = workspace(app, run_id)
        (root / "good.txt").write_text("ok")
        os.close(os.open(os.path.join(os.fsencode(root), b"bad\xff.txt"), os.O_WRONLY | os.O_CREAT, 0o644))
        response = await client.get(f"/api/v1/runs/{run_id}/files")
        assert response.status_code == 200
        assert [f["path"] for f in response.json()["data"]] == ["good.txt"]
