"""A model endpoint that fails, stalls or rate-limits: retries, then a clear failure with messages kept."""

import pytest

from tests.support.api import create_session, send_and_wait
from tests.support.specs import openai_spec


@pytest.fixture
def settings(settings):
    return settings.model_copy(update={"model_max_retries": 2, "model_timeout_s": 1.0})


async def test_rate_limits_are_retried_honouring_retry_after(client, fake_openai):
    fake_openai.fail_next(2, status=429, retry_after=0.05)
    session = await create_session(client, openai_spec(fake_openai.base_url))
    run = (await send_and_wait(client, session["id"], "hello"))["run"]
    assert run["status"] == "completed"
    assert len(fake_openai.chat_requests()) == 3


async def test_server_errors_are_retried(client, fake_openai):
    fake_openai.fail_next(1, status=503)
    session = await create_session(client, openai_spec(fake_openai.base_url))
    assert (await send_and_wait(client, session["id"], "hello"))["run"]["status"] == "completed"


async def test_exhausted_retries_fail_the_run_naming_the_cause_and_keep_earlier_messages(client, fake_openai):
    def first_then_rate_limited(request):
        fake_openai.fail_always(status=429, retry_after=0.01)
        return "Here is a first thought."

    fake_openai.terminate_after = None
    fake_openai.responder = first_then_rate_limited
    spec = openai_spec(fake_openai.base_url, agents=[{"name": "assistant"}, {"name": "critic"}],
                       sender="critic")
    session = await create_session(client, spec)
    posted = await send_and_wait(client, session["id"], "hello")
    assert posted["run"]["status"] == "failed"
    assert posted["run"]["error"]["type"] == "model_rate_limited"
    assert len(fake_openai.chat_requests()) == 1 + 3
    reply = posted["reply"]
    assert reply["metadata"]["status"] == "failed"
    assert [m["content"] for m in reply["metadata"]["messages"]] == ["Here is a first thought."]


async def test_a_stalled_endpoint_times_out(client, fake_openai):
    fake_openai.stall_next(3, seconds=10)
    session = await create_session(client, openai_spec(fake_openai.base_url))
    run = (await send_and_wait(client, session["id"], "hello"))["run"]
    assert run["status"] == "failed"
    assert run["error"] == {"type": "model_timeout", "message": "the model endpoint did not answer in time"}


async def test_token_limit_ends_the_run_incomplete_with_a_stop_reason(client, fake_openai):
    fake_openai.terminate_after = None
    spec = openai_spec(fake_openai.base_url, termination={"text": "TERMINATE", "max_messages": 50, "max_tokens": 60})
    session = await create_session(client, spec)
    posted = await send_and_wait(client, session["id"], "hello")
    assert posted["run"]["status"] == "incomplete"
    assert posted["run"]["incomplete_details"] == {"reason": "max_tokens"}
    assert posted["run"]["stop_reason"].startswith("Token usage limit reached")
