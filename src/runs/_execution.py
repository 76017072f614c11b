"""Execute one attempt of a run: build the workflow, stream it, record everything, finish it."""

from __future__ import annotations

import asyncio
import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any

from autobots.config import Settings
from autobots.db import Database
from autobots.db.repositories.ledger import HistoryRow
from autobots.db.tables import Message, Run, new_id, now
from autobots.router.store import StoredRouterMemory
from autobots.runs._errors import classify
from autobots.runs._recorder import RunRecorder
from autobots.runs._transcript import UsageMeter, transcript_entry
from autobots.workflows import modules as module_service
from autobots.workflows import service as workflow_service
from autobots.workflows.builders import (
    BuildContext,
    CodeExecutionRecord,
    StepFailed,
    WorkflowEvent,
    WorkflowResult,
    compile_workflow,
    strip_termination,
)
from autobots.workflows.builders import wall_time_limit as spec_wall_time
from autobots.workflows.schemas import ModuleSpec, WorkflowSpec
from autobots.workflows.secrets import vault
from autogen_agentchat.messages import TextMessage
from autogen_core import CancellationToken
from autogen_core.models import AssistantMessage, LLMMessage, UserMessage

logger = logging.getLogger("autobots.runs")
_STEP_STATUS = {"step.started": "running", "step.completed": "completed", "step.failed": "failed"}
HISTORY_LIMIT = 100


@dataclass
class LiveRun:
    """The in-memory handle of a running attempt."""

    run_id: str
    session_id: str
    token: CancellationToken = field(default_factory=CancellationToken)
    cancel_requested: bool = False
    expired: bool = False
    interrupted: bool = False
    task: asyncio.Task[None] | None = None


def as_model_context(rows: list[HistoryRow], user_message_id: str) -> list[LLMMessage]:
    """The session's turns before the run's user message (`rows` oldest first), as model-context messages."""
    history: list[LLMMessage] = []
    for row in rows:
        if row.id == user_message_id:
            break
        if not row.content.strip():
            continue
        if row.role == "user":
            history.append(UserMessage(content=row.content, source="user"))
        else:
            history.append(AssistantMessage(content=row.content, source="assistant"))
    return history[-HISTORY_LIMIT:]


class RunExecution:
    """One attempt of one run, from `running` to a terminal state."""

    def __init__(self, *, db: Database, settings: Settings, sandbox: Any, run: Run, recorder: RunRecorder,
                 live: LiveRun, content: str, history: list[LLMMessage], events: list[dict[str, Any]],
                 resume: dict[str, Any] | None = None) -> None:
        self.db, self.settings, self.sandbox = db, settings, sandbox
        self.run, self.recorder, self.live, self.content = run, recorder, live, content
        self.history, self.earlier_events = history, events
        self.resume = resume or {}
        self.transcript: list[dict[str, Any]] = []
        self.executions: list[dict[str, Any]] = []
        # The event seqs of the transcript's messages and of the code executions, for checkpoints.
        self.message_seqs: list[int] = []
        self.execution_seqs: list[int] = []
        self.checkpointed_at = -math.inf
        self.step_states: dict[str, dict[str, Any]] = {s["id"]: dict(s) for s in run.steps or []}
        self.started_at = run.started_at or now()

    async def execute(self) -> None:
        spec = workflow_service.load_spec(self.run.spec)
        model_configs = workflow_service.resolve_models(spec, self.settings, vault.secrets_for(self.run.workflow_id))
        ctx = BuildContext(spec=spec, model_configs=model_configs, settings=self.settings, run_id=self.run.id,
                           sandbox=self.sandbox, on_code_execution=self._record_execution,
                           history=self.history, modules=await self._module_library(spec),
                           router_memory=await self._router_memory(spec))
        workflow = compile_workflow(ctx)
        if self.resume.get("team") is not None and workflow.resumable:
            self._restore_record()
            earlier = [TextMessage(content=e["content"], source=e["source"]) for e in self.transcript]
            workflow.resume_from(self.resume["team"], earlier)
        meter = UsageMeter(spec=spec, model_configs=model_configs,
                           model_by_source=getattr(workflow, "model_by_source", {}))
        for entry in self.transcript:
            meter.add(entry)
        wall = spec_wall_time(spec.termination, self.settings)
        timer = asyncio.get_running_loop().call_later(wall, self._expire)
        result: WorkflowResult | None = None
        try:
            task = [TextMessage(content=self.content, source="user")]
            async for item in workflow.run_stream(task, self.live.token):
                if isinstance(item, WorkflowResult):
                    result = item
                    continue
                if isinstance(item, WorkflowEvent):
                    await self._record_workflow_event(item, workflow)
                    continue
                entry = transcript_entry(item)
                if entry is not None:
                    self.transcript.append(entry)
                    self.message_seqs.append(self.recorder.next_seq)
                    meter.add(entry)
                    values: dict[str, Any] = {"usage": meter.usage(), "cost": meter.cost}
                    if self._checkpoint_due(workflow):
                        values["checkpoint"] = await self._checkpoint(workflow)
                    await self.recorder.emit("message", entry, run_values=values)
        except asyncio.CancelledError:
            if not (self.live.cancel_requested or self.live.expired):
                raise
            await self._finish_stopped(meter, ctx)
            return
        except StepFailed as exc:
            if self.live.cancel_requested or self.live.expired:
                await self._finish_stopped(meter, ctx)
                return
            error_type, message = classify(exc.cause) if exc.cause is not None else (exc.code or exc.type, exc.message)
            logger.warning("run %s: step %s failed: %s", self.run.id, exc.step_id, error_type)
            error = {"type": error_type, "message": message, "step": exc.step_id}
            await self._record_workflow_event(WorkflowEvent("step.failed", {"id": exc.step_id, "error": error}), None)
            await self._finish("failed", meter, error=error, stop_reason=f"error: {error_type} in step {exc.step_id}",
                               reply=None, summary=None, ctx=ctx)
            return
        except Exception as exc:
            if self.live.cancel_requested or self.live.expired:
                await self._finish_stopped(meter, ctx)
                return
            error_type, message = classify(exc)
            logger.warning("run %s failed: %s (%s)", self.run.id, error_type, type(exc).__name__,
                           exc_info=error_type == "internal_error")
            await self._finish("failed", meter, error={"type": error_type, "message": message},
                               stop_reason=f"error: {error_type}", reply=None, summary=None, ctx=ctx)
            return
        finally:
            timer.cancel()
            await ctx.close()
        assert result is not None
        status = "incomplete" if result.incomplete_reason else "completed"
        await self._finish(status, meter, error=None, stop_reason=result.stop_reason, reply=result.reply,
                           summary=result.summary, ctx=ctx, incomplete_reason=result.incomplete_reason,
                           metadata=result.metadata)

    async def _module_library(self, spec: WorkflowSpec) -> dict[str, ModuleSpec]:
        """The user's prompt modules as they are now, for a pipeline (a step may name one)."""
        if spec.type != "pipeline":
            return {}
        async with self.db.read_session() as db:
            return await module_service.library(db, user_id=self.run.user_id)

    async def _router_memory(self, spec: WorkflowSpec) -> StoredRouterMemory | None:
        """What a planner's router learned for this user's workflow (read once, as the run starts)."""
        if spec.type != "planner" or self.run.workflow_id is None:
            return None
        return await StoredRouterMemory.open(self.db, run_id=self.run.id, user_id=self.run.user_id,
                                             workflow_id=self.run.workflow_id)

    async def _record_workflow_event(self, event: WorkflowEvent, workflow: Any) -> None:
        """A pipeline step's or a strategy transition's event. A durable one is committed with the checkpoint that
        includes it before the workflow goes on (a pipeline's dependants start only once their inputs are on
        disk; a resumed strategy continues in the state it reached)."""
        values: dict[str, Any] = {}
        if event.type in _STEP_STATUS:
            state = self.step_states.setdefault(event.data["id"], {"id": event.data["id"]})
            state.update(status=_STEP_STATUS[event.type], model=event.data.get("model", state.get("model")))
            values["steps"] = [dict(s) for s in self.step_states.values()]
        if event.durable:
            values["checkpoint"] = await self._checkpoint(workflow)
        await self.recorder.emit_many([(event.type, event.data)], run_values=values, durable=event.durable)

    def _checkpoint_due(self, workflow: Any) -> bool:
        """After the first message, then at most every `checkpoint_interval_s`: saving a team's state costs
        more the longer the conversation, and fast turns would pay it many times a second. (A workflow that
        cannot resume has nothing to save; its marker is written every time, for free.)"""
        if not workflow.resumable:
            return True
        if time.monotonic() - self.checkpointed_at < self.settings.checkpoint_interval_s:
            return False
        self.checkpointed_at = time.monotonic()
        return True

    async def _checkpoint(self, workflow: Any) -> dict[str, Any]:
        """What a later attempt needs to continue: the team's saved state, and which events hold the messages
        and code executions it includes. It is written with the message event it follows; a later attempt
        continues from here, and produces again what came after it."""
        if not workflow.resumable:
            return {"team": None}
        return {"team": await workflow.checkpoint(), "message_seqs": list(self.message_seqs),
                "execution_seqs": list(self.execution_seqs)}

    def _restore_record(self) -> None:
        """The transcript and code executions the checkpoint includes, from their durable events. (Checkpoints
        written before they listed their events: the messages, and the executions before the last message.)"""
        if "message_seqs" in self.resume:
            by_seq = {e["seq"]: e for e in self.earlier_events}
            self.message_seqs = [seq for seq in self.resume["message_seqs"] if seq in by_seq]
            self.execution_seqs = [seq for seq in self.resume.get("execution_seqs", []) if seq in by_seq]
            self.transcript = [by_seq[seq]["data"] for seq in self.message_seqs]
            self.executions = [by_seq[seq]["data"] for seq in self.execution_seqs]
            return
        messages = [e for e in self.earlier_events if e["type"] == "message"]
        last_message_seq = messages[-1]["seq"] if messages else 0
        self.transcript = [e["data"] for e in messages]
        self.executions = [e["data"] for e in self.earlier_events
                           if e["type"] == "code.execution" and e["seq"] < last_message_seq]

    def _expire(self) -> None:
        self.live.expired = True
        self.live.token.cancel()

    async def _record_execution(self, record: CodeExecutionRecord) -> None:
        entry = {"agent": record.agent, "language": record.language, "code": record.code,
                 "exit_code": record.exit_code, "output": record.output}
        self.executions.append(entry)
        self.execution_seqs.append(self.recorder.next_seq)
        await self.recorder.emit("code.execution", entry)

    async def _finish_stopped(self, meter: UsageMeter, ctx: BuildContext) -> None:
        if self.live.cancel_requested:
            await self._finish("cancelled", meter, error=None, stop_reason="cancelled by the client",
                               reply=None, summary=None, ctx=ctx)
        else:
            limit = spec_wall_time(ctx.spec.termination, self.settings)
            await self._finish("incomplete", meter, error=None, stop_reason=f"wall time limit of {limit:g} s reached",
                               reply=None, summary=None, ctx=ctx, incomplete_reason="timeout")

    async def _finish(self, status: str, meter: UsageMeter, *, error: dict[str, str] | None, stop_reason: str | None,
                      reply: str | None, summary: str | None, ctx: BuildContext,
                      incomplete_reason: str | None = None, metadata: dict[str, Any] | None = None) -> None:
        finished_at = now()
        if reply is None:
            stripped = (strip_termination(e["content"], ctx.spec.termination.text)
                        for e in reversed(self.transcript) if e["source"] != "user")
            reply = next((text for text in stripped if text), "")
        message = None
        if self.transcript or status in ("completed", "incomplete"):
            message = Message(
                id=new_id("msg"), session_id=self.run.session_id, user_id=self.run.user_id, run_id=self.run.id,
                role="assistant", content=reply, created_at=finished_at,
                meta={"messages": self.transcript, "summary": summary, "usage": meter.usage(), "cost": meter.cost,
                      "code_executions": self.executions, "stop_reason": stop_reason, "sandbox": ctx.sandbox_used,
                      "sandbox_isolated": ctx.sandbox_used not in ("local",) if ctx.sandbox_used else None,
                      "started_at": self.started_at, "finished_at": finished_at, "status": status,
                      "incomplete_details": {"reason": incomplete_reason} if incomplete_reason else None,
                      **(metadata or {})},
            )
        values: dict[str, Any] = {"status": status, "usage": meter.usage(), "cost": meter.cost, "error": error,
                                  "stop_reason": stop_reason, "finished_at": finished_at,
                                  "sandbox": ctx.sandbox_used, "incomplete_reason": incomplete_reason}
        if message is not None:
            values["reply_message_id"] = message.id
        event_data: dict[str, Any] = {"status": status, "stop_reason": stop_reason, "usage": meter.usage(),
                                      "cost": meter.cost}
        if error:
            event_data["error"] = error
        if incomplete_reason:
            event_data["incomplete_details"] = {"reason": incomplete_reason}
        if message is not None:
            event_data["reply_message_id"] = message.id
        await self.recorder.emit_many([(f"run.{status}", event_data), ("done", {"status": status})],
                                      run_values=values, message=message, durable=True)
