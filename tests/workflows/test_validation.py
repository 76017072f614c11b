"""The spec schema: every problem reported with its path, nothing importable."""

import pytest
from autobots.errors import InvalidRequest, InvalidWorkflowSpec
from autobots.workflows import check_spec, parse_spec_text, validate_spec

from tests.support.specs import autonomous_spec, groupchat_spec, sequential_spec

SANDBOXES = {"available_sandboxes": frozenset({"docker", "process"}), "default_sandbox": "docker"}


def errors_of(data, **kwargs):
    spec, errors = check_spec(data, **kwargs)
    assert spec is None
    return {e["path"]: e["message"] for e in errors}


class TestValidSpecs:
    @pytest.mark.parametrize("factory", [autonomous_spec, sequential_spec, groupchat_spec])
    def test_each_type_validates(self, factory):
        spec = validate_spec(factory(), **SANDBOXES)
        assert spec.name

    def test_yaml_is_accepted(self):
        document = parse_spec_text(
            "name: y\ntype: sequential\nagents:\n  - name: writer\nsteps: [writer]\n", "application/yaml")
        assert validate_spec(document).steps == ["writer"]

    def test_groupchat_as_autonomous_receiver(self):
        spec = groupchat_spec(type="autonomous", sender="executor", receiver="groupchat")
        assert validate_spec(spec, **SANDBOXES).receiver == "groupchat"


class TestInvalidSpecs:
    def test_unknown_receiver(self):
        assert errors_of(autonomous_spec(receiver="nobody")) == {
            "receiver": "'nobody' is neither an agent nor the groupchat of this workflow"}

    def test_unknown_sender(self):
        assert errors_of(autonomous_spec(sender="ghost"))["sender"] == "unknown agent 'ghost'"

    def test_duplicate_agent_names(self):
        spec = sequential_spec(agents=[{"name": "writer"}, {"name": "writer"}], steps=["writer"])
        assert errors_of(spec) == {"agents[1].name": "duplicate agent name 'writer'"}

    def test_unknown_model(self):
        spec = sequential_spec(agents=[{"name": "writer", "model": "big"}], steps=["writer"])
        assert errors_of(spec) == {"agents[0].model": "unknown model 'big'; models defines: default"}

    def test_missing_models_section(self):
        spec = sequential_spec(models=None, agents=[{"name": "writer", "model": "big"}], steps=["writer"])
        assert errors_of(spec) == {"agents[0].model": "model 'big' is missing: the spec has no models section"}

    def test_bad_provider(self):
        spec = sequential_spec(models={"default": {"provider": "skynet", "model": "x"}})
        message = errors_of(spec)["models.default.provider"]
        assert "openai" in message and "scripted" in message

    def test_empty_steps(self):
        assert errors_of(sequential_spec(steps=[])) == {"steps": "a sequential workflow needs at least one step"}

    def test_step_that_is_not_an_agent(self):
        assert errors_of(sequential_spec(steps=["researcher", "editor"])) == {"steps[1]": "unknown agent 'editor'"}

    def test_groupchat_cycle(self):
        spec = groupchat_spec()
        spec["groupchat"]["agents"] = ["planner", "groupchat"]
        assert errors_of(spec)["groupchat.agents[1]"] == "a groupchat cannot contain itself (cycle)"

    def test_agent_name_must_be_an_identifier(self):
        spec = sequential_spec(agents=[{"name": "bad name"}], steps=["bad name"])
        assert "agents[0].name" in errors_of(spec)

    def test_unknown_fields_are_refused(self):
        spec = autonomous_spec()
        spec["agents"][0]["class_path"] = "os.system"
        assert errors_of(spec) == {"agents[0].class_path": "Extra inputs are not permitted"}

    def test_sandbox_not_available(self):
        spec = autonomous_spec()
        spec["agents"][1]["code_execution"] = {"sandbox": "local"}
        assert errors_of(spec, **SANDBOXES) == {
            "agents[1].code_execution.sandbox": "sandbox 'local' is not available on this server "
                                                "(available: docker, process)"}

    def test_code_execution_without_any_sandbox(self):
        errors = errors_of(autonomous_spec(), available_sandboxes=frozenset(), default_sandbox=None)
        assert "no sandbox" in errors["agents[1].code_execution"]

    def test_every_error_is_reported(self):
        spec = autonomous_spec(sender="ghost", receiver="nobody")
        assert set(errors_of(spec)) == {"sender", "receiver"}

    def test_not_an_object(self):
        assert errors_of([1, 2]) == {"": "a workflow spec must be an object"}

    def test_invalid_error_names_first_path_as_param(self):
        with pytest.raises(InvalidWorkflowSpec) as caught:
            validate_spec(autonomous_spec(receiver="nobody"), param_prefix="workflow")
        assert caught.value.param == "workflow.receiver"

    def test_bad_yaml_is_an_invalid_request(self):
        with pytest.raises(InvalidRequest):
            parse_spec_text("name: [unclosed", "application/yaml")
