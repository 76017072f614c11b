"""Shared test helpers, imported by tests, conftest files and the benchmarks alike; no test module imports
another test module or a conftest. Each module's docstring says what it holds; the ones most tests use:
`specs.py` (workflow spec factories), `api.py` (requests to the in-process app), `servers.py` and
`server_api.py` (real server processes and requests to them over HTTP), `openai_server.py` (the fake
OpenAI-compatible model server) with its pytest fixtures in `fixtures.py`.
"""
