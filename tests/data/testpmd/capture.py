"""Re-capture the testpmd outputs in this folder from the real /usr/bin/dpdk-testpmd.

Run as root from the project root:  .venv/bin/python tests/data/testpmd/capture.py
Each file holds one command's raw output (echo and prompt removed), as TestPmd gets it.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from framework.dpdk.testpmd import TestPmd, _clean
from framework.errors import ShellClosed, ShellTimeout
from framework.remote.session import LocalSession

HERE = Path(__file__).resolve().parent
BINARY = "/usr/bin/dpdk-testpmd"
EAL = ["-l", "0-1", "--in-memory", "--file-prefix", "hcbcap", "--no-pci", "-m", "256"]
APP = ["--", "-i", "--total-num-mbufs", "8192"]
NULL_ARGV = [BINARY, *EAL, "--vdev", "net_null0", "--vdev", "net_null1", *APP]
RING_TAP_ARGV = [BINARY, *EAL, "--vdev", "net_ring0", "--vdev", "net_tap0,iface=hcbtap0", *APP]


def save(name: str, text: str) -> None:
    (HERE / f"{name}.txt").write_text(text)
    print(f"{name}.txt: {len(text)} bytes")


def null_session(session: LocalSession) -> None:
    pmd = TestPmd.launch(session, NULL_ARGV, check_startup=False)
    try:
        save("startup_null", pmd.startup_output)
        steps = [
            ("show_port_info_null", "show port info 0"),
            ("show_port_summary_all", "show port summary all"),
            ("show_port_stats_zero", "show port stats 0"),
            ("show_config_fwd_io", "show config fwd"),
            ("stop_not_started", "stop"),
            ("set_fwd_io", "set fwd io"),
            ("start_io", "start"),
            ("show_port_stats_all_running", "show port stats all"),
            ("stop_io", "stop"),
            ("show_port_xstats_null", "show port xstats 0"),
            ("set_fwd_mac_retry", "set fwd mac retry"),
            ("set_portlist", "set portlist 1,0"),
            ("show_config_fwd_mac_retry", "show config fwd"),
            ("clear_port_stats_all", "clear port stats all"),
            ("error_command_not_found", "bogus command"),
            ("error_invalid_port", "show port info 9"),
            ("error_set_all_queues_drop_no_port", "set all queues drop on"),
            ("error_set_all_queues_drop_vfd", "set all queues drop 0 on"),
            ("error_set_vf_mac_addr", "set vf mac addr 0 0 A0:36:9F:7B:C3:51"),
            ("error_rx_vlan_vf", "rx_vlan add 1 port 0 vf 1"),
            ("error_set_vf_split_drop", "set vf split drop 0 0 on"),
            ("error_set_vf_rate_limit", "set port 0 vf 0 rate 10 queue_mask 1"),
            ("error_set_vf_rxmode", "set port 0 vf 0 rxmode AUPE on"),
            ("error_mac_addr_add_vf", "mac_addr add port 1 vf 0 AA:BB:CC:DD:EE:FF"),
            ("error_mac_addr_add", "mac_addr add 1 AA:BB:CC:DD:EE:FF"),
            ("error_set_promisc_off", "set promisc 0 off"),
            ("error_bad_fwd_mode", "set fwd bogus"),
            ("create_bonded_device", "create bonded device 1 0"),
            ("add_bonding_slave", "add bonding slave 0 2"),
            ("add_bonding_slave_2", "add bonding slave 1 2"),
            ("show_bonding_config_stopped", "show bonding config 2"),
            ("set_bonding_primary", "set bonding primary 1 2"),
            ("port_start_bond", "port start 2"),
            ("show_bonding_config_started", "show bonding config 2"),
            ("remove_bonding_slave", "remove bonding slave 1 2"),
            ("show_bonding_config_removed", "show bonding config 2"),
            ("show_port_summary_bond", "show port summary all"),
            ("port_stop", "port stop 1"),
            ("port_close", "port close 1"),
            ("error_port_detach_after_close", "port detach 1"),
            ("port_attach", "port attach net_null5"),
            ("error_port_stop_bond_member", "port stop 0"),
            ("port_start_attached", "port start 1"),
            ("error_port_detach_not_stopped", "port detach 1"),
            ("port_stop_attached", "port stop 1"),
            ("port_detach", "port detach 1"),
        ]
        for name, command in steps:
            save(name, pmd.send_command(command))
        save("quit", pmd.quit())
    finally:
        pmd.close()


@contextmanager
def null_testpmd(session: LocalSession) -> Iterator[TestPmd]:
    """A testpmd on two net_null ports, quit at the end (closed whatever happens)."""
    pmd = TestPmd.launch(session, NULL_ARGV, check_startup=False)
    try:
        yield pmd
        pmd.quit()
    finally:
        pmd.close()


def bond_states_session(session: LocalSession) -> None:
    """Bonds in the states a broken guide-1 DUT leaves (the verify_bond bites feed them)."""
    bond = ["add bonding slave 0 2", "add bonding slave 1 2", "port start 2"]
    with null_testpmd(session) as pmd:
        for command in ["create bonded device 0 0", *bond]:
            pmd.send_command(command)
        save("show_bonding_config_mode0", pmd.send_command("show bonding config 2"))
    with null_testpmd(session) as pmd:
        # mode 1 started without `set bonding primary 1 2`: the first member is primary
        for command in ["create bonded device 1 0", *bond]:
            pmd.send_command(command)
        save("show_bonding_config_primary_unset", pmd.send_command("show bonding config 2"))
        # the guide's forwarding with P1 primary: P1 and P2 move, the backup P0 stays idle
        for command in ["set bonding primary 1 2", "set portlist 2", "set fwd mac", "start"]:
            pmd.send_command(command)
        time.sleep(0.5)
        save("show_port_stats_all_bond_forwarding", pmd.send_command("show port stats all"))
        pmd.send_command("stop")
        pmd.send_command("clear port stats all")
        save("show_port_stats_all_bond_idle", pmd.send_command("show port stats all"))


def port_states_session(session: LocalSession) -> None:
    """A port whose link is down (stopped), for the verify_ports bites."""
    with null_testpmd(session) as pmd:
        pmd.send_command("port stop 0")
        save("show_port_info_null_stopped", pmd.send_command("show port info 0"))


def ring_tap_session(session: LocalSession) -> None:
    pmd = TestPmd.launch(session, RING_TAP_ARGV, check_startup=False)
    try:
        save("startup_ring_tap", pmd.startup_output)
        for name, command in [
            ("show_port_info_ring", "show port info 0"),
            ("show_port_info_tap", "show port info 1"),
            ("start_tx_first", "start tx_first"),
            ("stop_tx_first_ring_tap", "stop"),
            ("show_port_stats_ring", "show port stats 0"),
            ("show_port_xstats_tap", "show port xstats 1"),
        ]:
            save(name, pmd.send_command(command))
        # net_null cannot leave promiscuous mode; the tap can
        pmd.send_command("set promisc 1 off")
        save("show_port_info_tap_not_promiscuous", pmd.send_command("show port info 1"))
    finally:
        pmd.close()


def failed_start(session: LocalSession, name: str, argv: list[str]) -> None:
    shell = session.open_shell(argv, name=name, prompt="testpmd> ", timeout=30)
    try:
        shell.expect(timeout=30)
        save(name, _clean(shell.transcript))  # reached a prompt anyway
    except (ShellClosed, ShellTimeout):
        save(name, _clean(shell.transcript))
    finally:
        shell.close()
        session.run(["rm", "-rf", "/var/run/dpdk/hcbcap"], check=False)


# Guide 4's settings (4.2.4 host, 4.3.3 guest) as the running testpmds report them: a host
# vhost-user port and a virtio_user "guest" in the guide's form, then in broken forms.
PVP_SOCKET = "/tmp/hcbcap-pvp.sock"
PVP_HOST_ARGV = [
    BINARY, "-l", "0-1", "--in-memory", "--file-prefix", "hcbcap-h", "--no-pci", "-m", "256",
    "--vdev", f"net_vhost0,iface={PVP_SOCKET},queues=2", *APP, "--rxq=1", "--txq=1",
    "--nb-cores=1", "--forward-mode=io",
]  # fmt: skip


def pvp_guest_argv(app: list[str], queues: int = 1) -> list[str]:
    return [
        BINARY, "-l", "0-1", "--in-memory", "--file-prefix", "hcbcap-g", "--no-pci", "-m",
        "256", "--single-file-segments", "--vdev",
        f"virtio_user0,path={PVP_SOCKET},queues={queues},queue_size=256", *APP, *app,
    ]  # fmt: skip


GUIDE_GUEST_APP = [
    "--rxq=1", "--txq=1", "--rxd=256", "--txd=256", "--nb-cores=1", "--disable-rss",
    "--forward-mode=macswap", "--port-topology=chained",
]  # fmt: skip


def pvp_settings_session(session: LocalSession) -> None:
    host = TestPmd.launch(session, PVP_HOST_ARGV, check_startup=False)
    try:
        save("show_config_rxtx_vhost", host.send_command("show config rxtx"))
        save("show_config_cores_1", host.send_command("show config cores"))
        guest = TestPmd.launch(session, pvp_guest_argv(GUIDE_GUEST_APP), check_startup=False)
        try:
            save("show_config_rxtx_virtio_user", guest.send_command("show config rxtx"))
            save("error_rss_hash_virtio_user", guest.send_command("show port 0 rss-hash"))
            guest.quit()
        finally:
            guest.close()
        # a guest on two queues with 512 descriptors: what the guide's settings checks refuse
        broken = ["--rxq=2", "--txq=2", "--rxd=512", "--txd=512", "--nb-cores=1",
                  "--forward-mode=macswap"]  # fmt: skip
        guest = TestPmd.launch(session, pvp_guest_argv(broken, 2), check_startup=False)
        try:
            save("show_config_rxtx_virtio_user_2q_512", guest.send_command("show config rxtx"))
            guest.quit()
        finally:
            guest.close()
        host.quit()
    finally:
        host.close()


def port_close_session(session: LocalSession) -> None:
    """Guide 1.3.3's `port close` then `mac_addr remove` and a detach, as 22.11 answers."""
    with null_testpmd(session) as pmd:
        save("show_port_macs_null", pmd.send_command("show port 1 macs"))
        pmd.send_command("port stop 1")
        pmd.send_command("port close 1")
        save(
            "error_mac_addr_remove_closed", pmd.send_command("mac_addr remove 1 AA:BB:CC:DD:EE:FF")
        )
        save("device_detach_closed", pmd.send_command("device detach net_null1"))


def main() -> None:
    session = LocalSession()
    null_session(session)
    bond_states_session(session)
    port_states_session(session)
    ring_tap_session(session)
    pvp_settings_session(session)
    port_close_session(session)
    failed_start(session, "startup_fail_bad_vdev", [BINARY, *EAL, "--vdev", "net_bogus0", *APP])
    failed_start(
        session,
        "startup_fail_unrecognized_option",
        [BINARY, *EAL, "--vdev", "net_null0", *APP, "--txqflags=0xf00"],
    )
    failed_start(
        session,
        "startup_fail_lcore_unavailable",
        [BINARY, "-l", "0-9", *EAL[2:], "--vdev", "net_null0", *APP],
    )
    failed_start(
        session, "startup_fail_rxq", [BINARY, *EAL, "--vdev", "net_null0", *APP, "--rxq=2000"]
    )
    failed_start(
        session,
        "startup_probe_failed_virtio_user",
        [BINARY, *EAL, "--vdev", "virtio_user0,path=/tmp/hcb-no-such.sock", *APP],
    )


if __name__ == "__main__":
    main()
