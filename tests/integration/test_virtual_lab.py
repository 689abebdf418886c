"""The virtual lab: built from topologies/virtual.yaml, reached over SSH, and gone afterwards."""

from __future__ import annotations

import ipaddress
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from framework.config import DEFAULT_TOPOLOGY, Topology, load_topology
from framework.errors import LabError, RemoteError
from framework.lab.hosts import provision
from framework.lab.leftovers import snapshot
from framework.lab.virtual import VirtualLab
from framework.remote import SSHSession

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def topology():
    return load_topology(DEFAULT_TOPOLOGY)


def test_up_use_down_leaves_nothing(topology) -> None:
    before = snapshot()
    with provision(topology) as hosts:
        during = snapshot()
        assert during.new_since(before)["namespaces"], "the lab made its namespaces"
        for name, host in hosts.items():
            # Each host is its own namespace with the topology's data ports.
            for port in host.ports.values():
                link = host.session.run(
                    ["ip", "-o", "link", "show", "dev", port.interface], check=False
                )
                assert link.ok and "state UP" in link.stdout, f"{name} has {port.interface} up"
            address = ipaddress.ip_address(host.session.address)
            assert address in ipaddress.ip_network("198.18.0.0/15")
        # Something long-running in a namespace must not survive teardown either.
        hosts["host_server_1"].session.run(
            ["bash", "-c", "nohup sleep 600 >/dev/null 2>&1 &"], timeout=10
        )
    assert snapshot().new_since(before) == {}


def test_data_switch_floods_like_the_guides_switch(topology) -> None:
    """The guide's switch is "configured to broadcast traffic on all the NIC ports": a
    frame for a MAC the switch has seen behind host_server_1 still reaches every port."""
    from scapy.layers.l2 import Ether

    from framework.traffic.generator import TrafficGenerator

    with provision(topology) as hosts:
        tg, dut = hosts["tg"], hosts["host_server_1"]
        known = "02:00:00:00:00:11"
        # A learning bridge would now send frames for `known` to host_server_1 only.
        TrafficGenerator(dut.session, agent_dir=dut.work_dir).exchange(
            dut.port("p0").interface,
            [Ether(src=known, dst="ff:ff:ff:ff:ff:ff") / b"learn"],
            [],
            timeout=0.1,
        )
        generator = TrafficGenerator(tg.session, agent_dir=tg.work_dir)
        frame = Ether(src=generator.mac_of(tg.port("p0").interface), dst=known, type=0x88B5) / (
            b"HOWTO-flood" + bytes(40)
        )
        capture = generator.exchange(
            tg.port("p0").interface,
            [frame],
            [tg.port("p1").interface],
            expect=1,
            timeout=2,
            marker=b"HOWTO-flood",
        )
        assert len(capture.frames(tg.port("p1").interface)) == 1, (
            "the switch floods a frame for a MAC learned elsewhere to every port"
        )


def test_sessions_run_in_their_own_namespace(topology) -> None:
    with provision(topology) as hosts:
        names = {
            h.session.run(["ip", "-o", "addr", "show", "mgmt0"]).stdout for h in hosts.values()
        }
        assert len(names) == len(hosts), "every host has its own management address"


def test_refuses_subnet_that_overlaps_a_route(topology) -> None:
    subprocess.run(["ip", "route", "add", "blackhole", "198.18.0.0/26"], check=True)
    try:
        with pytest.raises(LabError, match=r"overlaps existing routes: 198\.18\.0\.0/26"):
            VirtualLab(topology).up()
    finally:
        subprocess.run(["ip", "route", "del", "blackhole", "198.18.0.0/26"], check=True)
    assert not [ns for ns in snapshot().namespaces if ns.startswith("hc-")]


def test_hugepage_checks_use_the_topologys_mount(topology, tmp_path: Path) -> None:
    data = topology.model_dump()
    for host in data["hosts"].values():
        host["hugepages"]["mount"] = str(tmp_path)
    elsewhere = Topology.model_validate(data)
    stale = tmp_path / "hc-host-server-1-killed-run-map_0"
    stale.touch()
    with pytest.raises(LabError, match=f"^{re.escape(str(tmp_path))} is not a hugetlbfs mount"):
        VirtualLab(elsewhere).up()
    assert not stale.exists(), "stale hugepage files are looked for under the topology's mount"
    assert not [ns for ns in snapshot().namespaces if ns.startswith("hc-")]


def test_unreachable_host_is_one_clear_line(topology) -> None:
    with provision(topology) as hosts:
        # The controller's own lab address: nothing listens on port 22 there.
        lab_address = str(next(iter(ipaddress.ip_network("198.18.0.0/24").hosts())))
        assert hosts
        session = SSHSession("ghost", lab_address, connect_timeout=3)
        with pytest.raises(RemoteError) as info:
            session.connect()
    message = str(info.value)
    assert message.startswith(f"ghost: cannot reach {lab_address}:22 over SSH")
    assert "\n" not in message


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupted_run_leaves_nothing(tmp_path: Path, how: signal.Signals) -> None:
    before = snapshot()
    suite = tmp_path / "test_sleepy.py"
    suite.write_text(
        textwrap.dedent(
            """
            import time

            def test_sleeps(hosts):
                print("LAB-UP", flush=True)
                time.sleep(120)
            """
        )
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "framework.plugin",
            "-s",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            "--reports-dir",
            str(tmp_path / "reports"),
            "--no-allure-html",
            str(suite),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            if "LAB-UP" in line or time.monotonic() > deadline:
                break
        process.send_signal(how)
        # Keep reading: a child blocked on a full stdout pipe would look like a hang.
        process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert snapshot().new_since(before) == {}
