"""What a correct DUT costs in each loss window of guides 1 and 2, over repeated runs.

    .venv/bin/python benchmarks/loss_windows.py [--runs 1] [--guides 1 2]
    .venv/bin/python benchmarks/loss_windows.py --summaries DIR [DIR...]  # re-read runs

Runs guide 1's migration test (the virtual lab's emulated-VF variant; on a lab given with
--topology, the variants its VFs allow) and guide 2's (both virtqueue layouts) `--runs`
times through `scripts/suite`, one suite run per round, and reads the figures each window
recorded (`record_figure` in the guide modules) from the run's summary.json: its outage
count, longest outage, frames lost and loss span as the window is judged (with the
topology's jitter allowance), and its longest loss-free stall at the stream's full
resolution (what that allowance must cover). Prints, per guide, variant and window, min /
median / max of each: the defaults of `loss_windows` in framework/config/model.py are a
stated margin over the max seen here.

Each run's figures count whatever the test's verdict (they are recorded before the window
is judged); a run that recorded none (it failed before its stream ended) is named and left
out. One run (the default) takes 3-4 minutes here, with a line as it starts and one every
30 s with the suite's progress; the distribution the bounds are set from is `--runs 10`
(about 35 minutes). Ctrl-C or SIGTERM is passed on to the running suite, which tears its
lab down; the benchmark waits for it, prints what the finished runs measured and exits
with 128 + the signal's number (framework/report/benchrun.py).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from framework.report import benchrun  # noqa: E402

TESTS = {
    1: "testsuites/test_sriov_bond_migration.py::"
    "test_live_migration_with_sriov_vf_and_bonding[emulated-vf]",
    2: "testsuites/test_vhost_user_migration.py::test_live_migration_with_vhost_user",
}
# On a lab the topology decides which of guide 1's VF variants run.
LAB_TESTS = {**TESTS, 1: TESTS[1].partition("[")[0]}
QUANTITIES = ("outages", "longest outage ms", "lost frames", "loss span ms", "longest stall ms")


@dataclass(frozen=True)
class Sample:
    """One figure of one window in one run."""

    guide: int
    variant: str
    window: str
    quantity: str  # one of QUANTITIES
    value: float


def window_figure(guide: int, name: str) -> tuple[str, str] | None:
    """(window, quantity) of a recorded figure's name, or None for other figures.

    Guide 1 names its figures after the window ("failover outage", "failover outages",
    "failover lost", "failover loss span"); guide 2 has one window, the migration, and keeps
    the names its summary history already has ("migration downtime", "frames lost").
    """
    if guide == 2 and name == "migration downtime":
        return "migration", "longest outage ms"
    if guide == 2 and name == "frames lost":
        return "migration", "lost frames"
    for suffix, quantity in (
        (" stall", "longest stall ms"),
        (" outages", "outages"),
        (" outage", "longest outage ms"),
        (" loss span", "loss span ms"),
        (" lost", "lost frames"),
    ):
        if name.endswith(suffix) and name not in ("frames lost", "frames received"):
            return name[: -len(suffix)], quantity
    return None


def samples_of(summary: dict[str, Any]) -> tuple[list[Sample], list[str]]:
    """The window figures of one run's summary.json, and one line per guide row's verdict."""
    samples: list[Sample] = []
    verdicts: list[str] = []
    for row in summary.get("rows", []):
        guide = int(row.get("guide", 0))
        if guide not in TESTS or row.get("status") == "not run":
            continue
        verdicts.append(f"guide {guide} {row.get('variant') or ''}: {row.get('status')}")
        for fig in row.get("figures", []):
            found = window_figure(guide, fig["name"])
            if found is None:
                continue
            test = fig.get("test", "")
            variant = test[test.find("[") + 1 : -1] if "[" in test else row.get("variant", "")
            samples.append(Sample(guide, variant, found[0], found[1], float(fig["value"])))
    return samples, verdicts


def report(samples: Iterable[Sample], runs: int) -> str:
    """Per guide, variant and window: n, min, median and max of each quantity."""
    table: dict[tuple[int, str, str], dict[str, list[float]]] = defaultdict(
        lambda: defaultdict(list)
    )
    for s in samples:
        table[(s.guide, s.variant, s.window)][s.quantity].append(s.value)
    lines = [f"distribution over {runs} run(s) (n: runs that recorded the figure)"]
    lines.append(f"  {'guide/variant/window':<40} {'figure':<18} {'n':>3} "
                 f"{'min':>9} {'median':>9} {'max':>9}")  # fmt: skip
    for (guide, variant, window), figures in sorted(table.items()):
        label = f"{guide} {variant} {window}"
        for quantity in QUANTITIES:
            values = figures.get(quantity, [])
            if not values:
                continue
            lines.append(
                f"  {label:<40} {quantity:<18} {len(values):>3} {min(values):>9.1f} "
                f"{statistics.median(values):>9.1f} {max(values):>9.1f}"
            )
            label = ""
    return "\n".join(lines)


def _short(samples: list[Sample]) -> str:
    """One run's figures on one line: 'g1 failover 1x 12.3 ms 6 lost span 10 ms; ...'."""
    by_window: dict[tuple[int, str, str], dict[str, float]] = defaultdict(dict)
    for s in samples:
        by_window[(s.guide, s.variant, s.window)][s.quantity] = s.value
    parts = []
    for (guide, variant, window), f in sorted(by_window.items()):
        parts.append(
            f"g{guide} {variant} {window}: {f.get('outages', float('nan')):.0f}x, "
            f"longest {f.get('longest outage ms', float('nan')):.0f} ms, "
            f"{f.get('lost frames', float('nan')):.0f} lost, "
            f"span {f.get('loss span ms', float('nan')):.0f} ms, "
            f"stall {f.get('longest stall ms', float('nan')):.0f} ms"
        )
    return "; ".join(parts)


def run_rounds(args: argparse.Namespace, reports: Path) -> tuple[list[Sample], int]:
    """Run the suite `args.runs` times; print one line per run; return every sample.

    Stopped mid-run, it passes the signal on to the suite, prints what the finished runs
    measured, and stops.
    """
    tests = [(LAB_TESTS if args.topology else TESTS)[g] for g in args.guides]
    topology = ["--topology", str(args.topology)] if args.topology else []
    samples: list[Sample] = []
    done = 0
    progress = benchrun.Progress(args.runs)
    try:
        for i in range(1, args.runs + 1):
            log = reports / f"run-{i:02d}.log"
            announce = reports / f"run-{i:02d}.dir"
            argv = ["scripts/suite", *tests, *topology, "-p", "no:cacheprovider", "-q",
                    "--no-allure-html", "--reports-dir", str(reports)]  # fmt: skip
            progress.step(f"suite run {i} of {args.runs}: guide(s) "
                          f"{', '.join(map(str, args.guides))} (log {log})")  # fmt: skip
            started = time.monotonic()
            env = dict(os.environ, HOWTO_RUN_DIR_FILE=str(announce))
            status = benchrun.run_group(argv, cwd=ROOT, log=log, env=env)
            seconds = time.monotonic() - started
            run_dir = Path(announce.read_text().strip()) if announce.exists() else None
            summary_file = run_dir / "summary.json" if run_dir else None
            if summary_file is None or not summary_file.exists():
                benchrun.say(f"run {i}/{args.runs}: exit {status} in {seconds:.0f} s, no "
                             f"summary (see {log})")  # fmt: skip
                continue
            found, verdicts = samples_of(json.loads(summary_file.read_text()))
            samples += found
            done += 1
            benchrun.say(f"run {i}/{args.runs}: exit {status} in {seconds:.0f} s "
                         f"({', '.join(verdicts)})\n    "
                         f"{_short(found) or 'no window figures recorded'}")  # fmt: skip
    except benchrun.Stopped:
        benchrun.say(f"stopped after {done} complete run(s)")
        print(report(samples, done), flush=True)
        raise
    return samples, done


def read_summaries(directory: Path, exclude: list[str]) -> tuple[list[Sample], int]:
    """The samples of every run under a reports directory (its */summary.json)."""
    samples: list[Sample] = []
    runs = 0
    for path in sorted(directory.glob("*/summary.json")):
        if path.parent.is_symlink():
            continue  # latest -> the newest run, already counted
        found, verdicts = samples_of(json.loads(path.read_text()))
        if path.parent.name in exclude:
            print(f"{path.parent.name}: left out (--exclude)\n    {_short(found)}")
            continue
        if found:
            runs += 1
            samples += found
            print(f"{path.parent.name}: {', '.join(verdicts)}\n    {_short(found)}")
    return samples, runs


def main() -> int:
    """Run the guides (or read earlier runs) and print the distributions."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=1,
                        help="suite runs (default 1, 3-4 minutes; 10 for the bounds)")  # fmt: skip
    parser.add_argument("--guides", type=int, nargs="+", choices=sorted(TESTS), default=[1, 2])
    parser.add_argument("--topology", type=Path, default=None, help="default: the virtual lab")
    parser.add_argument(
        "--reports-dir", type=Path, default=None, help="where the runs' reports go (default: /tmp)"
    )
    parser.add_argument("--summaries", type=Path, nargs="+", default=None,
                        help="print the distribution of the runs under these reports "
                        "directories instead of running anything")  # fmt: skip
    parser.add_argument("--exclude", nargs="+", default=[], metavar="RUN",
                        help="with --summaries: runs (directory names) to leave out, e.g. "
                        "one disturbed by a known outside load")  # fmt: skip
    args = parser.parse_args()
    if args.runs < 1:
        parser.error(f"--runs must be at least 1, got {args.runs}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                            capture_output=True, text=True).stdout.strip()  # fmt: skip
    benchrun.say(f"loss windows of guides {' and '.join(map(str, args.guides))}, "
                 f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, commit {commit or '?'}, "
                 f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")  # fmt: skip
    if args.summaries is not None:
        samples: list[Sample] = []
        runs = 0
        for directory in args.summaries:
            if not directory.is_dir():
                print(f"loss_windows: --summaries: no directory {directory}", file=sys.stderr)
                return 2
            found, count = read_summaries(directory, args.exclude)
            samples, runs = samples + found, runs + count
    else:
        reports = args.reports_dir or Path(tempfile.mkdtemp(prefix="howto-loss-windows-"))
        reports.mkdir(parents=True, exist_ok=True)
        benchrun.say(f"reports and run logs in {reports}")
        samples, runs = run_rounds(args, reports)
    print(report(samples, runs), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(benchrun.run(main))
