"""Round-trip time of one testpmd command through the typed shell (goal: median <= 5 ms).

    .venv/bin/python benchmarks/testpmd_rtt.py [-n 200] [--command "show port summary all"]

Measures the same testpmd (net_null vdevs, --in-memory, its own --file-prefix) twice in
one run: on a virtual-lab host over SSH (the path every test takes) and, as the baseline,
on a local PTY. Each command goes through TestPmd.command (send, prompt, echo strip, error
scan). Prints median / p90 / max in milliseconds and the SSH/local ratio. With the defaults
it takes a few seconds (most of it the virtual lab's set-up), one numbered line per step;
SIGTERM or Ctrl-C closes the testpmds and takes the lab down (framework/report/benchrun.py).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from framework.config import DEFAULT_TOPOLOGY, load_topology  # noqa: E402
from framework.dpdk.testpmd import TestPmd  # noqa: E402
from framework.lab.hosts import provision  # noqa: E402
from framework.remote.session import LocalSession, Session  # noqa: E402
from framework.report import benchrun  # noqa: E402

GOAL_MS = 5.0


def measure(session: Session, binary: str, command: str, count: int, prefix: str) -> list[float]:
    argv = [
        binary,
        "-l",
        "0-1",
        "--in-memory",
        "--file-prefix",
        prefix,
        "--no-pci",
        "-m",
        "256",
        "--vdev",
        "net_null0",
        "--vdev",
        "net_null1",
        "--",
        "-i",
        "--total-num-mbufs",
        "8192",
    ]
    with TestPmd.launch(session, argv, name=f"{session.name}/rtt") as pmd:
        samples: list[float] = []
        for _ in range(count):
            t0 = time.perf_counter()
            pmd.command(command)
            samples.append((time.perf_counter() - t0) * 1000)
    return sorted(samples)


def report(label: str, samples: list[float]) -> float:
    median = statistics.median(samples)
    p90 = samples[max(0, round(0.9 * len(samples)) - 1)]
    benchrun.say(
        f"{label:<28} median {median:6.2f} ms  p90 {p90:6.2f} ms  max {samples[-1]:6.2f} ms"
    )
    return median


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("-n", "--count", type=int, default=200)
    parser.add_argument("--command", default="show port summary all")
    parser.add_argument("--binary", default="/usr/bin/dpdk-testpmd")
    args = parser.parse_args()
    if args.count < 1:
        parser.error(f"--count must be at least 1, got {args.count}")

    benchrun.say(f"command {args.command!r} x {args.count}")
    progress = benchrun.Progress(3)
    progress.step(f"local PTY: testpmd, {args.count} commands")
    local = report(
        "local PTY (baseline)",
        measure(LocalSession(), args.binary, args.command, args.count, "hc-rtt-local"),
    )
    progress.step("virtual lab: building it (namespaces, sshds)")
    with provision(load_topology(DEFAULT_TOPOLOGY)) as hosts:
        host = hosts["host_server_1"]
        progress.step(f"SSH PTY to {host.name}: testpmd, {args.count} commands")
        ssh = report(
            f"SSH PTY to {host.name}",
            measure(host.session, args.binary, args.command, args.count, "hc-rtt-ssh"),
        )
    print(f"SSH / local: {ssh / local:.1f}x")
    print(f"goal: median over SSH <= {GOAL_MS:g} ms: {'met' if ssh <= GOAL_MS else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(benchrun.run(main))
