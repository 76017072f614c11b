"""What the router learned, kept in the database per user and workflow (never only in memory): the statistics
per (sub-task kind, model), and each routed sub-task's outcome, which the user's feedback may correct.

`StoredRouterMemory` is what a planner run reads its statistics from and records its outcomes to; the service
functions below serve `GET/DELETE /api/v1/router` and `POST /api/v1/runs/{id}/feedback`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autobots.db import Database
from autobots.db.tables import RouterOutcome, RouterStat, Run, now
from autobots.errors import NotFound
from autobots.router import ArmStats, RewardWeights, arms_for, kind_of, reward, size_of
from sqlalchemy import delete
from sqlalchemy.exc import IntegrityError
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession


class OutcomeNotFound(NotFound):
    code = "outcome_not_found"


async def load(db: AsyncSession, *, user_id: str, workflow_id: str) -> dict[str, dict[str, ArmStats]]:
    """Statistics by key (a kind, or a kind and size: `code/long`), then by model."""
    rows = (await db.exec(select(RouterStat).where(RouterStat.user_id == user_id,
                                                   RouterStat.workflow_id == workflow_id))).all()
    learned: dict[str, dict[str, ArmStats]] = {}
    for row in rows:
        learned.setdefault(row.kind, {})[row.model] = ArmStats.from_dict(row.stats)
    return learned


async def _stat_row(db: AsyncSession, *, user_id: str, workflow_id: str, kind: str, model: str) -> RouterStat:
    row = (await db.exec(select(RouterStat).where(
        RouterStat.user_id == user_id, RouterStat.workflow_id == workflow_id, RouterStat.kind == kind,
        RouterStat.model == model))).first()
    if row is None:
        row = RouterStat(user_id=user_id, workflow_id=workflow_id, kind=kind, model=model,
                         stats=ArmStats().to_dict())
        db.add(row)
    return row


async def record(db: AsyncSession, *, run_id: str, user_id: str, workflow_id: str,
                 outcome: Mapping[str, Any]) -> bool:
    """Keep a sub-task's outcome and learn from it, under its kind and under its `context` (kind and input size)
    when it has one; False (nothing learned twice) when it was recorded already."""
    context = outcome.get("context") or outcome["kind"]
    existing = (await db.exec(select(RouterOutcome).where(RouterOutcome.run_id == run_id,
                                                          RouterOutcome.subtask_id == outcome["subtask_id"]))).first()
    if existing is not None:
        return False
    try:
        async with db.begin_nested():
            db.add(RouterOutcome(run_id=run_id, user_id=user_id, workflow_id=workflow_id,
                                 subtask_id=outcome["subtask_id"], kind=context, model=outcome["model"],
                                 success=outcome["success"], cost_cents=outcome["cost_cents"],
                                 latency_s=outcome["latency_s"], reward=outcome["reward"]))
            await db.flush()
    except IntegrityError:  # the same sub-task recorded at the same moment by another attempt
        return False
    for key in _keys(context):
        row = await _stat_row(db, user_id=user_id, workflow_id=workflow_id, kind=key, model=outcome["model"])
        row.stats = ArmStats.from_dict(row.stats).updated(
            reward=outcome["reward"], success=outcome["success"], cost_cents=outcome["cost_cents"],
            latency_s=outcome["latency_s"]).to_dict()
        row.updated_at = now()
        db.add(row)
        await db.flush()
    return True


def _keys(context: str) -> list[str]:
    """The statistics keys an outcome counts under: its kind's, and its context's when it has a size."""
    return [kind_of(context)] + ([context] if size_of(context) is not None else [])


async def apply_feedback(db: AsyncSession, *, run: Run, subtask_id: str | None, score: float,
                         comment: str | None, weights: RewardWeights) -> list[RouterOutcome]:
    """The user's score replaces the verifier's for one sub-task of the run (or all of them), and the statistics
    follow (no new pull: the outcome is corrected).

    Raises:
        OutcomeNotFound: The run has no such routed sub-task.
    """
    query = select(RouterOutcome).where(RouterOutcome.run_id == run.id, RouterOutcome.user_id == run.user_id)
    if subtask_id is not None:
        query = query.where(RouterOutcome.subtask_id == subtask_id)
    outcomes = list((await db.exec(query)).all())
    if not outcomes:
        what = f"sub-task '{subtask_id}'" if subtask_id else "routed sub-task"
        raise OutcomeNotFound(f"run '{run.id}' has no {what}", param="subtask_id" if subtask_id else "run_id")
    for outcome in outcomes:
        new_reward = reward(score, outcome.cost_cents, outcome.latency_s, weights)
        for key in _keys(outcome.kind):
            row = await _stat_row(db, user_id=outcome.user_id, workflow_id=outcome.workflow_id, kind=key,
                                  model=outcome.model)
            stats = ArmStats.from_dict(row.stats)
            if stats.pulls:  # every outcome kept is counted in its statistics (reset forgets both)
                row.stats = stats.corrected(old_reward=outcome.reward, new_reward=new_reward,
                                            old_success=outcome.success, new_success=score).to_dict()
                row.updated_at = now()
            db.add(row)
        outcome.success, outcome.reward, outcome.feedback = score, new_reward, comment
        db.add(outcome)
    await db.flush()
    return outcomes


async def summary(db: AsyncSession, *, user_id: str, workflow_id: str) -> list[dict[str, Any]]:
    """Per kind and model (`size` None), and per kind, input size and model: pulls, mean reward, success, cost
    and latency."""
    learned = await load(db, user_id=user_id, workflow_id=workflow_id)
    return [{"kind": kind_of(key), "size": size_of(key), "model": model, "pulls": stats.pulls,
             "mean_reward": stats.mean_reward, "success": stats.mean_success, "cost_cents": stats.mean_cost,
             "latency_s": stats.mean_latency}
            for key in sorted(learned) for model, stats in sorted(learned[key].items())]


async def reset(db: AsyncSession, *, user_id: str, workflow_id: str) -> None:
    """Forget what was learned for the workflow: its statistics and the outcomes they came from (so that no
    later feedback corrects statistics that never counted them)."""
    for table in (RouterStat, RouterOutcome):
        await db.exec(delete(table).where(table.user_id == user_id,  # type: ignore[call-overload,attr-defined]
                                          table.workflow_id == workflow_id))


class StoredRouterMemory:
    """A planner run's view of the router's statistics (read once as it starts) and its outcome sink."""

    def __init__(self, db: Database, *, run_id: str, user_id: str, workflow_id: str,
                 learned: dict[str, dict[str, ArmStats]]) -> None:
        self._db, self._run_id, self._user_id, self._workflow_id = db, run_id, user_id, workflow_id
        self._learned = learned

    @classmethod
    async def open(cls, db: Database, *, run_id: str, user_id: str, workflow_id: str) -> StoredRouterMemory:
        async with db.read_session() as session:
            learned = await load(session, user_id=user_id, workflow_id=workflow_id)
        return cls(db, run_id=run_id, user_id=user_id, workflow_id=workflow_id, learned=learned)

    def stats(self, context: str) -> Mapping[str, ArmStats]:
        """The arms a choice in `context` (a kind, or a kind and size) reads, by model."""
        return arms_for(context, self._learned)

    async def record(self, outcome: Mapping[str, Any]) -> None:
        async with self._db.session() as session:
            await record(session, run_id=self._run_id, user_id=self._user_id, workflow_id=self._workflow_id,
                         outcome=outcome)
