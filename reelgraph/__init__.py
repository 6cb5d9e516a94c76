"""reelgraph: an agentic text-to-video toolkit.

The shared core lives here: the error type the CLI turns into messages, the
settings object, the data directory, model resolution and atomic file writes.
The method packages (`generation/`, `memory/`, `motion_prior/`, `agent/`,
`toyworld/`) build on it.
"""

__version__ = "0.1.0"
