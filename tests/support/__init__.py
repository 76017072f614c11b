"""Shared test helpers: the fake OpenAI-compatible server and its pytest fixtures."""
