"""Topology files the self-tests write: variants of the shipped ones."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def unreachable_lab(directory: Path) -> tuple[Path, dict[str, Any]]:
    """lab.yaml with every host on a loopback port where nothing listens.

    Never the sample's real hosts, and no traffic off this machine (a route to another
    address could leave through the uplink). Returns the file and its content.
    """
    lab = yaml.safe_load((ROOT / "topologies" / "lab.yaml").read_text())
    for port, host in enumerate(lab["hosts"].values(), start=1):
        host.update(address="127.0.0.1", ssh_port=port)
        host.pop("key_file", None)
    path = directory / "unreachable.yaml"
    path.write_text(yaml.safe_dump(lab, sort_keys=False))
    return path, lab


def virtual_variant(directory: Path, name: str, edit: Callable[[dict[str, Any]], None]) -> Path:
    """A copy of virtual.yaml changed by `edit`, written as <name>.yaml."""
    topology = yaml.safe_load((ROOT / "topologies" / "virtual.yaml").read_text())
    edit(topology)
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(topology, sort_keys=False))
    return path
