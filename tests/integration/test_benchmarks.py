"""Every script in benchmarks/ run as a person runs it, with short arguments.

Each must exit 0 and print its figures and numbered progress lines; stream_rate.py stopped
with SIGTERM mid-stream must exit 143 with one line saying so and leave none of its
namespaces or processes. Three are covered in a short form, for time: pvp_limits.py without
the vm variant (its TCG guest boots and is searched for about a minute), pvp_tuning.py with
two of its three forms, and
loss_windows.py re-reading recorded runs (`--summaries`): a real round is guides 1 and 2's
migrations under TCG, 3-4 minutes even with `--runs 1`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from framework.lab.virtual import existing_namespaces

ROOT = Path(__file__).resolve().parents[2]
TESTPMD = "/usr/bin/dpdk-testpmd"
GUIDE6_QUICK = "test_vhost_user_port_comes_up_when_the_container_connects"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root: namespaces, raw sockets, hugepages"
)
needs_testpmd = pytest.mark.skipif(not os.path.exists(TESTPMD), reason=f"no {TESTPMD}")


def bench(name: str, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    """Run benchmarks/<name> to its end; fail with its output if it exits non-zero."""
    done = subprocess.run(
        [sys.executable, f"benchmarks/{name}", *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, f"{name} exited {done.returncode}:\n{done.stdout}{done.stderr}"
    return done


def progress_lines(out: str) -> list[tuple[int, int]]:
    """(n, N) of every `[n/N elapsed] ...` line."""
    return [(int(n), int(t)) for n, t in re.findall(r"^\[(\d+)/(\d+) \d+ s\] ", out, re.M)]


def assert_counted_to_the_end(out: str) -> None:
    steps = progress_lines(out)
    assert steps, f"no progress lines:\n{out}"
    total = steps[0][1]
    assert [n for n, _ in steps] == list(range(1, total + 1)), steps


def test_stream_rate_short() -> None:
    done = bench("stream_rate.py", "--seconds", "0.2", "--repeat", "1", "--loop-n", "10",
                 "-n", "200")  # fmt: skip
    assert_counted_to_the_end(done.stdout)
    assert re.search(r"engine \(auto\) vs sendp per packet: +[\d,.]+x", done.stdout)
    assert re.search(r"^worst pacing error: [\d.]+ %", done.stdout, re.M)
    run = re.search(r"\((howto-bench-\d+)-a <-> ", done.stdout)
    assert run is not None, done.stdout
    assert not [ns for ns in existing_namespaces() if ns.startswith(f"{run.group(1)}-")]


def _descendants(pid: int) -> set[tuple[int, str]]:
    """(pid, start time) of every process below pid: the start time tells a reused pid."""
    parent: dict[int, int] = {}
    started: dict[int, str] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        child = int(stat.parent.name)
        parent[child], started[child] = int(fields[1]), fields[19]
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = {c for c, p in parent.items() if p in frontier} - found
        found |= frontier
    return {(c, started[c]) for c in found}


def _alive(process: tuple[int, str]) -> bool:
    try:
        fields = Path(f"/proc/{process[0]}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[19] == process[1] and fields[0] != "Z"


def _command(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
    except OSError:
        return "?"


def test_stream_rate_stopped_by_sigterm_leaves_nothing(tmp_path: Path) -> None:
    out = tmp_path / "out.txt"
    with out.open("w") as sink:
        bench_process = subprocess.Popen(
            [sys.executable, "benchmarks/stream_rate.py", "--seconds", "3", "--repeat", "1",
             "--loop-n", "10", "-n", "200"],
            cwd=ROOT, stdout=sink, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        try:
            # Mid-stream: the engine's agent and the forked receiver are running.
            deadline = time.monotonic() + 60
            while "engine, auto path (sendmmsg), unpaced, to the peer" not in out.read_text():
                assert bench_process.poll() is None, out.read_text()
                assert time.monotonic() < deadline, f"no engine stream in 60 s:\n{out.read_text()}"
                time.sleep(0.1)
            time.sleep(1.0)
            children = _descendants(bench_process.pid)
            assert children, "a stream runs: the benchmark has children"
            bench_process.send_signal(signal.SIGTERM)
            _, err = bench_process.communicate(timeout=60)
        finally:
            if bench_process.poll() is None:
                bench_process.kill()
                bench_process.wait()
    assert bench_process.returncode == 128 + signal.SIGTERM, out.read_text() + err
    assert re.fullmatch(r"stream_rate: stopped by SIGTERM after \d+ s; what it made is removed",
                        err.strip().splitlines()[-1]), err  # fmt: skip
    run = f"howto-bench-{bench_process.pid}"
    assert not [ns for ns in existing_namespaces() if ns.startswith(f"{run}-")]
    left = {pid: _command(pid) for pid, started in children if _alive((pid, started))}
    assert not left, f"every process it started has ended; still running: {left}"
    assert not list(Path("/tmp").glob(f"{run}-*")), "its temporary directory is removed"


@needs_testpmd
def test_testpmd_rtt_short() -> None:
    done = bench("testpmd_rtt.py", "-n", "20")
    assert_counted_to_the_end(done.stdout)
    assert re.search(r"^SSH PTY to \S+ +median +[\d.]+ ms", done.stdout, re.M)
    assert re.search(r"^goal: median over SSH <= 5 ms: (met|NOT met)$", done.stdout, re.M)


@needs_testpmd
def test_pvp_limits_short_without_the_vm() -> None:
    done = bench("pvp_limits.py", "--no-vm", "--trial", "0.3", "--width", "0.5",
                 "--raw-seconds", "1")  # fmt: skip
    assert_counted_to_the_end(done.stdout)
    assert "TG back-to-back, trial 1: " in done.stdout, "each search trial is said"
    assert re.search(r"^3\. PVP NDR, container variant +[\d.]+ ", done.stdout, re.M)
    assert re.search(r"^container NDR is \d+% of the smaller of 1 and 2", done.stdout, re.M)


@needs_testpmd
def test_pvp_tuning_short_untuned_and_tuned() -> None:
    done = bench("pvp_tuning.py", "--forms", "untuned,tuned", "--trial", "0.3", "--width",
                 "0.5", timeout=420)  # fmt: skip
    assert_counted_to_the_end(done.stdout)
    assert "untuned, trial 1: " in done.stdout, "each search trial is said"
    # what each form applied, read back from the guest's kernel
    assert re.search(r"^  untuned: guest: isolated CPUs none, ", done.stdout, re.M)
    assert re.search(r"^  tuned: guest: isolated CPUs \d", done.stdout, re.M)
    assert re.search(r"^untuned +[\d.]+ +1\.00  ", done.stdout, re.M)
    assert re.search(r"^tuned +[\d.]+ +[\d.]+  ", done.stdout, re.M)


@needs_testpmd
@pytest.mark.skipif(shutil.which("podman") is None, reason="guide 6 needs podman")
def test_suite_parallel_short() -> None:
    done = bench("suite_parallel.py", "-k", GUIDE6_QUICK, timeout=420)
    assert_counted_to_the_end(done.stdout)
    for label in ("serial", "-n 2", "-n 2, pool of 2"):
        assert re.search(rf"^  {re.escape(label)} +[\d.]+ s +[\d.]+x$", done.stdout, re.M)


def test_loss_windows_reads_recorded_runs(tmp_path: Path) -> None:
    rows = [
        {"guide": 1, "variant": "emulated-vf", "status": "passed", "figures": [
            {"name": f"failover {what}", "value": value, "test": "t[emulated-vf]"}
            for what, value in (("outage", 19.5), ("outages", 1), ("lost", 3),
                                ("loss span", 4.0), ("stall", 0.0))]},
        {"guide": 2, "variant": "split-virtqueue", "status": "passed", "figures": [
            {"name": "migration downtime", "value": 240.0, "test": "t[split-virtqueue]"},
            {"name": "frames lost", "value": 135, "test": "t[split-virtqueue]"}]},
    ]  # fmt: skip
    for run in ("20260101-000000", "20260101-001000"):
        (tmp_path / run).mkdir()
        (tmp_path / run / "summary.json").write_text(json.dumps({"rows": rows}))
    done = bench("loss_windows.py", "--summaries", str(tmp_path))
    assert "distribution over 2 run(s)" in done.stdout
    assert re.search(r"^  1 emulated-vf failover +outages +2 +1\.0 +1\.0 +1\.0$", done.stdout,
                     re.M)  # fmt: skip
    assert re.search(r"^ +lost frames +2 +135\.0 +135\.0 +135\.0$", done.stdout, re.M)


@pytest.mark.parametrize(
    ("name", "args", "says"),
    [
        ("stream_rate.py", ["--repeat", "0"], "--repeat must be at least 1"),
        ("testpmd_rtt.py", ["-n", "0"], "--count must be at least 1"),
        ("pvp_limits.py", ["--width", "2"], "--width must be between 0 and 1"),
        ("pvp_tuning.py", ["--frame", "10"], "--frame must be 64 to 1518 bytes, got 10"),
        ("pvp_tuning.py", ["--pins", "a,b"], "--pins takes CPU numbers separated by commas"),
        ("suite_parallel.py", ["--repeat", "0"], "--repeat must be at least 1"),
        ("loss_windows.py", ["--runs", "0"], "--runs must be at least 1"),
    ],
)
def test_bad_arguments_end_with_one_line(name: str, args: list[str], says: str) -> None:
    done = subprocess.run([sys.executable, f"benchmarks/{name}", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2 and says in done.stderr.strip().splitlines()[-1], done.stderr
    assert not progress_lines(done.stdout), "nothing started"
