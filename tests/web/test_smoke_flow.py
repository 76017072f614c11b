from tests.conftest import create_session, send_and_wait


async def test_autonomous_run_executes_code_and_replies(client):
    session = await create_session(client)
    posted = await send_and_wait(client, session["id"], "What is 12*(3+4)?")
    assert posted["run"]["status"] == "completed"
    assert "84" in posted["reply"]["content"]
    executions = posted["reply"]["metadata"]["code_executions"]
    assert executions[0]["exit_code"] == 0 and executions[0]["output"].strip() == "84"
