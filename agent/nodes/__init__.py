"""The graph's nodes: small verbs over :class:`~agent.state.RunState`, one module each.

Each node takes the state and the services and returns the fields it
changes. Planning nodes (``understand_request`` ... ``estimate_costs``) touch
no GPU and load no diffusion model; GPU nodes (``tune_motion``, ``sample``,
``extend``) run once per scene; ``finalize`` writes the viewing files and the
manifest. A node whose capability is not available records ``skipped`` with
the reason and changes nothing else.
"""

from agent.nodes.estimate import estimate_costs
from agent.nodes.extend import extend
from agent.nodes.finalize import finalize
from agent.nodes.noise import choose_noise
from agent.nodes.retrieve import retrieve
from agent.nodes.review import review_tools
from agent.nodes.rewrite import rewrite
from agent.nodes.sample import sample
from agent.nodes.tune import tune_motion
from agent.nodes.understand import understand_request
from agent.nodes.units import parse_units

__all__ = [
    "choose_noise",
    "estimate_costs",
    "extend",
    "finalize",
    "parse_units",
    "retrieve",
    "review_tools",
    "rewrite",
    "sample",
    "tune_motion",
    "understand_request",
]
