"""A veth pair in a namespace of its own, for commands that need a real interface."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def veth_in_namespace(namespace: str, dev: str, peer: str) -> Iterator[str]:
    """`dev` (peered with `peer`) in a new namespace, removed with it afterwards."""
    subprocess.run(["ip", "netns", "add", namespace], check=True)
    try:
        subprocess.run(["ip", "-n", namespace, "link", "add", dev, "type", "veth", "peer",
                        "name", peer], check=True)  # fmt: skip
        yield dev
    finally:
        subprocess.run(["ip", "netns", "del", namespace], check=False)
