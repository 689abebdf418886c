"""The typed testpmd layer against the real /usr/bin/dpdk-testpmd (net_null/net_ring vdevs)."""

from __future__ import annotations

import itertools
import os
import re
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.dpdk import (
    DpdkVersion,
    ForwardingMode,
    TestPmd,
    TestPmdParseError,
    TestPmdStartError,
    detect_dpdk_version,
)
from framework.errors import TestPmdError
from framework.remote.session import LocalSession

BINARY = "/usr/bin/dpdk-testpmd"
HUGE_DIR = Path("/dev/hugepages")
RUN_DIR = Path("/var/run/dpdk")

pytestmark = [
    pytest.mark.skipif(not os.path.exists(BINARY), reason=f"{BINARY} is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="testpmd needs root for hugepages"),
]

_counter = itertools.count()


def _prefix() -> str:
    return f"hcbit{os.getpid()}_{next(_counter)}"


def _argv(prefix: str, vdevs: list[str], *, in_memory: bool = True, app: tuple = ()) -> list[str]:
    argv = [BINARY, "-l", "0-1", "--file-prefix", prefix, "--no-pci", "-m", "256"]
    if in_memory:
        argv.append("--in-memory")
    for vdev in vdevs:
        argv += ["--vdev", vdev]
    return [*argv, "--", "-i", "--total-num-mbufs", "8192", *app]


def _leftovers(prefix: str) -> list[str]:
    files = [p.name for p in HUGE_DIR.glob(f"{prefix}map_*")]
    return files + ([str(RUN_DIR / prefix)] if (RUN_DIR / prefix).exists() else [])


@pytest.fixture(scope="module")
def session() -> LocalSession:
    return LocalSession()


@pytest.fixture(scope="module")
def version(session: LocalSession) -> DpdkVersion:
    return detect_dpdk_version(session, BINARY)


@pytest.fixture
def null_pmd(session: LocalSession, version: DpdkVersion) -> Iterator[TestPmd]:
    prefix = _prefix()
    pmd = TestPmd.launch(session, _argv(prefix, ["net_null0", "net_null1"]), version=version)
    yield pmd
    pmd.close()
    assert not _leftovers(prefix)


def test_detect_version_matches_startup_and_leaves_nothing(
    session: LocalSession, version: DpdkVersion
) -> None:
    pkg = session.run(["pkg-config", "--modversion", "libdpdk"], check=False)
    if pkg.ok:
        assert version == DpdkVersion.parse(pkg.stdout)
    assert version >= DpdkVersion(17, 5)
    assert not list(RUN_DIR.glob("hcbver*"))


def test_launch_reads_version_when_not_given(session: LocalSession, version: DpdkVersion) -> None:
    prefix = _prefix()
    pmd = TestPmd.launch(session, _argv(prefix, ["net_null0"]))
    try:
        assert pmd.version == version
        assert "Configuring Port 0" in pmd.startup_output
    finally:
        pmd.close()


def test_error_commands_raise_with_the_line(null_pmd: TestPmd) -> None:
    with pytest.raises(TestPmdError) as bad:
        null_pmd.command("show bogus things")
    assert bad.value.command == "show bogus things"
    assert "Bad arguments" in bad.value.message or "Command not found" in bad.value.message
    with pytest.raises(TestPmdError, match="Invalid port 9") as invalid:
        null_pmd.show_port_info(9)
    assert "The valid ports array is [ 0 1 ]" in invalid.value.output
    # The escape hatch judges no driver's answer, only the parser's, naming the release
    assert "Invalid port 9" in null_pmd.send_command("show port info 9")
    said = re.escape(f"DPDK {null_pmd.version}'s testpmd cannot parse it: Command not found")
    with pytest.raises(TestPmdParseError, match=said):
        null_pmd.send_command("frobnicate")
    assert "Command not found" in null_pmd.send_command("frobnicate", may_be_unparsed=True)
    # ... and the shell is still in sync afterwards.
    assert null_pmd.show_port_info(1).port == 1


def test_vfd_commands_on_a_non_intel_port_raise(null_pmd: TestPmd) -> None:
    with pytest.raises(TestPmdError, match="function not implemented"):
        null_pmd.set_vf_mac_addr(0, 0, "A0:36:9F:7B:C3:51")
    with pytest.raises(TestPmdError, match="function not implemented"):
        null_pmd.set_all_queues_drop(0, True)
    with pytest.raises(TestPmdError, match="not supported on port 0"):
        null_pmd.set_vf_split_drop(0, 0, True)
    with pytest.raises(TestPmdError, match="Operation not supported"):
        null_pmd.vf_mac_addr_add(1, 0, "AA:BB:CC:DD:EE:FF")


def test_port_info_summary_and_config(null_pmd: TestPmd) -> None:
    info = null_pmd.show_port_info(0)
    assert (info.driver, info.device_name, info.link_up) == ("net_null", "net_null0", True)
    assert [(row.port, row.name) for row in null_pmd.show_port_summary()] == [
        (0, "net_null0"),
        (1, "net_null1"),
    ]
    null_pmd.set_fwd(ForwardingMode.MAC, retry=True)
    null_pmd.set_portlist([1, 0])
    cfg = null_pmd.show_config_fwd()
    assert cfg.mode == ForwardingMode.MAC == "mac" and cfg.retry
    assert [(s.rx_port, s.tx_port) for s in cfg.streams] == [(1, 0), (0, 1)]
    with pytest.raises(TestPmdError):
        null_pmd.set_fwd("nonsense")


def test_forwarding_counts_packets_on_net_null(null_pmd: TestPmd) -> None:
    null_pmd.clear_port_stats("all")
    null_pmd.set_fwd("io")
    null_pmd.start()
    time.sleep(0.3)
    running = null_pmd.show_port_stats_all()
    stats = null_pmd.stop()
    assert running[0].rx_packets > 0 and running[1].tx_packets > 0
    assert stats.ports[0].rx_packets > 0 and stats.ports[1].tx_packets > 0
    assert stats.total is not None and stats.total.rx_packets == stats.rx_packets
    xstats = null_pmd.show_port_xstats(0)
    assert xstats["rx_q0_packets"] == xstats["rx_good_packets"] > 0
    null_pmd.clear_port_stats(0)
    assert null_pmd.show_port_stats(0).rx_packets == 0
    with pytest.raises(TestPmdError, match="not started"):
        null_pmd.stop()


def test_tx_first_loops_through_net_ring(session: LocalSession, version: DpdkVersion) -> None:
    prefix = _prefix()
    with TestPmd.launch(session, _argv(prefix, ["net_ring0", "net_ring1"]), version=version) as pmd:
        pmd.start_tx_first()
        time.sleep(0.2)
        stats = pmd.stop()
        # Each ring port receives what it sent; io forwarding sends it on, in a loop.
        assert stats.ports[0].rx_packets >= 32 and stats.ports[1].rx_packets >= 32
        assert pmd.show_port_stats(0).tx_packets >= stats.ports[0].tx_packets > 0
    assert not pmd.alive and not _leftovers(prefix)


def test_bonding_active_backup(null_pmd: TestPmd) -> None:
    bond = null_pmd.create_bonded_device(1, 0)
    assert bond == 2
    null_pmd.add_bonding_slave(0, bond)
    null_pmd.add_bonding_slave(1, bond)
    cfg = null_pmd.show_bonding_config(bond)
    assert (cfg.mode, cfg.slaves, cfg.active_slaves, cfg.primary) == (1, [0, 1], [], 0)
    null_pmd.set_bonding_primary(1, bond)
    null_pmd.port_start(bond)
    cfg = null_pmd.show_bonding_config(bond)
    assert (cfg.slaves, cfg.active_slaves, cfg.primary) == ([0, 1], [0, 1], 1)
    null_pmd.remove_bonding_slave(1, bond)
    cfg = null_pmd.show_bonding_config(bond)
    assert (cfg.slaves, cfg.primary) == ([0], 0)
    # A bond member cannot be stopped on its own: testpmd refuses, we raise.
    with pytest.raises(TestPmdError, match="Please remove port 0 from bonded device"):
        null_pmd.port_stop(0)


def test_port_stop_detach_attach(null_pmd: TestPmd) -> None:
    null_pmd.port_stop(1)
    null_pmd.port_detach(1)
    assert null_pmd.port_ids() == [0]
    new = null_pmd.port_attach("net_null7")
    assert new == 1  # the freed id is reused
    assert null_pmd.show_port_summary()[1].name == "net_null7"
    null_pmd.port_start(new)
    assert null_pmd.show_port_info(new).link_up


def test_guide_close_then_detach_fails_on_this_release(null_pmd: TestPmd) -> None:
    null_pmd.port_stop(1)
    null_pmd.port_close(1)
    if null_pmd.version >= DpdkVersion(20, 11):
        with pytest.raises(TestPmdError, match="Invalid port_id=1"):
            null_pmd.port_detach(1)


@pytest.mark.parametrize(
    ("vdevs", "app", "decisive"),
    [
        (["net_bogus0"], (), 'failed to parse device "net_bogus0"'),
        (["net_null0"], ("--txqflags=0xf00",), "unrecognized option '--txqflags=0xf00'"),
    ],
)
def test_startup_failure_names_the_decisive_line(
    session: LocalSession, version: DpdkVersion, vdevs: list[str], app: tuple, decisive: str
) -> None:
    prefix = _prefix()
    with pytest.raises(TestPmdStartError) as failed:
        TestPmd.launch(session, _argv(prefix, vdevs, app=app), version=version, timeout=30)
    assert decisive in failed.value.message
    assert decisive in str(failed.value) and "\n" not in str(failed.value)
    assert "EAL" in failed.value.output
    assert not _leftovers(prefix)


def test_probe_failure_before_the_prompt_is_fatal(
    session: LocalSession, version: DpdkVersion
) -> None:
    prefix = _prefix()
    vdev = f"virtio_user0,path=/tmp/{prefix}-missing.sock"
    with pytest.raises(TestPmdStartError, match="failed to initialize virtio_user0 device"):
        TestPmd.launch(session, _argv(prefix, [vdev]), version=version, timeout=30)
    assert not _leftovers(prefix)
    # Opting out of the check gives a usable testpmd without the port.
    pmd = TestPmd.launch(session, _argv(prefix, [vdev]), version=version, check_startup=False)
    try:
        assert pmd.show_port_summary() == []
    finally:
        pmd.close()


def test_quit_close_idempotent_and_hugepage_files_removed(
    session: LocalSession, version: DpdkVersion
) -> None:
    prefix = _prefix()
    pmd = TestPmd.launch(session, _argv(prefix, ["net_null0"], in_memory=False), version=version)
    assert list(HUGE_DIR.glob(f"{prefix}map_*")), "without --in-memory EAL backs memory by files"
    output = pmd.quit()
    assert "Bye" in output
    assert not pmd.alive
    pmd.close()
    pmd.close()
    assert not _leftovers(prefix)
    with pytest.raises(Exception, match="exited"):
        pmd.command("show port info 0")


def test_clear_counters_zeroes_and_keeps_the_forwarding_state(null_pmd: TestPmd) -> None:
    null_pmd.start()
    time.sleep(0.2)
    assert null_pmd.show_port_stats(0).rx_packets > 0
    null_pmd.clear_counters()
    null_pmd.stop()  # still forwarding: stop succeeds
    null_pmd.clear_counters()
    assert null_pmd.show_port_stats(0).rx_packets == 0
    assert null_pmd.show_port_xstats(0).get("rx_good_packets") == 0
    with pytest.raises(TestPmdError, match="not started"):
        null_pmd.stop()  # it did not restart what was stopped


def test_restart_ports_forwards_again_with_the_links_up(null_pmd: TestPmd) -> None:
    null_pmd.set_fwd(ForwardingMode.IO)
    null_pmd.start()
    null_pmd.restart_ports([0, 1])
    null_pmd.clear_port_stats("all")
    time.sleep(0.2)
    assert null_pmd.show_port_stats(0).rx_packets > 0, "forwarding again after the restart"
    assert all(null_pmd.show_port_info(port).link_up for port in (0, 1))
    null_pmd.stop()
