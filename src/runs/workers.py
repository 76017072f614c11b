"""Run worker processes: runs execute outside the API process, so reads stay fast while runs use the CPU.

The API process starts `run_workers` children (`python -m autobots worker`), each connected by a Unix
socket pair carrying JSON lines. A session with work is placed on the worker driving the fewest sessions,
and stays there until that worker has nothing queued for it (`released`), so its runs stay in order and
one worker never holds most of a burst while another idles. Both sides share the database, the run ledger
being the record; the link carries only what must be immediate:

- API → worker: `kick` (a session has queued runs; numbered, with the session's user), `follow` (a run has a
  follower now), `cancel` (answered by `reply`), `secrets` (inline model keys, which are never stored), `stop`.
- worker → API: a live run's `open`, `close`, and while the API process has a follower for it (`follow`) its
  events: those so far (`events`), then each new one (`event`); `settled` (wake waiters);
  `changed` (a session's messages were committed: the API process's message cache drops it); `released`
  (the worker stopped driving a session, with the number of the last kick it had for it).

A worker that dies is restarted; runs it held are requeued (resumed from their checkpoint) or failed, as
after a server crash. A worker whose API process goes away interrupts its runs the same way and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from autobots.config import Settings
from autobots.errors import Conflict
from autobots.runs._channel import Event, RunChannel
from autobots.runs._engine import LiveSink, RunEngine

logger = logging.getLogger("autobots.runs.workers")
LINE_LIMIT = 64 * 1024 * 1024
BACKLOG_BYTES = 4 * 1024 * 1024
SWITCH_INTERVAL_S = 0.001
WORKER_NICENESS = 10
STOP_TIMEOUT_S = 30.0
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


def _dumps(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode() + b"\n"


def _event_message(run_id: str, event: Event) -> dict[str, Any]:
    return {"op": "event", "run": run_id, "seq": event.seq, "type": event.type, "data": event.data,
            "at": event.created_at}


def _event_of(message: dict[str, Any]) -> Event:
    return Event(seq=message["seq"], type=message["type"], data=message["data"], created_at=message["at"])


# -- the API process's side ------------------------------------------------------------------------------------


class LiveChannels(Protocol):
    """The API process's live channels and waiters, as the pool feeds them."""

    def open(self, run_id: str, initial: list[Event], on_follow: Callable[[], None] | None = None) -> RunChannel: ...

    def discard(self, run_id: str) -> None: ...

    def settled(self, run_id: str) -> None: ...


class _Link:
    """One worker process and the API process's end of its socket."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.process: asyncio.subprocess.Process | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.reader_task: asyncio.Task[None] | None = None
        self.sinks: dict[str, RunChannel] = {}
        # Sessions placed here, with the number of the last kick sent for each.
        self.sessions: dict[str, int] = {}
        self.replies: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_request = 0
        self.failures = 0

    @property
    def connected(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    def send(self, message: dict[str, Any]) -> bool:
        if not self.connected:
            return False
        self.writer.write(_dumps(message))
        return True


class WorkerPool:
    """The API process's handle on its run workers; the same door as an in-process `RunEngine`.

    Args:
        settings: Server settings, handed to every worker.
        observer: The API process's live channels and waiters.
        count: How many workers.
        secrets: The model credentials held so far (workflow id → model name → {api_key?, base_url?}).
        on_restart: Called after a dead worker was replaced: recover its runs and kick queued sessions.
    """

    def __init__(self, settings: Settings, observer: LiveChannels, *, count: int,
                 secrets: Callable[[], dict[str, dict[str, str]]],
                 on_restart: Callable[[], Awaitable[None]],
                 on_changed: Callable[[str], None]) -> None:
        self.settings = settings
        self.observer = observer
        self.count = count
        self._secrets = secrets
        self._on_restart = on_restart
        self._on_changed = on_changed
        self._links = [_Link(index) for index in range(count)]
        self._kicks = 0
        self._stopping = False

    @property
    def live_count(self) -> int:
        return sum(len(link.sinks) for link in self._links)

    def holds(self, run_id: str) -> bool:
        """Runs held by workers are recognised by their owner (a live process on this host)."""
        return False

    def describe(self) -> dict[str, Any]:
        """For readiness: how many workers there are, how many are connected now, and each one's load."""
        connected = sum(1 for link in self._links if link.connected)
        return {"ok": connected == self.count, "executor": "workers", "workers": self.count,
                "connected": connected, "live_runs": self.live_count,
                "by_worker": [{"live_runs": len(link.sinks), "sessions": len(link.sessions)} for link in self._links]}

    async def start(self) -> None:
        await asyncio.gather(*(self._spawn(link) for link in self._links))

    def kick(self, session_id: str, user_id: str) -> None:
        """Have the session's queued runs executed: by the worker it is placed on, or else by the connected
        worker driving the fewest sessions (where it then stays until that worker releases it). Each worker
        shares its slots fairly between users (`RunEngine`)."""
        link = self._link_of(session_id)
        self._kicks += 1
        link.sessions[session_id] = self._kicks
        link.send({"op": "kick", "session": session_id, "user": user_id, "kick": self._kicks})

    def _link_of(self, session_id: str) -> _Link:
        for link in self._links:
            if session_id in link.sessions:
                return link
        candidates = [link for link in self._links if link.connected] or self._links
        return min(candidates, key=lambda link: len(link.sessions))

    def _released(self, link: _Link, session_id: str, kick: int) -> None:
        """The worker stopped driving the session. Unless a later kick is on its way to it, the session is
        free to go to any worker next time."""
        if link.sessions.get(session_id) == kick:
            del link.sessions[session_id]

    async def cancel(self, run_id: str, session_id: str) -> None:
        link = self._link_of(session_id)
        link.next_request += 1
        request = link.next_request
        reply = asyncio.get_running_loop().create_future()
        link.replies[request] = reply
        if not link.send({"op": "cancel", "id": request, "run": run_id, "session": session_id}):
            link.replies.pop(request, None)
            raise Conflict("the run's worker is restarting; retry shortly", code="worker_restarting")
        answer = await reply
        if answer.get("error"):
            raise Conflict(answer["error"]["message"], code=answer["error"]["code"])

    def share_secrets(self, workflow_id: str, keys: dict[str, dict[str, str]] | None) -> None:
        for link in self._links:
            link.send({"op": "secrets", "workflow": workflow_id, "keys": keys})

    async def shutdown(self) -> None:
        """Ask every worker to interrupt its runs (they are requeued) and exit; kill those that do not."""
        self._stopping = True
        for link in self._links:
            link.send({"op": "stop"})
        await asyncio.gather(*(self._reap(link) for link in self._links))

    async def _reap(self, link: _Link) -> None:
        if link.process is None:
            return
        try:
            await asyncio.wait_for(link.process.wait(), timeout=STOP_TIMEOUT_S)
        except TimeoutError:
            logger.warning("run worker %d did not stop in %g s; killing it", link.index, STOP_TIMEOUT_S)
            link.process.kill()
            await link.process.wait()
        if link.reader_task is not None:
            await link.reader_task

    async def _spawn(self, link: _Link) -> None:
        ours, theirs = socket.socketpair()
        try:
            link.process = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "autobots", "worker", "--fd", str(theirs.fileno()),
                pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        reader, link.writer = await asyncio.open_unix_connection(sock=ours, limit=LINE_LIMIT)
        link.send({"op": "hello", "index": link.index, "count": self.count,
                   "settings": self.settings.model_dump(mode="json"), "secrets": self._secrets(),
                   "max_concurrent": math.ceil(self.settings.max_concurrent_runs / self.count)})
        link.reader_task = asyncio.create_task(self._read(link, reader), name=f"run-worker-{link.index}")
        logger.info("run worker %d started (pid %d)", link.index, link.process.pid)

    async def _read(self, link: _Link, reader: asyncio.StreamReader) -> None:
        try:
            while line := await reader.readline():
                await self._handle(link, json.loads(line))
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            logger.exception("run worker %d: broken link", link.index)
        finally:
            await self._lost(link)

    async def _handle(self, link: _Link, message: dict[str, Any]) -> None:
        op = message["op"]
        if op == "event":
            sink = link.sinks.get(message["run"])
            if sink is not None:
                await sink.append(_event_of(message))
        elif op == "events":
            sink = link.sinks.get(message["run"])
            if sink is not None:
                await sink.extend([_event_of(e) for e in message["events"]])
        elif op == "open":
            run_id = message["run"]
            link.sinks[run_id] = self.observer.open(run_id, [],
                                                    on_follow=lambda: link.send({"op": "follow", "run": run_id}))
        elif op == "close":
            sink = link.sinks.pop(message["run"], None)
            if sink is not None:
                await sink.close()
        elif op == "discard":
            self.observer.discard(message["run"])
        elif op == "settled":
            self.observer.settled(message["run"])
        elif op == "changed":
            self._on_changed(message["session"])
        elif op == "released":
            self._released(link, message["session"], message["kick"])
        elif op == "reply":
            reply = link.replies.pop(message["id"], None)
            if reply is not None and not reply.done():
                reply.set_result(message)
        elif op == "ready":
            link.failures = 0

    async def _lost(self, link: _Link) -> None:
        """The worker's socket closed: it stopped or died. Close its live channels; unless the server is
        stopping, start a new worker and recover the runs the old one held."""
        if link.writer is not None:
            link.writer.close()
            link.writer = None
        for run_id, sink in list(link.sinks.items()):
            await sink.close()
            self.observer.discard(run_id)
            self.observer.settled(run_id)
        link.sinks.clear()
        for reply in link.replies.values():
            if not reply.done():
                reply.set_result({"error": {"code": "worker_restarting",
                                            "message": "the run's worker stopped; retry shortly"}})
        link.replies.clear()
        if link.process is not None:
            code = await link.process.wait()  # reaped: its pid no longer counts as a live run owner
        else:
            code = None
        if self._stopping:
            return
        link.failures += 1
        delay = RESTART_BACKOFF_S[min(link.failures, len(RESTART_BACKOFF_S)) - 1]
        logger.error("run worker %d exited unexpectedly (status %s); restarting it in %g s", link.index, code, delay)
        await asyncio.sleep(delay)
        if self._stopping:
            return
        await self._spawn(link)
        # Sessions placed on the dead worker are free again: the recovery kicks those with work, wherever they go.
        link.sessions.clear()
        try:
            await self._on_restart()
        except Exception:
            logger.exception("run worker %d: recovering its runs failed", link.index)


# -- the worker's side -------------------------------------------------------------------------------------------


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
            self.link.send(_event_message(self.run_id, event))
            if self.link.backlogged:
                await self.link.drain()

    def follow(self) -> None:
        if not self.followed:
            self.followed = True
            self.link.send({"op": "events", "run": self.run_id,
                            "events": [_event_message(self.run_id, event) for event in self.events]})

    async def close(self) -> None:
        self.link.sinks.pop(self.run_id, None)
        self.link.send({"op": "close", "run": self.run_id})


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

    def send(self, message: dict[str, Any]) -> None:
        self._pending.append(_dumps(message))
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
        self.send({"op": "open", "run": run_id})
        sink = self.sinks[run_id] = _RemoteSink(self, run_id, initial)
        return sink

    def follow(self, run_id: str) -> None:
        """The API process has a follower for the run (a run that ended meanwhile has nothing more to send)."""
        sink = self.sinks.get(run_id)
        if sink is not None:
            sink.follow()

    def discard(self, run_id: str) -> None:
        self.send({"op": "discard", "run": run_id})

    def settled(self, run_id: str) -> None:
        self.send({"op": "settled", "run": run_id})

    def changed(self, session_id: str) -> None:
        self.send({"op": "changed", "session": session_id})

    def released(self, session_id: str) -> None:
        self.send({"op": "released", "session": session_id, "kick": self.kicks.pop(session_id, 0)})


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
    from autobots.db.message_cache import message_cache
    from autobots.sandbox import SandboxManager
    from autobots.workflows.secrets import vault

    reader, writer = await asyncio.open_unix_connection(sock=socket.socket(fileno=fd), limit=LINE_LIMIT)
    hello = json.loads(await reader.readline())
    settings = Settings(**hello["settings"])
    logging.getLogger().setLevel(settings.log_level.upper())
    for workflow_id, keys in hello["secrets"].items():
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
    engine = RunEngine(db, settings, sandbox, link, max_concurrent=hello["max_concurrent"])
    await engine.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    link.send({"op": "ready"})
    commands = asyncio.create_task(_obey(reader, link, engine, vault, stop))
    await stop.wait()
    commands.cancel()
    try:
        await engine.shutdown()
    finally:
        await sandbox.stop()
        await db.dispose()
        link.send({"op": "stopped"})
        await link.drain()
        writer.close()
    return 0


async def _obey(reader: asyncio.StreamReader, link: _WorkerSide, engine: RunEngine, vault: Any,
                stop: asyncio.Event) -> None:
    """Commands from the API process, until `stop` or until the API process is gone."""
    pending: set[asyncio.Task[None]] = set()
    try:
        while line := await reader.readline():
            message = json.loads(line)
            op = message["op"]
            if op == "kick":
                link.kicks[message["session"]] = message["kick"]
                engine.kick(message["session"], message["user"])
            elif op == "follow":
                link.follow(message["run"])
            elif op == "cancel":
                task = asyncio.create_task(_answer_cancel(link, engine, message))
                pending.add(task)
                task.add_done_callback(pending.discard)
            elif op == "secrets":
                if message["keys"]:
                    vault.put(message["workflow"], message["keys"])
                else:
                    vault.forget(message["workflow"])
            elif op == "stop":
                break
    except (ConnectionError, ValueError):
        logger.warning("run worker: broken link to the API process", exc_info=True)
    finally:
        stop.set()


async def _answer_cancel(link: _WorkerSide, engine: RunEngine, message: dict[str, Any]) -> None:
    answer: dict[str, Any] = {"op": "reply", "id": message["id"], "error": None}
    try:
        await engine.cancel(message["run"], message["session"])
    except Conflict as exc:
        answer["error"] = {"code": exc.code, "message": exc.message}
    except Exception:
        logger.exception("run %s: cancel failed", message["run"])
        answer["error"] = {"code": "cancel_failed", "message": "the run could not be cancelled; retry shortly"}
    link.send(answer)
