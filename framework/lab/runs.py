"""Runs sharing one machine: who owns which virtual-lab names, addresses and hugepages.

Every `VirtualLab.up()` is a *run*. A run registers in `RUNS_DIR` before it makes
anything, under the registry's lock (`RUNS_DIR/.lock`, an flock held for a moment):

- `<prefix>.lock`: an flock the run holds for its whole life. The kernel frees it when the
  process ends in any way, `kill -9` included, so "can I take this lock?" is "is the owner
  dead?", with no pid reuse or clock to get wrong.
- `<prefix>.json`: the run's record (pid, start time, command, management subnet, hugepages),
  so a run that has to wait can name the one it waits for.

A run's prefix is `<name_prefix>-<token>`, e.g. `hc-3k9a`: the token is four characters, the
first a digit. Every name the run makes on the machine starts with it: namespaces
(`hc-3k9a-tg`), the controller's link (`hc-3k9a-ctl`, within Linux's 15 characters),
DPDK file prefixes and so hugepage files and /run/dpdk dirs (`hc-3k9a-host-server-1-...`),
containers (`howto-hc-3k9a-...`) and the work directory (`/tmp/howto-hc-3k9a-lab-*`).
Leftovers are only ever removed by prefix, and only when that prefix's lock is free.
"""

from __future__ import annotations

import errno
import fcntl
import ipaddress
import json
import os
import re
import secrets
import string
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

RUNS_DIR = Path("/run/howto-conformance/runs")
# RFC 2544's benchmarking range: the only addresses the virtual lab uses.
MANAGEMENT_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
TOKEN = "[0-9][0-9a-z]{3}"
IFNAMSIZ = 15  # the longest Linux interface name
HUGEPAGE_BYTES = 2 * 1024 * 1024

# How long a run waits for another run's hugepages or addresses before it stops. A full
# `scripts/suite` here takes 100-130 s (guide 6 about 50 s, guide 2 about 70 s), so 300 s
# lets a run started next to another queue behind a whole suite run; a holder that keeps
# them longer (a nightly job, a forgotten run) is named at once rather than waited for.
DEFAULT_WAIT_S = 300.0
WAIT_ENV = "HOWTO_LAB_WAIT"


def wait_seconds(environ: dict[str, str] | None = None) -> float:
    """The wait bound: `HOWTO_LAB_WAIT` seconds if set (0 stops at once), else 300.

    Raises:
        ValueError: the variable is not a number of seconds.
    """
    value = (os.environ if environ is None else environ).get(WAIT_ENV, "").strip()
    if not value:
        return DEFAULT_WAIT_S
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{WAIT_ENV}={value!r}: expected a number of seconds") from None
    if seconds < 0:
        raise ValueError(f"{WAIT_ENV}={value!r}: expected a number of seconds >= 0")
    return seconds


def command_of(pid: int, limit: int = 120) -> str:
    """The command line of process `pid` (program by name), its middle cut to fit `limit`."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    parts = [part.decode(errors="replace") for part in raw.split(b"\0") if part]
    if not parts:
        return "?"
    # The program's directory says little and would push the arguments out of the limit.
    text = " ".join([Path(parts[0]).name, *parts[1:]])
    if len(text) <= limit:
        return text
    head = limit // 2
    return f"{text[:head]} ... {text[-(limit - head - 5) :]}"


@dataclass(frozen=True)
class RunRecord:
    """What a run declared when it started: enough to name it to a run that waits."""

    prefix: str
    pid: int
    started: float
    command: str
    subnet: str
    hugepages: int = 0  # 2 MB pages the run may use
    hugepage_mounts: tuple[str, ...] = ()

    def describe(self) -> str:
        """One phrase: `run hc-3k9a (pid 1234, started 2025-01-31 09:40:02, `cmd`)`."""
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"run {self.prefix} (pid {self.pid}, started {started}, `{self.command}`)"

    def to_json(self) -> str:
        """The record as the JSON stored in `<prefix>.json`."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> RunRecord:
        """Read a record written by to_json.

        Raises:
            ValueError: the text is not such a record.
        """
        data = json.loads(text)
        if not isinstance(data, dict):
            raise ValueError("not a run record")
        data["hugepage_mounts"] = tuple(data.get("hugepage_mounts", ()))
        return cls(**data)


@dataclass
class Lease:
    """A held run lock: the owner's own run, or a dead run's taken over to clean it."""

    prefix: str
    lock_path: Path
    fd: int | None
    record: RunRecord | None = None

    @property
    def record_path(self) -> Path:
        """Where the run's record is stored."""
        return self.lock_path.with_suffix(".json")

    def release(self) -> None:
        """Delete the record and the lock file, then let go of the lock. Idempotent."""
        if self.fd is None:
            return
        self.record_path.unlink(missing_ok=True)
        self.lock_path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


@dataclass
class Registry:
    """The runs of this machine, as lock and record files in one directory."""

    root: Path = RUNS_DIR
    _held: int = field(default=0, repr=False)

    @contextmanager
    def locked(self) -> Iterator[Registry]:
        """Hold the registry's lock: scans, clean-ups and registrations happen under it."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / ".lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._held += 1
            yield self
        finally:
            self._held -= 1
            os.close(fd)

    def _lock_files(self) -> list[Path]:
        return sorted(self.root.glob("*.lock")) if self.root.is_dir() else []

    def prefixes(self) -> set[str]:
        """Prefixes that have a lock file: live runs and dead ones not cleaned yet."""
        return {path.stem for path in self._lock_files()}

    def scan(self) -> tuple[list[RunRecord], list[Lease]]:
        """Live runs' records, and leases taken over from dead runs (to clean, then release).

        A live run whose record cannot be read yet is left out of the first list; it is
        never taken for dead.
        """
        self._require_lock()
        live: list[RunRecord] = []
        dead: list[Lease] = []
        for lock_path in self._lock_files():
            try:
                fd = os.open(lock_path, os.O_RDWR)
            except FileNotFoundError:
                continue  # released while we looked
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise
                record = self._read(lock_path)
                if record is not None:
                    live.append(record)
                continue
            dead.append(Lease(lock_path.stem, lock_path, fd, self._read(lock_path)))
        # Records whose lock file is gone belong to nobody.
        for stray in self.root.glob("*.json") if self.root.is_dir() else []:
            if not stray.with_suffix(".lock").exists():
                stray.unlink(missing_ok=True)
        return live, dead

    def register(self, record: RunRecord) -> Lease:
        """Take `record.prefix`'s lock for the caller's lifetime and store the record.

        Raises:
            FileExistsError: the prefix is already registered.
        """
        self._require_lock()
        lock_path = self.root / f"{record.prefix}.lock"
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        lease = Lease(record.prefix, lock_path, fd, record)
        staging = lock_path.with_suffix(".json.new")
        staging.write_text(record.to_json())
        staging.replace(lease.record_path)
        return lease

    def _read(self, lock_path: Path) -> RunRecord | None:
        try:
            return RunRecord.from_json(lock_path.with_suffix(".json").read_text())
        except (OSError, ValueError, TypeError):
            return None

    def _require_lock(self) -> None:
        if not self._held:
            raise RuntimeError("the run registry must be locked (use Registry.locked())")


def new_prefix(name_prefix: str, taken: Iterable[str]) -> str:
    """A run prefix `<name_prefix>-<token>` not in `taken`, short enough for link names.

    Raises:
        ValueError: name_prefix is too long for `<prefix>-ctl` to fit in 15 characters.
    """
    if len(f"{name_prefix}-0000-ctl") > IFNAMSIZ:
        raise ValueError(f"name prefix {name_prefix!r} is too long (at most 6 characters)")
    used = set(taken)
    alphabet = string.digits + string.ascii_lowercase
    while True:
        token = secrets.choice(string.digits) + "".join(secrets.choice(alphabet) for _ in "xyz")
        prefix = f"{name_prefix}-{token}"
        if prefix not in used:
            return prefix


def prefix_pattern(name_prefixes: Iterable[str]) -> re.Pattern[str]:
    """Matches a name made by a run of one of these name prefixes; group 1 is the run prefix.

    Covers `hc-3k9a-tg`, `hc-3k9a-ctl`, `hc-3k9a-host-server-1-...map_0` and
    `howto-hc-3k9a-lab-...`/`howto-hc-3k9a-...` (work dirs and containers).
    """
    names = "|".join(re.escape(n) for n in sorted(set(name_prefixes)))
    return re.compile(rf"^(?:howto-)?((?:{names})-{TOKEN})-")


def subnet_candidates(
    preferred: ipaddress.IPv4Network, fixed: bool
) -> Iterator[ipaddress.IPv4Network]:
    """Blocks of preferred's size in 198.18.0.0/15, from preferred on (wrapping around).

    With `fixed` (the topology pins host addresses), preferred is the only candidate.
    """
    yield preferred
    if fixed:
        return
    blocks = list(MANAGEMENT_RANGE.subnets(new_prefix=preferred.prefixlen))
    start = blocks.index(preferred)
    yield from blocks[start + 1 :] + blocks[:start]


def pick_subnet(
    preferred: ipaddress.IPv4Network,
    *,
    fixed: bool,
    runs: Sequence[RunRecord],
    routes: Sequence[ipaddress.IPv4Network],
) -> ipaddress.IPv4Network | None:
    """The first candidate overlapping neither a live run's subnet nor a machine route."""
    taken = [ipaddress.ip_network(run.subnet) for run in runs]
    for block in subnet_candidates(preferred, fixed):
        if not any(block.overlaps(other) for other in (*taken, *routes)):
            return block
    return None


def pages_used(prefix: str, mounts: Iterable[str]) -> int:
    """2 MB hugepages held by the files of one run prefix under the given hugetlbfs mounts."""
    used = 0
    for mount in mounts:
        try:
            entries = list(Path(mount).glob(f"{prefix}-*"))
        except OSError:
            continue
        for entry in entries:
            try:
                # a directory holds a non-root testpmd's files (guide 6's limitations)
                files = list(entry.iterdir()) if entry.is_dir() else [entry]
                used += sum(f.stat().st_blocks * 512 for f in files)
            except OSError:
                continue
    return used // HUGEPAGE_BYTES


def hugepage_shortfall(
    need: int, free: int, runs: Sequence[RunRecord], used: dict[str, int]
) -> str | None:
    """Why `need` 2 MB pages do not fit next to the live runs, or None if they do.

    A live run keeps the part of its declared pages it has not used yet: the pages free
    for a new run are the kernel's free (unreserved) pages minus those.
    """
    if need <= 0:
        return None
    promised = {run.prefix: max(0, run.hugepages - used.get(run.prefix, 0)) for run in runs}
    available = free - sum(promised.values())
    if available >= need:
        return None
    holders = [run for run in runs if run.hugepages]
    held = "; ".join(f"{run.describe()} holds {run.hugepages}" for run in holders)
    return f"2 MB hugepages: this run needs {need}, {max(available, 0)} are free" + (
        f" once live runs get theirs: {held}" if held else " (no run of this suite holds any)"
    )
