"""Runnable client scripts (on `autobots.client`) that drive a running autobots server; see each module's docstring."""
