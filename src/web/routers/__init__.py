"""HTTP routers, one per resource; thin: parse, authorize, call a service, shape the response."""
