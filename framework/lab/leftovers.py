"""What a run may leave on the machine, as a comparable snapshot.

The suite promises that lab up -> tests -> lab down leaves the machine as it found it;
tests/integration/test_virtual_lab.py holds it to that with these snapshots. Every name a
run makes starts with its run prefix (`hc-3k9a`, see framework/lab/runs.py), so
`MachineState.owned_by(prefix)` is what one run holds while others run next to it.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT
from framework.lab.runs import RUNS_DIR
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
    run_records: frozenset[str] = frozenset()

    def new_since(self, before: MachineState) -> dict[str, list[str]]:
        """What exists now that did not before, by kind; empty when nothing was left."""
        left = {}
        for kind in self.__dataclass_fields__:
            extra = sorted(getattr(self, kind) - getattr(before, kind))
            if extra:
                left[kind] = extra
        return left

    def owned_by(self, prefix: str) -> dict[str, list[str]]:
        """The names of one run (prefix `hc-3k9a`), by kind; empty when it holds nothing."""
        held = {}
        for kind in self.__dataclass_fields__:
            names = sorted(name for name in getattr(self, kind) if _names_run(name, prefix))
            if names:
                held[kind] = names
        return held


def _names_run(name: str, prefix: str) -> bool:
    # Namespaces, links, hugepage files and runtime dirs start with `<prefix>-`, work dirs
    # and containers with `howto-<prefix>-`; processes carry it in an argument (sshd -f
    # /tmp/howto-<prefix>-lab-..., --file-prefix <prefix>-...); records are `<prefix>.*`.
    return f"{prefix}-" in name or name.startswith(f"{prefix}.")


def snapshot(hugepage_mount: str = DEFAULT_HUGEPAGE_MOUNT) -> MachineState:
    """Record what the machine holds now: namespaces, links, DPDK and QEMU processes, files.

    Also the run registry's records: a run that ended cleanly has released its own.
    """
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
        run_records=frozenset(p.name for p in RUNS_DIR.glob("[!.]*"))
        if RUNS_DIR.is_dir()
        else frozenset(),
        containers=frozenset(
            _lines(["podman", "ps", "-a", "--format", "{{.Names}}"]) if _has("podman") else []
        ),
    )


def _has(program: str) -> bool:
    from shutil import which

    return which(program) is not None
