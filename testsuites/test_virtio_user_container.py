"""Guide 6: virtio_user for container networking (DPDK 17.05 HowTo guides, chapter 6).

A testpmd on the host serves a vhost-user socket (step 4); a testpmd in a container,
built from the DPDK under test (steps 1-3), attaches a virtio_user port to that socket
(step 5). Traffic from the traffic generator enters the host's NIC port, crosses vhost-user
into the container, is sent back (MACs swapped) and returns to the TG. The guide's
limitation 6.3 (2 MB pages without --single-file-segments) is reproduced too.
"""

from __future__ import annotations

from collections.abc import Iterator

import allure
import pytest

from framework.dpdk.testpmd import TestPmdStartError
from framework.dpdk.verify import verify_port_counts, verify_ports, verify_queues
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_table, attach_text, step
from framework.report.captures import attach_capture
from framework.report.figures import record_figure
from framework.scenarios.container_networking import ContainerNetworking
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import STREAM_DST_IP, STREAM_SRC_IP, flows, swap_macs
from framework.traffic.verify import verify_packets
from framework.verify import verify

pytestmark = [
    pytest.mark.guide(6),
    pytest.mark.virtio,
    pytest.mark.vhost,
    pytest.mark.container,
    pytest.mark.virtual,
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("6 virtio_user for container networking"),
]

QUEUES = 2
FLOWS = 16
PACKETS_PER_FLOW = 16
RATE_PPS = 1000


@pytest.fixture(scope="module")
def guide(
    host_server_1: HostHandle, dpdk_version: DpdkVersion, topology
) -> Iterator[ContainerNetworking]:
    """Steps 1-5 of the guide on host_server_1: the image, the host and container testpmds."""
    setup = ContainerNetworking(
        host_server_1,
        dpdk_version,
        topology.dpdk.testpmd,
        QUEUES,
        hugepage_mount=host_server_1.spec.hugepages.mount,
    )
    try:
        with step("1. Compile DPDK: use the DPDK under test"):
            attach_text("DPDK under test", f"{topology.dpdk.testpmd}: DPDK {dpdk_version}")
        with step("2-3. Write a Dockerfile and build the image from the DPDK under test"):
            image = setup.build_image()
            attach_text(
                "container engine",
                f"{setup.engine.description}\nimage: {image.ref} "
                f"({'built' if image.built else 'reused'} in {image.seconds:.1f} s)",
            )
        with step("4. Start a testpmd on the host with a vhost-user port"):
            setup.start_host_testpmd()
        with step("5. Start a container instance with a virtio-user port"):
            setup.start_container_testpmd()
        attach_text("guide commands and what ran", setup.report_commands())
        yield setup
    finally:
        setup.close()


def _flows(guide: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str):
    dut_mac = guide.host_pmd.show_port_info(guide.nic_port).mac
    return flows(
        FLOWS,
        traffic_generator.mac_of(tg_port),
        dut_mac.lower(),
        STREAM_SRC_IP,
        STREAM_DST_IP,
        packets_per_flow=PACKETS_PER_FLOW,
        vary=("src_ip", "sport"),
    )


def _round_trip(traffic_generator: TrafficGenerator, packets: list, tg_port: str) -> None:
    """Every packet comes back to the TG exactly once, MACs swapped by the container."""
    capture = verify_packets(
        traffic_generator, packets, tg_port, tg_port, expected=swap_macs, pps=RATE_PPS, timeout=5
    )
    attach_capture(f"frames back at tg {tg_port}", capture, tg_port)


def test_vhost_user_port_comes_up_when_the_container_connects(
    guide: ContainerNetworking,
) -> None:
    """The container's virtio_user port connects to the host's vhost-user socket.

    Steps:
        Steps 1-5 of the guide (the module's set-up).
        show port info of the host's vhost-user port.

    Verify:
        Its link is up: the virtio_user device in the container started the vhost device.
    """
    with step("The vhost-user port comes up once the container's virtio_user connects"):
        info = guide.wait_vhost_link_up()
        verify_ports({info.port: info}, "host vhost-user port: link is up", link_up="all")


def test_traffic_crosses_vhost_user_into_the_container_and_back(
    guide: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """Frames from the TG cross vhost-user into the container and come back.

    Steps:
        Send 16 flows x 16 frames from the TG to the host's NIC port (host testpmd: io
        forwarding NIC <-> vhost-user; container testpmd: macswap).

    Verify:
        Every frame returns to the TG exactly once with its MAC addresses swapped; the host
        NIC, vhost-user and container virtio_user counters equal the frames sent.
    """
    packets = _flows(guide, traffic_generator, tg_port)
    guide.clear_stats()
    with step(f"Send {len(packets)} packets from the TG; each returns once, MACs swapped"):
        _round_trip(traffic_generator, packets, tg_port)
    with step("The vhost-user and virtio_user counters equal the packets sent"):
        host = guide.host_pmd.show_port_stats_all()
        container = guide.container_pmd.show_port_stats_all()
        sent = len(packets)
        record_figure("frames through the container", container[0].tx_packets, "frames",
                      better="info")  # fmt: skip
        attach_table(
            "port counters",
            ["port", "RX packets", "TX packets"],
            [
                [name, s.rx_packets, s.tx_packets]
                for name, s in (
                    ("host NIC port", host[guide.nic_port]),
                    ("host vhost-user port", host[guide.vhost_port]),
                    ("container virtio_user port", container[0]),
                )
            ],
        )
        verify_port_counts(
            host,
            "every frame sent crosses the host's NIC and vhost-user ports, each way, once",
            rx={guide.nic_port: sent, guide.vhost_port: sent},
            tx={guide.nic_port: sent, guide.vhost_port: sent},
        )
        verify_port_counts(
            container,
            "the container's virtio_user port receives every frame once and sends it back",
            rx={0: sent},
            tx={0: sent},
        )


def test_multiqueue_spreads_flows_over_both_queues(
    guide: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """The guide's queues=2 vhost-user / virtio_user pair carries traffic on both queues.

    Steps:
        Send 16 flows (varying source address and port) through the two-queue ports.

    Verify:
        Every queue of the host's vhost-user port and of the container's virtio_user port
        carries traffic in both directions; the container's queues add up to the frames sent.
    """
    packets = _flows(guide, traffic_generator, tg_port)
    guide.clear_stats()
    with step(f"Send {FLOWS} flows through queues={QUEUES} vhost-user / virtio_user ports"):
        _round_trip(traffic_generator, packets, tg_port)
    with step("Every queue of both ports carried traffic"):
        rows = guide.queue_counts(QUEUES)
        attach_table(
            "per-queue packets",
            ["queue", "host vhost TX", "container RX", "container TX", "host vhost RX"],
            [[q, *counts] for q, counts in enumerate(rows)],
        )
        verify_queues(
            rows,
            f"{FLOWS} flows use all {QUEUES} queues, both ways",
            ["host vhost TX", "container RX", "container TX", "host vhost RX"],
        )
        received = sum(counts[1] for counts in rows)
        verify(
            received == len(packets),
            f"container received {received} over its queues, sent {len(packets)}",
        )


def test_limitation_2mb_pages_need_single_file_segments(
    host_server_1: HostHandle, dpdk_version: DpdkVersion, topology
) -> None:
    """6.3: more than VHOST_MEMORY_MAX_NREGIONS (8) hugepage files cannot work.

    The guide: "do not use 2MB hugepage so far". DPDK since 18.05 has
    --single-file-segments, which puts all pages in one file (one region) and lifts it.

    Steps:
        A host testpmd with a vhost-user port; a container testpmd on 2 MB pages without
        --single-file-segments.

    Verify:
        The container testpmd fails naming the cause (too many memory regions); the host's
        vhost-user port never comes up.
    """
    setup = ContainerNetworking(
        host_server_1,
        dpdk_version,
        topology.dpdk.testpmd,
        1,
        name="limit63",
        hugepage_mount=host_server_1.spec.hugepages.mount,
    )
    try:
        with step("Host testpmd with a vhost-user port"):
            setup.start_host_testpmd()
        with step("Container testpmd on 2 MB pages WITHOUT --single-file-segments"):
            with pytest.raises(TestPmdStartError) as failure:
                setup.start_container_testpmd(single_file_segments=False)
            attach_text("what the suite reported", str(failure.value))
            verify(
                "too many memory regions" in str(failure.value).lower(),
                f"the failure names the cause (vhost memory regions): {failure.value}",
            )
        with step("The host's vhost-user port never comes up"):
            info = setup.host_vhost_info()
            verify(not info.link_up, "host vhost-user port stays down: the device did not start")
    finally:
        setup.close()
