"""The API process's side of the run workers: `WorkerPool` starts them, places sessions on them, and turns what
they report into live channels, woken waiters and cache invalidations.

The API process starts `run_workers` children (`python -m autobots worker`, `_worker.py`), each connected by a
Unix socket pair carrying the messages of `_protocol.py`. A session with work is placed on the worker driving
the fewest sessions, and stays there until that worker has nothing queued for it (`Released`), so its runs stay
in order and one worker never holds most of a burst while another idles. Both sides share the database, the
run ledger being the record; the link carries only what must be immediate.

A worker that dies is restarted; runs it held are requeued (resumed from their checkpoint) or failed, as after
a server crash. A worker that stops on its own terms (`Stopped`: it settled its runs itself) is replaced at once.
"""

from __future__ import annotations

import asyncio
import logging
import math
import socket
import subprocess
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Protocol, assert_never

from autobots.config import Settings
from autobots.errors import Conflict
from autobots.runs._channel import Event, RunChannel
from autobots.runs._protocol import (
    Cancel,
    Changed,
    Close,
    Discard,
    EventsSoFar,
    Follow,
    Hello,
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
    ToWorker,
    decode_to_pool,
    encode,
    open_link,
    receive,
)
from autobots.runs._worker import tune_collector
from autobots.workflows.secrets import ModelSecrets

logger = logging.getLogger("autobots.runs.workers")
STOP_TIMEOUT_S = 30.0
RESTART_BACKOFF_S = (0.5, 1.0, 2.0, 5.0, 10.0)


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
        self.replies: dict[int, asyncio.Future[Reply]] = {}
        self.next_request = 0
        self.failures = 0
        # The worker said `Stopped`: it settled its runs before its link closed.
        self.stopped = False

    @property
    def connected(self) -> bool:
        return self.writer is not None and not self.writer.is_closing()

    def send(self, message: Hello | ToWorker) -> bool:
        if not self.connected:
            return False
        self.writer.write(encode(message))
        return True


class WorkerPool:
    """The API process's handle on its run workers; the same door as an in-process `RunEngine`.

    Args:
        settings: Server settings, handed to every worker.
        observer: The API process's live channels and waiters.
        count: How many workers.
        secrets: The model credentials held so far (workflow id → model name → {api_key?, base_url?}).
        on_restart: Called after a worker was replaced: recover its runs and kick queued sessions.
        on_changed: Called with a session whose messages a worker committed.
    """

    def __init__(self, settings: Settings, observer: LiveChannels, *, count: int,
                 secrets: Callable[[], dict[str, ModelSecrets]],
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
        # Started once the API process has built its app: what it imported and built lives as long as it, and
        # its collector need not walk all that again (a full pass took 0.17 s during a burst of 200 runs). Only
        # a server with run workers has a pool; the tests' in-process apps run their runs in process.
        tune_collector()
        await asyncio.gather(*(self._spawn(link) for link in self._links))

    def kick(self, session_id: str, user_id: str) -> None:
        """Have the session's queued runs executed: by the worker it is placed on, or else by the connected
        worker driving the fewest sessions (where it then stays until that worker releases it). Each worker
        shares its slots fairly between users (`RunEngine`)."""
        link = self._link_of(session_id)
        self._kicks += 1
        link.sessions[session_id] = self._kicks
        link.send(Kick(session_id=session_id, user_id=user_id, number=self._kicks))

    def _link_of(self, session_id: str) -> _Link:
        for link in self._links:
            if session_id in link.sessions:
                return link
        candidates = [link for link in self._links if link.connected] or self._links
        return min(candidates, key=lambda link: len(link.sessions))

    def _released(self, link: _Link, session_id: str, last_kick: int) -> None:
        """The worker stopped driving the session. Unless a later kick is on its way to it, the session is
        free to go to any worker next time."""
        if link.sessions.get(session_id) == last_kick:
            del link.sessions[session_id]

    async def cancel(self, run_id: str, session_id: str) -> None:
        link = self._link_of(session_id)
        link.next_request += 1
        request = link.next_request
        reply: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        link.replies[request] = reply
        if not link.send(Cancel(request_id=request, run_id=run_id, session_id=session_id)):
            link.replies.pop(request, None)
            raise Conflict("the run's worker is restarting; retry shortly", code="worker_restarting")
        answer = await reply
        if answer.error_code is not None:
            raise Conflict(answer.error_message or "the run could not be cancelled", code=answer.error_code)

    def share_secrets(self, workflow_id: str, keys: ModelSecrets | None) -> None:
        for link in self._links:
            link.send(Secrets(workflow_id=workflow_id, keys=keys))

    async def shutdown(self) -> None:
        """Ask every worker to interrupt its runs (they are requeued) and exit; kill those that do not."""
        self._stopping = True
        for link in self._links:
            link.send(Stop())
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
        reader, link.writer = await open_link(ours)
        link.stopped = False
        link.send(Hello(index=link.index, count=self.count, settings=self.settings.model_dump(mode="json"),
                        secrets=self._secrets(),
                        max_concurrent=math.ceil(self.settings.max_concurrent_runs / self.count)))
        link.reader_task = asyncio.create_task(self._read(link, reader), name=f"run-worker-{link.index}")
        logger.info("run worker %d started (pid %d)", link.index, link.process.pid)

    async def _read(self, link: _Link, reader: asyncio.StreamReader) -> None:
        try:
            async for message in receive(reader, decode_to_pool, peer=f"run worker {link.index}"):
                await self._handle(link, message)
        except (ConnectionError, ValueError, asyncio.LimitOverrunError):
            logger.exception("run worker %d: broken link", link.index)
        finally:
            await self._lost(link)

    async def _handle(self, link: _Link, message: ToPool) -> None:
        match message:
            case NewEvent(run_id=run_id, event=event):
                if (sink := link.sinks.get(run_id)) is not None:
                    await sink.append(event)
            case EventsSoFar(run_id=run_id, events=events):
                if (sink := link.sinks.get(run_id)) is not None:
                    await sink.extend(events)
            case Open(run_id=run_id):
                link.sinks[run_id] = self.observer.open(run_id, [],
                                                        on_follow=lambda: link.send(Follow(run_id=run_id)))
            case Close(run_id=run_id):
                if (sink := link.sinks.pop(run_id, None)) is not None:
                    await sink.close()
            case Discard(run_id=run_id):
                self.observer.discard(run_id)
            case Settled(run_id=run_id):
                self.observer.settled(run_id)
            case Changed(session_id=session_id):
                self._on_changed(session_id)
            case Released(session_id=session_id, last_kick=last_kick):
                self._released(link, session_id, last_kick)
            case Reply(request_id=request_id):
                reply = link.replies.pop(request_id, None)
                if reply is not None and not reply.done():
                    reply.set_result(message)
            case Ready():
                link.failures = 0
            case Stopped():
                link.stopped = True
            case _:
                assert_never(message)

    async def _lost(self, link: _Link) -> None:
        """The worker's socket closed: it stopped or died. Close its live channels; unless the server is
        stopping, start a new worker (at once if the old one settled its runs and said `Stopped`, else after a
        backoff) and recover the runs the old one held."""
        if link.writer is not None:
            link.writer.close()
            link.writer = None
        for run_id, sink in list(link.sinks.items()):
            await sink.close()
            self.observer.discard(run_id)
            self.observer.settled(run_id)
        link.sinks.clear()
        for request_id, reply in link.replies.items():
            if not reply.done():
                reply.set_result(Reply(request_id=request_id, error_code="worker_restarting",
                                       error_message="the run's worker stopped; retry shortly"))
        link.replies.clear()
        if link.process is not None:
            code = await link.process.wait()  # reaped: its pid no longer counts as a live run owner
        else:
            code = None
        if self._stopping:
            if not link.stopped:
                logger.warning("run worker %d exited (status %s) without settling its runs; the next server start "
                               "recovers them", link.index, code)
            return
        if link.stopped:
            logger.warning("run worker %d stopped (status %s) and settled its runs; starting a new one",
                           link.index, code)
        else:
            link.failures += 1
            delay = RESTART_BACKOFF_S[min(link.failures, len(RESTART_BACKOFF_S)) - 1]
            logger.error("run worker %d exited unexpectedly (status %s); restarting it in %g s",
                         link.index, code, delay)
            await asyncio.sleep(delay)
            if self._stopping:
                return
        await self._spawn(link)
        # Sessions placed on the old worker are free again: the recovery kicks those with work, wherever they go.
        link.sessions.clear()
        try:
            await self._on_restart()
        except Exception:
            logger.exception("run worker %d: recovering its runs failed", link.index)
