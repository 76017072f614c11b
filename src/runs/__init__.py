"""Runs: the chat manager that executes messages through workflows, and reads over the run ledger."""

from autobots.runs._channel import Event, RunChannel
from autobots.runs.manager import RunManager, SessionBusy, worker_count

__all__ = ["Event", "RunChannel", "RunManager", "SessionBusy", "worker_count"]
