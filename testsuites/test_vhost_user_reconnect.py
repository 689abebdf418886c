"""DPDK's pvp_vhost_user_reconnect plan on guide 4's PVP path (one VM, and two).

Guide 4's set-up (the host testpmd: two NIC ports and two vhost-user ports, io; the VM's
testpmd: macswap, chained) in the plan's two forms: the host's vhost ports as vhost-user
clients (client=1) of sockets QEMU serves, as the plan runs it, and as servers with QEMU
connecting again (reconnect=1). While a sequenced stream crosses TG pvp0 -> host -> VM ->
host -> TG pvp1, one side goes away and comes back: the host testpmd is killed and
relaunched, the guest's testpmd restarted, the VM relaunched (the plan's "reconnect from
VM": QEMU stopped and started again). The stability forms repeat a relaunch RELAUNCHES
times and read what the side that stayed holds. The plan's multi-VM cases split the VM
in two (one vhost-user NIC each) and chain them: TG pvp0 -> host -> VM1 -> host -> VM2 ->
host -> TG pvp1, the host testpmd relaunched or both VMs relaunched under the stream. Its
VM-to-VM cases run the same two VMs on the kernel's virtio-net, the host testpmd
forwarding between its two vhost ports only: TCP from VM2 to VM1 (a known byte stream,
checked whole and in order) across a host relaunch, after both VMs are relaunched, and
after ten host relaunches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TypeVar

import allure
import pytest

from framework.config.model import PvpBenchmark, Topology
from framework.dpdk.parsers import PortStats
from framework.dpdk.verify import verify_ports
from framework.lab.holdings import HOLDINGS_COLUMNS, Holdings
from framework.plugin import variant_id
from framework.report.attach import attach_table, attach_text, step
from framework.report.figures import record_figure
from framework.report.outcomes import known_defect, skip_lacking
from framework.report.streams import attach_stream
from framework.scenarios.pvp import DEFAULT_PATH, Pvp, VirtioPath
from framework.scenarios.pvvp import Pvvp
from framework.scenarios.vhost_reconnect import (
    Event,
    KernelVmToVmReconnect,
    PvpReconnect,
    PvvpReconnect,
)
from framework.scenarios.vm_to_vm import ADDRESSES, KernelVmToVm
from framework.traffic.checks import verify_frames_intact, verify_sender
from framework.traffic.generator import StreamRun, TrafficGenerator
from framework.traffic.guest_tcp import GuestTransfer, uptime, verify_transfer
from framework.traffic.stream import LossAccount, StreamResult
from framework.traffic.windows import late_outages, verify_clean_outside, verify_resumed
from framework.verify import verify, wait_for_dut

pytestmark = [
    pytest.mark.guide(4),
    pytest.mark.virtio,
    pytest.mark.vhost,
    pytest.mark.virtual,
    pytest.mark.slow,
    pytest.mark.vms("pvp_vm", why="guide 4's VM, whose vhost-user sockets come and go"),
    # outages are measured to the millisecond: no other run's guide meanwhile
    pytest.mark.cpu_exclusive,
    allure.parent_suite("DPDK test plans on the guides' recipes"),
    allure.suite("pvp_vhost_user_reconnect (guide 4's PVP path)"),
]

PACKED = VirtioPath("mergeable", packed=True)
FORMS = [
    pytest.param(("client", DEFAULT_PATH), id="vhost-client-split"),
    pytest.param(("client", PACKED), id="vhost-client-packed"),
    pytest.param(("server", DEFAULT_PATH), id="vhost-server-split"),
    pytest.param(("server", PACKED), id="vhost-server-packed"),
]
STREAM_PPS = 1000  # what a TCG guest forwards without loss here
SETTLE_S = 1.0  # traffic before and after each event
EVENT_MAX_S = 120  # the stream's bound; it is stopped once the event is over
RELAUNCHES = 10  # the stability forms' repetitions
# How soon after every link is seen up again the stream must be back (measured here: it
# is back 0.2-0.4 s before the last link is seen up, each event, split and packed).
RESUME_S = 1.0


# The plan's multi-VM cases (4-5 split, 13-14 packed): QEMU serves, the host connects.
TWO_VM_FORMS = [
    pytest.param(False, id="vhost-client-split"),
    pytest.param(True, id="vhost-client-packed"),
]
TWO_VM_STABILITY_TESTS = (
    "test_relaunching_the_host_testpmd_under_two_vms_leaks_nothing",
    "test_relaunching_the_host_testpmd_under_two_kernel_guests_leaks_nothing",
)
TWO_VM_TESTS = (
    "test_traffic_through_two_vms_resumes_when_the_host_testpmd_is_relaunched",
    "test_traffic_through_two_vms_resumes_when_both_vms_are_relaunched",
    "test_tcp_between_two_kernel_guests_survives_a_host_testpmd_relaunch",
    "test_tcp_between_two_kernel_guests_after_both_vms_are_relaunched",
    *TWO_VM_STABILITY_TESTS,
)

ReconnectingTwo = TypeVar("ReconnectingTwo", bound=PvvpReconnect)

STABILITY_TESTS = (
    "test_relaunching_the_host_testpmd_leaks_nothing_in_qemu",
    "test_restarting_the_guest_testpmd_leaks_nothing_in_the_host_testpmd",
)
# The VM-to-VM byte stream: how long it runs on each side of an event, and how much later
# than the time the links took its TCP may retry (its retransmission timer doubles while
# the path is down, so the first retry after the links are back comes within about as
# long as they were down).
TCP_SETTLE_S = 2.0
TCP_RETRY_SLACK_S = 2.0


def topology_selection(item: pytest.Item, topology: Topology) -> str | None:
    """Why the topology's declared selection leaves this test out (None: it runs).

    Called at collection (framework.plugin): the stability forms run on
    pvp.reconnect_stability_forms only, the two-VM cases on pvp.reconnect_two_vm_forms
    only: declared choices for time, not skips.
    """
    callspec = getattr(item, "callspec", None)
    name = getattr(item, "originalname", "")
    if topology.pvp is None or callspec is None:
        return None
    form = variant_id(item)
    two = topology.pvp.reconnect_two_vm_forms
    if name in TWO_VM_TESTS and two is not None and form not in two:
        return (
            f"topology {topology.name}: pvp.reconnect_two_vm_forms {two}, the two-VM "
            "cases run in these forms only (time)"
        )
    if name in TWO_VM_STABILITY_TESTS and not topology.pvp.reconnect_two_vm_stability:
        return (
            f"topology {topology.name}: pvp.reconnect_two_vm_stability false, the two-VM "
            f"cases' {RELAUNCHES} host relaunches are left out (time)"
        )
    forms = topology.pvp.reconnect_stability_forms
    if forms is None or name not in STABILITY_TESTS or form in forms:
        return None
    return (
        f"topology {topology.name}: pvp.reconnect_stability_forms {forms}, the "
        f"{RELAUNCHES} relaunches run in these forms only (time)"
    )


class OneAtATime:
    """Guide 4's host NICs and vhost-user sockets carry one set-up at a time.

    pytest keeps a module-scoped fixture's last instance until the module ends: the
    one-VM set-up would still hold the NICs and sockets when the two-VM one starts (its
    host testpmd then found the old one's socket). Each set-up takes the path, closing the
    one before it; closing twice is harmless.
    """

    def __init__(self) -> None:
        self._close: Callable[[], None] | None = None

    def take(self, close: Callable[[], None]) -> None:
        if self._close is not None:
            self._close()
        self._close = close


@pytest.fixture(scope="module")
def host_path() -> OneAtATime:
    """Who holds guide 4's host NICs and sockets in this module."""
    return OneAtATime()


@pytest.fixture(scope="module", params=FORMS)
def reconnect(
    request: pytest.FixtureRequest,
    topology: Topology,
    hosts,
    tg_host,
    dpdk_version,
    host_path: OneAtATime,
) -> Iterator[PvpReconnect]:
    """Guide 4's PVP with the VM, in one reconnect form, forwarding."""
    spec: PvpBenchmark | None = topology.pvp
    if spec is None:
        skip_lacking(f"topology {topology.name} has no pvp section (guide 4's PVP path)")
    mode, path = request.param
    pvp = Pvp(
        topology, hosts[spec.host], tg_host, dpdk_version, "vm", path, reconnect=mode,
        guest_log_levels=(),
    )  # fmt: skip
    setup = PvpReconnect(pvp)
    host_path.take(pvp.close)
    try:
        with step(f"The host testpmd, its vhost-user ports as {setup.form}s ({path.id})"):
            pvp.start_host_testpmd()
        with step("The VM and its testpmd: macswap, chained"):
            pvp.start_guest()
            setup.wait_links()
        attach_text("command lines", "\n".join(" ".join(r.argv) for r in pvp.launches))
        attach_text("QEMU", " ".join(pvp.vm.argv))
        yield setup
    finally:
        pvp.close()


@pytest.fixture
def through_pvp(
    traffic_generator: TrafficGenerator, reconnect: PvpReconnect
) -> Callable[..., StreamRun]:
    """A stream from TG pvp0 through the host, the VM and the host again to TG pvp1."""
    return reconnect.pvp.stream(traffic_generator, STREAM_PPS)


@pytest.fixture(scope="module", params=TWO_VM_FORMS)
def two_vms(
    request: pytest.FixtureRequest,
    topology: Topology,
    hosts,
    tg_host,
    dpdk_version,
    host_path: OneAtATime,
) -> Iterator[PvvpReconnect]:
    """The plan's multi-VM set-up on guide 4's host: TG -> NIC -> VM1 -> VM2 -> NIC -> TG."""
    spec = _two_vm_spec(topology)
    pvvp = Pvvp(topology, hosts[spec.host], tg_host, dpdk_version, packed=request.param)
    yield from _two_vms_up(
        PvvpReconnect(pvvp),
        host_path,
        "The host testpmd: NIC0 -> vhost0 -> vhost1 -> NIC1 chained, io",
        "VM1 and VM2, one virtio port each; in each, testpmd: mac, chained",
    )


def _two_vm_spec(topology: Topology) -> PvpBenchmark:
    spec = topology.pvp
    if spec is None or spec.vm is None:
        skip_lacking(f"topology {topology.name} has no pvp.vm (guide 4's VM, split in two)")
    return spec


def _two_vms_up(
    setup: ReconnectingTwo, host_path: OneAtATime, host: str, guests: str
) -> Iterator[ReconnectingTwo]:
    """The host testpmd, then both VMs, each link up; `setup` for the module; all closed."""
    pair = setup.pvvp
    host_path.take(pair.close)
    layout = "packed" if pair.packed else "split"
    try:
        with step(f"{host}; its vhost-user ports as {setup.form}s ({layout} virtqueues)"):
            pair.start_host_testpmd()
        with step(guests):
            pair.start_guests()
            setup.wait_links()
        attach_text("command lines", "\n".join(" ".join(r.argv) for r in pair.launches))
        attach_text("QEMU", "\n".join(" ".join(vm.argv) for vm in pair.vms))
        yield setup
    finally:
        pair.close()


@pytest.fixture
def through_two_vms(
    traffic_generator: TrafficGenerator, two_vms: PvvpReconnect
) -> Callable[..., StreamRun]:
    """A stream from TG pvp0 through VM1, then VM2, to TG pvp1."""
    return two_vms.pvvp.stream(traffic_generator, STREAM_PPS)


def test_traffic_resumes_when_the_host_testpmd_is_killed_and_relaunched(
    reconnect: PvpReconnect, through_pvp: Callable[..., StreamRun]
) -> None:
    """The plan's "reconnect from vhost-user": the host side goes and comes back.

    Steps:
        With a stream crossing the path: kill -9 the host testpmd; start it again with
        the same command line; wait for the links; show port info of every port.

    Verify:
        The host's vhost-user ports and the guest's ports are up again; the stream
        resumes within RESUME_S of the last link up: every frame arrives whole and in
        order, nothing is lost or duplicated outside the event; its outage and loss are
        reported.
    """
    _across(reconnect, through_pvp, reconnect.relaunch_host_testpmd)


def test_traffic_resumes_when_the_guest_testpmd_restarts(
    reconnect: PvpReconnect, through_pvp: Callable[..., StreamRun]
) -> None:
    """The guest's testpmd quits and starts again: its virtio ports reset and reconnect.

    Steps:
        With a stream crossing the path: quit the guest's testpmd; start it again with
        the same command line; wait for the links; show port info of every port.

    Verify:
        As when the host testpmd is relaunched: links up, the stream resumes whole and in
        order, nothing lost or duplicated outside the event.
    """
    _across(reconnect, through_pvp, reconnect.restart_guest_testpmd)


def test_traffic_resumes_when_the_vm_is_relaunched(
    reconnect: PvpReconnect, through_pvp: Callable[..., StreamRun]
) -> None:
    """The plan's "reconnect from VM": QEMU stopped and started again, the host stays.

    Steps:
        With a stream crossing the path: stop the guest's testpmd and QEMU; start the VM
        and its testpmd again; wait for the links; show port info of every port.

    Verify:
        As when the host testpmd is relaunched: links up, the stream resumes whole and in
        order, nothing lost or duplicated outside the event.
    """
    _across(reconnect, through_pvp, reconnect.relaunch_vm)


def test_relaunching_the_host_testpmd_leaks_nothing_in_qemu(
    reconnect: PvpReconnect, through_pvp: Callable[..., StreamRun]
) -> None:
    """The stability form: the host testpmd relaunched RELAUNCHES times, QEMU stays.

    Steps:
        RELAUNCHES times: kill -9 the host testpmd and start it again, wait for the links;
        read QEMU's open fds and memory, the run's hugepage files and sockets on the host.
        Then a stream through the path.

    Verify:
        Links come up every time; after the last relaunch QEMU holds as many fds and as
        much memory as after the first, the host as many hugepage files and sockets; the
        stream crosses whole, in order, nothing lost.
    """
    _stability(reconnect, through_pvp, reconnect.relaunch_host_testpmd, reconnect.qemu_holdings)


def test_restarting_the_guest_testpmd_leaks_nothing_in_the_host_testpmd(
    reconnect: PvpReconnect, through_pvp: Callable[..., StreamRun]
) -> None:
    """The stability form: the guest's testpmd restarted RELAUNCHES times, the host stays.

    Each restart resets the guest's virtio devices: the host's vhost library tears the
    device down and maps the guest's memory again.

    Steps:
        RELAUNCHES times: restart the guest's testpmd, wait for the links; read the host
        testpmd's open fds and memory, the run's hugepage files and sockets on the host.
        Then a stream through the path.

    Verify:
        As for the host relaunches, of the host testpmd.
    """
    _stability(
        reconnect, through_pvp, reconnect.restart_guest_testpmd, reconnect.host_testpmd_holdings
    )


def test_traffic_through_two_vms_resumes_when_the_host_testpmd_is_relaunched(
    two_vms: PvvpReconnect, through_two_vms: Callable[..., StreamRun]
) -> None:
    """The plan's multi-VM "reconnect from vhost-user": the host side goes and comes back.

    Steps:
        With a stream crossing VM1 and VM2: kill -9 the host testpmd; start it again with
        the same command line; wait for the links; show port info of every port.

    Verify:
        The host's vhost-user ports and both VMs' ports are up again; the stream resumes
        within RESUME_S of the last link up: every frame arrives whole (as VM2's mac
        forwarding writes it) and in order, nothing lost or duplicated outside the event;
        its outage and loss are reported.
    """
    _across(two_vms, through_two_vms, two_vms.relaunch_host_testpmd)


def test_traffic_through_two_vms_resumes_when_both_vms_are_relaunched(
    two_vms: PvvpReconnect, through_two_vms: Callable[..., StreamRun]
) -> None:
    """The plan's multi-VM "reconnect from VMs": both VMs go and come back, the host stays.

    Steps:
        With a stream crossing VM1 and VM2: stop both VMs' testpmds and QEMUs; start both
        VMs and their testpmds again; wait for the links; show port info of every port.

    Verify:
        As when the host testpmd is relaunched: links up, the stream resumes whole and in
        order, nothing lost or duplicated outside the event.
    """
    _across(two_vms, through_two_vms, two_vms.relaunch_vms)


def test_relaunching_the_host_testpmd_under_two_vms_leaks_nothing(
    two_vms: PvvpReconnect, through_two_vms: Callable[..., StreamRun]
) -> None:
    """The plan's multi-VM stability form: the host testpmd relaunched RELAUNCHES times.

    Steps:
        RELAUNCHES times: kill -9 the host testpmd and start it again, wait for the
        links; read both QEMUs' open fds and memory, the run's hugepage files and sockets
        on the host. Then a stream through VM1 and VM2.

    Verify:
        Links come up every time; after the last relaunch the QEMUs hold as many fds and
        as much memory as after the first, the host as many hugepage files and sockets;
        the stream crosses whole, in order, nothing lost.
    """
    _stability(two_vms, through_two_vms, two_vms.relaunch_host_testpmd, two_vms.qemu_holdings)


@pytest.fixture(scope="module", params=TWO_VM_FORMS)
def kernel_vms(
    request: pytest.FixtureRequest,
    topology: Topology,
    hosts,
    tg_host,
    dpdk_version,
    host_path: OneAtATime,
) -> Iterator[KernelVmToVmReconnect]:
    """The plan's VM-to-VM set-up: two kernel guests, the host testpmd between them."""
    spec = _two_vm_spec(topology)
    pair = KernelVmToVm(topology, hosts[spec.host], tg_host, dpdk_version, packed=request.param)
    yield from _two_vms_up(
        KernelVmToVmReconnect(pair),
        host_path,
        "The host testpmd: vhost0 <-> vhost1, io, no NIC",
        f"VM1 and VM2, each NIC on the kernel's virtio-net: {' and '.join(ADDRESSES)}, the "
        "other's MAC a static ARP entry",
    )


def test_tcp_between_two_kernel_guests_survives_a_host_testpmd_relaunch(
    kernel_vms: KernelVmToVmReconnect,
) -> None:
    """The plan's "VM2VM reconnect from vhost-user": TCP between the VMs across a relaunch.

    Steps:
        A known byte stream over TCP from VM2 to VM1 through the host testpmd; kill -9
        the host testpmd and start it again with the same command line; wait for the
        links; let the stream go on, then end it.

    Verify:
        Every link is up again; the stream was moving when the host went and moves again
        within as long as the links took plus TCP_RETRY_SLACK_S of their being up; VM1
        holds every byte VM2 wrote, in order; the stall and TCP's retransmissions are
        reported. Packed rings may stall for good after the relaunch (a known QEMU
        defect): then an expected failure, what arrived still checked as the stream's
        start, in order.
    """
    pair = kernel_vms.pvvp
    with pair.byte_stream() as stream:
        stream.wait_flowing("TCP flows between the VMs through the host")
        wait_for_dut(TCP_SETTLE_S)
        went = uptime(stream.receiver)
        with step("The host testpmd killed and relaunched while TCP flows"):
            happened = kernel_vms.relaunch_host_testpmd()
        back = uptime(stream.receiver)
        wait_for_dut(back - went + TCP_RETRY_SLACK_S + TCP_SETTLE_S)
        with step("The byte stream ended: what VM2 wrote and VM1 holds"):
            transfer = stream.stop()
    counters = _attach_counters(kernel_vms, happened)
    _links_back(kernel_vms, happened.name)
    stall = None
    if transfer.first_growth_after(back) is None:
        stall = kernel_vms.packed_ring_stall_of_tcp(happened, counters, transfer.retransmits)
    _verify_tcp_across(transfer, happened, went, back, resumed=stall is None)
    if stall is not None:
        known_defect(stall)


def test_tcp_between_two_kernel_guests_after_both_vms_are_relaunched(
    kernel_vms: KernelVmToVmReconnect,
) -> None:
    """The plan's "VM2VM reconnect from VMs": both VMs rebooted, TCP between them again.

    Steps:
        Stop both VMs; start them again, each NIC on virtio-net with its address and the
        other's MAC; wait for the links; a known byte stream over TCP from VM2 to VM1.

    Verify:
        Every link is up again; VM1 holds every byte VM2 wrote, in order.
    """
    with step("Both VMs stopped and started again, their NICs set up as before"):
        happened = kernel_vms.relaunch_vms()
    _links_back(kernel_vms, happened.name)
    _verify_tcp_between(kernel_vms, f"after: {happened.name}")


def test_relaunching_the_host_testpmd_under_two_kernel_guests_leaks_nothing(
    kernel_vms: KernelVmToVmReconnect,
) -> None:
    """The plan's "VM2VM stability": the host testpmd relaunched RELAUNCHES times.

    Steps:
        RELAUNCHES times: kill -9 the host testpmd and start it again, wait for the
        links; read both QEMUs' open fds and memory, the run's hugepage files and sockets
        on the host. Then a known byte stream over TCP from VM2 to VM1.

    Verify:
        Links come up every time; after the last relaunch the QEMUs hold as many fds and
        as much memory as after the first, the host as many hugepage files and sockets;
        VM1 holds every byte VM2 wrote, in order.
    """
    _relaunch_often(kernel_vms, kernel_vms.relaunch_host_testpmd, kernel_vms.qemu_holdings)
    _verify_tcp_between(kernel_vms, f"after {RELAUNCHES} relaunches")


# -- the steps the tests share -----------------------------------------------------------------


def _across(
    reconnect: PvpReconnect | PvvpReconnect,
    through_pvp: Callable[..., StreamRun],
    event: Callable[[], Event],
) -> None:
    """An event with a stream crossing the path from before it to after it."""
    with through_pvp(duration=SETTLE_S + EVENT_MAX_S + SETTLE_S) as run:
        run.wait_started()
        wait_for_dut(SETTLE_S)
        with step("The event, while the stream crosses the path"):
            happened = event()
        wait_for_dut(SETTLE_S)
        run.stop()
    stream = run.wait()
    counters = _attach_counters(reconnect, happened)
    verify_sender(stream, "the reconnect stream judges the path")
    _links_back(reconnect, happened.name)
    account = stream.account(happened.window(stream))
    late = late_outages(account.windows[0], RESUME_S)
    stall = reconnect.packed_ring_stall(happened, counters) if late else None
    _verify_the_stream(stream, happened, account, resumed=stall is None)
    if stall is not None:
        known_defect(stall)


def _attach_counters(
    reconnect: PvpReconnect | PvvpReconnect, happened: Event
) -> dict[str, dict[int, PortStats]]:
    """Every testpmd's port counters after the event, attached; returned."""
    counters = reconnect.port_counters()
    attach_table(
        f"port counters after: {happened.name}",
        ["testpmd", "port", "RX", "TX"],
        [
            [side, p, s.rx_packets, s.tx_packets]
            for side in counters
            for p, s in counters[side].items()
        ],
    )
    return counters


def _links_back(reconnect: PvpReconnect | PvvpReconnect, after: str) -> None:
    with step(f"show port info: every link up after: {after}"):
        host, guest = reconnect.host_vhost_ports(), reconnect.guest_ports()
        verify_ports(host, "the host's vhost-user ports are up again", link_up="all")
        verify_ports(guest, "the guest's virtio ports are up again", link_up="all")


def _verify_the_stream(
    stream: StreamResult, event: Event, account: LossAccount, *, resumed: bool
) -> None:
    """Every frame whole and in order; loss only inside the event; outage reported.

    resumed=False: the stream's return is not judged here (a known defect explains it).
    """
    (inside,) = account.windows
    attach_stream(f"stream across: {event.name}", stream, [inside.window])
    record_figure(f"{event.name}: outage", inside.downtime_ms, "ms", better="lower",
                  tolerance=0.5, slack=100)  # fmt: skip
    record_figure(f"{event.name}: frames lost", inside.lost, "frames", better="lower",
                  slack=100)  # fmt: skip
    attach_text(
        "the event in traffic",
        f"{event.name}: {event.back_at - event.started_at:.1f} s from the first command to "
        f"every link up; longest outage {inside.downtime_ms:.1f} ms, {inside.lost} frames lost "
        f"of {stream.sent} sent, {stream.received} received",
    )
    with step("Every frame crosses the path whole and in order, the event included"):
        verify_frames_intact(stream, "traffic crosses the path across the event")
    with step(f"The stream is back within {RESUME_S:g} s of every link up"):
        if resumed:
            verify_resumed(inside, "traffic resumes once the links are back", within_s=RESUME_S)
    with step("Nothing is lost, duplicated or reordered outside the event"):
        verify_clean_outside(
            account, "traffic resumes: nothing lost or duplicated around the event"
        )


def _verify_tcp_across(
    transfer: GuestTransfer, event: Event, went: float, back: float, *, resumed: bool
) -> None:
    """The byte stream across `event`: moving before, moving again after, every byte there.

    `went`, `back`: the receiver's uptime as the event began and once every link was up.
    resumed=False: the stream's return is not judged (a known defect explains it), only
    that what arrived is what was sent first, in order.
    """
    _attach_readouts(transfer)
    stall = transfer.longest_stall(went, back)
    moved = transfer.first_growth_after(back)
    bound = back - went + TCP_RETRY_SLACK_S
    stall_ms = stall.seconds * 1000 if stall else 0.0
    record_figure(f"{event.name}: TCP stall (VM to VM)", stall_ms, "ms", better="lower",
                  tolerance=0.5, slack=500)  # fmt: skip
    attach_text(
        "the event in the byte stream",
        f"{event.name}: {back - went:.1f} s from the first command to every link up (VM1's "
        f"clock); the stream stood still {stall_ms:.0f} ms; "
        + (f"it moved again {moved - back:.1f} s after the links were up; "
           if moved is not None else "it never moved again; ")
        + f"{transfer.received.length} of {transfer.sent.length} bytes arrived, "
        f"{transfer.retransmits} TCP segments sent again",
    )  # fmt: skip
    with step("The stream was moving when the event began"):
        verify(
            transfer.bytes_at(went) > transfer.bytes_at(went - TCP_SETTLE_S / 2),
            "TCP flows between the VMs through the host before the event",
            seen=f"{transfer.bytes_at(went)} bytes at the event, "
            f"{transfer.bytes_at(went - TCP_SETTLE_S / 2)} {TCP_SETTLE_S / 2:g} s before",
        )
    with step(f"TCP moves again within {bound:.1f} s of every link up"):
        if resumed:
            verify(
                moved is not None and moved - back <= bound,
                f"TCP between the VMs resumes once the links are back; {event.name}",
                expected=f"bytes arriving again within {bound:.1f} s",
                seen="no byte arrived after the links were back"
                if moved is None
                else f"the first bytes {moved - back:.1f} s after",
            )
    with step("VM1 holds every byte VM2 wrote, in order"):
        verify_transfer(transfer, "TCP between the VMs carries every byte across the event",
                        whole=resumed)  # fmt: skip


def _attach_readouts(transfer: GuestTransfer) -> None:
    for name, text in transfer.readouts.items():
        attach_text(name, text)


def _verify_tcp_between(kernel_vms: KernelVmToVmReconnect, when: str) -> None:
    """A byte stream from VM2 to VM1 for TCP_SETTLE_S: every byte arrives, in order."""
    with step(f"A known byte stream over TCP from VM2 to VM1 {when}"):
        with kernel_vms.pvvp.byte_stream() as stream:
            stream.wait_flowing(f"TCP flows between the VMs through the host {when}")
            wait_for_dut(TCP_SETTLE_S)
            transfer = stream.stop()
        _attach_readouts(transfer)
        attach_text(
            "the byte stream",
            f"{transfer.received.length} of {transfer.sent.length} bytes arrived, "
            f"{transfer.retransmits} TCP segments sent again",
        )
        verify_transfer(transfer, "TCP between the VMs carries every byte once the links are back")


def _stability(
    reconnect: PvpReconnect | PvvpReconnect,
    through_pvp: Callable[..., StreamRun],
    event: Callable[[], Event],
    holdings: Callable[[], Holdings],
) -> None:
    _relaunch_often(reconnect, event, holdings)
    with step("A stream crosses the path after the last relaunch"):
        stream = through_pvp(duration=SETTLE_S).wait()
        verify_sender(stream, "the stream after the relaunches judges the path")
        verify_frames_intact(stream, "traffic crosses the path after the relaunches")
        verify(
            stream.lost == 0 and stream.duplicated == 0,
            "after the relaunches the path loses and duplicates nothing",
            seen=f"{stream.lost} lost, {stream.duplicated} duplicated of {stream.sent}",
        )


def _relaunch_often(
    reconnect: PvpReconnect | PvvpReconnect,
    event: Callable[[], Event],
    holdings: Callable[[], Holdings],
) -> None:
    """The event RELAUNCHES times, links up each time; what stays holds no more at the end."""
    readings: list[Holdings] = []
    name = ""
    try:
        for number in range(1, RELAUNCHES + 1):
            with step(f"Relaunch {number} of {RELAUNCHES}"):
                name = event().name
                attach_text("relaunched", f"{name}: relaunch {number}")
                verify_ports(
                    {**reconnect.host_vhost_ports(), **reconnect.guest_ports()},
                    "every link is up again after each relaunch",
                    link_up="all",
                )
                readings.append(holdings())
    finally:
        attach_table(
            f"what the side that stays holds after each: {name}",
            ["relaunch", *HOLDINGS_COLUMNS],
            [[n, *r.row()] for n, r in enumerate(readings, 1)],
        )
    first, last = readings[0], readings[-1]
    with step(f"After {RELAUNCHES} relaunches nothing leaked"):
        verify(
            last.leaks(first) == [],
            "after the last relaunch the side that stays holds no more than after the first "
            "(fds, mapped memory, hugepage files, sockets)",
            seen=f"{name}, {RELAUNCHES} times: " + "; ".join(last.leaks(first)),
        )
