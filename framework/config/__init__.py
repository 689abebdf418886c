"""Topology model and loader."""

from framework.config.loader import DEFAULT_TOPOLOGY, load_topology
from framework.config.model import Capability, Host, NicFamily, Port, Topology

__all__ = [
    "DEFAULT_TOPOLOGY",
    "Capability",
    "Host",
    "NicFamily",
    "Port",
    "Topology",
    "load_topology",
]
