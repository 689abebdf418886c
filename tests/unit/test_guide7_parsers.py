"""Parsers guide 7 relies on, against output captured from a real run (see tests/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.dpdk.virtio import (
    VirtioNetFeature,
    feature_names,
    negotiations,
    port_negotiation,
    vdev_queue_sizes,
)
from framework.lab.netdev import parse_interface, tap_names

DATA = Path(__file__).parents[1] / "data"
STARTUP = (DATA / "testpmd" / "virtio_user_vhost_net_startup.txt").read_text()
RECONFIG = (DATA / "testpmd" / "virtio_user_rx_cksum_reconfig.txt").read_text()


def test_every_negotiation_is_read_in_order() -> None:
    found = negotiations(STARTUP)
    # probe of the PCI NIC, probe of virtio_user0, configure of each (--enable-lro)
    assert [n.negotiated for n in found] == [0x110EF8020, 0x110428000, 0x110EF81A0, 0x110428180]
    assert found[1].offered == 0x110429983 and found[1].requested == 0x8000005F10EF8028


def test_the_virtio_user_port_is_told_apart_from_the_nic() -> None:
    at_startup = port_negotiation(STARTUP, 1)
    assert at_startup is not None and at_startup.negotiated == 0x110428180
    assert at_startup.has(VirtioNetFeature.GUEST_TSO4) and at_startup.has(
        VirtioNetFeature.GUEST_TSO6
    )
    assert not at_startup.has(VirtioNetFeature.GUEST_CSUM)  # LRO alone at startup
    nic = port_negotiation(STARTUP, 0)
    assert nic is not None and nic.negotiated == 0x110EF81A0
    after = port_negotiation(STARTUP, 1, RECONFIG)
    assert after is not None and after.has(VirtioNetFeature.GUEST_CSUM)
    assert after.negotiated == 0x110428182


def test_without_a_configure_renegotiation_the_probe_counts() -> None:
    # Cut off everything from the ports' configuration on: only the probes remain.
    probes_only = STARTUP[: STARTUP.index("Configuring Port 0")]
    found = port_negotiation(probes_only, 1)
    assert found is not None and found.negotiated == 0x110428000
    assert not found.has(VirtioNetFeature.GUEST_TSO4)


def test_feature_names() -> None:
    assert feature_names(0x110428182) == [
        "GUEST_CSUM", "GUEST_TSO4", "GUEST_TSO6", "MRG_RXBUF", "CTRL_VQ", "MQ",
        "RING_INDIRECT_DESC", "VERSION_1",
    ]  # fmt: skip
    assert feature_names(1 << 38) == ["bit38"]


def test_queue_size_of_the_vdev_only() -> None:
    # four data queues and the control queue, not the PCI NIC's 256/64
    assert vdev_queue_sizes(STARTUP) == [1024] * 5
    assert vdev_queue_sizes("no virtio_user here") == []


def test_a_tap_read_through_the_guest_console() -> None:
    text = (DATA / "guest" / "read_interface_tap0.txt").read_text()
    tap = parse_interface("tap0", text)
    assert tap.admin_up and tap.is_tap and tap.vnet_hdr
    assert tap.tun_flags == 0x5112 and tap.mtu == 1500
    assert tap.mac == "9e:13:f1:00:94:ae"
    assert tap.addresses == ["198.18.7.1/24"]
    assert (tap.rx_queues, tap.tx_queues) == (2, 2)
    assert tap.offloads["tcp-segmentation-offload"] is True
    assert tap.offloads["tx-checksumming"] is True
    assert tap.offloads["large-receive-offload"] is False


def test_an_absent_interface_is_named() -> None:
    with pytest.raises(ValueError, match="no interface tap9"):
        parse_interface("tap9", "__howto_netdev__ flags -\n__howto_netdev__ end\n")


def test_tap_names_through_the_console() -> None:
    captured = (DATA / "guest" / "tap_names.txt").read_text()
    assert tap_names(lambda _script: captured) == ["tap0"]
