"""Several suite runs on one machine: each owns its lab, and only dead runs are cleaned up.

Real runs in child processes: guide 6 itself, and a small suite that holds a lab (with a
testpmd on host_server_1, so it has hugepage files and a DPDK runtime dir) until told to
check that the lab still works and finish.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

from framework.config import DEFAULT_TOPOLOGY
from framework.lab.leftovers import snapshot
from framework.lab.virtual import existing_namespaces

ROOT = Path(__file__).resolve().parents[2]
GUIDE6 = "testsuites/test_virtio_user_container.py"
FREE_HUGEPAGES = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root: namespaces, hugepages")

HOLDER = textwrap.dedent(
    """
    import os
    import time
    from pathlib import Path

    from framework.dpdk.args import EalOptions, TestPmdOptions
    from framework.dpdk.launch import launch_testpmd


    def test_holds_the_lab(hosts, topology, dpdk_version):
        dut = hosts["host_server_1"]
        pmd, _ = launch_testpmd(
            dut,
            "held",
            EalOptions(memory_mb=64, no_pci=True, vdevs=["net_null0"]),
            TestPmdOptions(total_num_mbufs=2048),
            binary=topology.dpdk.testpmd,
            version=dpdk_version,
        )
        print("LAB-UP", dut.prefix, dut.session.address, flush=True)
        go = Path(os.environ["HOWTO_TEST_GO"])
        deadline = time.monotonic() + 600
        while not go.exists():
            assert time.monotonic() < deadline, "never told to go on"
            time.sleep(0.2)
        # The lab still works: every host answers over SSH and the testpmd answers.
        for host in hosts.values():
            assert host.session.run(["ip", "-o", "link", "show", "mgmt0"]).ok
        assert [p.port for p in pmd.show_port_summary()] == [0]
        pmd.quit()
        print("LAB-STILL-WORKS", dut.prefix, flush=True)
    """
)


class Run:
    """A child pytest run whose output is read as it comes (a full pipe never blocks it)."""

    def __init__(self, argv: list[str], env: dict[str, str] | None = None) -> None:
        self.started = time.monotonic()
        self.ended: float | None = None
        self.lines: list[str] = []
        self.process = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
        self.process.wait()
        self.ended = time.monotonic()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_for(self, marker: str, timeout: float = 120) -> str:
        """The first output line holding marker; fails if the run ends or time runs out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if marker in line:
                    return line
            if self.ended is not None and self.process.poll() is not None:
                self._reader.join(5)
                if not any(marker in line for line in self.lines):
                    pytest.fail(f"run ended without {marker!r}:\n{self.output[-3000:]}")
            time.sleep(0.1)
        pytest.fail(f"no {marker!r} within {timeout:g} s:\n{self.output[-3000:]}")

    def finish(self, timeout: float = 900) -> int:
        try:
            self.process.wait(timeout)
        finally:
            if self.process.poll() is None:
                self.process.kill()
                self.process.wait()
        self._reader.join(10)
        return self.process.returncode

    @property
    def seconds(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def guide6(reports: Path) -> Run:
    return Run(
        [sys.executable, "-m", "pytest", GUIDE6, "-p", "no:cacheprovider", "--no-allure-html",
         "--reports-dir", str(reports), "-q"]
    )  # fmt: skip


def holder(
    tmp_path: Path, name: str, go: Path, *, topology: Path | None = None, wait: str = ""
) -> Run:
    suite = tmp_path / "test_holder.py"
    if not suite.exists():
        suite.write_text(HOLDER)
    env = {"HOWTO_TEST_GO": str(go)}
    if wait:
        env["HOWTO_LAB_WAIT"] = wait
    return Run(
        [sys.executable, "-m", "pytest", "-p", "framework.plugin", "-s", "-q",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), "-c", os.devnull,
         "--reports-dir", str(tmp_path / f"reports-{name}"), "--no-allure-html",
         *(["--topology", str(topology)] if topology else []), str(suite)],
        env=env,
    )  # fmt: skip


def lab_prefixes(excluding: set[str] = frozenset()) -> set[str]:
    """Run prefixes (hc-xxxx) of the labs on the machine now, but those in `excluding`."""
    return {
        ns.removesuffix("-switch")
        for ns in existing_namespaces()
        if re.fullmatch(r"hc-[0-9][0-9a-z]{3}-switch", ns)
    } - set(excluding)


def commands() -> list[str]:
    """Every process's command line (cheaper than a snapshot, for polling)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            found.append(cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


def stable(state: dict[str, list[str]]) -> dict[str, list[str]]:
    """What of a run's holdings must not change while it idles (no transient processes)."""
    return {kind: names for kind, names in state.items() if kind != "processes"}


@pytest.mark.timeout(1500)
def test_two_guide6_runs_at_once_both_pass_and_leave_nothing(tmp_path: Path) -> None:
    before = snapshot()
    others = lab_prefixes()  # labs of runs that are not this test's
    first = guide6(tmp_path / "first")
    time.sleep(5)
    second = guide6(tmp_path / "second")
    seen: set[str] = set()
    together = 0
    while first.process.poll() is None or second.process.poll() is None:
        now = lab_prefixes(others)
        seen |= now
        together = max(together, len(now))
        time.sleep(0.5)
    codes = first.finish(), second.finish()
    print(f"guide 6 twice at once: {first.seconds:.1f} s and {second.seconds:.1f} s")
    assert codes == (0, 0), f"first:\n{first.output[-3000:]}\nsecond:\n{second.output[-3000:]}"
    assert together == 2 and len(seen) == 2, f"both labs were up at once ({seen})"
    assert snapshot().new_since(before) == {}


@pytest.mark.timeout(900)
def test_killed_run_is_cleaned_up_and_a_live_run_survives(tmp_path: Path) -> None:
    before = snapshot()
    others = lab_prefixes()  # labs of runs that are not this test's
    go = tmp_path / "go-live"
    live = holder(tmp_path, "live", go)
    killed = third = None
    try:
        live_prefix = live.wait_for("LAB-UP").split()[1]
        held = snapshot().owned_by(live_prefix)
        assert {"namespaces", "links", "hugepage_files", "run_records"} <= held.keys()

        # A real guide-6 run starts next to it, and is killed once its container runs.
        killed = guide6(tmp_path / "killed")
        deadline = time.monotonic() + 240
        killed_prefix = None
        while time.monotonic() < deadline and killed.process.poll() is None:
            found = lab_prefixes({live_prefix} | others)
            if found:
                killed_prefix = found.pop()
                if any(killed_prefix in c and "virtio_user" in c for c in commands()):
                    break
            time.sleep(0.1)
        assert killed_prefix is not None, killed.output[-3000:]
        assert stable(snapshot().owned_by(live_prefix)) == stable(held), (
            "another run's start-up left the live run's lab alone"
        )
        killed.process.send_signal(signal.SIGKILL)
        killed.finish(30)
        left = snapshot().owned_by(killed_prefix)
        assert {"namespaces", "hugepage_files", "run_records"} <= left.keys(), left

        # The next run's start-up removes what the killed run left, and only that.
        third_go = tmp_path / "go-third"
        third_go.touch()
        third = holder(tmp_path, "third", third_go)
        third.wait_for("LAB-UP")
        assert snapshot().owned_by(killed_prefix) == {}
        assert stable(snapshot().owned_by(live_prefix)) == stable(held)
        assert third.finish(120) == 0, third.output[-3000:]

        go.touch()
        live.wait_for("LAB-STILL-WORKS")
        assert live.finish(120) == 0, live.output[-3000:]
    finally:
        go.touch()
        for run in (live, killed, third):
            if run is not None:
                run.stop()
    assert snapshot().new_since(before) == {}


def half_the_hugepages_topology(tmp_path: Path) -> tuple[Path, int]:
    """virtual.yaml with each host declaring half the machine's free 2 MB pages."""
    data = yaml.safe_load(Path(DEFAULT_TOPOLOGY).read_text())
    half = int(FREE_HUGEPAGES.read_text()) // 2
    for host in data["hosts"].values():
        host["hugepages"] = {"size_kb": 2048, "count": half}
    path = tmp_path / "half.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, half


@pytest.mark.timeout(900)
def test_a_run_that_does_not_fit_waits_then_stops_naming_the_holder(tmp_path: Path) -> None:
    before = snapshot()
    topology, half = half_the_hugepages_topology(tmp_path)
    go_a, go_b, go_late = (tmp_path / f"go-{n}" for n in ("a", "b", "late"))
    go_late.touch()
    runs: list[Run] = []
    try:
        a = holder(tmp_path, "a", go_a, topology=topology)
        runs.append(a)
        a.wait_for("LAB-UP")
        b = holder(tmp_path, "b", go_b, topology=topology)
        runs.append(b)
        b.wait_for("LAB-UP")

        # No wait allowed: it stops at once, with one line naming the runs that hold them.
        hasty = holder(tmp_path, "hasty", go_late, topology=topology, wait="0")
        runs.append(hasty)
        assert hasty.finish(120) == 3, hasty.output[-3000:]
        line = next(
            (x for x in hasty.lines if "cannot bring up topology 'virtual'" in x), hasty.output
        )
        for run in (a, b):
            assert re.search(
                rf"run hc-[0-9][0-9a-z]{{3}} \(pid {run.process.pid}, started "
                rf"\d{{4}}-\d\d-\d\d \d\d:\d\d:\d\d, `python[0-9.]* -m pytest[^`]*`\) "
                rf"holds {half}",
                line,
            ), line
        assert f"2 MB hugepages: this run needs {half}, 0 are free" in line, line
        assert "waited 0 s (set HOWTO_LAB_WAIT=<seconds> to wait longer)" in line, line

        # Allowed to wait: it waits while both hold them, and starts once one finishes.
        patient = holder(tmp_path, "patient", go_late, topology=topology, wait="120")
        runs.append(patient)
        time.sleep(8)
        assert patient.process.poll() is None and not any("LAB-UP" in x for x in patient.lines)
        waited_from = time.monotonic()
        go_b.touch()
        assert b.finish(120) == 0, b.output[-3000:]
        patient.wait_for("LAB-UP", timeout=60)
        print(f"the waiting run started {time.monotonic() - waited_from:.1f} s after go")
        assert patient.finish(120) == 0, patient.output[-3000:]
        go_a.touch()
        assert a.finish(120) == 0, a.output[-3000:]
    finally:
        for go in (go_a, go_b):
            go.touch()
        for run in runs:
            run.stop()
    assert snapshot().new_since(before) == {}
