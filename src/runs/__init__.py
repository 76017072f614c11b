"""Runs: the chat manager that executes messages through workflows, and reads over the run ledger.

The life of a message:

1. Submit. `POST /sessions/{id}/messages` calls `RunManager.submit` (`manager.py`), which builds the user
   `Message`, a `queued` `Run` and its `run.queued` event.
2. Ledger. `RunManager._write_submission` queues them for the submitter task (`_submit_queued`), which writes
   every submission waiting in one transaction on the database's writer thread: `ledger.insert_submissions`
   (`db/repositories/ledger.py`) checks the session is free, the user's quota and the workflow, and copies the
   workflow's spec into the run. The `run` row is the record from here on.
3. Placement. `RunManager._kick` hands the session to its runner (`RunManager.runner`): in process,
   `RunEngine.kick` (`_engine.py`); with run workers, `WorkerPool.kick` (`_pool.py`) places the session on the
   worker already driving it, else on the connected one driving the fewest sessions, and sends it a `Kick`
   (`_protocol.py`), which the worker's
   `_obey` (`_worker.py`) hands to its own `RunEngine.kick`. `RunEngine._drive`, one task per session, takes a
   slot for the session's user (`FairSlots.slot`, `_fair.py`), reads the oldest queued run (`ledger.next_queued`)
   and claims it with `ledger.take`: status `running`, `attempt` + 1, this engine as `owner`.
4. Attempt. `RunEngine._execute` opens the run's live channel (`RunObserver.open`: `ChannelRegistry.open` in
   process, `Open` from a worker) and runs `RunExecution.execute` (`_execution.py`): `compile_workflow` builds the
   AutoGen team from the run's spec, resumed from its checkpoint if it has one, and streams it.
5. Journal. Each agent message goes to `RunRecorder.emit` (`_recorder.py`), which hands a `JournalWrite` to
   `RunJournal.submit` (`_journal.py`) and appends the event to the live channel (from a worker, a `NewEvent`
   once someone follows the run there). `RunJournal._flush` commits what accumulated within `LINGER_S`, for
   every run of the process, in one transaction: `ledger.apply_run_writes`, fenced by attempt, so a stale
   attempt's writes are refused (`StaleAttempt`) and it stops.
6. Reply. `RunExecution._finish` records the reply `Message` with `run.<status>` and `done` as a durable write:
   committed at once, before followers see the end. `RunEngine._execute` then closes the channel and reports the
   run settled (`Settled` from a worker): `RunManager.wake_waiters` wakes `RunManager.wait` (`?wait=true`, which
   reads the reply with `service.reply_of`); streams (`web/sse.py`, `run_events`) follow the channel while the
   run is live and the database after.

An executor that dies leaves its runs `running`: `RunManager.recover_orphans` (at start, after a worker is
replaced, and every `Settings.heartbeat_s`) calls `requeue_or_fail` (`_recovery.py`), which puts a run that can
resume back in the queue (its next claim is attempt + 1), ends one with a pending cancel `cancelled`, and one that
cannot resume `failed`, error type `interrupted`.

With `run_dispatch = "procrastinate"` (`_dispatch.py`), placement is a job in the PostgreSQL database instead:
`DispatchedRuns.kick` defers a `drive_session` job, which a `python -m autobots worker` on any host takes
(`_remote_worker.py`) and hands to its `RunEngine.drive`; the journal's commits NOTIFY the runs they touched, and
API replicas LISTEN, so their streams and waiters follow runs executing elsewhere; a cancel is a fenced
`cancelling` write with a NOTIFY that the executing worker LISTENs for.
"""

from autobots.runs._channel import Event, RunChannel
from autobots.runs._remote_worker import run_remote_worker
from autobots.runs._worker import run_worker
from autobots.runs.manager import RunManager, SessionBusy, worker_count

__all__ = ["Event", "RunChannel", "RunManager", "SessionBusy", "run_remote_worker", "run_worker", "worker_count"]
