"""Guide 6: virtio_user for container networking (DPDK 17.05 HowTo guides, chapter 6).

A testpmd on the host serves a vhost-user socket (step 4); a testpmd in a container,
built from the DPDK under test (steps 1-3), attaches a virtio_user port to that socket
(step 5). Traffic from the traffic generator enters the host's NIC port, crosses vhost-user
into the container, is sent back (MACs swapped) and returns to the TG.

The guide's own form has one queue pair (steps 4 and 5 give no queues=): the functional
tests run it. Two queue pairs are a variant, for the multiqueue test only.

Each of 6.3's five limitations is a test of its own, run against step 4's host testpmd:
where DPDK 22.11 still fails the way the guide says, the test shows the refusal and the
vhost-user port that stays down; where 22.11 lifted the limitation, the test shows what
22.11 does instead (the port comes up, traffic crosses) and its docstring says the drift.
"""

from __future__ import annotations

from collections.abc import Iterator

import allure
import pytest

from framework.container.memory import verify_memory
from framework.dpdk.verify import verify_port_counts, verify_ports, verify_queues, verify_refused
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_table, attach_text, step
from framework.report.captures import attach_capture
from framework.report.figures import record_figure
from framework.report.findings import observe
from framework.scenarios.container_networking import (
    EIGHT_REGIONS_MB,
    EIGHT_REGIONS_MBUFS,
    HUGEFILE_LOOKALIKE,
    NON_ROOT,
    ContainerForm,
    ContainerNetworking,
)
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

GUIDE_QUEUES = 1  # steps 4 and 5: no queues= on either port, one queue pair
VARIANT_QUEUES = 2  # the multiqueue variant: not in the guide's lines
FLOWS = 16
PACKETS_PER_FLOW = 16
RATE_PPS = 1000
# How long a vhost-user client takes to find its peer's socket again: the vhost library
# retries every second; a few more for testpmd's LSC handling.
RECONNECT_S = 5.0


# The two-queue variant of the module's set-up, for the test marked with it.
two_queues = pytest.mark.parametrize(
    "guide", [pytest.param(VARIANT_QUEUES, id="two-queue")], indirect=True
)

# What 22.11's EAL and virtio_user print where 6.3's limitations still hold.
EAL_REFUSES_UNLINK_IN_ONE_FILE = (
    "Option --single-file-segments is not compatible with --huge-unlink",
)
HUGEPAGES_DENIED = ("Permission denied", "Cannot init memory")
# 22.11 also says why ("Physical addresses are unavailable, selecting IOVA as VA mode.");
# 24.11 only what it chose.
IOVA_AS_VA = ("Selected IOVA mode 'VA'",)


@pytest.fixture(scope="module")
def guide(
    request: pytest.FixtureRequest, host_server_1: HostHandle, dpdk_version: DpdkVersion, topology
) -> Iterator[ContainerNetworking]:
    """Steps 1-5 of the guide on host_server_1: the image, the host and container testpmds.

    In the guide's form, one queue pair; a test marked @two_queues gets the two-queue
    variant instead. One form at a time: each owns the host's NIC port, and pytest closes
    a module fixture's set-up before it makes one with another parameter.
    """
    queues = getattr(request, "param", GUIDE_QUEUES)
    setup = ContainerNetworking(
        host_server_1,
        dpdk_version,
        topology.dpdk,
        queues,
        hugepage_mount=host_server_1.spec.hugepages.mount,
    )
    form = "the guide's form, one queue pair" if queues == GUIDE_QUEUES else f"queues={queues}"
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
        with step(f"4. Start a testpmd on the host with a vhost-user port ({form})"):
            setup.start_host_testpmd()
        with step(f"5. Start a container instance with a virtio-user port ({form})"):
            setup.start_container_testpmd()
        attach_text("guide commands and what ran", setup.report_commands())
        yield setup
    finally:
        setup.close()


@pytest.fixture
def host_only(guide: ContainerNetworking) -> Iterator[ContainerNetworking]:
    """Step 4's host testpmd with no container on its socket, for a 6.3 form of step 5.

    Step 5's container comes back afterwards, for the tests that follow.
    """
    with step("Stop step 5's container: the host's vhost-user socket is free"):
        guide.stop_container()
    try:
        yield guide
    finally:
        with step("Start step 5's container again"):
            guide.stop_container()
            guide.start_container_testpmd()


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
        Steps 1-5 of the guide in its own form, one queue pair (the module's set-up).
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
        Steps 1-5 of the guide in its own form, one queue pair (the module's set-up).
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


def test_virtio_user_link_goes_down_when_the_host_vhost_port_quits(
    guide: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """The guide's form: the container's virtio_user link follows the host's vhost-user port.

    Steps:
        Steps 1-5 of the guide in its own form (the module's set-up). quit the host testpmd;
        show port info 0 in the container. Step 4's host testpmd again, the same command
        line; show port info 0 in the container. Step 5's container again; a round trip.

    Verify:
        With the host's vhost-user port gone, the container's virtio_user link goes down.
        In the guide's form virtio_user is the vhost-user client and does not reconnect:
        once the host testpmd is back its link stays down (DPDK 22.11 reconnects a
        virtio_user port only in server mode, virtio_user_dev_server_reconnect; the
        reconnect form is the next test). A new container brings traffic back.
    """
    with step("quit the host testpmd: the container's virtio_user link goes down"):
        guide.quit_host_testpmd()
        info = guide.container_link(up=False)
        verify_ports({0: info}, "guide's form: virtio_user0's link goes down", link_down="all")
    with step("Step 4's host testpmd again: the guide's virtio_user (a client) stays down"):
        guide.restart_host_testpmd()
        info = guide.container_link(up=True, timeout=RECONNECT_S)
        verify_ports(
            {0: info},
            "guide's form: a virtio_user client does not reconnect (22.11: server mode only)",
            link_down="all",
        )
    with step("Step 5's container again: traffic crosses vhost-user into it and back"):
        guide.stop_container()
        guide.start_container_testpmd()
        _round_trip(traffic_generator, _flows(guide, traffic_generator, tg_port), tg_port)


@pytest.fixture
def reconnect_form(guide: ContainerNetworking) -> Iterator[ContainerNetworking]:
    """Steps 4-5 in DPDK's reconnect form (virtio_user server=1, the vhost port client=1)."""
    with step("Steps 4-5 in the reconnect form: virtio_user server=1, vhost-user client=1"):
        guide.use_reconnect_form(True)
        attach_text("reconnect form: what ran", guide.report_commands())
    try:
        yield guide
    finally:
        with step("Steps 4-5 in the guide's form again"):
            guide.use_reconnect_form(False)


def test_virtio_user_server_reconnects_when_the_host_vhost_port_returns(
    reconnect_form: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """DPDK's reconnect form: the link goes down with the host's vhost port and comes back.

    Not the guide's form: virtio_user0 with server=1 makes the socket in a directory
    mounted into the container, the host's vhost-user port connects to it (client=1), as
    DPDK's vhost/virtio-user reconnect test plans run them.

    Steps:
        Steps 4-5 in the reconnect form; a round trip. quit the host testpmd; show port
        info 0 in the container. Step 4's host testpmd again; show port info 0; a round trip.

    Verify:
        Traffic crosses before; the container's link goes down when the host testpmd quits
        and comes up again when it returns, within RECONNECT_S; then every frame comes back
        once, whole, MACs swapped.
    """
    guide = reconnect_form
    with step("A round trip through the reconnect form"):
        _round_trip(traffic_generator, _flows(guide, traffic_generator, tg_port), tg_port)
    with step("quit the host testpmd: the container's virtio_user link goes down"):
        guide.quit_host_testpmd()
        info = guide.container_link(up=False)
        verify_ports(
            {0: info}, "virtio_user0's link goes down with the vhost port", link_down="all"
        )
    with step("Step 4's host testpmd again: the container's link comes back up"):
        guide.restart_host_testpmd()
        info = guide.container_link(up=True, timeout=RECONNECT_S)
        verify_ports({0: info}, "virtio_user0 (server=1) reconnects: link up", link_up="all")
    with step("Traffic crosses vhost-user into the container and back again"):
        _round_trip(traffic_generator, _flows(guide, traffic_generator, tg_port), tg_port)


def test_limitation_huge_unlink(
    host_only: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """6.3: "Cannot work with --huge-unlink option. As we need to reopen the hugepage file
    to share with vhost backend."

    Drift in 22.11: virtio_user no longer reopens anything. It passes the vhost side each
    memory segment's file descriptor (SCM_RIGHTS), so hugepage files unlinked by
    --huge-unlink are shared all the same. What still fails is EAL itself: --huge-unlink
    with --single-file-segments (how 2 MB pages stay within 8 memory regions, see
    test_limitation_2mb_pages_need_single_file_segments) is refused at start-up; without
    it, --huge-unlink works while the container's memory fits in 8 hugepage files.

    Steps:
        Step 4's host testpmd, no container on its socket.
        Step 5 with --huge-unlink and --single-file-segments.
        Step 5 with --huge-unlink alone, the container kept to 8 hugepages; send 16 flows.

    Verify:
        EAL refuses the first, naming the two options; the host's vhost-user port is down.
        The second comes up: the host's vhost-user port is up, every frame comes back
        once with its MACs swapped, and the container's hugepage files are mapped but
        unlinked (hugetlbfs names none of them).
    """
    guide = host_only
    with step("Step 5 with --huge-unlink and --single-file-segments: EAL refuses"):
        refused = guide.attempt_container(
            ContainerForm(huge_unlink=True, single_file_segments=True)
        )
        observe(
            "container testpmd output",
            "step 5 with --huge-unlink --single-file-segments",
            refused.output,
        )
        verify_refused(
            refused,
            "6.3: cannot work with --huge-unlink (22.11: EAL refuses it with "
            "--single-file-segments)",
            naming=EAL_REFUSES_UNLINK_IN_ONE_FILE,
        )
        guide.stop_container()
        info = guide.host_vhost_info()
        verify_ports(
            {info.port: info},
            "host vhost-user port stays down: the refused container never connected",
            link_down="all",
        )
    unlinked = ContainerForm(
        huge_unlink=True, single_file_segments=False,
        memory_mb=EIGHT_REGIONS_MB, mbufs=EIGHT_REGIONS_MBUFS,
    )  # fmt: skip
    with step(f"Step 5 with --huge-unlink alone ({unlinked.describe()})"):
        guide.start_container_testpmd(unlinked)
        info = guide.wait_vhost_link_up()
        verify_ports(
            {info.port: info},
            "host vhost-user port: link is up with --huge-unlink (6.3: cannot work, 22.11 "
            "lifted it)",
            link_up="all",
        )
    with step("The hugepage files are unlinked, yet shared: the vhost side got descriptors"):
        memory = guide.container_memory()
        attach_text("container memory", memory.summary())
        verify_memory(
            memory,
            "6.3: the hugepage file must be reopened (22.11: mapped unlinked, shared by "
            "descriptor)",
            shows="unlinked hugepage files",
        )
    with step("Traffic crosses vhost-user into the --huge-unlink container and back"):
        _round_trip(traffic_generator, _flows(guide, traffic_generator, tg_port), tg_port)


def test_limitation_no_huge(
    host_only: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """6.3: "Cannot work with --no-huge option. Currently, DPDK uses anonymous mapping
    under this option which cannot be reopened to share with vhost backend."

    Drift in 22.11: with --no-huge, EAL backs its memory with a memfd (one file, no
    hugetlbfs) and virtio_user passes its descriptor to the vhost side: it works.

    Steps:
        Step 4's host testpmd, no container on its socket.
        Step 5 with --no-huge; send 16 flows.

    Verify:
        The host's vhost-user port is up; every frame comes back once with its MACs
        swapped; the container's memory is a memfd, no hugepage file.
    """
    guide = host_only
    no_huge = ContainerForm(no_huge=True, single_file_segments=False)
    with step(f"Step 5 with --no-huge ({no_huge.describe()})"):
        guide.start_container_testpmd(no_huge)
        info = guide.wait_vhost_link_up()
        verify_ports(
            {info.port: info},
            "host vhost-user port: link is up with --no-huge (6.3: cannot work, 22.11 lifted it)",
            link_up="all",
        )
    with step("The container's memory is a memfd, shared by descriptor"):
        memory = guide.container_memory()
        attach_text("container memory", memory.summary())
        verify_memory(
            memory,
            "6.3: --no-huge memory is anonymous, it cannot be shared (22.11: a memfd, shared "
            "by descriptor)",
            shows="a memfd",
        )
    with step("Traffic crosses vhost-user into the --no-huge container and back"):
        _round_trip(traffic_generator, _flows(guide, traffic_generator, tg_port), tg_port)


def test_limitation_2mb_pages_need_single_file_segments(
    host_server_1: HostHandle, dpdk_version: DpdkVersion, topology
) -> None:
    """6.3: "Cannot work when there are more than VHOST_MEMORY_MAX_NREGIONS(8) hugepages.
    In another word, do not use 2MB hugepage so far."

    Still so in 22.11, with one hugepage file per page. DPDK since 18.05 has
    --single-file-segments, which puts all pages in one file (one region) and lifts it:
    the module's set-up uses it.

    Steps:
        A host testpmd with a vhost-user port (a set-up of its own); a container testpmd
        on 2 MB pages without --single-file-segments.

    Verify:
        The container testpmd is refused naming the cause (too many memory regions); the
        host's vhost-user port never comes up.
    """
    setup = ContainerNetworking(
        host_server_1,
        dpdk_version,
        topology.dpdk,
        GUIDE_QUEUES,
        name="limit63",
        hugepage_mount=host_server_1.spec.hugepages.mount,
    )
    try:
        with step("Host testpmd with a vhost-user port"):
            setup.start_host_testpmd()
        with step("Container testpmd on 2 MB pages WITHOUT --single-file-segments"):
            refused = setup.attempt_container(ContainerForm(single_file_segments=False))
            observe(
                "container testpmd output", "step 5 without --single-file-segments", refused.output
            )
            verify_refused(
                refused,
                "6.3: cannot work with more than 8 hugepages (vhost memory regions)",
                naming=("too many memory regions",),
            )
        with step("The host's vhost-user port never comes up"):
            info = setup.host_vhost_info()
            verify_ports(
                {info.port: info},
                "host vhost-user port stays down: the device did not start",
                link_down="all",
            )
    finally:
        setup.close()


def test_limitation_hugefile_fmt_names(
    host_only: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """6.3: "Applications should not use file name like HUGEFILE_FMT ("%smap_%d"). That
    will bring confusion when sharing hugepage files with backend by name."

    Drift in 22.11: 17.05's virtio_user found the memory to share by scanning
    /proc/self/maps for file names like HUGEFILE_FMT, so any such file the application
    mapped was sent to the vhost side as if it were a hugepage. 22.11's walks EAL's own
    memory segments and passes their descriptors: names play no part. Shown with the
    worst case: the container's testpmd executable itself named "rtemap_0", the name of
    EAL's first hugepage file under its default prefix, mapped five times over.

    Steps:
        Step 4's host testpmd, no container on its socket.
        Step 5 with testpmd run as /usr/local/bin/rtemap_0 (the DPDK under test's
        testpmd mounted there); send 16 flows.

    Verify:
        The container testpmd maps a file named like HUGEFILE_FMT that is no hugepage;
        the host's vhost-user port is up; every frame comes back once, MACs swapped.
    """
    guide = host_only
    lookalike = ContainerForm(program=HUGEFILE_LOOKALIKE)
    with step(f"Step 5 with testpmd named like a hugepage file ({lookalike.describe()})"):
        guide.start_container_testpmd(lookalike)
        memory = guide.container_memory()
        attach_text("container memory", memory.summary())
        verify_memory(
            memory,
            "6.3: should not use file names like HUGEFILE_FMT (the container maps one, no "
            "hugepage)",
            shows="a HUGEFILE_FMT lookalike",
        )
    with step("The vhost-user port comes up: the lookalike is not taken for a hugepage"):
        info = guide.wait_vhost_link_up()
        verify_ports(
            {info.port: info},
            "host vhost-user port: link is up next to a HUGEFILE_FMT lookalike (6.3: "
            "confusion, 22.11 lifted it)",
            link_up="all",
        )
    with step("Traffic crosses vhost-user into the container and back"):
        _round_trip(traffic_generator, _flows(guide, traffic_generator, tg_port), tg_port)


def test_limitation_root_privilege(
    host_only: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """6.3: "Root privilege is a must. DPDK resolves physical addresses of hugepages
    which seems not necessary, and some discussions are going on to remove this
    restriction."

    In 22.11 root is still a must with the guide's mounts, but not for its reason: EAL
    finds physical addresses unavailable and runs with IOVA as VA, then cannot open
    hugepage files in the root-owned hugetlbfs. Drift: given a hugetlbfs directory it
    owns and the vhost-user socket, the same non-root testpmd comes up and forwards.

    Steps:
        Step 4's host testpmd, no container on its socket.
        Step 5 as user 65534:65534 (nobody), the guide's mounts unchanged.
        Step 5 as that user, with a hugetlbfs directory it owns (--huge-dir) and the
        socket given to it; send 16 flows.

    Verify:
        The first is refused: EAL selects IOVA as VA (physical addresses are not what
        stops it), then is denied the hugepage files; the host's vhost-user port is down.
        The second comes up: the host's vhost-user port is up, every frame comes back
        once with its MACs swapped.
    """
    guide = host_only
    with step(f"Step 5 as non-root user {NON_ROOT}, the guide's mounts: refused"):
        refused = guide.attempt_container(ContainerForm(user=NON_ROOT))
        observe(
            "container testpmd output", f"step 5 as {NON_ROOT}, the guide's mounts", refused.output
        )
        verify_refused(
            refused,
            "6.3: root privilege is a must (22.11: the hugepage files are denied)",
            naming=HUGEPAGES_DENIED,
        )
        verify_refused(
            refused,
            "6.3: DPDK resolves physical addresses of hugepages (22.11: EAL runs with IOVA as VA)",
            naming=IOVA_AS_VA,
        )
        guide.stop_container()
        info = guide.host_vhost_info()
        verify_ports(
            {info.port: info},
            "host vhost-user port stays down: no non-root container connected",
            link_down="all",
        )
    owner = ContainerForm(user=NON_ROOT, user_owns_its_files=True)
    with step(f"Step 5 as {NON_ROOT}, owning a hugetlbfs directory and the socket"):
        guide.start_container_testpmd(owner)
        info = guide.wait_vhost_link_up()
        verify_ports(
            {info.port: info},
            "host vhost-user port: link is up with a non-root container owning its files "
            "(6.3: root a must, 22.11 lifted it)",
            link_up="all",
        )
    with step("Traffic crosses vhost-user into the non-root container and back"):
        _round_trip(traffic_generator, _flows(guide, traffic_generator, tg_port), tg_port)


@two_queues
def test_multiqueue_spreads_flows_over_both_queues(
    guide: ContainerNetworking, traffic_generator: TrafficGenerator, tg_port: str
) -> None:
    """The two-queue variant: a queues=2 vhost-user / virtio_user pair uses both queues.

    Not the guide's form (its steps 4 and 5 have one queue pair): the same set-up with
    queues=2 on the vhost-user and virtio_user ports, rxq=txq=2 in both testpmds.

    Steps:
        Steps 1-5 with two queue pairs (the module's set-up in its two-queue variant).
        Send 16 flows (varying source address and port) through the two-queue ports.

    Verify:
        Every queue of the host's vhost-user port and of the container's virtio_user port
        carries traffic in both directions; the container's queues add up to the frames sent.
    """
    packets = _flows(guide, traffic_generator, tg_port)
    guide.clear_stats()
    with step(f"Send {FLOWS} flows through queues={VARIANT_QUEUES} vhost-user / virtio_user ports"):
        _round_trip(traffic_generator, packets, tg_port)
    with step("Every queue of both ports carried traffic"):
        rows = guide.queue_counts(VARIANT_QUEUES)
        attach_table(
            "per-queue packets",
            ["queue", "host vhost TX", "container RX", "container TX", "host vhost RX"],
            [[q, *counts] for q, counts in enumerate(rows)],
        )
        verify_queues(
            rows,
            f"{FLOWS} flows use all {VARIANT_QUEUES} queues, both ways",
            ["host vhost TX", "container RX", "container TX", "host vhost RX"],
        )
        received = sum(counts[1] for counts in rows)
        verify(
            received == len(packets),
            f"container received {received} over its queues, sent {len(packets)}",
        )
