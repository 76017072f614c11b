"""The server's wall-time limit ends a run with a stop reason, not an error."""

import pytest

from tests.support.api import create_session, send_and_wait
from tests.support.specs import openai_spec


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"run_max_seconds": 2, "model_timeout_s": 60.0, "model_max_retries": 0})


async def test_wall_time_limit_ends_a_run_stuck_in_a_model_call_incomplete(client, fake_openai):
    fake_openai.latency_ms = 30_000  # without the limit the answer would come, and end the run otherwise
    session = await create_session(client, openai_spec(fake_openai.base_url))
    posted = await send_and_wait(client, session["id"], "hello")
    assert posted["run"]["status"] == "incomplete"
    assert posted["run"]["incomplete_details"] == {"reason": "timeout"}
    assert posted["reply"]["content"] == ""  # the model never answered: nothing to call a reply
    assert posted["run"]["stop_reason"] == "wall time limit of 2 s reached"
    assert posted["run"]["error"] is None
