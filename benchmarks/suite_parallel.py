"""Wall time of the conformance suite run serially, with `-n 2`, and on a pool of testbeds.

    .venv/bin/python benchmarks/suite_parallel.py [-k EXPR | --all] [--repeat 1]

Runs `pytest testsuites/` on the virtual lab (a) serially, (b) with `-n 2` (each xdist
worker builds its own lab; `--dist loadscope` keeps a guide's tests on one worker) and
(c) with `-n 2` over a pool of two virtual testbeds (one leased per worker), all in one
run, and prints each wall time and its ratio to the serial one. Every run must pass: a
faster run that fails proves nothing. The machine's cores and load are printed too: TCG
guests and testpmd's polling lcores are CPU-bound, so on 2 cores the speed-up is bounded
by the CPU, not by the framework.

By default it runs a small selection of two guide modules (DEFAULT_K: guide 6's container
coming up and guide 7's offload negotiation, ~45 s a run here, about 2.5 minutes in all);
`--all` runs every guide (~21 minutes a run here, an hour in all). A line says which run
starts, and every 30 s how far it is. Ctrl-C or SIGTERM is passed on to the running suite,
which tears its lab down (framework/report/benchrun.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from framework.config import DEFAULT_TOPOLOGY, load_topology  # noqa: E402
from framework.report import benchrun  # noqa: E402

DEFAULT_K = (
    "test_vhost_user_port_comes_up_when_the_container_connects or "
    "test_lro_and_rx_cksum_negotiate_the_guest_offloads"
)


def _pool(directory: Path) -> Path:
    """Two virtual testbeds: the default topology under two names."""
    text = DEFAULT_TOPOLOGY.read_text()
    name = load_topology(DEFAULT_TOPOLOGY).name
    for suffix in ("a", "b"):
        renamed = text.replace(f"name: {name}\n", f"name: {name}-{suffix}\n", 1)
        (directory / f"{name}-{suffix}.yaml").write_text(renamed)
    return directory


def _run(label: str, extra: list[str], reports: Path, log: Path) -> float:
    argv = [sys.executable, "-m", "pytest", "testsuites/", "-p", "no:cacheprovider", "-q",
            "--no-allure-html", "--reports-dir", str(reports), *extra]  # fmt: skip
    started = time.monotonic()
    status = benchrun.run_group(argv, cwd=ROOT, log=log)
    seconds = time.monotonic() - started
    lines = log.read_text(errors="replace").strip().splitlines()
    last = lines[-1] if lines else "(no output)"
    benchrun.say(f"  {label:<28} {seconds:7.1f} s   exit {status}: {last}")
    if status != 0:
        tail = "\n".join(lines[-40:])
        raise SystemExit(f"{tail}\nsuite_parallel: the {label} run failed (exit {status}): "
                         f"a faster run that fails proves nothing; its log: {log}")  # fmt: skip
    return seconds


def main() -> int:
    """Run the three variants and print their wall times and ratios."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    which = parser.add_mutually_exclusive_group()
    which.add_argument("-k", default=DEFAULT_K, help="pytest -k expression (default: DEFAULT_K)")
    which.add_argument("--all", action="store_true", help="every guide (about an hour)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    select = [] if args.all else ["-k", args.k]
    benchrun.say(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}; "
                 f"selection: {'every guide' if args.all else repr(args.k)}")  # fmt: skip
    variants = {
        "serial": [],
        "-n 2": ["-n", "2"],
        "-n 2, pool of 2": ["-n", "2", "--topology", "POOL"],
    }
    progress = benchrun.Progress(len(variants) * args.repeat)
    with tempfile.TemporaryDirectory(prefix="howto-bench-suite-") as tmp:
        pool = Path(tmp) / "pool"
        pool.mkdir()
        _pool(pool)
        results: dict[str, list[float]] = {label: [] for label in variants}
        for round_ in range(1, args.repeat + 1):
            reports = Path(tmp) / f"reports-{round_}"
            for i, (label, extra) in enumerate(variants.items()):
                extra = [str(pool) if a == "POOL" else a for a in extra]
                log = Path(tmp) / f"round-{round_}-{i}.log"
                progress.step(f"round {round_} of {args.repeat}: pytest {label}")
                results[label].append(_run(label, [*extra, *select], reports, log))
    serial = min(results["serial"])
    print("best of each (wall time, speed-up against serial):")
    for label, times in results.items():
        best = min(times)
        print(f"  {label:<28} {best:7.1f} s   {serial / best:5.2f}x", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(benchrun.run(main))
