"""Builds the service's container image from the root `Dockerfile` with no registry involved.

The Dockerfile's default base (`python:3.11-slim-bookworm`) and PyPI serve everyone who can reach them.
Here, neither docker nor a build container can: the base is `autobots-base:bookworm`, a Debian bookworm root
filesystem made with debootstrap from this machine's apt mirror (the sandbox image's route,
`autobots.sandbox.image.debootstrap_image`) and built once, and the Python dependencies are wheels that pip
downloads on this machine into `build/wheels`, part of the build context, so that the build installs them
with no index. Both are cached: a second build only re-runs the Dockerfile steps whose inputs changed.

`build_scaled_images` adds what compose.yaml's `scaled` profile runs beside it, from the small Dockerfiles under
`deploy/` on the same base: `autobots-proxy` (HAProxy) and `autobots-postgres:15` (PostgreSQL), both from
Debian's packages, which their build installs with apt from the Debian mirror (reachable here, unlike a
registry).
"""

from __future__ import annotations

import contextlib
import hashlib
import platform
import shutil
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import docker
from autobots import __version__
from autobots.errors import AutobotsError
from autobots.sandbox.image import debootstrap_image, image_exists
from docker.errors import DockerException

BASE_TAG = "autobots-base:bookworm"
IMAGE_REPOSITORY = "autobots"
# Debian bookworm's python3 is 3.11, the version the Dockerfile's default base has.
BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates", "bubblewrap", "procps")
_PACKAGES_LABEL = "autobots.base.packages"
_BOOKWORM_GLIBC_MINOR = 36
_ROOT = Path(__file__).resolve().parent.parent
_WHEELS = Path("build") / "wheels"
PROXY_REPOSITORY = "autobots-proxy"
# Debian bookworm's PostgreSQL; compose.yaml takes it with AUTOBOTS_POSTGRES_IMAGE (its default is postgres:16).
POSTGRES_TAG = "autobots-postgres:15"


class ServiceImageBuildError(AutobotsError):
    """The service image could not be built (no engine, no source checkout, a failing step)."""

    status = 500
    type = "server_error"
    code = "image_build_failed"


def build_service_image(*, rebuild_base: bool = False, log: Callable[[str], None] = print) -> str:
    """Builds `autobots:<version>` (also tagged `autobots:latest`) offline; returns the version tag.

    Args:
        rebuild_base: Debootstrap the base again even when it is present.
        log: Receives one progress line at a time.

    Returns:
        The image tag, e.g. `autobots:0.1.0`.

    Raises:
        ServiceImageBuildError: When no Docker engine answers, this is not a source checkout, or a step fails.
    """
    with _engine() as client:
        _ensure_base(client, rebuild=rebuild_base, log=log)
        _download_wheels(log)
        tag = f"{IMAGE_REPOSITORY}:{__version__}"
        _build_tagged(client, _ROOT, tag, log, latest=True)
        return tag


def build_scaled_images(*, log: Callable[[str], None] = print) -> list[str]:
    """Builds the images compose.yaml's `scaled` profile runs beside the service's, offline, on the same base.

    `autobots-proxy:<version>` (also `:latest`) from deploy/proxy and `autobots-postgres:15` from
    deploy/postgres; their builds install Debian's packages with apt.

    Returns:
        The tags built, proxy first.

    Raises:
        ServiceImageBuildError: As `build_service_image`.
    """
    with _engine() as client:
        _ensure_base(client, rebuild=False, log=log)
        proxy = f"{PROXY_REPOSITORY}:{__version__}"
        _build_tagged(client, _ROOT / "deploy" / "proxy", proxy, log, latest=True)
        _build_tagged(client, _ROOT / "deploy" / "postgres", POSTGRES_TAG, log, latest=False)
        return [proxy, POSTGRES_TAG]


@contextlib.contextmanager
def _engine() -> Iterator[docker.DockerClient]:
    if not (_ROOT / "Dockerfile").is_file():
        raise ServiceImageBuildError(f"no Dockerfile in {_ROOT}: build the image from a source checkout")
    try:
        client = docker.from_env(timeout=900)
        client.ping()
    except Exception as exc:
        raise ServiceImageBuildError(f"no Docker engine answers: {exc}") from exc
    try:
        yield client
    finally:
        client.close()


def _build_tagged(client: docker.DockerClient, context: Path, tag: str, log: Callable[[str], None], *,
                  latest: bool) -> None:
    """Builds `context` as `tag` (and, with `latest`, `<repository>:latest`); drops the image it replaced."""
    previous = client.images.get(tag).id if image_exists(client, tag) else None
    _docker_build(client, context, tag, log)
    if latest:
        client.images.get(tag).tag(tag.rsplit(":", 1)[0], "latest")
    _remove_if_untagged(client, previous)
    log(f"image {tag} ready")


def _ensure_base(client: docker.DockerClient, *, rebuild: bool, log: Callable[[str], None]) -> None:
    wanted = ",".join(BASE_PACKAGES)
    if not rebuild and image_exists(client, BASE_TAG):
        if client.images.get(BASE_TAG).labels.get(_PACKAGES_LABEL) == wanted:
            log(f"base image {BASE_TAG} present")
            return
        log(f"base image {BASE_TAG} has other packages; building it again")
    changes = ["ENV LANG=C.UTF-8", f"LABEL {_PACKAGES_LABEL}={wanted}"]
    debootstrap_image(BASE_TAG, packages=BASE_PACKAGES, changes=changes, log=log)


def _download_wheels(log: Callable[[str], None]) -> None:
    """Wheels of requirements.txt for the base's Python (CPython 3.11, glibc 2.36, this machine's arch)."""
    requirements = _ROOT / "requirements.txt"
    wheels = _ROOT / _WHEELS
    stamp = wheels / f".requirements-{hashlib.sha256(requirements.read_bytes()).hexdigest()[:16]}"
    if stamp.is_file():
        log(f"wheels in {_WHEELS} match requirements.txt")
        return
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    # pip takes a manylinux tag literally, so every glibc version the base can run is listed.
    arch = platform.machine()
    platforms = [f"manylinux_2_{minor}_{arch}" for minor in range(_BOOKWORM_GLIBC_MINOR, 4, -1)]
    platforms += [f"manylinux{legacy}_{arch}" for legacy in ("2014", "2010", "1")]
    argv = [sys.executable, "-m", "pip", "download", "--quiet", "--requirement", str(requirements),
            "--dest", str(wheels), "--only-binary=:all:", "--implementation", "cp", "--python-version", "3.11",
            "--abi", "cp311", *(arg for name in platforms for arg in ("--platform", name))]
    log(f"downloading wheels into {_WHEELS}")
    proc = subprocess.run(argv, capture_output=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).decode(errors="replace")[-2000:]
        raise ServiceImageBuildError(f"pip download failed ({proc.returncode}): {tail}")
    stamp.touch()


def _docker_build(client: docker.DockerClient, context: Path, tag: str, log: Callable[[str], None]) -> None:
    log(f"docker build --build-arg BASE={BASE_TAG} -t {tag} {context}")
    stream: Any = client.api.build(path=str(context), tag=tag, buildargs={"BASE": BASE_TAG}, rm=True, forcerm=True,
                                   pull=False, decode=True)
    recent: deque[str] = deque(maxlen=30)
    for chunk in stream:
        if "error" in chunk:
            output = "\n".join(recent)
            raise ServiceImageBuildError(f"docker build failed: {chunk['error'].strip()}\n{output}")
        line = str(chunk.get("stream", "")).strip()
        if line.startswith("Step "):
            log(line)
        elif line:
            recent.append(line)


def _remove_if_untagged(client: docker.DockerClient, image_id: str | None) -> None:
    """Drops the image a rebuild replaced, so that repeated builds do not pile up; kept while a container uses it."""
    if image_id is None:
        return
    with contextlib.suppress(DockerException):
        if not client.images.get(image_id).tags:
            client.images.remove(image_id)
