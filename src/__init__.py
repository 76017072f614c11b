"""autobots: a REST service that runs multi-agent AutoGen workflows."""

__version__ = "0.1.0"
