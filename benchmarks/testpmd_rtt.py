"""Round-trip time of one testpmd command through the typed shell (goal: median <= 5 ms).

    .venv/bin/python benchmarks/testpmd_rtt.py [-n 200] [--command "show port summary all"]

Launches dpdk-testpmd locally (net_null vdevs, --in-memory, its own --file-prefix), sends
the command N times through TestPmd.command (send, prompt, echo strip, error scan) and
prints median / p90 / max in milliseconds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.dpdk.testpmd import TestPmd
from framework.remote.session import LocalSession

GOAL_MS = 5.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=200)
    parser.add_argument("--command", default="show port summary all")
    parser.add_argument("--binary", default="/usr/bin/dpdk-testpmd")
    args = parser.parse_args()

    argv = [
        args.binary, "-l", "0-1", "--in-memory", "--file-prefix", f"hcbrtt{os.getpid()}",
        "--no-pci", "-m", "256", "--vdev", "net_null0", "--vdev", "net_null1",
        "--", "-i", "--total-num-mbufs", "8192",
    ]
    session = LocalSession()
    started = time.perf_counter()
    with TestPmd.launch(session, argv) as pmd:
        launch_s = time.perf_counter() - started
        samples = []
        for _ in range(args.count):
            t0 = time.perf_counter()
            pmd.command(args.command)
            samples.append((time.perf_counter() - t0) * 1000)
    samples.sort()
    median = statistics.median(samples)
    p90 = samples[max(0, round(0.9 * len(samples)) - 1)]
    print(f"testpmd launch to first prompt: {launch_s * 1000:.0f} ms (DPDK {pmd.version})")
    print(f"command: {args.command!r} x {len(samples)}")
    print(f"round trip: median {median:.2f} ms, p90 {p90:.2f} ms, max {samples[-1]:.2f} ms")
    print(f"goal <= {GOAL_MS:g} ms: {'met' if median <= GOAL_MS else 'not met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
