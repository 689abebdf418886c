"""framework.virt.kernel_net without a guest: its readouts parsed as a real guest printed
them (tests/data/guest/README.md), and the frame its routing makes."""

from __future__ import annotations

from pathlib import Path

from scapy.layers.inet import IP, UDP
from scapy.layers.l2 import Ether

from framework.lab.netdev import parse_interface, parse_statistics
from framework.traffic.packets import STREAM_DST_IP, STREAM_SRC_IP, routed, udp_flow
from framework.virt.kernel_net import _port_info, parse_kernel_net

DATA = Path(__file__).parents[1] / "data" / "guest"


def test_howto_kernel_net_names_the_netdev_of_each_pci_address() -> None:
    text = (DATA / "kernel_net_output.txt").read_text()
    assert parse_kernel_net(text) == {"0000:00:04.0": "eth0", "0000:00:05.0": "eth1"}
    # its error lines name no device
    assert parse_kernel_net("howto-kernel-net: 0000:00:04.0 has no netdev") == {}


def test_a_virtio_net_nic_reads_with_its_address_state_queues_and_counters() -> None:
    eth0 = parse_interface("eth0", (DATA / "read_interface_virtio_net.txt").read_text())
    assert (eth0.mac, eth0.operstate, eth0.mtu, eth0.flags) == (
        "52:54:00:02:d9:01", "up", 1500, 0x1003,
    )  # fmt: skip
    assert eth0.addresses == ["198.18.80.1/24"] and (eth0.rx_queues, eth0.tx_queues) == (1, 1)
    # VM1 took in the byte stream's segments and sent back its ACKs
    assert eth0.counters["rx_packets"] == 1114 and eth0.counters["rx_bytes"] == 1575948
    assert eth0.counters["tx_packets"] == 348 and eth0.counters["rx_dropped"] == 0
    assert eth0.offloads["rx-checksumming"] and not eth0.promiscuous
    info = _port_info(0, eth0)
    assert info.link_up and info.driver == "virtio_net" and not info.promiscuous
    assert (info.port, info.mac, info.nb_rx_queues) == (0, "52:54:00:02:d9:01", 1)


def test_virtio_net_counts_each_queue_both_ways() -> None:
    stats = parse_statistics((DATA / "ethtool_S_virtio_net.txt").read_text())
    assert "NIC statistics" not in " ".join(stats)
    # the queue-0 stream, then a flow of 250 frames on each of the four queues
    assert [stats[f"rx_queue_{q}_packets"] for q in range(4)] == [10778, 250, 250, 250]
    assert [stats[f"tx_queue_{q}_packets"] for q in range(4)] == [10778, 250, 250, 250]
    assert stats["tx_queue_3_tx_timeouts"] == 0 and "rx_queue_4_packets" not in stats


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
