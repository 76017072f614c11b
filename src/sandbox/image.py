"""Builds the sandbox image: `docker build` when the base image is local, else an offline debootstrap.

No registry is ever contacted by `docker`: the Dockerfile path runs only if `python:3.11-slim` is
already present, and the debootstrap path fetches Debian packages from the apt mirror configured
on the machine, then imports the root filesystem with `docker import`. `debootstrap_image` is that
route on its own, which the service image's offline base (`autobots.image`) shares.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import docker
from autobots.config import Settings
from autobots.errors import AutobotsError
from docker.errors import ImageNotFound

BASE_IMAGE = "python:3.11-slim"
SANDBOX_UID = 1000
_DOCKERFILE_DIR = Path(__file__).parent
_PACKAGES = ("python3-minimal", "procps")
_PRUNE = ("var/cache/apt/archives", "var/lib/apt/lists", "usr/share/doc", "usr/share/man", "usr/share/locale")


class ImageBuildError(AutobotsError):
    """The sandbox image could not be built (no engine, no debootstrap, no mirror)."""

    status = 500
    type = "server_error"
    code = "sandbox_image_build_failed"


def build_image(settings: Settings, *, force: bool = False, log: Callable[[str], None] = print) -> str:
    """Build `settings.sandbox_image` unless it exists; returns the image tag.

    Args:
        settings: Service settings; `sandbox_image` is the tag to build.
        force: Rebuild even when the image is already present.
        log: Receives one progress line at a time.

    Returns:
        The tag of the (now present) image.

    Raises:
        ImageBuildError: When no Docker engine answers or both build paths fail.
    """
    tag = settings.sandbox_image
    try:
        client = docker.from_env(timeout=30)
        client.ping()
    except Exception as exc:
        raise ImageBuildError(f"no Docker engine answers: {exc}") from exc
    try:
        if image_exists(client, tag) and not force:
            log(f"image {tag} already present; nothing to do")
            return tag
        if image_exists(client, BASE_IMAGE):
            log(f"building {tag} from {_DOCKERFILE_DIR / 'Dockerfile'} (base {BASE_IMAGE} is local)")
            client.images.build(path=str(_DOCKERFILE_DIR), dockerfile="Dockerfile", tag=tag, rm=True)
        else:
            log(f"{BASE_IMAGE} is not local; building {tag} offline with debootstrap")
            _build_with_debootstrap(tag, log)
        log(f"image {tag} ready")
        return tag
    finally:
        client.close()


def image_exists(client: docker.DockerClient, tag: str) -> bool:
    try:
        client.images.get(tag)
    except ImageNotFound:
        return False
    return True


def _build_with_debootstrap(tag: str, log: Callable[[str], None]) -> None:
    changes = ["USER 1000:1000", "WORKDIR /workspace", 'CMD ["sleep", "infinity"]']
    debootstrap_image(tag, packages=_PACKAGES, prepare=_prepare_rootfs, changes=changes, log=log)


def debootstrap_image(
    tag: str,
    *,
    packages: Sequence[str],
    prepare: Callable[[Path], None] | None = None,
    changes: Sequence[str] = (),
    log: Callable[[str], None] = print,
) -> None:
    """Imports a Debian bookworm (minbase) root filesystem as image `tag`, with no registry involved.

    Args:
        tag: The image tag to create.
        packages: Debian packages to include beyond minbase.
        prepare: Adjusts the root filesystem (users, directories) before it is imported.
        changes: Dockerfile instructions for `docker import --change` (USER, WORKDIR, CMD, ENV, LABEL).
        log: Receives one progress line at a time.

    Raises:
        ImageBuildError: When debootstrap is missing, the mirror fails or the import fails.
    """
    if shutil.which("debootstrap") is None:
        raise ImageBuildError("debootstrap is not installed (apt-get install debootstrap)")
    mirror = apt_mirror()
    with tempfile.TemporaryDirectory(prefix="autobots-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        log(f"debootstrap bookworm from {mirror} (about a minute)")
        _run(["debootstrap", "--variant=minbase", f"--include={','.join(packages)}", "bookworm", str(rootfs), mirror])
        _prune_rootfs(rootfs)
        if prepare is not None:
            prepare(rootfs)
        log(f"importing the root filesystem as {tag}")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        options = [arg for change in changes for arg in ("--change", change)]
        imported = subprocess.run(["docker", "import", *options, "-", tag], stdin=tar.stdout, capture_output=True)
        assert tar.stdout is not None
        tar.stdout.close()
        if tar.wait() != 0 or imported.returncode != 0:
            raise ImageBuildError(f"docker import failed: {imported.stderr.decode(errors='replace')[-2000:]}")


def _prune_rootfs(rootfs: Path) -> None:
    """Drops apt's caches and lists, documentation and locales to keep the image small."""
    for rel in _PRUNE:
        target = rootfs / rel
        if target.is_dir():
            shutil.rmtree(target)
            target.mkdir(parents=True)


def _prepare_rootfs(rootfs: Path) -> None:
    """Adds `python`, the `sandbox` user (uid 1000) and /workspace."""
    python = rootfs / "usr/bin/python"
    if not python.exists():
        python.symlink_to("python3")
    _run(["chroot", str(rootfs), "useradd", "--uid", str(SANDBOX_UID), "--user-group", "--create-home",
          "--shell", "/bin/bash", "sandbox"])
    workspace = rootfs / "workspace"
    workspace.mkdir(exist_ok=True)
    _run(["chown", f"{SANDBOX_UID}:{SANDBOX_UID}", str(workspace)])


def apt_mirror() -> str:
    """The Debian mirror apt uses on this machine (deb822 or one-line sources), else deb.debian.org."""
    files = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in files:
        if not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            words = line.split()
            if line.startswith("URIs:") and len(words) > 1 and "security" not in words[1]:
                return words[1]
            if words[:1] == ["deb"] and "/debian" in line and "security" not in line:
                return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def _run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True)
    if proc.returncode != 0:
        tail = (proc.stdout + proc.stderr).decode(errors="replace")[-2000:]
        raise ImageBuildError(f"{argv[0]} failed ({proc.returncode}): {tail}")
