"""Parsers and error detection over real DPDK 22.11 testpmd output (tests/data/testpmd)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from framework.dpdk.parsers import (
    decisive_startup_line,
    find_command_error,
    find_fatal_at_prompt,
    link_speed_mbps,
    parse_attached_port,
    parse_bonded_device_port,
    parse_bonding_config,
    parse_forwarding_lcores,
    parse_forwarding_stats,
    parse_fwd_config,
    parse_port_info,
    parse_port_macs,
    parse_port_stats,
    parse_port_summary,
    parse_port_xstats,
    parse_rss_enabled,
    parse_rxtx_config,
    parse_verbose_rx,
    parse_vf_stats,
)
from framework.errors import TestPmdError

DATA = Path(__file__).resolve().parents[1] / "data" / "testpmd"
MAC = re.compile(r"^[0-9A-F]{2}(:[0-9A-F]{2}){5}$")


def data(name: str) -> str:
    return (DATA / f"{name}.txt").read_text()


# ---------------------------------------------------------------- forwarding statistics


def test_stop_io_per_port_and_total() -> None:
    stats = parse_forwarding_stats(data("stop_io"))
    assert sorted(stats.ports) == [0, 1]
    assert stats.total is not None
    assert stats.ports[0].rx_packets > 0 and stats.ports[1].tx_packets > 0
    assert (
        stats.total.rx_packets
        == stats.rx_packets
        == sum(p.rx_packets for p in stats.ports.values())
    )
    assert stats.total.tx_total == stats.tx_packets
    assert stats.dropped == 0


def test_stop_tx_first_ring_tap_exact_counters() -> None:
    stats = parse_forwarding_stats(data("stop_tx_first_ring_tap"))
    # net_ring loops its own burst back; the tap side only sends (nobody answers).
    assert stats.ports[0].rx_packets == 32 and stats.ports[0].tx_packets == 32
    assert stats.ports[1].rx_packets == 0 and stats.ports[1].tx_packets == 64
    assert stats.total is not None and stats.total.tx_packets == 96


def test_stop_without_forwarding_has_no_blocks() -> None:
    assert parse_forwarding_stats(data("stop_not_started")).ports == {}


def test_stop_with_two_queues_gives_each_streams_packets() -> None:
    # txonly on two net_null ports with two queues each: a block per stream, then per port.
    stats = parse_forwarding_stats(data("stop_txonly_two_queues"))
    assert [(s.rx_port, s.rx_queue, s.tx_port, s.tx_queue) for s in stats.streams] == [
        (0, 0, 1, 0), (1, 0, 0, 0), (0, 1, 1, 1), (1, 1, 0, 1),
    ]  # fmt: skip
    per_queue = stats.tx_packets_by_queue(1)
    assert sorted(per_queue) == [0, 1] and all(n > 0 for n in per_queue.values())
    # the streams that send on port 1 add up to what its block says it sent
    assert sum(per_queue.values()) == stats.ports[1].tx_packets
    assert sorted(stats.ports) == [0, 1]


def test_stop_with_one_queue_prints_no_streams() -> None:
    # one stream per port: testpmd prints the port blocks only, which are queue 0's
    stats = parse_forwarding_stats(data("stop_io"))
    assert stats.streams == []
    assert stats.tx_packets_by_queue(1) == {0: stats.ports[1].tx_packets}
    assert stats.tx_packets_by_queue(7) == {}


# ---------------------------------------------------------------- port statistics


def test_port_stats_zero() -> None:
    stats = parse_port_stats(data("show_port_stats_zero"))
    assert list(stats) == [0]
    s = stats[0]
    assert (s.rx_packets, s.rx_missed, s.rx_bytes, s.rx_errors, s.rx_nombuf) == (0, 0, 0, 0, 0)
    assert (s.tx_packets, s.tx_errors, s.tx_bytes) == (0, 0, 0)
    assert s.rx_pps == 0 and s.tx_pps == 0


def test_port_stats_all_while_forwarding() -> None:
    stats = parse_port_stats(data("show_port_stats_all_running"))
    assert sorted(stats) == [0, 1]
    assert all(s.rx_packets > 0 and s.tx_packets > 0 for s in stats.values())


def test_port_stats_missing_counter_raises() -> None:
    with pytest.raises(TestPmdError, match="RX-missed"):
        parse_port_stats("NIC statistics for port 0\n  RX-packets: 1\n")


def test_xstats_include_per_queue_counters() -> None:
    xstats = parse_port_xstats(data("show_port_xstats_tap"))
    assert xstats["tx_good_packets"] == 64 and xstats["tx_good_bytes"] == 4096
    assert xstats["tx_q0_packets"] == 64
    assert "rx_q0_packets" in xstats and "rx_missed_errors" in xstats
    assert all(isinstance(v, int) for v in xstats.values())
    null = parse_port_xstats(data("show_port_xstats_null"))
    assert null["rx_q0_packets"] == null["rx_good_packets"] > 0


# ---------------------------------------------------------------- port info / summary


def test_port_info_null() -> None:
    info = parse_port_info(data("show_port_info_null"))
    assert info.port == 0 and MAC.match(info.mac)
    assert (info.device_name, info.driver) == ("net_null0", "net_null")
    assert info.link_up and info.link_speed == "10 Gbps" and info.speed_mbps == 10000
    assert info.link_duplex == "full-duplex" and info.mtu == 1500
    assert info.promiscuous and info.allmulticast
    assert (info.nb_rx_queues, info.nb_tx_queues) == (1, 1)
    assert (info.max_rx_queues, info.max_tx_queues) == (1024, 1024)
    assert info.fields["Firmware-version"] == "not available"


def test_port_info_tap_and_ring() -> None:
    tap = parse_port_info(data("show_port_info_tap"))
    assert (tap.port, tap.driver, tap.device_name) == (1, "net_tap", "net_tap0")
    assert tap.fields["Devargs"] == "iface=hcbtap0"
    assert tap.promiscuous and not tap.allmulticast
    assert tap.max_rx_queues == 16
    ring = parse_port_info(data("show_port_info_ring"))
    assert (ring.port, ring.driver, ring.mac) == (0, "net_ring", "00:00:00:00:00:00")


def test_port_info_without_header_raises() -> None:
    with pytest.raises(TestPmdError, match="Infos for port"):
        parse_port_info(data("error_invalid_port"))


@pytest.mark.parametrize(
    ("text", "mbps"), [("10 Gbps", 10000), ("10000 Mbps", 10000), ("None", None), ("", None)]
)
def test_link_speed_spellings(text: str, mbps: int | None) -> None:
    assert link_speed_mbps(text) == mbps


def test_port_summary() -> None:
    rows = parse_port_summary(data("show_port_summary_all"))
    assert [r.port for r in rows] == [0, 1]
    assert [r.name for r in rows] == ["net_null0", "net_null1"]
    assert all(r.driver == "net_null" and r.status == "up" and MAC.match(r.mac) for r in rows)
    assert rows[0].link_speed == "10 Gbps"
    bond = parse_port_summary(data("show_port_summary_bond"))
    assert bond[2].name == "net_bonding_testpmd_0" and bond[2].driver == "net_bonding"


# ---------------------------------------------------------------- forwarding config


def test_fwd_config_io() -> None:
    cfg = parse_fwd_config(data("show_config_fwd_io"))
    assert (cfg.mode, cfg.retry, cfg.nb_ports, cfg.nb_cores, cfg.nb_streams) == (
        "io",
        False,
        2,
        1,
        2,
    )
    assert [(s.core, s.rx_port, s.rx_queue, s.tx_port, s.tx_queue) for s in cfg.streams] == [
        (1, 0, 0, 1, 0),
        (1, 1, 0, 0, 0),
    ]
    assert cfg.streams[0].peer == "02:00:00:00:00:01"
    assert cfg.tx_port_of(0) == 1


def test_fwd_config_mac_retry_after_portlist() -> None:
    cfg = parse_fwd_config(data("show_config_fwd_mac_retry"))
    assert cfg.mode == "mac" and cfg.retry
    # `set portlist 1,0` makes port 1 the first stream's receiver.
    assert [(s.rx_port, s.tx_port) for s in cfg.streams] == [(1, 0), (0, 1)]


def test_start_output_also_parses_as_fwd_config() -> None:
    assert parse_fwd_config(data("start_io")).mode == "io"


# ---------------------------------------------------------------- bonding


def test_bonded_device_port() -> None:
    assert parse_bonded_device_port(data("create_bonded_device")) == 2


def test_bonding_config_before_start() -> None:
    cfg = parse_bonding_config(data("show_bonding_config_stopped"))
    assert (cfg.mode, cfg.slaves, cfg.active_slaves, cfg.primary) == (1, [0, 1], [], 0)


def test_bonding_config_started_and_removed() -> None:
    started = parse_bonding_config(data("show_bonding_config_started"))
    assert (started.slaves, started.active_slaves, started.primary) == ([0, 1], [0, 1], 1)
    removed = parse_bonding_config(data("show_bonding_config_removed"))
    assert (removed.slaves, removed.active_slaves, removed.primary) == ([0], [0], 0)
    assert removed.members == removed.slaves


# DPDK 24.11's words (tests/data/testpmd-24.11, from scripts/dpdk-root's Debian root):
# "create bonding device", "Members", "Bonding mode: ACTIVE_BACKUP(1)", "Current Primary".
DATA_24_11 = DATA.parent / "testpmd-24.11"


def data_24_11(name: str) -> str:
    return (DATA_24_11 / f"{name}.txt").read_text()


def test_bonding_of_24_11() -> None:
    assert parse_bonded_device_port(data_24_11("create_bonding_device")) == 2
    found = {
        name: parse_bonding_config(data_24_11(f"show_bonding_config_{name}"))
        for name in ("stopped", "started", "removed", "primary_unset", "mode0_empty")
    }
    seen = {n: (c.mode, c.members, c.active_members, c.primary) for n, c in found.items()}
    assert seen == {
        "stopped": (1, [0, 1], [], 0),
        "started": (1, [0, 1], [0, 1], 1),  # "Current Primary: [1]", not the user's line
        "removed": (1, [0], [0], 0),
        "primary_unset": (1, [0, 1], [0, 1], 0),
        "mode0_empty": (0, [], [], None),
    }


def test_a_bond_members_refusal_and_22_11s_words_are_errors_on_24_11() -> None:
    refused = data_24_11("error_port_stop_bond_member")
    assert find_command_error(refused) == "Please remove port 0 from bonding device."
    assert find_command_error(data_24_11("error_create_bonded_device")) == "Bad arguments"


@pytest.mark.parametrize(
    "name",
    sorted(p.stem for p in DATA_24_11.glob("*.txt") if p.stem not in ("version",)
           and not p.stem.startswith("error_")),
)  # fmt: skip
def test_normal_output_of_24_11_is_not_an_error(name: str) -> None:
    # port_start_bond's driver logs carry 24.11's log-type prefix ("BOND: ...Failed to").
    assert find_command_error(data_24_11(name)) is None


def test_port_info_of_24_11_with_its_private_dump() -> None:
    info = parse_port_info(data_24_11("show_port_info_bond"))
    assert (info.device_name, info.driver, info.link_up) == (
        "net_bonding_testpmd_0",
        "net_bonding",
        True,
    )


def test_attached_port() -> None:
    assert parse_attached_port(data("port_attach")) == 1
    with pytest.raises(TestPmdError):
        parse_attached_port(data("error_port_detach_after_close"))


# ---------------------------------------------------------------- error detection

ERRORS = {
    "error_command_not_found": "Command not found",
    "error_invalid_port": "Invalid port 9",
    "error_set_all_queues_drop_no_port": "Bad arguments",
    "error_set_all_queues_drop_vfd": "function not implemented",
    "error_set_vf_mac_addr": "function not implemented",
    "error_rx_vlan_vf": "function not implemented or supported",
    "error_set_vf_split_drop": "not supported on port 0",
    "error_set_vf_rate_limit": "set_vf_rate_limit for port_id=0 failed diag=-95",
    "error_set_vf_rxmode": "bad VF receive mode parameter, return code = -95",
    "error_mac_addr_add_vf": "vf_mac_addr_cmd error: (Operation not supported)",
    "error_mac_addr_add": "mac_addr_cmd error: (Operation not supported)",
    "error_set_promisc_off": "Error during disabling promiscuous mode for port 0: "
    "Operation not supported",
    "error_bad_fwd_mode": "Bad arguments",
    "error_port_detach_after_close": "Invalid port_id=1",
    "error_port_stop_bond_member": "Please remove port 0 from bonded device.",
    "error_port_detach_not_stopped": "Port not stopped",
    "error_show_vf_stats_null": "function not implemented",
    "error_show_gso_invalid_port": "invalid port id 9",
}


def test_a_driver_commands_lower_case_refusal_is_an_error() -> None:
    # i40e_testpmd.c's answer when rte_pmd_i40e_set_vf_tc_bw_alloc refuses shares that do
    # not sum to 100 (guide 5.4.8); no port here has the i40e API, so the line is quoted.
    said = "invalid vf_id 1 or bandwidth\n"
    assert find_command_error(said) == "invalid vf_id 1 or bandwidth"


@pytest.mark.parametrize(("name", "line"), sorted(ERRORS.items()))
def test_refused_commands_are_errors(name: str, line: str) -> None:
    assert find_command_error(data(name)) == line


NORMAL = sorted(
    p.stem for p in DATA.glob("*.txt") if not p.stem.startswith(("error_", "startup_", "quit"))
)


@pytest.mark.parametrize("name", NORMAL)
def test_normal_output_is_not_an_error(name: str) -> None:
    # Includes port_start_bond, whose bonding driver log says "Failed to disable allmulti".
    assert find_command_error(data(name)) is None


def test_normal_startup_is_not_fatal() -> None:
    # net_tap here logs "failed to create multiq qdisc" and still works.
    assert find_fatal_at_prompt(data("startup_ring_tap")) is None
    assert find_fatal_at_prompt(data("startup_null")) is None


# ---------------------------------------------------------------- startup failures


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("startup_fail_bad_vdev", 'EAL: failed to parse device "net_bogus0"'),
        ("startup_fail_unrecognized_option", "unrecognized option '--txqflags=0xf00'"),
        ("startup_fail_lcore_unavailable", "EAL: lcore 2 unavailable"),
        ("startup_fail_rxq", "Fail: input rxq (2000) can't be greater than max_rx_queues"),
    ],
)
def test_decisive_startup_line(name: str, expected: str) -> None:
    line = decisive_startup_line(data(name))
    assert expected in line
    assert "\n" not in line


def test_decisive_line_carries_eal_cause() -> None:
    assert decisive_startup_line(data("startup_fail_bad_vdev")).endswith(
        "(Cause: Cannot init EAL: No such device)"
    )


def test_probe_failure_reaching_the_prompt_is_fatal() -> None:
    assert find_fatal_at_prompt(data("startup_probe_failed_virtio_user")) == (
        "vdev_probe(): failed to initialize virtio_user0 device"
    )


def test_too_many_memory_regions_is_decisive() -> None:
    text = "EAL: x\nVHOST_CONFIG: (/tmp/s) Too many memory regions (9 > 8)\nDone\n"
    assert "Too many memory regions" in decisive_startup_line(text)
    assert find_fatal_at_prompt(text) is not None


# ---------------------------------------------------------------- guide 5 and 3 outputs


def test_vf_stats_block_is_read_even_beside_the_drivers_refusal() -> None:
    # net_null has no VF API: testpmd says so and still prints the (zero) block, in the
    # same format an i40e PF fills in.
    stats = parse_vf_stats(data("error_show_vf_stats_null"), 0, 0)
    assert (stats.port, stats.vf, stats.rx_packets, stats.tx_bytes) == (0, 0, 0, 0)
    with pytest.raises(TestPmdError, match="no statistics block for that VF"):
        parse_vf_stats(data("error_show_vf_stats_null"), 0, 1)


def test_verbose_rx_lines_give_port_queue_addresses_and_types() -> None:
    packets = parse_verbose_rx(data("verbose_rx_af_packet"))
    ours = [p for p in packets if p.dst == "68:05:ca:24:03:8b"]
    assert [p.length for p in ours] == [112, 116, 72]
    assert {(p.port, p.queue, p.ether_type) for p in ours} == {(0, 0, 0x0800)}
    assert ours[0].sw_ptype == "L2_ETHER L3_IPV4 L4_UDP" and ours[0].hw_ptype is None
    # af_packet gives no hardware packet type, so testpmd prints no VXLAN line here
    assert not any(p.tunnel or p.vni is not None for p in packets)
    assert "RTE_MBUF_F_RX_L4_CKSUM_UNKNOWN" in ours[0].ol_flags
    # every packet of every block, the kernel's IPv6 ones too
    assert len(packets) == data("verbose_rx_af_packet").count(" - dst=") > 3


def test_verbose_vxlan_line_gives_the_vni() -> None:
    # The VXLAN part is printed only for a NIC-typed tunnel packet, which no port here can
    # produce: the line is the captured one with 22.11's util.c format inserted as an i40e
    # PF prints it (hw ptype and "VXLAN packet: ... VNI = ...").
    line = data("verbose_rx_af_packet").splitlines()[0]
    captured = next(x for x in data("verbose_rx_af_packet").splitlines() if "0x0800" in x)
    tunnel = captured.replace(
        " - sw ptype: L2_ETHER L3_IPV4 L4_UDP ",
        " - hw ptype: L2_ETHER L3_IPV4_EXT_UNKNOWN TUNNEL_GRENAT INNER_L2_ETHER INNER_L3_IPV4 "
        " - sw ptype: L2_ETHER L3_IPV4 L4_UDP ",
    ).replace(
        " - Receive queue=0x0",
        " - VXLAN packet: packet type =35473, Destination UDP port =4789, VNI = 8, "
        "last_rsvd = 0 - Receive queue=0x2",
    )
    text = f"port 1/queue 2: received 1 packets\n{tunnel}\n  ol_flags: X\n"
    (packet,) = parse_verbose_rx(text)
    assert (packet.port, packet.queue, packet.vni, packet.udp_port) == (1, 2, 8, 4789)
    assert packet.tunnel and "INNER_L2_ETHER" in (packet.hw_ptype or "")
    assert line.startswith("port 0/queue 0: received")


# ---------------------------------------------------------------- guide 4's settings


def test_rxtx_config_of_the_guides_guest_form() -> None:
    config = parse_rxtx_config(data("show_config_rxtx_virtio_user"))
    assert (config.mode, config.nb_cores, sorted(config.ports)) == ("macswap", 1, [0])
    port = config.ports[0]
    assert (port.rx_queues, port.tx_queues) == (1, 1)
    assert (port.rx_descriptors, port.tx_descriptors) == (256, 256)


def test_rxtx_config_two_queues_512_descriptors_and_the_pmds_default() -> None:
    port = parse_rxtx_config(data("show_config_rxtx_virtio_user_2q_512")).ports[0]
    assert (port.rx_queues, port.tx_queues, port.rx_descriptors, port.tx_descriptors) == (
        2, 2, 512, 512,
    )  # fmt: skip
    vhost = parse_rxtx_config(data("show_config_rxtx_vhost"))
    assert vhost.mode == "io"
    assert (vhost.ports[0].rx_descriptors, vhost.ports[0].tx_descriptors) == (0, 0)


def test_forwarding_lcores_and_rss_of_a_port_without_it() -> None:
    assert parse_forwarding_lcores(data("show_config_cores_1")) == [1]
    assert parse_rss_enabled(data("error_rss_hash_virtio_user")) is None


def test_settings_parsers_refuse_other_output() -> None:
    for parse in (parse_rxtx_config, parse_forwarding_lcores, parse_rss_enabled):
        with pytest.raises(TestPmdError):
            parse(data("show_port_info_null"))


def test_port_macs_and_the_answers_after_port_close() -> None:
    assert parse_port_macs(data("show_port_macs_null")) == ["BA:21:E2:56:DD:45"]
    with pytest.raises(TestPmdError):
        parse_port_macs(data("show_port_info_null"))
    # 22.11: `port close` released the id; `mac_addr remove` of it is refused
    assert find_command_error(data("error_mac_addr_remove_closed")) == "Invalid port_id=1"
    assert find_command_error(data("device_detach_closed")) is None
