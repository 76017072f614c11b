"""Builders: spec -> AutoGen teams, run against the scripted model (offline, deterministic)."""

from autobots.config import Settings
from autobots.workflows import service as workflow_service
from autobots.workflows import validate_spec
from autobots.workflows.builders import BuildContext, WorkflowResult, build_team, compile_workflow
from autogen_agentchat.messages import BaseChatMessage, TextMessage
from autogen_agentchat.teams import RoundRobinGroupChat, SelectorGroupChat
from autogen_core import CancellationToken

from tests.support.specs import groupchat_spec, sequential_spec


def context(spec_data, **settings):
    spec = validate_spec(spec_data)
    configured = Settings(sandbox="none", **settings)
    return BuildContext(spec=spec, model_configs=workflow_service.resolve_models(spec, configured, {}),
                        settings=configured, run_id="run_test")


async def run(ctx, content="Write about honey bees"):
    items = [item async for item in compile_workflow(ctx).run_stream(
        [TextMessage(content=content, source="user")], CancellationToken())]
    await ctx.close()
    result = items[-1]
    assert isinstance(result, WorkflowResult)
    return [m for m in items[:-1] if isinstance(m, BaseChatMessage)], result


class TestGroupChat:
    def test_auto_selection_builds_a_selector_team(self):
        assert isinstance(build_team(context(groupchat_spec())), SelectorGroupChat)

    def test_round_robin(self):
        spec = groupchat_spec()
        spec["groupchat"]["speaker_selection"] = "round_robin"
        assert isinstance(build_team(context(spec)), RoundRobinGroupChat)

    async def test_round_robin_speaks_in_order_until_termination(self):
        spec = groupchat_spec(agents=[{"name": "planner", "system_message": "You plan."},
                                      {"name": "critic", "system_message": "You review."}])
        spec["groupchat"] = {"agents": ["planner", "critic"], "speaker_selection": "round_robin"}
        messages, result = await run(context(spec))
        assert [m.source for m in messages] == ["planner", "critic"]
        assert result.stop_reason == "Text 'TERMINATE' mentioned"
        assert "TERMINATE" not in result.reply

    async def test_selector_picks_described_agents(self):
        spec = groupchat_spec(agents=[{"name": "planner", "system_message": "You plan."},
                                      {"name": "critic", "system_message": "You review."}])
        spec["groupchat"] = {"agents": ["planner", "critic"], "speaker_selection": "auto"}
        messages, _ = await run(context(spec))
        assert [m.source for m in messages] == ["planner", "critic"]


class TestSequential:
    async def test_each_step_gets_the_carried_over_summary(self, fake_openai):
        fake_openai.queue_replies("Bees make honey from nectar. TERMINATE", "A poem about bees. TERMINATE")
        ctx = context(sequential_spec(models={"default": {"provider": "openai", "model": "m",
                                                          "base_url": fake_openai.base_url}}))
        messages, result = await run(ctx)
        assert [m.source for m in messages] == ["researcher", "writer"]
        writer_prompt = " ".join(str(m.get("content")) for m in fake_openai.chat_requests()[1].messages)
        assert "Context carried over from previous steps" in writer_prompt
        assert "[researcher]\nBees make honey from nectar." in writer_prompt
        assert result.reply == result.summary == "A poem about bees."

    async def test_summary_method_none_carries_nothing(self):
        messages, result = await run(context(sequential_spec(summary_method="none")))
        assert [m.source for m in messages] == ["researcher", "writer"]
        assert result.summary is None

    async def test_summary_method_llm_asks_the_model(self):
        _, result = await run(context(sequential_spec(summary_method="llm")))
        assert result.summary and result.summary != result.reply

    async def test_server_message_limit_caps_the_spec(self):
        spec = groupchat_spec(agents=[{"name": "planner", "system_message": "You plan."},
                                      {"name": "helper", "system_message": "You plan too."}],
                              termination={"text": "NEVER-SAID", "max_messages": 50})
        spec["groupchat"] = {"agents": ["planner", "helper"], "speaker_selection": "round_robin"}
        messages, result = await run(context(spec, run_max_messages=3))
        assert len(messages) == 3
        assert result.stop_reason == "Maximum number of messages 3 reached"
