"""Live migration between two VMs over QMP, and what its outcome tells.

The destination QEMU waits with `-incoming tcp:ADDRESS:PORT`; the source gets `migrate`
and is polled with `query-migrate` until the migration completes, fails or runs out of
time. A migration still running at the time bound is cancelled, so the source keeps
running, and is told apart: stuck (the guest dirties RAM as fast as it is sent) or slow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from itertools import groupby
from typing import TYPE_CHECKING, Any

from framework.virt.console import last_line, read_log
from framework.virt.errors import (
    MigrationDidNotConverge,
    MigrationError,
    MigrationFailed,
    MigrationTimeout,
    VmError,
)

if TYPE_CHECKING:
    from framework.virt.vm import VirtualMachine

log = logging.getLogger("howto.virt")

# The port a destination QEMU waits on: the guides' `-incoming tcp:0:5555` (1.4.6, 2.3.10).
MIGRATION_PORT = 5555


@dataclass(frozen=True)
class MigrationSample:
    """One look at a running migration: `query-migrate`'s status and the source's run state.

    A live migration is `active` while the source VM is `running`; QEMU stops it
    (`finish-migrate`) only for the switch-over, at the end.
    """

    at: float  # time.time()
    status: str
    vm_status: str


@dataclass(frozen=True)
class MigrationResult:
    """What `info migrate` shows for a finished migration (raw keeps the whole answer).

    started_at and finished_at are time.time() values, to place the migration on a
    traffic timeline.
    """

    status: str
    total_time_ms: int | None
    downtime_ms: int | None
    setup_time_ms: int | None
    transferred_ram_bytes: int | None
    throughput_mbps: float | None
    dirty_sync_count: int | None
    remaining_ram: int | None
    started_at: float
    finished_at: float
    raw: dict[str, Any] = field(default_factory=dict)
    # what the polls saw while it ran, the last one `completed`
    samples: tuple[MigrationSample, ...] = ()

    def timeline(self) -> str:
        """`active/running x12 (+0.00-1.10 s), ...`: the samples, equal neighbours joined."""
        runs = [list(run) for _, run in groupby(self.samples, lambda s: (s.status, s.vm_status))]
        start = self.samples[0].at if self.samples else 0.0
        return ", ".join(
            f"{r[0].status}/{r[0].vm_status} x{len(r)} "
            f"(+{r[0].at - start:.2f}-{r[-1].at - start:.2f} s)"
            for r in runs
        )

    @classmethod
    def from_query(
        cls,
        info: dict[str, Any],
        started: float,
        finished: float,
        samples: tuple[MigrationSample, ...] = (),
    ) -> MigrationResult:
        """Build it from a `query-migrate` answer."""
        ram = info.get("ram", {})
        return cls(
            status=info.get("status", "unknown"),
            total_time_ms=info.get("total-time"),
            downtime_ms=info.get("downtime"),
            setup_time_ms=info.get("setup-time"),
            transferred_ram_bytes=ram.get("transferred"),
            throughput_mbps=ram.get("mbps"),
            dirty_sync_count=ram.get("dirty-sync-count"),
            remaining_ram=ram.get("remaining"),
            started_at=started,
            finished_at=finished,
            raw=info,
            samples=samples,
        )


def migrate(
    source: VirtualMachine,
    dest: VirtualMachine,
    *,
    port: int,
    timeout: float = 60.0,
    downtime_limit_ms: int | None = None,
    max_bandwidth: int | None = None,
    poll: float = 0.1,
    while_active: Callable[[], None] | None = None,
) -> MigrationResult:
    """Live-migrate `source` to `dest`, started with start(incoming=f"tcp:{address}:{port}").

    Args:
        source: the running VM.
        dest: the VM waiting for it.
        port: the port `dest` listens on, at its address.
        timeout: seconds before the migration is cancelled.
        downtime_limit_ms: QEMU's downtime-limit parameter, if set.
        max_bandwidth: QEMU's max-bandwidth parameter in bytes per second, if set.
        poll: seconds between `query-migrate` calls.
        while_active: called once, at the first poll that finds the migration active
            (the guest changing something while its RAM is copied); polling resumes after.

    Raises:
        MigrationFailed: QEMU reported failed or cancelled.
        MigrationDidNotConverge: still running at the time bound, not getting closer.
        MigrationTimeout: still running at the time bound, though getting closer.
    """
    # MIGRATION events (setup/active/completed) only come with this capability; they
    # let callers place the migration on a traffic timeline.
    for vm in (source, dest):
        vm.qmp("migrate-set-capabilities", capabilities=[{"capability": "events", "state": True}])
    params: dict[str, Any] = {}
    if downtime_limit_ms is not None:
        params["downtime_limit"] = downtime_limit_ms
    if max_bandwidth is not None:
        params["max_bandwidth"] = max_bandwidth
    if params:
        source.qmp("migrate-set-parameters", **params)
    uri = f"tcp:{dest.address}:{port}"
    started = time.time()
    source.qmp("migrate", uri=uri)
    deadline = time.monotonic() + timeout
    history: list[tuple[int, int]] = []  # (remaining, dirty-sync-count) per poll
    samples: list[MigrationSample] = []
    while True:
        info = source.qmp("query-migrate")
        status = info.get("status", "none")
        samples.append(MigrationSample(time.time(), status, source.status()))
        if status == "completed":
            return _completed(source, dest, info, started, tuple(samples))
        if status in ("failed", "cancelled"):
            why = info.get("error-desc", "no error-desc")
            raise MigrationFailed(
                f"{source.name} -> {uri}: migration {status}: {why}; {_dead(dest)}"
                f"{_last_words(source)}"
            )
        if status == "active" and while_active is not None:
            action, while_active = while_active, None
            action()
            continue  # poll again at once: the action took its time
        ram = info.get("ram", {})
        history.append((int(ram.get("remaining", 0)), int(ram.get("dirty-sync-count", 0))))
        if time.monotonic() >= deadline:
            break
        time.sleep(poll)
    try:
        source.qmp("migrate_cancel")
    except VmError as exc:
        log.warning("migrate_cancel: %s", exc)
    error = _not_finished(source.name, uri, timeout, history)
    raise type(error)(f"{error}; {_last_words(source)}")


def _completed(
    source: VirtualMachine,
    dest: VirtualMachine,
    info: dict[str, Any],
    started: float,
    samples: tuple[MigrationSample, ...],
) -> MigrationResult:
    finished = time.time()
    # QEMU shows "completed" a moment before it fills in total-time and downtime (both 0
    # in the first answer on QEMU 7.2): ask again briefly.
    settle = time.monotonic() + 2.0
    while not info.get("total-time") and time.monotonic() < settle:
        time.sleep(0.05)
        info = source.qmp("query-migrate")
    result = MigrationResult.from_query(info, started, finished, samples)
    # The destination resumes on its own once the last pages are in.
    dest.wait_status("running", timeout=15)
    log.info(
        "%s -> %s migrated: total %s ms, downtime %s ms, %s bytes",
        source.name, dest.name, result.total_time_ms, result.downtime_ms,
        result.transferred_ram_bytes,
    )  # fmt: skip
    return result


def _dead(vm: VirtualMachine) -> str:
    """'<vm>'s QEMU on <host> (pid N) died; ' when it did, so the error names what died."""
    if vm.pid is None:
        return ""
    # A QEMU killed with -9 closes its socket at once, the source may see that before
    # the process is gone: look again for up to a second before calling it alive.
    for _ in range(10):
        if vm.exited():
            return f"{vm.name}'s QEMU on {vm.session.name} (pid {vm.pid}) died; "
        time.sleep(0.1)
    return ""


def _last_words(vm: VirtualMachine) -> str:
    """The guest's last shell console line, for errors that should show where it was."""
    return f"last console output: {last_line(read_log(vm.session, vm.serial1))}"


def _not_finished(
    name: str, uri: str, timeout: float, history: list[tuple[int, int]]
) -> MigrationError:
    """Tell a stuck migration (dirtying outpaces sending) from a merely slow one."""
    if not history:
        return MigrationTimeout(f"{name} -> {uri}: migration not finished within {timeout:g} s")
    first_half = history[: max(1, len(history) // 2)]
    last_remaining, last_syncs = history[-1]
    best_early = min(r for r, _ in first_half)
    syncs_climbing = last_syncs - first_half[-1][1] >= 2
    mb = last_remaining / 1e6
    if last_remaining >= best_early or syncs_climbing:
        return MigrationDidNotConverge(
            f"{name} -> {uri}: migration did not converge in {timeout:g} s (cancelled): "
            f"{mb:.1f} MB still to send, dirty-sync count {last_syncs}"
        )
    return MigrationTimeout(
        f"{name} -> {uri}: migration still running after {timeout:g} s (cancelled): "
        f"{mb:.1f} MB left and shrinking; allow more time or bandwidth"
    )
