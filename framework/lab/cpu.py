"""The machine's CPUs as a shared limit between the guide tests of concurrent runs.

A guide test keeps CPUs busy: every testpmd forwarding lcore polls at 100 %, and a TCG
guest is all CPU. Most guides still pass next to another run's guide, because what they
check (every frame back, counters) does not depend on timing. A migration does: its
downtime and the frames lost outside it are measured with 1 ms resolution, and on this
2-core machine two full suites at once made a correct DUT lose 169 frames outside the
migration window. So a test marked `cpu_exclusive` takes the CPU lock exclusively for its
duration, every other guide test takes it shared: exclusive tests of concurrent runs (or
xdist workers) queue one behind the other, shared ones overlap freely.

The lock is an flock on `CPU_LOCK` (shared or exclusive), freed by the kernel however the
process ends; `CPU_DIR/<pid>.json` says who holds it, so a test that waits too long names
the runs it waited for.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from framework.errors import LabError
from framework.lab import lockfile

CPU_DIR = Path("/run/howto-conformance/cpu")
WAIT_ENV = "HOWTO_CPU_WAIT"
# The longest cpu_exclusive module, guide 4 (PVP), holds the CPUs about 15 minutes on this
# machine, guides 1, 2 and 7 about a minute each: half an hour lets a test queue behind
# another run's exclusive modules and still ends a wait behind a stuck run with a line
# naming it.
DEFAULT_WAIT_S = 1800.0


@dataclass
class CpuLease:
    """The CPU lock held for one test; release() when the test is over."""

    exclusive: bool
    _fd: int | None = None

    def release(self) -> None:
        """Give the CPUs back."""
        if self._fd is not None:
            (CPU_DIR / f"{os.getpid()}.json").unlink(missing_ok=True)
            lockfile.give_back(self._fd, CPU_DIR / "cpu.lock")
            self._fd = None
            with contextlib.suppress(OSError):
                CPU_DIR.rmdir()  # empty once the last holder is gone


def this_run() -> str:
    """What the processes of one run share: xdist's run id for its workers, else the pid."""
    return os.environ.get("PYTEST_XDIST_TESTRUNUID") or str(os.getpid())


def _live_records() -> list[dict]:
    found = []
    for record in sorted(CPU_DIR.glob("*.json")):
        try:
            info = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        if os.path.exists(f"/proc/{info['pid']}"):
            found.append(info)
    return found


def holders() -> str:
    """Who holds the CPU lock now, in words."""
    found = [
        f"pid {info['pid']} ({info['test']}, "
        f"{'exclusively' if info['exclusive'] else 'shared'}, since {info['since']})"
        for info in _live_records()
    ]
    return "; ".join(found) or "nobody any more"


def held_by_this_run_only() -> bool:
    """Whether every live holder is another process of this run (a sibling xdist worker)."""
    records = _live_records()
    return bool(records) and all(
        info.get("run") == this_run() and info["pid"] != os.getpid() for info in records
    )


def _sweep_dead_records() -> None:
    """Remove the records of holders that died without giving the CPUs back (kill -9)."""
    for record in CPU_DIR.glob("*.json"):
        if record.stem.isdigit() and not os.path.exists(f"/proc/{record.stem}"):
            record.unlink(missing_ok=True)


def take_cpus(test: str, *, exclusive: bool, wait_s: float | None = None) -> CpuLease:
    """Take the CPU lock for `test`, waiting at most the bound for other runs.

    Time spent behind a sibling worker of the same run does not count: under xdist the
    run's own cpu_exclusive modules (guide 4 alone takes ~15 minutes here) queue behind
    each other by design, and that is no reason to stop.

    Raises:
        LabError: the lock stayed taken by another run for the whole bound; names who
            holds it.
    """
    limit = lockfile.wait_bound(WAIT_ENV, DEFAULT_WAIT_S) if wait_s is None else wait_s
    deadline = time.monotonic() + limit
    while (fd := lockfile.take(CPU_DIR / "cpu.lock", shared=not exclusive)) is None:
        if held_by_this_run_only():
            deadline = time.monotonic() + limit
        elif time.monotonic() >= deadline:
            want = "exclusively" if exclusive else "shared"
            raise LabError(
                f"the machine's CPUs were not free within {limit:g} s for {test} "
                f"({want}): held by {holders()}"
            )
        time.sleep(0.5)
    _sweep_dead_records()
    record = {
        "pid": os.getpid(),
        "run": this_run(),
        "test": test,
        "exclusive": exclusive,
        "since": time.strftime("%H:%M:%S"),
    }
    (CPU_DIR / f"{os.getpid()}.json").write_text(json.dumps(record))
    return CpuLease(exclusive, fd)
