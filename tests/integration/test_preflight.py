"""python -m framework.lab.preflight against real hosts: the virtual lab's sshd namespaces.

The virtual topology passes every check. Copies of it that ask for what this machine does
not have must fail exactly those checks, one line each naming the host: they are `kind:
lab` copies whose hosts are the namespaces of one virtual lab this module builds, so the
CLI checks real hosts as on a lab (free hugepages, no lab of its own to build) and the
virtual lab is built twice in all. A lab whose hosts do not answer names each host, and
the hosts that do answer are still checked; a bad topology is one line.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from framework.config import DEFAULT_TOPOLOGY, load_topology
from framework.dpdk.version import DpdkVersion, detect_dpdk_version
from framework.lab.hosts import HostHandle, provision
from framework.lab.leftovers import MachineState, snapshot
from framework.lab.runs import RUNS_DIR
from tests.integration.topology_files import unreachable_lab

ROOT = Path(__file__).resolve().parents[2]
# A loopback port where nothing listens: refused at once, and nothing leaves the machine
# (a 198.18.x address outside a live virtual lab is routed to the uplink here).
NOBODY = ("127.0.0.1", 1)

Edit = Callable[[dict[str, Any]], None]


def preflight(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "framework.lab.preflight", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip


def failures(done: subprocess.CompletedProcess[str]) -> list[str]:
    return [
        line.removeprefix("FAIL ") for line in done.stdout.splitlines() if line.startswith("FAIL")
    ]


def last_line(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout.splitlines()[-1]


def left_behind(before: MachineState) -> dict[str, list[str]]:
    """What is new since `before`, but for what runs still alive hold (others' runs)."""
    alive = set()
    for record in RUNS_DIR.glob("*.json") if RUNS_DIR.is_dir() else []:
        try:
            os.kill(json.loads(record.read_text())["pid"], 0)
        except (OSError, ValueError, KeyError):
            continue
        alive.add(record.stem)

    def theirs(name: str) -> bool:
        return any(f"{prefix}-" in name or name.startswith(f"{prefix}.") for prefix in alive)

    new = snapshot().new_since(before)
    return {
        kind: kept for kind, names in new.items() if (kept := [n for n in names if not theirs(n)])
    }


@pytest.mark.selftest
def test_preflight_passes_on_the_virtual_lab(tmp_path: Path) -> None:
    topology = load_topology(DEFAULT_TOPOLOGY)
    before = snapshot()
    report = tmp_path / "checks.json"
    started = time.monotonic()
    done = preflight("--topology", str(DEFAULT_TOPOLOGY), "--json", str(report))
    took = time.monotonic() - started
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert all(line.startswith("ok   ") for line in lines[:-1]), done.stdout
    checks = json.loads(report.read_text())
    assert lines[-1] == f"pre-flight: {len(checks)} checks, 0 failed"
    assert [c["host"] for c in checks] == sorted(
        (c["host"] for c in checks), key=list(topology.hosts).index
    ), "host by host, in topology order"
    assert {c["host"] for c in checks} == set(topology.hosts)
    assert all(c["ok"] and set(c) == {"host", "what", "ok", "detail"} for c in checks)
    for name, host in topology.hosts.items():
        what = {c["what"] for c in checks if c["host"] == name}
        assert {"SSH", *(f"port {p.name} interface" for p in host.ports)} <= what, what
        if host.role == "dut":
            assert {"DPDK", "hugepages", "hugetlbfs", "QEMU", "container engine"} <= what
    assert took < 60, f"pre-flight of the virtual lab took {took:.0f} s"
    assert left_behind(before) == {}, "the virtual lab is gone"


@dataclass
class LiveLab:
    """One virtual lab, up for the module, and `kind: lab` copies of its topology."""

    hosts: dict[str, HostHandle]
    directory: Path
    testpmd: str
    dpdk: DpdkVersion  # what its hosts' testpmd is

    def copy(self, name: str, edit: Edit) -> Path:
        """virtual.yaml as a lab whose hosts are this lab's namespaces, changed by `edit`.

        Its hosts ask for no hugepages unless `edit` says otherwise: this machine's pages
        are shared with whatever else runs here, so how many are free is not ours to say.
        """
        topology = yaml.safe_load(DEFAULT_TOPOLOGY.read_text())
        topology.update(name=name, kind="lab")
        del topology["virtual_lab"]
        for host_name, host in topology["hosts"].items():
            handle = self.hosts[host_name]
            assert handle.lab is not None
            host.update(
                address=handle.session.address,
                ssh_port=handle.session.port,
                key_file=str(handle.lab.key_file),
                work_dir=str(self.directory / name / host_name),
                hugepages={"size_kb": 2048, "count": 0},
            )
        edit(topology)
        path = self.directory / f"{name}.yaml"
        path.write_text(yaml.safe_dump(topology, sort_keys=False))
        return path


@pytest.fixture(scope="module")
def live_lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveLab]:
    """The virtual lab, built once for the tests that check `kind: lab` copies of it."""
    topology = load_topology(DEFAULT_TOPOLOGY)
    before = snapshot()
    with provision(topology) as hosts:
        found = detect_dpdk_version(hosts["host_server_1"].session, topology.dpdk.testpmd)
        yield LiveLab(hosts, tmp_path_factory.mktemp("preflight"), topology.dpdk.testpmd, found)
    assert left_behind(before) == {}, "the virtual lab is gone"


def unusable_capability() -> tuple[str, str, str] | None:
    """A capability this machine lacks: (capability, container engine, FAIL line's end)."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return "kvm", "podman", "KVM: /dev/kvm missing or not usable"
    if not Path("/dev/vhost-net").exists():
        return "vhost_net", "podman", "vhost-net: /dev/vhost-net missing"
    if shutil.which("docker") is None:
        return "container", "docker", "container engine: docker does not run: "
    return None


@pytest.mark.selftest
def test_preflight_names_each_missing_thing(live_lab: LiveLab) -> None:
    lacking = unusable_capability()

    def ask_too_much(topo: dict[str, Any]) -> None:
        topo["dpdk"]["testpmd"] = "/nonexistent/dpdk-testpmd"
        topo["hosts"]["host_server_1"]["hugepages"]["count"] = 100000
        topo["vms"]["pvp_vm"]["qemu"] = "qemu-system-missing"  # on host_server_1
        topo["hosts"]["tg"]["ports"][1]["interface"] = "eth9"  # p1
        if lacking is not None:
            capability, engine, _ = lacking
            topo["hosts"]["host_server_2"]["capabilities"].append(capability)
            topo["hosts"]["host_server_2"]["container_engine"] = engine

    path = live_lab.copy("wrong", ask_too_much)
    report = path.with_suffix(".json")
    done = preflight("--topology", str(path), "--json", str(report))
    assert done.returncode == 3, done.stdout + done.stderr
    expected = [
        "host_server_1: DPDK: testpmd not found or not executable: /nonexistent/dpdk-testpmd",
        "host_server_1: hugepages: ",
        "host_server_1: QEMU: qemu-system-missing does not run: ",
        "host_server_2: DPDK: testpmd not found or not executable: /nonexistent/dpdk-testpmd",
        *([f"host_server_2: {lacking[2]}"] if lacking is not None else []),
        "tg: port p1 interface: no interface eth9",
    ]
    failed = failures(done)
    assert len(failed) == len(expected), failed
    for line, start in zip(failed, expected, strict=True):
        assert line.startswith(start), (line, start)
    assert failed[1].endswith(" 2048 kB pages free, topology wants 100000"), failed[1]
    assert last_line(done) == (
        f"pre-flight: {len(json.loads(report.read_text()))} checks, {len(expected)} failed"
    )
    assert "ok   host_server_1: QEMU: QEMU emulator version" in done.stdout, "x86_64 still runs"


@pytest.mark.selftest
def test_preflight_names_another_dpdk_release(live_lab: LiveLab) -> None:
    found = live_lab.dpdk
    other = "21.11" if (found.year, found.month) != (21, 11) else "22.11"
    path = live_lab.copy("other-dpdk", lambda topo: topo["dpdk"].update(version=other))
    done = preflight("--topology", str(path))
    assert done.returncode == 3, done.stdout + done.stderr
    assert failures(done) == [
        f"{host}: DPDK: {live_lab.testpmd} is DPDK {found}, the topology says {other}"
        for host in ("host_server_1", "host_server_2")
    ]


@pytest.mark.selftest
def test_preflight_checks_the_hosts_that_answer(live_lab: LiveLab) -> None:
    address, port = NOBODY
    found = live_lab.dpdk
    release = f"{found.year}.{found.month:02d}"  # names every patch level of it

    def take_down(topo: dict[str, Any]) -> None:
        topo["hosts"]["host_server_2"].update(address=address, ssh_port=port)
        topo["dpdk"]["version"] = release

    path = live_lab.copy("one-down", take_down)
    started = time.monotonic()
    done = preflight("--topology", str(path))
    assert time.monotonic() - started < 60, "a refused connection costs no timeout"
    assert done.returncode == 3, done.stdout + done.stderr
    assert failures(done) == [
        f"host_server_2: SSH: unreachable at {address}:{port} (Connection refused)"
    ]
    checked = [line.split()[1] for line in done.stdout.splitlines()[:-1]]
    assert checked.count("host_server_2:") == 1, "nothing else of the host that is down"
    assert "host_server_1:" in checked and "tg:" in checked, done.stdout
    ok = f"ok   host_server_1: DPDK: {live_lab.testpmd} is DPDK {found} (topology: {release})"
    assert ok in done.stdout.splitlines(), done.stdout


def test_preflight_of_an_unreachable_lab_names_each_host(tmp_path: Path) -> None:
    path, lab = unreachable_lab(tmp_path)
    started = time.monotonic()
    done = preflight("--topology", str(path))
    assert time.monotonic() - started < 30, "refused at once: no connect timeout"
    assert done.returncode == 3, done.stdout + done.stderr
    failed = failures(done)
    assert [f.split(":")[0] for f in failed] == list(lab["hosts"]), failed
    assert all(": SSH: unreachable at 127.0.0.1:" in f for f in failed), failed
    assert last_line(done) == f"pre-flight: {len(failed)} checks, {len(failed)} failed"


def test_preflight_of_bad_input_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nkind: lab\nhosts: {tg: {role: tg, ssh_port: twenty-two}}\n")
    for args, says in [
        (["--topology", str(path)], "hosts.tg.ssh_port"),
        (["--topology", str(tmp_path / "none.yaml")], "none.yaml: cannot read topology"),
        (["--topology", str(DEFAULT_TOPOLOGY), "--json", "/nonexistent/x.json"], "--json"),
        ([], "the following arguments are required: --topology"),
        (["--topology", str(path), "--bogus"], "unrecognized arguments: --bogus"),
    ]:
        done = preflight(*args)
        assert done.returncode == 4, (args, done.stdout + done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ERROR: ") and says in lines[0], (
            args,
            done.stderr,
        )
        assert done.stdout == "", "no check ran"
