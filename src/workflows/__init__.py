"""Workflow specs: schema, validation, persistence, and builders that compile a spec into AutoGen teams."""

from autobots.workflows.schemas import AgentSpec, GroupChatSpec, TerminationSpec, WorkflowSpec
from autobots.workflows.secrets import redact_spec, vault
from autobots.workflows.validation import check_spec, format_location, parse_spec_text, validate_spec

__all__ = [
    "AgentSpec",
    "GroupChatSpec",
    "TerminationSpec",
    "WorkflowSpec",
    "check_spec",
    "format_location",
    "parse_spec_text",
    "redact_spec",
    "validate_spec",
    "vault",
]
