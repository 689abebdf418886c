"""Wall time of the conformance suite run serially, with `-n 2`, and on a pool of testbeds.

    .venv/bin/python benchmarks/suite_parallel.py [-k EXPR] [--repeat 1]

Runs `pytest testsuites/` on the virtual lab (a) serially, (b) with `-n 2` (each xdist
worker builds its own lab; `--dist loadscope` keeps a guide's tests on one worker) and
(c) with `-n 2` over a pool of two virtual testbeds (one leased per worker), all in one
run, and prints each wall time and its ratio to the serial one. Every run must pass: a
faster run that fails proves nothing. The machine's cores and load are printed too: TCG
guests and testpmd's polling lcores are CPU-bound, so on 2 cores the speed-up is bounded
by the CPU, not by the framework.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from framework.config import DEFAULT_TOPOLOGY, load_topology  # noqa: E402


def _pool(directory: Path) -> Path:
    """Two virtual testbeds: the default topology under two names."""
    text = DEFAULT_TOPOLOGY.read_text()
    name = load_topology(DEFAULT_TOPOLOGY).name
    for suffix in ("a", "b"):
        renamed = text.replace(f"name: {name}\n", f"name: {name}-{suffix}\n", 1)
        (directory / f"{name}-{suffix}.yaml").write_text(renamed)
    return directory


def _run(label: str, extra: list[str], reports: Path) -> float:
    argv = [sys.executable, "-m", "pytest", "testsuites/", "-p", "no:cacheprovider", "-q",
            "--no-allure-html", "--reports-dir", str(reports), *extra]  # fmt: skip
    started = time.monotonic()
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True)
    seconds = time.monotonic() - started
    last = done.stdout.strip().splitlines()[-1:] or ["(no output)"]
    print(f"  {label:<28} {seconds:7.1f} s   exit {done.returncode}: {last[0]}", flush=True)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    """Run the three variants and print their wall times and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-k", default=None, help="pytest -k expression (default: all guides)")
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    select = ["-k", args.k] if args.k else []
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="howto-bench-") as tmp:
        pool = Path(tmp) / "pool"
        pool.mkdir()
        _pool(pool)
        results: dict[str, list[float]] = {"serial": [], "-n 2": [], "-n 2, pool of 2": []}
        for round_ in range(args.repeat):
            print(f"round {round_ + 1}:")
            reports = Path(tmp) / f"reports-{round_}"
            results["serial"].append(_run("serial", select, reports))
            results["-n 2"].append(_run("-n 2", ["-n", "2", *select], reports))
            results["-n 2, pool of 2"].append(
                _run("-n 2, pool of 2", ["-n", "2", "--topology", str(pool), *select], reports)
            )
    serial = min(results["serial"])
    print("best of each (wall time, speed-up against serial):")
    for label, times in results.items():
        best = min(times)
        print(f"  {label:<28} {best:7.1f} s   {serial / best:5.2f}x")


if __name__ == "__main__":
    main()
