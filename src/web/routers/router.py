"""/api/v1/router: what the planner's model router learned for one of the caller's workflows; and
/api/v1/runs/{id}/feedback, the user's own score for a routed sub-task (API.md "Planner and router")."""

from __future__ import annotations

from typing import Annotated, Any

from autobots.router import RewardWeights, kind_of, size_of
from autobots.router import store as router_store
from autobots.web.auth import CurrentUser
from autobots.web.deps import DbSession
from autobots.web.routers.runs import RunFromPath
from autobots.web.schemas import ErrorBody
from autobots.workflows import service as workflow_service
from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, ConfigDict, Field

router = APIRouter(tags=["router"])
NOT_FOUND = {404: {"model": ErrorBody, "description": "No such workflow, run or sub-task (or not yours)"}}
WorkflowId = Annotated[str, Query(max_length=64, description="A planner workflow of yours")]


class ArmOut(BaseModel):
    kind: str
    size: str | None = Field(description="None: all of the kind's sub-tasks; `short`/`long`: those of that input "
                                         "size (instruction plus dependencies' results)")
    model: str
    pulls: int
    mean_reward: float | None
    success: float | None
    cost_cents: float | None
    latency_s: float | None


class RouterStatsOut(BaseModel):
    object: str = "router.stats"
    workflow_id: str
    data: list[ArmOut]


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    subtask_id: str | None = Field(None, max_length=100, description="One sub-task; all of the run's when absent")
    score: float = Field(ge=0, le=1, description="How well the sub-task was done, 0..1 (replaces the verifier's)")
    comment: str | None = Field(None, max_length=10_000)


class OutcomeOut(BaseModel):
    subtask_id: str
    kind: str
    size: str | None
    model: str
    success: float
    reward: float
    cost_cents: float
    latency_s: float
    feedback: str | None


@router.get("/api/v1/router", response_model=RouterStatsOut, responses=NOT_FOUND)
async def get_router_stats(workflow_id: WorkflowId, user: CurrentUser, db: DbSession) -> dict[str, Any]:
    """Per sub-task kind and model: pulls, mean reward, success, cost and latency."""
    await workflow_service.get_or_raise(db, user_id=user.id, workflow_id=workflow_id)
    rows = await router_store.summary(db, user_id=user.id, workflow_id=workflow_id)
    return {"object": "router.stats", "workflow_id": workflow_id, "data": rows}


@router.delete("/api/v1/router", status_code=204, response_class=Response, responses=NOT_FOUND)
async def reset_router_stats(workflow_id: WorkflowId, user: CurrentUser, db: DbSession) -> Response:
    """Forget what the router learned for the workflow."""
    await workflow_service.get_or_raise(db, user_id=user.id, workflow_id=workflow_id)
    await router_store.reset(db, user_id=user.id, workflow_id=workflow_id)
    return Response(status_code=204)


@router.post("/api/v1/runs/{run_id}/feedback", response_model=list[OutcomeOut], responses=NOT_FOUND)
async def post_feedback(run: RunFromPath, body: FeedbackIn, db: DbSession) -> list[dict[str, Any]]:
    """Score a routed sub-task of a planner run (or all of them); the router's statistics follow."""
    spec = await workflow_service.spec_of(db, run=run)
    weights = spec.router.reward if spec is not None and spec.router is not None else None
    outcomes = await router_store.apply_feedback(
        db, run=run, subtask_id=body.subtask_id, score=body.score, comment=body.comment,
        weights=RewardWeights(weights.alpha, weights.beta, weights.gamma) if weights else RewardWeights())
    return [{"subtask_id": o.subtask_id, "kind": kind_of(o.kind), "size": size_of(o.kind), "model": o.model,
             "success": o.success,
             "reward": o.reward, "cost_cents": o.cost_cents, "latency_s": o.latency_s, "feedback": o.feedback}
            for o in outcomes]
