"""Runnable client scripts (httpx) that drive a running autobots server; see each module's docstring."""
