"""Command line: serve, migrate, users add, sandbox build, image build, router simulate, and the client commands
(run, sessions, history, gallery, publish: `autobots.cli`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from pathlib import Path

from autobots.config import get_settings


def _configure_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # AutoGen logs every message and event at INFO: that is what run events are for, and it would put
    # conversation content in the server log.
    quiet = ("autogen_core", "autogen_agentchat", "autogen_core.events", "httpx", "httpx2", "alembic.runtime.plugins",
             "procrastinate")
    for name in quiet:
        logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))


def _serve(args: argparse.Namespace) -> int:
    import uvicorn
    from autobots.errors import AutobotsError
    from autobots.web import create_app
    from autobots.web.app import check_safe

    settings = get_settings()
    updates = {k: v for k, v in (("host", args.host), ("port", args.port), ("run_workers", args.run_workers))
               if v is not None}
    if updates:
        settings = settings.model_copy(update=updates)
    logging.getLogger("autobots").info("configuration: %s", settings.describe())
    try:
        check_safe(settings)
    except AutobotsError as exc:
        print(f"autobots: refusing to start: {exc.message}", file=sys.stderr)
        return 2
    uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_level=settings.log_level.lower(),
                access_log=settings.access_log, timeout_graceful_shutdown=10)
    return 0


def _migrate(_: argparse.Namespace) -> int:
    from autobots.db import migrate_to_head, redacted_url

    settings = get_settings()
    migrate_to_head(settings.database_url)
    print(f"database {redacted_url(settings.database_url)} is at the latest schema")
    return 0


async def _add_user(name: str) -> str:
    from autobots.db import Database, migrate_to_head
    from autobots.users import service as user_service

    settings = get_settings()
    await asyncio.to_thread(migrate_to_head, settings.database_url)
    db = Database(settings.database_url)
    try:
        async with db.session() as session:
            user = await user_service.get_or_create(session, name=name)
            key = await user_service.create_api_key(session, user=user)
            print(f"user {user.name} ({user.id})")
        return key
    finally:
        await db.dispose()


def _users(args: argparse.Namespace) -> int:
    print(asyncio.run(_add_user(args.name)))
    return 0


def _sandbox_build(args: argparse.Namespace) -> int:
    from autobots.sandbox.image import build_image

    tag = build_image(get_settings(), force=args.force)
    print(tag)
    return 0


def _image_build(args: argparse.Namespace) -> int:
    from autobots.errors import AutobotsError
    from autobots.image import build_scaled_images, build_service_image

    try:
        tag = build_service_image(rebuild_base=args.rebuild_base)
        extra = build_scaled_images() if args.scaled else []
    except AutobotsError as exc:
        print(f"autobots: {exc.message}", file=sys.stderr)
        return 1
    print(*extra, tag, sep="\n")  # the service image's tag last
    return 0


def _worker(args: argparse.Namespace) -> int:
    from autobots.runs import run_remote_worker, run_worker

    if args.fd is not None:
        return run_worker(args.fd)
    return run_remote_worker(get_settings())


def _router_simulate(args: argparse.Namespace) -> int:
    from autobots.router.simulation import run_command

    return run_command(seed=args.seed, tasks=args.tasks, plot=args.plot)


def _run_workers(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        count = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError("a count of processes or 'auto'") from None
    if count < 0:
        raise argparse.ArgumentTypeError("must not be negative")
    return count


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="autobots", description="Run multi-agent AutoGen workflows as a service.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="apply migrations, then serve the HTTP API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--run-workers", type=_run_workers, metavar="N|auto",
                       help="processes executing runs (with run_dispatch 'procrastinate', 0: API only)")
    serve.set_defaults(handler=_serve)
    commands.add_parser("migrate", help="apply database migrations").set_defaults(handler=_migrate)
    users = commands.add_parser("users", help="manage users").add_subparsers(dest="users_command", required=True)
    add = users.add_parser("add", help="create a user if needed and print a new API key (last line)")
    add.add_argument("name")
    add.set_defaults(handler=_users)
    sandbox = commands.add_parser("sandbox", help="sandbox image").add_subparsers(dest="sandbox_command",
                                                                                 required=True)
    build = sandbox.add_parser("build", help="build the sandbox image (offline when no registry answers)")
    build.add_argument("--force", action="store_true")
    build.set_defaults(handler=_sandbox_build)
    image = commands.add_parser("image", help="the service's container image").add_subparsers(dest="image_command",
                                                                                              required=True)
    image_build = image.add_parser("build", help="build autobots:VERSION from the Dockerfile, offline")
    image_build.add_argument("--rebuild-base", action="store_true", help="debootstrap the base image again")
    image_build.add_argument("--scaled", action="store_true",
                             help="also the images of compose.yaml's `scaled` profile, from Debian's packages: "
                             "autobots-proxy (HAProxy) and autobots-postgres:15")
    image_build.set_defaults(handler=_image_build)
    from autobots.router import simulation  # stdlib only: cheap to import for its defaults

    router = commands.add_parser("router", help="the model router of planner workflows").add_subparsers(
        dest="router_command", required=True)
    simulate = router.add_parser("simulate", help="evaluate the routing policies on a simulated model pool; "
                                 "exit 1 when thompson misses a bar")
    simulate.add_argument("--seed", type=int, default=simulation.DEFAULT_SEED,
                          help=f"random seed (default {simulation.DEFAULT_SEED})")
    simulate.add_argument("--tasks", type=int, default=simulation.DEFAULT_TASKS,
                          help=f"simulated sub-tasks (default {simulation.DEFAULT_TASKS})")
    simulate.add_argument("--plot", type=Path, nargs="?", const=simulation.DEFAULT_PLOT, metavar="PATH",
                          help=f"write a PNG of cumulative regret per policy (default {simulation.DEFAULT_PLOT})")
    simulate.set_defaults(handler=_router_simulate)
    from autobots.cli import add_client_commands  # rich loads only when a client command runs

    add_client_commands(commands)
    worker = commands.add_parser("worker", help="execute runs taken from the database's job queue "
                                 "(run_dispatch 'procrastinate'; README \"Scaling out\")")
    worker.add_argument("--fd", type=int, help=argparse.SUPPRESS)  # a worker `serve` started, on its socket
    worker.set_defaults(handler=_worker)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(get_settings().log_level)
    return int(args.handler(args))


if __name__ == "__main__":
    sys.exit(main())
