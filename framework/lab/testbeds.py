"""A pool of testbeds: several topologies, one leased by each test process for its life.

A lab with several DUT pairs runs its nightly suite with `--topology` naming several files
(or a directory of them) and `-n N`: every xdist worker (or a plain run) leases one
testbed, so the guides spread over the testbeds and no two processes drive the same
servers. A lease is an flock on `LEASE_DIR/<name>.lock` held for the process's life: the
kernel frees it however the process ends, `kill -9` included. Next to it,
`<name>.json` says who holds it (pid, start time, command), so a process that finds every
testbed taken can say which run it waits for.

A virtual testbed is built anew by every run (framework.lab.virtual gives each run its
own names and addresses), so when every virtual testbed is taken a process shares one
rather than wait; a lab testbed is real servers, and a process waits for it, for a
bounded time.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from framework.config import Topology, load_topology
from framework.errors import ConfigError, LabError
from framework.lab import lockfile

LEASE_DIR = Path("/run/howto-conformance/testbeds")
WAIT_ENV = "HOWTO_TESTBED_WAIT"
# A whole suite run on the virtual lab takes about two minutes; a nightly lab run longer.
# Five minutes lets a run queue behind another's guide, and still ends a run stuck behind
# a forgotten one with a line naming it instead of hanging a CI job.
DEFAULT_WAIT_S = 300.0


def load_pool(paths: Sequence[str | Path]) -> list[Topology]:
    """Every topology named: files as given, a directory's *.yaml files by name.

    Raises:
        ConfigError: a path is missing, a directory holds no topology, a file is bad, or
            two testbeds share a name (the name keys the lease).
    """
    files: list[Path] = []
    for path in map(Path, paths):
        if path.is_dir():
            found = sorted(path.glob("*.yaml")) + sorted(path.glob("*.yml"))
            if not found:
                raise ConfigError(f"--topology {path}: the directory holds no *.yaml topology")
            files += found
        else:
            files.append(path)
    pool = [load_topology(file) for file in files]
    seen: dict[str, Path] = {}
    for file, topology in zip(files, pool, strict=True):
        if topology.name in seen:
            raise ConfigError(
                f"{file}: name: testbed {topology.name!r} is also the name of {seen[topology.name]}"
                " (testbeds of a pool need distinct names)"
            )
        seen[topology.name] = file
    return pool


@dataclass
class Lease:
    """A testbed this process drives; `exclusive` False: a shared virtual testbed."""

    topology: Topology
    exclusive: bool
    _fd: int | None = None

    def release(self) -> None:
        """Give the testbed back (closing the lock file frees it)."""
        if self._fd is not None:
            path = _lock_path(self.topology.name)
            path.with_suffix(".json").unlink(missing_ok=True)
            lockfile.give_back(self._fd, path)
            self._fd = None
            with contextlib.suppress(OSError):
                LEASE_DIR.rmdir()  # empty once the last testbed is given back


def _lock_path(name: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    return LEASE_DIR / f"{safe}.lock"


def _try_lock(topology: Topology, worker: str, command: str) -> int | None:
    path = _lock_path(topology.name)
    fd = lockfile.take(path)
    if fd is None:
        return None
    holder = {
        "pid": os.getpid(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": command,
        "worker": worker,
    }
    path.with_suffix(".json").write_text(json.dumps(holder))
    return fd


def holder(name: str) -> str:
    """Who holds testbed `name`, in words (for a message)."""
    try:
        info = json.loads(_lock_path(name).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return f"{name} (holder unknown)"
    worker = f" as xdist {info['worker']}" if info.get("worker") else ""
    return f"{name} held by pid {info['pid']}{worker} since {info['started']} ({info['command']})"


def lease_testbed(
    pool: Sequence[Topology],
    *,
    index: int = 0,
    worker: str = "",
    command: str = "",
    wait_s: float | None = None,
) -> Lease:
    """Lease one testbed of the pool, trying the index-th first (xdist worker gwN: N).

    Raises:
        LabError: every lab testbed stayed taken for the wait bound; names the holders.
    """
    order = [pool[(index + i) % len(pool)] for i in range(len(pool))]
    limit = lockfile.wait_bound(WAIT_ENV, DEFAULT_WAIT_S) if wait_s is None else wait_s
    deadline = time.monotonic() + limit
    while True:
        for topology in order:
            fd = _try_lock(topology, worker, command or " ".join(sys.argv))
            if fd is not None:
                return Lease(topology, True, fd)
        shared = [t for t in order if t.kind == "virtual"]
        if shared:
            return Lease(shared[0], False)
        if time.monotonic() >= deadline:
            taken = "; ".join(holder(t.name) for t in order)
            raise LabError(f"no free testbed after {limit:g} s: {taken}")
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0.0)))
