"""What every script in benchmarks/ runs under: progress lines and a clean stop.

A benchmark builds things on the machine (namespaces, veths, a virtual lab, testpmds, QEMU,
hugepage files, suite runs) and takes them down in its `with` and `finally` blocks. Python
unwinds those on Ctrl-C (KeyboardInterrupt) but not on SIGTERM, which kills it where it
stands. `run(main)` makes both signals raise `Stopped`, a KeyboardInterrupt, so the same
blocks run on either; later signals while it unwinds are noted, never raised, so a second
Ctrl-C cannot cut a teardown short. It then ends with one line, `<name>: stopped by SIGTERM
after 12 s; what it made is removed`, and exit status 128 + the signal's number.

A virtual lab keeps this handler (framework/lab/virtual.py installs its own only where the
program has none): its teardown runs as provision() unwinds, after the testpmds and VMs
on it are closed.

`Progress` prints what a benchmark measures now, `[3/26 41 s] ...`, flushed at once, so a
run long with its defaults is never silent. `run_group` runs a child (a suite run) in a
process group of its own and, when the benchmark is stopped, passes the signal on to the
whole group and waits for it to tear its own lab down.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import FrameType
from typing import IO

from framework.config import DEFAULT_TOPOLOGY
from framework.traffic.trials import Trial, rate_text, search_rates

HANDLED = (signal.SIGINT, signal.SIGTERM)
# How long a stopped child group may take to tear its lab down before the benchmark goes.
GROUP_STOP_WAIT_S = 180.0


class Stopped(KeyboardInterrupt):
    """SIGINT or SIGTERM reached the benchmark; its with/finally blocks clean up."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def name(self) -> str:
        """The signal's name, e.g. SIGTERM."""
        return signal.Signals(self.signum).name

    @property
    def exit_status(self) -> int:
        """128 + the signal's number, as a shell reports a process the signal ended."""
        return 128 + self.signum


class _StopState:
    """Which signal came first, and whether a Stopped may be raised now."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.signum: int | None = None
        self.deferring = 0  # depth of deferred() blocks
        self.pending = False  # a signal came inside deferred(): raise at its end
        self.noted = False

    def handler(self, signum: int, _frame: FrameType | None) -> None:
        if self.signum is not None:
            # Already stopping: raising again would abandon a teardown halfway.
            if not self.noted:
                print(f"{self.name}: {signal.Signals(signum).name} again: still cleaning up",
                      file=sys.stderr, flush=True)  # fmt: skip
                self.noted = True
            return
        self.signum = signum
        if self.deferring:
            self.pending = True
            return
        raise Stopped(signum)


_STATE: _StopState | None = None


def stopping() -> bool:
    """Whether the running benchmark has been told to stop."""
    return _STATE is not None and _STATE.signum is not None


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """A block a signal does not interrupt (a teardown); the stop comes at its end."""
    state = _STATE
    if state is None:
        yield
        return
    state.deferring += 1
    try:
        yield
    finally:
        state.deferring -= 1
        if not state.deferring and state.pending:
            state.pending = False
            assert state.signum is not None
            raise Stopped(state.signum)


def run(main: Callable[[], int | None], name: str | None = None) -> int:
    """Run a benchmark's main(); return its exit status.

    SIGINT and SIGTERM raise Stopped in main()'s thread; once main() has unwound, one line
    says the benchmark was stopped and the status is 128 + the signal's number.
    """
    global _STATE
    name = name or Path(sys.argv[0]).stem
    state = _StopState(name)
    previous = {sig: signal.signal(sig, state.handler) for sig in HANDLED}
    _STATE = state
    started = time.monotonic()
    try:
        status = main()
    except KeyboardInterrupt as exc:  # Stopped, or a Ctrl-C before the handler was set
        signum = exc.signum if isinstance(exc, Stopped) else (state.signum or signal.SIGINT)
        took = time.monotonic() - started
        print(f"{name}: stopped by {signal.Signals(signum).name} after {took:.0f} s; "
              "what it made is removed", file=sys.stderr, flush=True)  # fmt: skip
        return 128 + signum
    finally:
        _STATE = None
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if state.signum is not None:  # came while the last teardown was deferred, then ignored
        print(f"{name}: stopped by {signal.Signals(state.signum).name} as it finished",
              file=sys.stderr, flush=True)  # fmt: skip
        return 128 + state.signum
    return status or 0


class Progress:
    """Numbered progress lines, `[n/N elapsed] what`, each flushed as it is printed."""

    def __init__(self, total: int, out: IO[str] | None = None) -> None:
        self.total = total
        self.done = 0
        self.out = out
        self.started = time.monotonic()

    def step(self, what: str) -> None:
        """Say that the next of the N steps starts now."""
        self.done += 1
        took = time.monotonic() - self.started
        print(f"[{self.done}/{self.total} {took:.0f} s] {what}", file=self.out or sys.stdout,
              flush=True)  # fmt: skip


def say(line: str) -> None:
    """Print a line at once (a benchmark's output is often a pipe, block-buffered)."""
    print(line, flush=True)


def run_group(
    argv: Sequence[str],
    *,
    cwd: Path,
    log: Path,
    env: Mapping[str, str] | None = None,
    heartbeat_s: float = 30.0,
    stop_wait_s: float = GROUP_STOP_WAIT_S,
) -> int:
    """Run a child in its own process group, its output to `log`; return its exit status.

    Every heartbeat_s it says how long the child has run and the last line of its log (a
    suite run's progress). Stopped while it runs, the benchmark passes the signal on to
    the child's whole group (as a terminal's Ctrl-C would reach it), waits up to
    stop_wait_s for the group to end, then re-raises.
    """
    started = time.monotonic()
    with log.open("wb") as out:
        child = subprocess.Popen(
            list(argv), cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
            env=dict(env) if env is not None else None, start_new_session=True,
        )  # fmt: skip
        try:
            while True:
                try:
                    return child.wait(timeout=heartbeat_s)
                except subprocess.TimeoutExpired:
                    say(f"    {time.monotonic() - started:.0f} s: {_last_line(log)}")
        except Stopped as stop:  # later signals are only noted: this wait is not cut short
            say(f"{stop.name}: stopping the running child (process group {child.pid})")
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, stop.signum)
            _wait_group(child, stop_wait_s)
            raise


def _last_line(log: Path) -> str:
    """The log's last non-empty line, shortened (pytest's progress dots, a test's name)."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, log.stat().st_size - 4096))
            lines = [ln.strip() for ln in f.read().decode(errors="replace").splitlines()]
    except OSError:
        return "(no log yet)"
    last = next((ln for ln in reversed(lines) if ln), "(nothing printed yet)")
    return last if len(last) <= 120 else last[:117] + "..."


def _wait_group(child: subprocess.Popen[bytes], limit_s: float) -> None:
    """Wait until the child and every process of its group are gone (or limit_s passes)."""
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            child.wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            continue
        try:
            os.killpg(child.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    say(f"process group {child.pid} still running after {limit_s:g} s")


# -- rate searches a benchmark runs (pvp_limits.py, pvp_tuning.py) ---------------------------

Runner = Callable[[float, float], Trial]


def logged(trials: Runner, label: str) -> Runner:
    """The trial runner, saying each trial's rate and loss as it ends (a search is long)."""
    count = 0

    def run(rate_pps: float, seconds: float) -> Trial:
        nonlocal count
        count += 1
        trial = trials(rate_pps, seconds)
        say(f"    {label}, trial {count}: {rate_pps:,.0f} pps for {seconds:g} s, "
                     f"{trial.lost} of {trial.sent} lost")  # fmt: skip
        return trial

    return run


def ndr(trials: Runner, lo: float, hi: float, trial_s: float, width: float) -> tuple[float, str]:
    """NDR (pps) of a trial runner between lo and hi, and how it reads (bound marked)."""
    found = search_rates(trials, min_pps=lo, max_pps=hi, trial_s=trial_s, relative_width=width)
    pps = found.ndr.lower_pps or 0.0
    return pps, rate_text(pps, found.ndr.limit)


def ndr_parser(doc: str | None) -> argparse.ArgumentParser:
    """A benchmark's options for NDR searches: --topology, --frame, --trial, --width."""
    parser = argparse.ArgumentParser(description=(doc or "").splitlines()[0])
    parser.add_argument("--topology", default=str(DEFAULT_TOPOLOGY))
    parser.add_argument("--frame", type=int, default=64)
    parser.add_argument("--trial", type=float, default=2.0, help="seconds per final trial")
    parser.add_argument("--width", type=float, default=0.1,
                        help="the searches' relative width (default 0.1)")  # fmt: skip
    return parser


def check_ndr_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stop (parser.error: one line, exit 2) on a frame, trial or width out of range."""
    if not 64 <= args.frame <= 1518:
        parser.error(f"--frame must be 64 to 1518 bytes, got {args.frame}")
    if not 0 < args.trial <= 600:
        parser.error(f"--trial must be above 0 and at most 600 s, got {args.trial:g}")
    if not 0 < args.width < 1:
        parser.error(f"--width must be between 0 and 1, got {args.width:g}")
