"""Seed-era compatibility: the `/api` endpoints of the earlier autobots / AutoGen-assistant backend, as thin
translations onto the v1 services (same tables, same auth).

- `routes`: the endpoints; `routing`: their route class, which answers errors in the seed envelope.
- `envelope`: the seed envelope itself (also used by the middlewares that refuse requests before routing).
- `schemas`: request and response bodies; `flow_config`: the seed client's workflow in them, which `translator`
  makes a workflow spec of.
- `service`: the operations, composed from the users, sessions, workflows, runs and gallery services.
"""
