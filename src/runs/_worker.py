"""A run worker process (`python -m autobots worker --fd N`): a `RunEngine` driven by the API process's `WorkerPool`.

The worker reads `Hello` and then commands from its socket (`_protocol.py`), executes the runs of the sessions
it is kicked for, and reports what the API process must know at once: live runs opening and closing, their
events while someone follows them there, runs settling, sessions whose messages changed, sessions it stopped
driving. Everything else goes through the shared database. When told to `Stop`, on SIGTERM, or when its API
process is gone, it interrupts its runs (they are requeued or failed), says `Stopped`, and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import assert_never

from autobots.config import Settings
from autobots.errors import Conflict
from autobots.runs._channel import Event
from autobots.runs._engine import LiveSink, RunEngine
from autobots.runs._protocol import (
    Cancel,
    Changed,
    Close,
    Discard,
    EventsSoFar,
    Follow,
    Kick,
    NewEvent,
    Open,
    Ready,
    Released,
    Reply,
    Secrets,
    Settled,
    Stop,
    Stopped,
    ToPool,
    decode_hello,
    decode_to_worker,
    encode,
    open_link,
    receive,
)
from autobots.workflows.secrets import SecretVault

logger = logging.getLogger("autobots.runs.workers")
BACKLOG_BYTES = 4 * 1024 * 1024
SWITCH_INTERVAL_S = 0.001
WORKER_NICENESS = 10
YOUNG_COLLECTION_THRESHOLD = 10_000


class _RemoteSink:
    """A live run's events in the worker; sent to the API process once it has a follower for the run."""

    def __init__(self, link: _WorkerSide, run_id: str, initial: list[Event]) -> None:
        self.link = link
        self.run_id = run_id
        self.events = list(initial)
        self.followed = False

    async def append(self, event: Event) -> None:
        self.events.append(event)
        if self.followed:
            self.link.send(NewEvent(run_id=self.run_id, event=event))
            if self.link.backlogged:
                await self.link.drain()

    def follow(self) -> None:
        if not self.followed:
            self.followed = True
            self.link.send(EventsSoFar(run_id=self.run_id, events=self.events))

    async def close(self) -> None:
        self.link.sinks.pop(self.run_id, None)
        self.link.send(Close(run_id=self.run_id))


class _WorkerSide:
    """A worker's end of the link: a `RunObserver` for its engine. What is sent in one turn of the event loop
    goes out in one write."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        # The number of the last kick received for each session being driven here.
        self.kicks: dict[str, int] = {}
        self.sinks: dict[str, _RemoteSink] = {}
        self._pending: list[bytes] = []
        self._scheduled = False

    def send(self, message: ToPool) -> None:
        # Encoded now: a run's events list grows after this turn, and the line must say what was there.
        self._pending.append(encode(message))
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        if self._pending and not self.writer.is_closing():
            self.writer.write(b"".join(self._pending))
        self._pending.clear()

    @property
    def backlogged(self) -> bool:
        """The API process is not keeping up: writers should wait (`drain`)."""
        return self.writer.transport.get_write_buffer_size() > BACKLOG_BYTES

    async def drain(self) -> None:
        self._flush()
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    def open(self, run_id: str, initial: list[Event]) -> LiveSink:
        self.send(Open(run_id=run_id))
        sink = self.sinks[run_id] = _RemoteSink(self, run_id, initial)
        return sink

    def follow(self, run_id: str) -> None:
        """The API process has a follower for the run (a run that ended meanwhile has nothing more to send)."""
        sink = self.sinks.get(run_id)
        if sink is not None:
            sink.follow()

    def discard(self, run_id: str) -> None:
        self.send(Discard(run_id=run_id))

    def settled(self, run_id: str) -> None:
        self.send(Settled(run_id=run_id))

    def changed(self, session_id: str) -> None:
        self.send(Changed(session_id=session_id))

    def released(self, session_id: str) -> None:
        self.send(Released(session_id=session_id, last_kick=self.kicks.pop(session_id, 0)))


def tune_collector() -> None:
    """Garbage collection for a process that has started: the heap it built so far (modules, classes, schemas,
    some 200 000 objects that live as long as it) is left out of the collector's passes, and young objects are
    collected every `YOUNG_COLLECTION_THRESHOLD` allocations instead of every 700.

    A full pass walked the whole startup heap for a few tens of thousands of objects of the runs in flight, and
    young passes, every 700 allocations, kept promoting what a model turn holds for a moment: a run worker spent
    about 0.5 s of CPU in the collector while executing 100 runs of 5 turns, 0.06 s tuned. What is frozen is
    never collected, so the garbage made so far is collected first."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, *gc.get_threshold()[1:])


def run_worker(fd: int) -> int:
    """The body of `python -m autobots worker --fd N`."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a terminal's Ctrl-C reaches the API process, which stops us
    # The database writer thread must get the interpreter soon while teams keep the event loop busy: it holds
    # the write lock that the API process may be waiting for.
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    with asyncio.Runner(loop_factory=_loop_factory()) as runner:
        return runner.run(_serve(fd))


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop when installed (as uvicorn picks it for the API process): less CPU per model call."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop  # type: ignore[no-any-return]


async def _serve(fd: int) -> int:
    from autobots import models
    from autobots.db import Database
    from autobots.sandbox import SandboxManager
    from autobots.sessions.message_cache import message_cache
    from autobots.workflows.secrets import vault

    reader, writer = await open_link(socket.socket(fileno=fd))
    hello = decode_hello(await reader.readline())
    settings = Settings(**hello.settings)
    logging.getLogger().setLevel(settings.log_level.upper())
    for workflow_id, keys in hello.secrets.items():
        vault.put(workflow_id, keys)
    link = _WorkerSide(writer)
    message_cache.enabled = False
    message_cache.listeners.append(link.changed)
    db = Database(settings.database_url)
    await db.start_writer_thread()
    # When runs saturate the CPU, the API process (requests, reads, streams) goes first. On Linux a nice value
    # is per thread and inherited by threads created later: the database writer thread, started above, keeps
    # the normal priority, so the write lock it holds is not held hostage by a starved worker.
    os.nice(WORKER_NICENESS)
    sandbox = SandboxManager(settings)
    await sandbox.start()
    for provider in {"openai", models.resolve_default_model(settings).provider}:
        models.preload(provider)
    engine = RunEngine(db, settings, sandbox, link, max_concurrent=hello.max_concurrent)
    await engine.start()
    tune_collector()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    link.send(Ready())
    commands = asyncio.create_task(_obey(reader, link, engine, vault, stop))
    await stop.wait()
    commands.cancel()
    settled = False
    try:
        await engine.shutdown()
        settled = True
    finally:
        await sandbox.stop()
        await db.dispose()
        if settled:
            link.send(Stopped())
        await link.drain()
        writer.close()
    return 0


async def _obey(reader: asyncio.StreamReader, link: _WorkerSide, engine: RunEngine, vault: SecretVault,
                stop: asyncio.Event) -> None:
    """Commands from the API process, until `Stop` or until the API process is gone."""
    pending: set[asyncio.Task[None]] = set()
    try:
        async for message in receive(reader, decode_to_worker, peer="the API process"):
            match message:
                case Kick(session_id=session_id, user_id=user_id, number=number):
                    link.kicks[session_id] = number
                    engine.kick(session_id, user_id)
                case Follow(run_id=run_id):
                    link.follow(run_id)
                case Cancel():
                    task = asyncio.create_task(_answer_cancel(link, engine, message))
                    pending.add(task)
                    task.add_done_callback(pending.discard)
                case Secrets(workflow_id=workflow_id, keys=keys):
                    if keys:
                        vault.put(workflow_id, keys)
                    else:
                        vault.forget(workflow_id)
                case Stop():
                    break
                case _:
                    assert_never(message)
    except (ConnectionError, ValueError):
        logger.warning("run worker: broken link to the API process", exc_info=True)
    finally:
        stop.set()


async def _answer_cancel(link: _WorkerSide, engine: RunEngine, request: Cancel) -> None:
    reply = Reply(request_id=request.request_id)
    try:
        await engine.cancel(request.run_id, request.session_id)
    except Conflict as exc:
        reply = Reply(request_id=request.request_id, error_code=exc.code or Conflict.code, error_message=exc.message)
    except Exception:
        logger.exception("run %s: cancel failed", request.run_id)
        reply = Reply(request_id=request.request_id, error_code="cancel_failed",
                      error_message="the run could not be cancelled; retry shortly")
    link.send(reply)
