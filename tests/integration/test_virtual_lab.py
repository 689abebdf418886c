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


def test_lab_commands_leave_the_machines_shell_rc_alone(topology) -> None:
    # sshd runs each command with root's bash, which sources ~/.bashrc when started at
    # shell level 1: this machine's once made every lab command wait 60 s (a pyenv lock).
    # The lab's sshds start it at level 2: a bash it runs then counts 2 (without: 1).
    with provision(topology) as hosts:
        levels = {
            n: h.session.run(["bash", "-c", 'echo "$SHLVL"']).stdout for n, h in hosts.items()
        }
        assert {n: level.strip() for n, level in levels.items()} == dict.fromkeys(hosts, "2")


def _with_lab(topology: Topology, **changes) -> Topology:
    data = topology.model_dump()
    data["virtual_lab"].update(changes)
    return Topology.model_validate(data)


def test_moves_off_a_subnet_that_overlaps_a_route(topology) -> None:
    """The management subnet is where the search starts: a route there moves the run on."""
    moved = _with_lab(topology, management_subnet="198.19.200.0/24")
    subprocess.run(["ip", "route", "add", "blackhole", "198.19.200.0/26"], check=True)
    try:
        lab = VirtualLab(moved).up()
        try:
            assert lab.subnet == ipaddress.ip_network("198.19.201.0/24")
            assert lab.hosts["tg"].address.startswith("198.19.201.")
        finally:
            lab.down()
    finally:
        subprocess.run(["ip", "route", "del", "blackhole", "198.19.200.0/26"], check=True)


def test_refuses_a_pinned_subnet_that_overlaps_a_route(topology) -> None:
    """Host addresses written in the topology pin the subnet: a clash is refused."""
    data = _with_lab(topology, management_subnet="198.19.200.0/24").model_dump()
    for index, host in enumerate(data["hosts"].values()):
        host["address"] = f"198.19.200.{11 + index}"
    pinned = Topology.model_validate(data)
    subprocess.run(["ip", "route", "add", "blackhole", "198.19.200.0/26"], check=True)
    try:
        with pytest.raises(LabError, match=r"overlaps existing routes: 198\.19\.200\.0/26"):
            VirtualLab(pinned).up()
    finally:
        subprocess.run(["ip", "route", "del", "blackhole", "198.19.200.0/26"], check=True)
    assert not snapshot().run_records


def test_hugepage_checks_use_the_topologys_mount(topology, tmp_path: Path) -> None:
    data = topology.model_dump()
    for host in data["hosts"].values():
        host["hugepages"]["mount"] = str(tmp_path)
    elsewhere = Topology.model_validate(data)
    # Files of a run that no live run owns (its lock is gone): a killed run's.
    stale = tmp_path / "hc-0dea-host-server-1-killed-run-map_0"
    stale.touch()
    with pytest.raises(LabError, match=f"^{re.escape(str(tmp_path))} is not a hugetlbfs mount"):
        VirtualLab(elsewhere).up()
    assert not stale.exists(), "stale hugepage files are looked for under the topology's mount"
    assert not snapshot().run_records


def _idle(held: dict[str, list[str]]) -> dict[str, list[str]]:
    # sshd retitles itself ("[listener] 0 of 50-50 startups"): compare its pids only.
    return {k: [v.split()[0] for v in vs] if k == "processes" else vs for k, vs in held.items()}


def test_a_live_runs_names_are_left_alone(topology, tmp_path: Path) -> None:
    """Two labs in one process: the second's start-up and teardown leave the first's."""
    before = snapshot()
    with provision(topology) as first:
        prefix = first["tg"].prefix
        held = _idle(snapshot().owned_by(prefix))
        with provision(topology) as second:
            other = second["tg"]
            assert other.prefix != prefix
            assert other.session.address != first["tg"].session.address
            assert _idle(snapshot().owned_by(prefix)) == held
            assert first["tg"].session.run(["true"]).ok
        assert snapshot().owned_by(other.prefix) == {}
        assert _idle(snapshot().owned_by(prefix)) == held
    assert snapshot().new_since(before) == {}


def test_clean_up_takes_only_what_dead_runs_left(topology, tmp_path: Path) -> None:
    """A run nobody owns (no live lock) loses its namespace, hugepage file and container;
    a live run's container with the same kind of name stays."""
    from framework.container.engine import ContainerEngine
    from framework.container.image import ensure_testpmd_image
    from framework.lab.runs import Registry
    from framework.remote import LocalSession

    session = LocalSession()
    engine = ContainerEngine.probe(session, "podman", work_dir=str(tmp_path))
    if engine.kind != "podman":
        pytest.skip(f"no container engine: {engine.fallback_reason}")
    image = ensure_testpmd_image(session, engine=engine)

    def start(name: str) -> None:  # a container that runs until it is removed
        argv, env = engine.cli(
            "run", "--detach", "--interactive", "--rm", "--network", "none", "--name", name,
            image, "dpdk-testpmd", "-l", "0-1", "--no-huge", "-m", "64", "--no-pci",
            "--file-prefix", name.removeprefix("howto-"), "--vdev", "net_null0", "--", "-i",
            "--total-num-mbufs=2048",
        )  # fmt: skip
        session.run(argv, env=env, timeout=60)

    before = snapshot()
    with Registry().locked() as registry:
        dead = next(f"hc-{n}dea" for n in range(10) if f"hc-{n}dea" not in registry.prefixes())
    with provision(topology) as hosts:
        live = hosts["tg"].prefix
        start(f"howto-{live}-kept")
        subprocess.run(["ip", "netns", "add", f"{dead}-tg"], check=True)
        (Path("/dev/hugepages") / f"{dead}-host-server-1-x-map_0").touch()
        start(f"howto-{dead}-x")
        assert {"namespaces", "hugepage_files", "containers"} <= snapshot().owned_by(dead).keys()
        removed = VirtualLab.clean_stale("hc")
        assert f"netns {dead}-tg" in removed and f"container howto-{dead}-x" in removed
        assert snapshot().owned_by(dead) == {}
        assert engine.names(f"howto-{live}-") == [f"howto-{live}-kept"]
        engine.remove(f"howto-{live}-kept")
    assert snapshot().new_since(before) == {}


def test_unreachable_host_is_one_clear_line(topology) -> None:
    with provision(topology) as hosts:
        # The controller's own lab address: nothing listens on port 22 there.
        subnet = ipaddress.ip_network(f"{hosts['tg'].session.address}/24", strict=False)
        lab_address = str(next(iter(subnet.hosts())))
        assert hosts
        session = SSHSession("ghost", lab_address, connect_timeout=3)
        with pytest.raises(RemoteError) as info:
            session.connect()
    message = str(info.value)
    assert message.startswith(f"ghost: cannot reach {lab_address}:22 over SSH")
    assert "\n" not in message


def _default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


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
        # As from a terminal: a job started in the background by a shell without job
        # control (`cmd &`, as CI may run us) inherits SIGINT ignored, and Python then
        # never turns Ctrl-C into KeyboardInterrupt.
        preexec_fn=_default_sigint,
    )
    seen: list[str] = []
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 60
        for line in process.stdout:
            seen.append(line)
            if "LAB-UP" in line or time.monotonic() > deadline:
                break
        process.send_signal(how)
        try:
            # Keep reading: a child blocked on a full stdout pipe would look like a hang.
            rest, _ = process.communicate(timeout=120)
        except subprocess.TimeoutExpired:
            # pytest's faulthandler prints every thread's stack on SIGABRT: say where it hung.
            process.send_signal(signal.SIGABRT)
            rest, _ = process.communicate(timeout=30)
            pytest.fail(
                f"the run did not end within 120 s of {how.name}; what it printed, then its "
                f"threads:\n{(''.join(seen) + (rest or ''))[-8000:]}"
            )
    finally:
        if process.poll() is None:
            process.kill()
    assert snapshot().new_since(before) == {}


def test_an_access_vlan_keeps_its_ports_apart(topology) -> None:
    """Guide 4's cables: host_server_1's pvp0 and the TG's pvp0 see each other, nothing else.

    host_server_1's pvp0 gets an address (its kernel answering ARP only on that port): an
    ARP request from the TG's pvp0 is answered, the same request from any other TG port is
    not, and a broadcast from the TG's pvp0 reaches no other TG port.
    """
    from scapy.layers.l2 import ARP, Ether

    from framework.traffic.generator import TrafficGenerator

    with provision(topology) as hosts:
        tg, dut = hosts["tg"], hosts["host_server_1"]
        dut.session.run(["sysctl", "-qw", "net.ipv4.conf.all.arp_ignore=1"])
        dut.session.run(["ip", "addr", "add", "198.18.9.1/24", "dev", dut.port("pvp0").interface])
        generator = TrafficGenerator(tg.session, agent_dir=tg.work_dir)
        ports = {n: tg.port(n).interface for n in ("pvp0", "pvp1", "p0", "p1")}

        def answers(name: str) -> int:
            mac = generator.mac_of(ports[name])
            request = Ether(src=mac, dst="ff:ff:ff:ff:ff:ff") / ARP(
                hwsrc=mac, psrc="198.18.9.2", pdst="198.18.9.1"
            )
            capture = generator.exchange(ports[name], [request], [ports[name]], timeout=1)
            return sum(1 for f in capture.frames(ports[name]) if f.packet.answers(request))

        assert {n: answers(n) for n in ports} == {"pvp0": 1, "pvp1": 0, "p0": 0, "p1": 0}
        others = [ports[n] for n in ("pvp1", "p0", "p1")]
        flood = Ether(src=generator.mac_of(ports["pvp0"]), dst="ff:ff:ff:ff:ff:ff",
                      type=0x88B5) / (b"HOWTO-vlan" + bytes(40))  # fmt: skip
        capture = generator.exchange(ports["pvp0"], [flood], others, timeout=1,
                                     marker=b"HOWTO-vlan")  # fmt: skip
        assert all(not capture.frames(i) for i in others), "TG pvp0 floods to no other TG port"
