"""framework.virt.kernel_net without a guest: its readouts parsed as a real guest printed
them (tests/data/guest/README.md), and the frame its routing makes."""

from __future__ import annotations

from pathlib import Path

import pytest
from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from framework.traffic.packets import STREAM_DST_IP, STREAM_SRC_IP, routed, udp_flow
from framework.virt.kernel_net import (
    KernelNetError,
    _port_info,
    parse_kernel_net,
    parse_netdevs,
)

DATA = Path(__file__).parents[1] / "data" / "guest"


def test_howto_kernel_net_names_the_netdev_of_each_pci_address() -> None:
    text = (DATA / "kernel_net_output.txt").read_text()
    assert parse_kernel_net(text) == {"0000:00:04.0": "eth0", "0000:00:05.0": "eth1"}
    # its error lines name no device
    assert parse_kernel_net("howto-kernel-net: 0000:00:04.0 has no netdev") == {}


def test_the_netdev_readout_gives_addresses_state_queues_and_counters() -> None:
    netdevs = parse_netdevs((DATA / "kernel_netdevs.txt").read_text())
    assert sorted(netdevs) == ["eth0", "eth1"]
    eth0, eth1 = netdevs["eth0"], netdevs["eth1"]
    assert (eth0.address, eth0.operstate, eth0.mtu, eth0.flags) == (
        "52:54:00:00:00:01", "up", 1500, 0x1003,
    )  # fmt: skip
    assert (eth0.rx_queues, eth0.tx_queues) == (1, 1)
    # arping's three requests left eth0 and came in on eth1
    assert eth0.counters["tx_packets"] == 3 and eth0.counters["rx_packets"] == 0
    assert eth1.counters["rx_packets"] == 3 and eth1.counters["rx_bytes"] == 126
    info = _port_info(1, eth1)
    assert info.link_up and info.driver == "virtio_net" and not info.promiscuous
    assert (info.port, info.mac, info.nb_rx_queues) == (1, "52:54:00:00:00:02", 1)


def test_a_readout_line_missing_a_counter_is_an_error_naming_it() -> None:
    line = (DATA / "kernel_netdevs.txt").read_text().splitlines()[0]
    with pytest.raises(KernelNetError, match="tx_dropped"):
        parse_netdevs(line.replace(" tx_dropped=0", ""))


def test_routed_twice_the_ttl_is_two_lower_and_the_ip_checksum_right() -> None:
    sent = udp_flow("02:00:00:00:00:aa", "52:54:00:00:00:01", STREAM_SRC_IP, STREAM_DST_IP,
                    10000, 20000, seq=7)  # fmt: skip
    got = routed("52:54:00:00:00:01", "02:00:00:00:00:99", hops=2)(sent)
    assert (got[Ether].src, got[Ether].dst) == ("52:54:00:00:00:01", "02:00:00:00:00:99")
    assert got[IP].ttl == sent[IP].ttl - 2
    fresh = IP(bytes(got[IP]))
    del fresh.chksum
    assert IP(bytes(fresh)).chksum == got[IP].chksum  # made again, not the sent one's
    assert got[IP].chksum != sent[IP].chksum
    assert bytes(got[UDP]) == bytes(sent[UDP])  # the UDP checksum does not cover the TTL
