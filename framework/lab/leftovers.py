"""What a run may leave on the machine, as a comparable snapshot.

The suite promises that lab up -> tests -> lab down leaves the machine as it found it;
tests/integration/test_virtual_lab.py holds it to that with these snapshots.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT
from framework.lab.virtual import existing_namespaces

WATCHED_PROGRAMS = ("dpdk-testpmd", "testpmd", "qemu-system", "sshd -D -f")


def _lines(argv: list[str]) -> list[str]:
    done = subprocess.run(argv, capture_output=True, text=True)
    return done.stdout.splitlines() if done.returncode == 0 else []


@dataclass(frozen=True)
class MachineState:
    """Names of the things a run could leave behind, by kind, at one moment."""

    namespaces: frozenset[str]
    links: frozenset[str]
    processes: frozenset[str]
    hugepage_files: frozenset[str]
    dpdk_runtime_dirs: frozenset[str]
    containers: frozenset[str]
    run_dirs: frozenset[str]

    def new_since(self, before: MachineState) -> dict[str, list[str]]:
        """What exists now that did not before, by kind; empty when nothing was left."""
        left = {}
        for kind in self.__dataclass_fields__:
            extra = sorted(getattr(self, kind) - getattr(before, kind))
            if extra:
                left[kind] = extra
        return left


def snapshot(hugepage_mount: str = DEFAULT_HUGEPAGE_MOUNT) -> MachineState:
    """Record what the machine holds now: namespaces, links, DPDK and QEMU processes, files."""
    processes = {
        line.strip()
        for line in _lines(["ps", "-eo", "pid=,args="])
        if any(program in line for program in WATCHED_PROGRAMS)
    }
    hugepages = Path(hugepage_mount)
    runtime = Path("/run/dpdk")
    return MachineState(
        namespaces=frozenset(existing_namespaces()),
        links=frozenset(
            line.split(":")[1].strip().split("@")[0]
            for line in _lines(["ip", "-o", "link", "show"])
            if ":" in line
        ),
        processes=frozenset(processes),
        hugepage_files=frozenset(p.name for p in hugepages.iterdir())
        if hugepages.is_dir()
        else frozenset(),
        dpdk_runtime_dirs=frozenset(p.name for p in runtime.iterdir())
        if runtime.is_dir()
        else frozenset(),
        run_dirs=frozenset(str(p) for p in Path("/tmp").glob("howto-*")),
        containers=frozenset(
            _lines(["podman", "ps", "-a", "--format", "{{.Names}}"]) if _has("podman") else []
        ),
    )


def _has(program: str) -> bool:
    from shutil import which

    return which(program) is not None
