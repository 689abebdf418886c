"""Guide 1: live migration of a VM with an SR-IOV VF, using the bonding PMD (chapter 1).

A VM cannot be migrated with a VF assigned, so in the VM testpmd bonds virtio (P0) and the
VF (P1) into P2, active-backup with the VF primary. Before the migration traffic moves to
virtio and the VF is taken out (bond, testpmd, QEMU); the VM migrates to host_server_2
with virtio only; there the VF is added back and made primary, and virtio taken out.

One sequenced stream from the TG crosses the bond from the first forwarding step to the
last. Loss is allowed only while the guide changes the data path (failover, VF detach,
migration, VF re-attach), each change within its bound; nowhere else.

On a lab the VF is an SR-IOV VF of a Niantic or a Fortville (`-m niantic` / `-m
fortville`); on the virtual lab an emulated e1000 stands in for it (the report says so).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

import allure
import pytest

from framework.config.model import Topology, VmNic
from framework.dpdk.testpmd import TestPmdError
from framework.dpdk.verify import (
    BondState,
    verify_bond,
    verify_port_macs,
    verify_port_traffic,
    verify_ports,
)
from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_table, attach_text, step
from framework.report.findings import observe
from framework.report.outcomes import known_defect, skip_lacking
from framework.report.plugin import set_environment
from framework.scenarios.sriov_bond_migration import (
    BOND_PORT,
    GUIDE_VF_MAC,
    VF_PORT,
    VIRTIO_PORT,
    SriovBondMigration,
    stream_frame,
)
from framework.traffic.checks import (
    QEMU_INCOMING_TAP_HEADER,
    known_defects_seen,
    verify_frames_intact,
    verify_sender,
)
from framework.traffic.generator import StreamRun, TrafficGenerator
from framework.traffic.stream import StreamResult
from framework.traffic.verify import verify_forwarded, verify_not_forwarded
from framework.traffic.windows import (
    verify_clean_outside,
    verify_window,
    with_jitter,
)
from framework.verify import verify, wait_for_dut
from framework.virt.qemu import viommu_summary
from framework.virt.verify import (
    verify_migration_refused,
    verify_perm_addr_kept,
    verify_vm_status,
)
from framework.virt.vm import VirtualMachine

pytestmark = [
    pytest.mark.guide(1),
    pytest.mark.migration,
    pytest.mark.virtio,
    pytest.mark.slow,
    # outages are measured to the millisecond: no other run's guide meanwhile
    pytest.mark.cpu_exclusive,
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("1 Live migration of a VM with an SR-IOV VF (bonding PMD, active-backup)"),
]

# One VM per kind of VF; each runs where the topology has it. Only a real VF signs guide
# 1 off: the e1000 exercises the bonding and migration steps but no SR-IOV (the summary
# names the form each variant ran in).
VARIANTS = [
    pytest.param(
        "bond_vm_niantic",
        marks=[pytest.mark.niantic, pytest.mark.sriov, pytest.mark.vms("bond_vm_niantic"),
               pytest.mark.plannable,
               pytest.mark.form("SR-IOV VF of an Intel 82599")],
        id="niantic-vf",
    ),
    pytest.param(
        "bond_vm_fortville",
        marks=[pytest.mark.fortville, pytest.mark.sriov, pytest.mark.vms("bond_vm_fortville"),
               pytest.mark.plannable,
               pytest.mark.form("SR-IOV VF of an Intel X710")],
        id="fortville-vf",
    ),
    pytest.param(
        "bond_vm",
        marks=[pytest.mark.virtual, pytest.mark.vms("bond_vm"),
               pytest.mark.form("emulated VF", not_proven="SR-IOV not proven")],
        id="emulated-vf",
    ),
]  # fmt: skip

# What `show bonding config 2` shows at each step of the guide.
BOND_STARTED = BondState(
    mode=1, members=(VIRTIO_PORT, VF_PORT), active=(VIRTIO_PORT, VF_PORT), primary=VF_PORT
)
VIRTIO_ONLY = BondState(members=(VIRTIO_PORT,), active=(VIRTIO_PORT,), primary=VIRTIO_PORT)
VF_BACK = BondState(members=(VIRTIO_PORT, VF_PORT), primary=VF_PORT)
VF_ONLY = BondState(members=(VF_PORT,), active=(VF_PORT,), primary=VF_PORT)
# Which ports move traffic: through the VF (P1) and the bond (P2), or through virtio (P0).
VF_PATH = (VF_PORT, BOND_PORT)
VIRTIO_PATH = (VIRTIO_PORT, BOND_PORT)

STREAM_PPS = 500  # what a TCG guest forwards through tap + e1000 without loss here
STREAM_MAX_S = 900  # the stream is stopped when the guide's last step is done
SETTLE_S = 1.0
# `set bonding mac_addr`: an address of the bond's own, no member's (locally administered)
BOND_MAC = "02:00:00:00:01:b0"


def _guide1(
    request: pytest.FixtureRequest,
    topology,
    host_server_1: HostHandle,
    host_server_2: HostHandle,
    dpdk_version: DpdkVersion,
) -> Iterator[SriovBondMigration]:
    setup = SriovBondMigration(topology, host_server_1, host_server_2, dpdk_version, request.param)
    try:
        yield setup
    finally:
        setup.close()


guide1 = pytest.fixture(params=VARIANTS, name="guide1")(_guide1)
# Guide 1 with a real VF only (the emulated VF is migratable: it proves nothing there).
guide1_sriov = pytest.fixture(
    params=[v for v in VARIANTS if v.id != "emulated-vf"], name="guide1_sriov"
)(_guide1)


@pytest.fixture
def through_bond(
    traffic_generator: TrafficGenerator, tg_host: HostHandle
) -> Callable[..., StreamRun]:
    """Start a stream from TG port 0 that crosses the bond and comes back on TG port 1."""
    tx, rx = tg_host.data_port(0).interface, tg_host.data_port(1).interface
    return traffic_generator.starter(tx, rx, stream_frame, pps=STREAM_PPS)


def test_live_migration_with_sriov_vf_and_bonding(
    guide1: SriovBondMigration,
    topology,
    through_bond: Callable[..., StreamRun],
    pytestconfig: pytest.Config,
) -> None:
    """Live-migrate a VM whose traffic crosses a bond of virtio and a VF, as chapter 1 does.

    Steps:
        1.3.1-1.3.2 host_server_1: set up the VF; bridge the NIC port and the VM's tap
            (made before QEMU starts, which opens it by name); start the VM with virtio
            and the VF.
        1.3.2 host_server_1: the QEMU monitor.
        1.3.3 In the VM: set up DPDK; testpmd; show port info all; mac_addr add (as 22.11
            spells it: `mac_addr add 1 AA:BB:CC:DD:EE:FF`; drift shown where refused);
            create bonded device 1 0; add bonding slave 0 2, 1 2; set bonding primary 1 2;
            port start 2; set portlist 2; set fwd mac; start (the stream starts here);
            set bonding primary 0 2; remove bonding slave 1 2; port stop 1; port close 1;
            mac_addr remove 1 (refused by 22.11 after close: shown); port detach 1 (by
            device name: `port close` released the id).
        1.3.4 (qemu) device_del vf1.
        1.3.5 show bonding config 2; show port info all.
        1.3.6-1.3.7 host_server_2: set up the VF and the bridge; start the VM without the
            VF, -incoming; info status.
        1.3.8 Check the switch is up; migrate; info status; info migrate.
        1.3.9-1.3.10 The testpmd prompt on host_server_2; info status; device_add vf1.
        1.3.11 port attach; port start 1; add bonding slave 1 2; set bonding primary 1 2;
            remove bonding slave 0 2; port stop 0; port close 0; port detach 0 (by device
            name) (the stream ends here).

    Verify:
        The bond is mode 1 with P0 and P1, primary P1, both active, every link up; VF
        traffic is seen at P1 and P2, none at P0; after the failover one active port,
        primary P0, traffic on P0 and none on P1, and the VF still has the guide's MAC
        where its port took it; the VF is gone from the guest after
        device_del; the destination waits (inmigrate), the migration completes (source
        postmigrate, destination running) and traffic crosses virtio on host_server_2; after
        the re-attach two ports, primary P1, traffic at P1 and P2; after virtio is removed,
        traffic still at P1 and P2. Every frame that arrives is the frame sent as the
        bond's mac forwarding rewrites it, byte for byte (in the windows too). The stream
        loses, duplicates and reorders nothing outside the failover, VF detach, migration
        and re-attach windows; in each of them the outages, the longest, the frames lost and
        the span over which they were sent are within the window's bounds (topology
        `loss_windows.guide1`).
    """
    vm = _start_the_vm_with_virtio_and_the_vf(guide1, pytestconfig)
    _bond_virtio_and_the_vf_in_the_vm(guide1)
    with through_bond(duration=STREAM_MAX_S, expect=guide1.arrival_form()) as run:
        run.wait_started()
        _forward_on_the_bond(guide1)
        _fail_over_to_virtio(guide1)
        vf_address = _take_the_vf_out(guide1)
        dest_vm = _migrate_with_virtio_only(guide1, vm)
        _bring_the_vf_back(guide1, dest_vm, vf_address)
        _take_virtio_out(guide1)
        wait_for_dut(SETTLE_S)
        run.stop()
    _verify_the_stream(guide1, topology, run.wait())


# -- the guide's steps, in its order ------------------------------------------------------


def test_qemu_refuses_to_migrate_a_vm_with_its_vf(
    guide1_sriov: SriovBondMigration, pytestconfig: pytest.Config
) -> None:
    """1.1: "It is not possible to migrate a Virtual Machine which has an SR-IOV VF".

    The reason the recipe exists, from QEMU's own answer.

    Steps:
        1.3.1-1.3.2 on host_server_1: the VF, the bridge, the VM with virtio and the VF;
        `migrate tcp:<host_server_2>:5555` while the VF is assigned.

    Verify:
        QEMU refuses at once, naming the VFIO device ("VFIO device doesn't support
        migration": QEMU 7.2's hw/vfio/migration.c blocks migration for a VF without
        the kernel's migration region), and the VM keeps running on host_server_1.
    """
    vm = _start_the_vm_with_virtio_and_the_vf(guide1_sriov, pytestconfig)
    with guide1_sriov.step("1.1 (qemu) migrate, the VF still assigned"):
        verify_migration_refused(
            guide1_sriov.migration_refusal(),
            "guide 1.1: it is not possible to migrate a VM which has an SR-IOV VF",
            because="VFIO device doesn't support migration",
        )
        verify_vm_status(vm, "the VM keeps running on host_server_1", "running")


def _start_the_vm_with_virtio_and_the_vf(
    guide1: SriovBondMigration, pytestconfig: pytest.Config
) -> VirtualMachine:
    with guide1.step("1.3.1-1.3.2 host_server_1: the VF; the bridge; the VM with virtio and VF"):
        vf = guide1.set_up_vf(guide1.source)
        attach_text("the VF", vf.describe())
        set_environment(pytestconfig, {"Guide 1 VF": vf.describe()})
        guide1.set_up_bridge(guide1.source)
        vm = guide1.start_vm()
        attach_text("QEMU", _qemu_text(vm))
    with guide1.step("1.3.2 host_server_1: the QEMU monitor"):
        verify_vm_status(vm, "the VM runs on host_server_1", "running")
        guide1.drift("telnet 0 3333 (HMP monitor)", f"QMP at {vm.address}:{vm.qmp_port}")
    return vm


def _qemu_text(vm: VirtualMachine) -> str:
    return (
        f"accelerator: {vm.accel} ({vm.accel_reason})\nvIOMMU: {viommu_summary(vm.spec)}\n"
        + " ".join(vm.argv)
    )


def _bond_virtio_and_the_vf_in_the_vm(guide1: SriovBondMigration) -> None:
    with guide1.step("1.3.3 In the VM: setup_dpdk_in_vm.sh (hugepages, binding)"):
        drivers = guide1.set_up_dpdk_in_vm()
        verify(guide1.guest_hugepages() > 0, "guide: hugepages reserved in the VM")
        for address, driver in drivers.items():
            verify(
                driver == guide1.guest_dpdk_driver,
                f"guide: {address} bound for DPDK ({guide1.guest_dpdk_driver}), got {driver}",
            )
    with guide1.step("1.3.3 run_testpmd_bonding_in_vm.sh; show port info all"):
        guide1.start_guest_testpmd()
        verify_ports(
            guide1.guest_ports(),
            "guide: virtio is P0 and the VF is P1",
            present=(VIRTIO_PORT, VF_PORT),
            drivers={VIRTIO_PORT: "virtio"},
        )
        guide1.add_vf_mac()
    with guide1.step(
        "1.3.3 create bonded device 1 0; add bonding slave 0 2; add bonding slave 1 2; "
        "set bonding primary 1 2; port start 2"
    ):
        guide1.create_bond()
        verify_ports(
            guide1.guest_ports(), "guide: bonding is port 2 (P2)", drivers={BOND_PORT: "bonding"}
        )
        guide1.set_primary(VF_PORT)
        links = guide1.start_bond()
        verify_bond(
            guide1.bonding_config(),
            "guide: Primary is now P1, mode 1 (active backup), 2 slaves, both active",
            BOND_STARTED,
        )
        verify_ports(links, "guide: Port 0, 1 and 2 Link Up", link_up="all")


def _forward_on_the_bond(guide1: SriovBondMigration) -> None:
    with guide1.step("1.3.3 set portlist 2; set fwd mac; start: VF traffic at P1 and P2"):
        guide1.forward_on_bond()
        verify_port_traffic(
            guide1.port_traffic(),
            "guide: VF traffic is seen at P1 and P2, nothing leaves through the backup port P0",
            moving=VF_PATH,
            silent=(VIRTIO_PORT,),
        )


def _fail_over_to_virtio(guide1: SriovBondMigration) -> None:
    with guide1.step("1.3.3 set bonding primary 0 2; remove bonding slave 1 2", "failover"):
        guide1.set_primary(VIRTIO_PORT)
        guide1.remove_from_bond(VF_PORT)
        config = guide1.bonding_config()
    with guide1.step("1.3.3 show bonding config 2; clear port stats all; show port stats"):
        verify_bond(
            config,
            "guide: Primary is now P0, P1 is out of the bond, there is 1 active slave",
            VIRTIO_ONLY,
        )
        verify_port_traffic(
            guide1.port_traffic(),
            "guide: no VF traffic once P1 left the bond, traffic continues on P0 and P2",
            moving=VIRTIO_PATH,
            silent=(VF_PORT,),
        )
        if guide1.vf_mac_added:
            verify_port_macs(
                guide1.vf_macs(),
                "guide: VF MAC address still present once P1 left the bond",
                present=[GUIDE_VF_MAC],
            )


def _take_the_vf_out(guide1: SriovBondMigration) -> str:
    """The VF out of testpmd and out of the VM; its guest PCI address."""
    with guide1.step(
        f"1.3.3 port stop 1; port close 1; mac_addr remove 1 {GUIDE_VF_MAC}; port detach 1",
        "vf_detach",
    ):
        perm_addr = guide1.detach_port(VF_PORT)
        at_pf = guide1.vf_address_at_pf()
        if at_pf is None:
            attach_text("perm_addr", f"not read: the {guide1.vf_kind} has no kernel PF")
        else:
            verify_perm_addr_kept(
                at_pf,
                "guide: port close should remove the VF MAC address, it does not remove "
                "perm_addr (the kernel PF's address for the VF)",
                perm_addr=perm_addr,
                removed=GUIDE_VF_MAC,
            )
    with guide1.step("1.3.4 (qemu) device_del vf1", "vf_detach"):
        guide1.hot_unplug_vf()
        vf_address = guide1.guest_pci(guide1.vf_nic)
        verify(
            not guide1.guest_sees(vf_address),
            f"after device_del the VM no longer has the VF at {vf_address}",
        )
    with guide1.step("1.3.5 show bonding config 2; show port info all; show port stats"):
        verify_bond(
            guide1.bonding_config(),
            "guide: Primary is now P0. There is 1 active slave",
            VIRTIO_ONLY,
        )
        verify_ports(
            guide1.guest_ports(), "testpmd has P0 and P2 left", present=(VIRTIO_PORT, BOND_PORT)
        )
    return vf_address


def _migrate_with_virtio_only(guide1: SriovBondMigration, vm: VirtualMachine) -> VirtualMachine:
    """1.3.6-1.3.10: the VM waiting on host_server_2, the migration, the VM running there."""
    dst = guide1.destination
    with guide1.step("1.3.6-1.3.7 host_server_2: VF and bridge; the VM waits (-incoming)"):
        guide1.set_up_vf(dst)
        guide1.set_up_bridge(dst)
        dest_vm = guide1.start_destination_vm()
        verify_vm_status(dest_vm, "guide: VM status: paused (inmigrate)", "inmigrate")
    with guide1.step("1.3.8 Check that the switch is up before migrating"):
        verify(guide1.switch_port_up(dst), "guide: the switch is up before migrating")
    with guide1.step(f"1.3.8 migrate tcp:{dst.name}:5555", "migration"):
        # guide: "Migration status: completed": migrate() returns no other (a failed,
        # cancelled or unconverging migration raises MigrationError, naming why)
        result = guide1.migrate()
    with guide1.step("1.3.8 info status; info migrate"):
        verify_vm_status(vm, "guide: VM status: paused (postmigrate)", "postmigrate")
        attach_text("info migrate", str(result))
    with guide1.step("1.3.9 In the VM, now on host_server_2: the testpmd prompt"):
        guide1.reattach_guest()
    with guide1.step("1.3.10 info status: the VM runs on host_server_2; traffic"):
        verify_vm_status(dest_vm, "guide: VM status: running", "running")
        verify_port_traffic(
            guide1.port_traffic(), "traffic crosses virtio on host_server_2", moving=VIRTIO_PATH
        )
    return dest_vm


def _bring_the_vf_back(
    guide1: SriovBondMigration, dest_vm: VirtualMachine, vf_address: str
) -> None:
    """1.3.10-1.3.11: device_add, port attach, the VF back in the bond and primary."""
    with guide1.step("1.3.10 device_add vf1 on host_server_2", "vf_attach"):
        guide1.hot_plug_vf()
        verify(
            guide1.wait_guest_sees(vf_address),
            f"after device_add the VM has the VF back at {vf_address}",
        )
    with guide1.step(
        "1.3.11 port attach 0000:00:04.0; port start 1; add bonding slave 1 2; "
        "set bonding primary 1 2",
        "vf_attach",
    ):
        guide1.bind_in_guest(guide1.guest_pci(guide1.vf_nic))
        guide1.attach_vf_port()
        verify_ports(
            guide1.guest_ports(),
            "guide: Port 1 is attached",
            present=(VIRTIO_PORT, VF_PORT, BOND_PORT),
        )
        guide1.add_vf_mac()
        guide1.add_to_bond(VF_PORT)
        guide1.set_primary(VF_PORT)
        links = guide1.wait_links([VF_PORT, BOND_PORT])
    # The bond moves its traffic to the VF once it sees the VF's link: the data path
    # changes until VF traffic is seen, so this check is still the re-attach window.
    with guide1.step("1.3.11 show bonding config 2; show port stats all: VF traffic", "vf_attach"):
        verify_bond(guide1.bonding_config(), "guide: 2 slaves, primary P1 again", VF_BACK)
        verify_ports(links, "the VF and the bond link up again", link_up="all")
        verify_port_traffic(
            guide1.port_traffic(), "guide: VF traffic is seen at P1 (VF) and P2", moving=VF_PATH
        )


def _take_virtio_out(guide1: SriovBondMigration) -> None:
    with guide1.step("1.3.11 remove bonding slave 0 2; port stop 0; port detach 0"):
        guide1.remove_from_bond(VIRTIO_PORT)
        guide1.detach_port(VIRTIO_PORT)
        verify_ports(
            guide1.guest_ports(),
            "guide: Port '0000:00:03.0' is detached. Now total ports is 2 (P1 and P2)",
            present=(VF_PORT, BOND_PORT),
        )
    with guide1.step("1.3.11 show port info all; show port stats all: VF traffic"):
        verify_bond(guide1.bonding_config(), "only the VF is left in the bond", VF_ONLY)
        verify_port_traffic(
            guide1.port_traffic(),
            "guide: VF traffic is seen at P1 (VF) and P2, virtio removed",
            moving=VF_PATH,
        )


def _verify_the_stream(
    guide1: SriovBondMigration, topology: Topology, stream: StreamResult
) -> None:
    """Every frame whole; loss only in the guide's data-path changes, each within bounds."""
    verify_sender(stream, "guide 1's stream judges the bond")
    guide1.attach_report(stream)
    windows = guide1.windows(stream)
    account = with_jitter(stream, topology.loss_windows.guide1.jitter_ms).account(*windows)
    guide1.record_figures(stream, account)
    for inside in account.windows:
        bounds = topology.window_bounds(1, inside.window.name)
        with step(f"{inside.window.name}: {bounds}"):
            verify_window(inside, bounds, f"loss_windows.guide1.{inside.window.name}")
    with step("Every frame crosses the bond whole, in the windows too"):
        # two members, two rings: frames a member held arrive after newer ones of the other
        # when the bond switches; order is judged outside the windows below
        verify_frames_intact(
            stream, "traffic crosses the bond", in_order=False, known=[QEMU_INCOMING_TAP_HEADER]
        )
    with step("The stream loses, duplicates and reorders nothing outside the windows"):
        # at full resolution: the jitter allowance would join steady loss into the windows
        verify_clean_outside(
            stream.account(*windows),
            "traffic crosses the bond unharmed outside the guide's data-path changes",
        )
    if defects := known_defects_seen(stream, QEMU_INCOMING_TAP_HEADER):
        known_defect("; ".join(defects))


# -- beyond the guide: what DPDK's pmd_bonded, vf_pmd_bonded and vm_hotplug plans check ----


@pytest.fixture
def bonded(guide1: SriovBondMigration) -> SriovBondMigration:
    """The VM on host_server_1 with P2 bonding P0 and P1 (VF primary), forwarding."""
    # A guide step: the commands as the build under test spells them, and its transcript
    with guide1.step("1.3.1-1.3.3 the VM with virtio and the VF; the bond, VF primary; forwarding"):
        guide1.bring_up_bond()
    return guide1


@pytest.fixture
def probe(
    bonded: SriovBondMigration, traffic_generator: TrafficGenerator, tg_host: HostHandle
) -> Callable[[], list[str]]:
    """Send a burst from TG port 0; the source MACs of the frames the VM sent back."""
    return _prober(bonded, traffic_generator, tg_host)


def _prober(
    setup: SriovBondMigration, traffic_generator: TrafficGenerator, tg_host: HostHandle
) -> Callable[[], list[str]]:
    tx, rx = tg_host.data_port(0).interface, tg_host.data_port(1).interface
    return functools.partial(setup.probe, traffic_generator, tx, rx)


def test_bond_mac_is_the_primarys_and_stays_on_failover(
    bonded: SriovBondMigration, probe: Callable[[], list[str]]
) -> None:
    """The bonded device takes the primary's MAC, and keeps it when the primary changes.

    Steps:
        show port info 0, 1, 2; a burst through the bond; set bonding primary 0 2; show
        port info 2; a burst through the bond.

    Verify:
        P2's MAC is P1's (the primary at port start) and the forwarded frames carry it;
        after the primary moves to P0 the bond keeps that MAC and the frames, now leaving
        through P0, still carry it (peers keep one address across a failover).
    """
    with step("show port info 0, 1, 2; a burst through the bond"):
        ports = bonded.guest_ports()
        macs = {p: info.mac.lower() for p, info in ports.items()}
        verify_ports(ports, "the bond's MAC is the primary P1's", macs={BOND_PORT: macs[VF_PORT]})
        verify_forwarded(
            probe(), "forwarded frames carry the bond's MAC", source_mac=macs[BOND_PORT]
        )
    with step("set bonding primary 0 2; show port info 2; a burst through the bond"):
        bonded.set_primary(VIRTIO_PORT)
        verify_ports(
            {BOND_PORT: bonded.pmd.show_port_info(BOND_PORT)},
            "the bond keeps its MAC when the primary changes",
            macs={BOND_PORT: macs[BOND_PORT]},
        )
        stats_before = bonded.pmd.show_port_stats_all()
        seen = probe()
        stats = bonded.pmd.show_port_stats_all()
        verify_forwarded(
            seen,
            "frames leaving through the new primary carry the bond's MAC",
            source_mac=macs[BOND_PORT],
        )
        sent = {p: stats[p].tx_packets - stats_before[p].tx_packets for p in (0, 1)}
        verify(
            sent[VIRTIO_PORT] > 0 and sent[VF_PORT] == 0,
            f"after the failover frames leave through P0 only; sent P0 {sent[0]}, P1 {sent[1]}",
        )


def test_a_member_leaves_with_its_own_mac_and_rejoins_with_it(
    bonded: SriovBondMigration, probe: Callable[[], list[str]]
) -> None:
    """A member taken out of the bond gets its own MAC back, and rejoins with it.

    Steps:
        set bonding mac_addr 2 BOND_MAC; show port info 0, 1, 2; remove bonding slave 1 2;
        show port info 0, 1, 2; add bonding slave 1 2; show port info 0, 1; set bonding
        primary 1 2; show port info 1; set bonding mac_addr 2 BOND_MAC; show port info 0,
        1, 2; a burst through the bond. The members' own MACs are those testpmd showed
        before the bond was made.

    Verify:
        The bond and its primary P1 (the VF) take BOND_MAC, the backup P0 its own MAC
        (DPDK's pmd_bonded plan for active-backup). Out of the bond the VF has its own MAC
        again, and P0, primary now, carries the bond's. Added back, the VF is a backup
        with its own MAC re-applied. 22.11's `set bonding primary` moves no address
        (bond_ethdev_primary_set): what P1 shows then is reported; the bond's next address
        update (`set bonding mac_addr`) gives the primary P1 the bond's MAC and P0 its own
        again, and forwarded frames carry the bond's MAC.
    """
    own = bonded.own_macs
    attach_table("the members' own MACs (testpmd's start)", ["port", "MAC"], list(own.items()))
    with step(f"set bonding mac_addr 2 {BOND_MAC}; show port info 0, 1, 2"):
        bonded.set_bond_mac(BOND_MAC)
        verify_ports(
            bonded.guest_ports(),
            "the bond and its primary P1 take the bond's MAC, the backup P0 keeps its own",
            macs={BOND_PORT: BOND_MAC, VF_PORT: BOND_MAC, VIRTIO_PORT: own[VIRTIO_PORT]},
        )
    with step("remove bonding slave 1 2: the VF has its own MAC again"):
        bonded.remove_from_bond(VF_PORT)
        verify_ports(
            bonded.guest_ports(),
            "out of the bond the VF has its own MAC back, the new primary P0 the bond's",
            macs={VF_PORT: own[VF_PORT], VIRTIO_PORT: BOND_MAC, BOND_PORT: BOND_MAC},
        )
    with step("add bonding slave 1 2: the VF rejoins as a backup with its own MAC"):
        bonded.add_to_bond(VF_PORT)
        verify_ports(
            bonded.guest_ports(),
            "back in the bond as a backup, the VF has its own MAC re-applied",
            macs={VF_PORT: own[VF_PORT], VIRTIO_PORT: BOND_MAC},
        )
    with step("set bonding primary 1 2: 22.11 moves no address (reported)"):
        bonded.set_primary(VF_PORT)
        bonded.wait_links([VF_PORT, BOND_PORT])
        ports = bonded.guest_ports()
        attach_text(
            "after set bonding primary 1 2",
            f"P1 (primary) {ports[VF_PORT].mac.lower()}, P0 {ports[VIRTIO_PORT].mac.lower()}, "
            f"bond {ports[BOND_PORT].mac.lower()}: DPDK 22.11 updates the members' addresses "
            "on a member's add or removal, a link change of the primary and `set bonding "
            "mac_addr`, not on `set bonding primary`",
        )
    with step(f"set bonding mac_addr 2 {BOND_MAC}: the primary P1 takes the bond's MAC"):
        bonded.set_bond_mac(BOND_MAC)
        verify_ports(
            bonded.guest_ports(),
            "the bond's addresses updated: its primary P1 carries its MAC, P0 its own again",
            macs={VF_PORT: BOND_MAC, BOND_PORT: BOND_MAC, VIRTIO_PORT: own[VIRTIO_PORT]},
        )
        verify_forwarded(
            probe(), "forwarded frames carry the address set on the bond", source_mac=BOND_MAC
        )


def test_promiscuous_mode_set_on_the_bond_reaches_its_primary(
    bonded: SriovBondMigration, probe: Callable[[], list[str]]
) -> None:
    """`set promisc 2 off` reaches the bond's primary; frames for others stop coming in.

    The stream's frames are for a MAC nobody has (the switch floods them): only a
    promiscuous port takes them.

    Steps:
        show port info 0, 1, 2; set promisc 2 off; show port info 0, 1, 2; a burst; set
        promisc 2 on; show port info 1, 2; a burst.

    Verify:
        testpmd starts every port promiscuous. With promiscuous mode off on the bond, the
        bond and its primary P1 are no longer promiscuous (active-backup sets the primary
        alone, DPDK's pmd_bonded plan: the backup P0 is left as it was) and no frame for
        another MAC comes through the bond; on again, P1 is promiscuous and they do.
    """
    with step("show port info 0, 1, 2: every port promiscuous"):
        ports = bonded.guest_ports()
        verify_ports(ports, "testpmd starts every port promiscuous", promiscuous="all")
        verify_forwarded(probe(), "frames for another MAC cross a promiscuous bond")
    with step("set promisc 2 off: the bond and its primary P1 are not promiscuous"):
        bonded.set_bond_promisc(False)
        verify_ports(
            bonded.guest_ports(),
            "promiscuous mode off on the bond reaches its primary P1, not the backup P0",
            promiscuous=(VIRTIO_PORT,),
            not_promiscuous=(VF_PORT, BOND_PORT),
        )
        verify_not_forwarded(probe(), "frames for another MAC no longer cross the bond")
    with step("set promisc 2 on: P1 promiscuous again, the frames cross"):
        bonded.set_bond_promisc(True)
        verify_ports(
            bonded.guest_ports(),
            "promiscuous mode on again on the bond and its primary P1",
            promiscuous="all",
        )
        verify_forwarded(probe(), "frames for another MAC cross the bond again")


# the bond fails over by itself on link loss: a plan's testpmd cannot show it (the test
# would poll show bonding config to its time bound)
@pytest.mark.plannable(False)
def test_member_link_down_fails_over_by_itself(
    bonded: SriovBondMigration, probe: Callable[[], list[str]]
) -> None:
    """Active-backup fails over on link loss, and sends nothing with every member down.

    Steps:
        The VF's link down (its PF; QEMU for the emulated VF); show bonding config 2; a
        burst; virtio's link down too; show port info 2; a burst; both links up again.

    Verify:
        With the VF down the bond has one active port, P0, with no command given, and
        traffic still crosses it; with both down the bond's link is down and no frame
        comes back; with both up again the VF is active again and traffic crosses.
    """
    with step("The VF's link goes down: the bond fails over to P0 by itself"):
        bonded.set_vf_link(False)
        verify_bond(
            bonded.wait_bond([VIRTIO_PORT]),
            "with the VF's link down only P0 is active",
            BondState(active=(VIRTIO_PORT,)),
        )
        verify_forwarded(probe(), "traffic crosses the bond through P0 while the VF is down")
    with step("Virtio's link goes down too: nothing is sent"):
        bonded.set_virtio_link(False)
        verify_bond(bonded.wait_bond([]), "no member is active", BondState(active=()))
        verify_ports(
            {BOND_PORT: bonded.pmd.show_port_info(BOND_PORT)},
            "the bond's link is down with every member down",
            link_down="all",
        )
        verify_not_forwarded(probe(), "with every member down nothing is sent")
    with step("Both links up: the VF is active again and traffic crosses"):
        bonded.set_virtio_link(True)
        bonded.set_vf_link(True)
        verify_bond(
            bonded.wait_bond([VIRTIO_PORT, VF_PORT], timeout=20),
            "both members are active again",
            BondState(active=(VIRTIO_PORT, VF_PORT)),
        )
        verify_forwarded(probe(), "traffic crosses the bond again")


def test_vf_hot_unplug_and_plug_three_times(
    bonded: SriovBondMigration, probe: Callable[[], list[str]]
) -> None:
    """The guide's VF detach/attach cycle, on one host, three times over.

    Steps:
        Three times: set bonding primary 0 2; remove bonding slave 1 2; port stop 1; port
        detach 1; device_del vf1; device_add vf1; port attach; port start 1; add bonding
        slave 1 2; set bonding primary 1 2; a burst.

    Verify:
        Each time the VF leaves the guest and comes back at its address as P1, the bond
        has two ports with P1 primary and active, and frames cross it through P1.
    """
    address = bonded.guest_pci(bonded.vf_nic)
    for cycle in (1, 2, 3):
        with step(f"cycle {cycle}: the VF out (bond, testpmd, device_del)"):
            bonded.set_primary(VIRTIO_PORT)
            bonded.remove_from_bond(VF_PORT)
            bonded.detach_port(VF_PORT)
            bonded.hot_unplug_vf()
            verify(not bonded.guest_sees(address), f"cycle {cycle}: the VF left the VM")
        with step(f"cycle {cycle}: the VF back (device_add, port attach, bond, primary)"):
            bonded.hot_plug_vf()
            verify(bonded.wait_guest_sees(address), f"cycle {cycle}: the VF is back in the VM")
            bonded.bind_in_guest(address)
            bonded.attach_vf_port()
            verify_ports(
                bonded.guest_ports(),
                "the VF is P1 again",
                present=(VIRTIO_PORT, VF_PORT, BOND_PORT),
            )
            bonded.add_to_bond(VF_PORT)
            bonded.set_primary(VF_PORT)
            verify_bond(
                bonded.wait_bond([VIRTIO_PORT, VF_PORT], timeout=20),
                "P1 is primary and active again",
                BondState(active=(VIRTIO_PORT, VF_PORT), primary=VF_PORT),
            )
            before = bonded.pmd.show_port_stats(VF_PORT).tx_packets
            verify_forwarded(probe(), "traffic crosses the bond with the VF back")
            sent = bonded.pmd.show_port_stats(VF_PORT).tx_packets - before
            verify(sent > 0, f"cycle {cycle}: frames leave through the VF (P1 sent {sent})")


@pytest.fixture
def hot_plug(
    guide1: SriovBondMigration,
    pytestconfig: pytest.Config,
    traffic_generator: TrafficGenerator,
    tg_host: HostHandle,
) -> SriovBondMigration:
    """The VM on host_server_1, its testpmd on P0 and P1 with --hot-plug, `set fwd mac`.

    DPDK's vm_hotplug plan removes only devices bound to vfio-pci ("hot-unplugging igb_uio
    can crash the kernel"). Without a vIOMMU the built-in guest binds uio_pci_generic (its
    Debian kernel has no VFIO no-IOMMU mode), and there a surprise removal kills testpmd
    22.11 (SIGSEGV, measured on the virtual lab): the plan's cases need a vfio guest, which
    the built-in guest is with a vIOMMU (the topology's `hot_plug_viommu` for these cases,
    or `viommu` for all of guide 1).
    """
    guide1.for_hot_plug()
    if guide1.guest_dpdk_driver != "vfio-pci":
        skip_lacking(
            f"vms.{guide1.vm_name}: a guest binding vfio-pci (DPDK's vm_hotplug plan removes "
            f"vfio devices only; this guest binds {guide1.guest_dpdk_driver}: give the VM "
            "hot_plug_viommu: true)"
        )
    with step("The VM with virtio and the VF; testpmd --hot-plug on P0 and P1; set fwd mac"):
        guide1.bring_up_hot_plug(peer=traffic_generator.mac_of(tg_host.data_port(1).interface))
        attach_text("QEMU", _qemu_text(guide1.vm))
        set_environment(pytestconfig, {"Guide 1 vIOMMU": viommu_summary(guide1.spec)})
    return guide1


@pytest.fixture
def hot_probe(
    hot_plug: SriovBondMigration, traffic_generator: TrafficGenerator, tg_host: HostHandle
) -> Callable[[], list[str]]:
    """Send a burst from TG port 0 to the guest's ports; the source MACs of what came back.

    The ports are not promiscuous (see SriovBondMigration._no_loops): the frames go to
    their own MACs, in turn.
    """
    tx, rx = tg_host.data_port(0).interface, tg_host.data_port(1).interface
    return lambda: hot_plug.probe(traffic_generator, tx, rx, to=list(hot_plug.own_macs.values()))


def test_a_device_removed_under_a_started_port_comes_back(
    hot_plug: SriovBondMigration, hot_probe: Callable[[], list[str]]
) -> None:
    """DPDK's vm_hotplug plan, one device: the VF removed by QEMU while its port runs.

    Steps:
        A burst. Three times: device_del vf1 with P1 started (no port stop, close or
        detach first); show port summary; device_add vf1; bind it; port attach
        0000:00:04.0; port start all; a burst. Then the "+ reset" form: device_del vf1;
        quit testpmd; device_add vf1; bind it; testpmd --hot-plug again; a burst.

    Verify:
        Frames leave through P1 with the VF's MAC. Each removal: the guest lets the
        device go, testpmd survives it, reports it ("Device is detached") and is left with
        P0 only; each return: the VF is P1 again and frames leave through it. After the
        reset testpmd has P0 and P1 and frames leave through P1.
    """
    vf, address = hot_plug.vf_nic, hot_plug.guest_pci(hot_plug.vf_nic)
    vf_mac = hot_plug.own_macs[VF_PORT]
    with step("A burst: frames leave through P1 (the VF), with its MAC"):
        verify(vf_mac in hot_probe(), "frames cross the VM through the VF", seen=hot_probe())
    for cycle in (1, 2, 3):
        with step(f"cycle {cycle}: device_del vf1, P1 started (no port stop, close, detach)"):
            hot_plug.surprise_unplug(vf)
            _removed(hot_plug, [address], [VIRTIO_PORT], cycle)
        with step(f"cycle {cycle}: device_add vf1; port attach {address}; port start all"):
            _plugged_back(hot_plug, [vf], [VF_PORT])
            verify(vf_mac in hot_probe(), f"cycle {cycle}: frames leave through the VF again")
    with step("+ reset: device_del vf1; quit testpmd; device_add vf1; testpmd --hot-plug"):
        _reset(hot_plug, [vf], [VIRTIO_PORT])
        verify_ports(
            hot_plug.guest_ports(), "+ reset: testpmd has P0 and P1", present=(VIRTIO_PORT, VF_PORT)
        )
        verify(vf_mac in hot_probe(), "+ reset: frames leave through the VF")


def test_two_devices_removed_at_once_come_back(
    hot_plug: SriovBondMigration, hot_probe: Callable[[], list[str]]
) -> None:
    """DPDK's vm_hotplug plan, two devices: virtio and the VF removed together, ports running.

    Steps:
        device_del net1 and vf1, both ports started; show port summary; device_add both;
        bind them; port attach each; port start all; a burst. Then the "+ reset" form:
        device_del both; quit testpmd; device_add both; bind them; testpmd --hot-plug
        again; a burst.

    Verify:
        The guest lets both go; testpmd survives with no port left, having reported both
        removals; attached again they are P0 and P1 and frames leave through each. After
        the reset testpmd has P0 and P1 and frames leave through each.
    """
    nics = [hot_plug.virtio_nic, hot_plug.vf_nic]
    addresses = [hot_plug.guest_pci(nic) for nic in nics]
    macs = [hot_plug.own_macs[VIRTIO_PORT], hot_plug.own_macs[VF_PORT]]
    with step("device_del net1 and vf1, both ports started"):
        hot_plug.surprise_unplug(*nics)
        _removed(hot_plug, addresses, [], 2)
    with step("device_add both; port attach each; port start all; a burst"):
        _plugged_back(hot_plug, nics, [VIRTIO_PORT, VF_PORT])
        seen = hot_probe()
        verify(all(mac in seen for mac in macs), "frames leave through both again", seen=seen)
    with step("+ reset: device_del both; quit testpmd; device_add both; testpmd --hot-plug"):
        _reset(hot_plug, nics, [])
        seen = hot_probe()
        verify(all(mac in seen for mac in macs), "+ reset: frames leave through both", seen=seen)


def _reset(hot_plug: SriovBondMigration, nics: list[VmNic], left: list[int]) -> None:
    """The plan's "+ reset": device_del; quit testpmd; device_add; bind; testpmd again.

    testpmd quits once it has handled the removal (`left` ports, forwarding restarted).
    """
    hot_plug.surprise_unplug(*nics)
    ports = hot_plug.wait_ports(left)
    verify(ports == left, "+ reset: testpmd survives the removal", seen=f"ports {ports}")
    hot_plug.pmd.close()
    hot_plug.plug_back(*nics)
    addresses = [hot_plug.guest_pci(nic) for nic in nics]
    verify(
        all(hot_plug.wait_guest_sees(a) for a in addresses),
        "+ reset: the devices are back in the VM",
    )
    hot_plug.bind_in_guest(*addresses)
    hot_plug.start_hot_plug_testpmd()


def _removed(
    hot_plug: SriovBondMigration, addresses: list[str], left: list[int], removals: int
) -> None:
    """The guest let the devices go; testpmd survived, reported it, kept `left` only."""
    gone = [a for a in addresses if not hot_plug.guest_sees(a)]
    verify(gone == addresses, "the guest lets the removed devices go", seen=gone)
    ports = hot_plug.wait_ports(left)
    verify(
        ports == left,
        "testpmd (--hot-plug) survives the removal and detaches the ports by itself",
        seen=f"ports {ports}",
        expected=f"ports {left}",
    )
    reported = hot_plug.removals_reported()
    verify(
        reported.count("Device is detached") >= removals,
        "testpmd reports each removal (Device is detached)",
        seen=reported[-400:],
    )


def _plugged_back(hot_plug: SriovBondMigration, nics: list[VmNic], ports: list[int]) -> None:
    """device_add each NIC; bind; port attach each; they get back `ports`."""
    hot_plug.plug_back(*nics)
    addresses = [hot_plug.guest_pci(nic) for nic in nics]
    verify(all(hot_plug.wait_guest_sees(a) for a in addresses), "the devices are back in the VM")
    attached = hot_plug.attach_ports(*nics)
    verify(attached == ports, "port attach: Port N is attached, the ids they had", seen=attached)


# testpmd's refusal of P0 in a second bond is expected by pytest.raises: a plan cannot know it
@pytest.mark.plannable(False)
def test_bond_membership_rules(bonded: SriovBondMigration, probe: Callable[[], list[str]]) -> None:
    """A bond left without members sends nothing; one port cannot join two bonds.

    Steps:
        a burst through the bond; remove bonding slave 0 2; remove bonding slave 1 2; show
        bonding config 2; a burst; add bonding slave 0 2; stop; create bonded device 1 0
        (P3); add bonding slave 0 3.

    Verify:
        Frames cross the bond while it has members; with its last member gone (DPDK 22.11
        allows it, and still reports the bond's link up) P2 has no members and no frame
        comes back; testpmd refuses P0 in a second bond and P0 stays in P2.
    """
    with step("A burst through the bond: frames come back"):
        verify_forwarded(probe(), "traffic crosses the bond while it has members")
    with step("remove bonding slave 0 2; remove bonding slave 1 2: nothing is sent"):
        bonded.remove_from_bond(VIRTIO_PORT)
        bonded.remove_from_bond(VF_PORT)
        verify_bond(bonded.bonding_config(), "P2 has no members left", BondState(members=()))
        # 22.11 still reports the bond's link up (MAC 00:00:00:00:00:00): traffic decides.
        observe(
            "P2 with no members left", "show port info 2", str(bonded.pmd.show_port_info(BOND_PORT))
        )
        verify_not_forwarded(probe(), "a bond without members sends nothing")
    with step("add bonding slave 0 2; stop; create bonded device 1 0; add bonding slave 0 3"):
        # and stop: testpmd creates no bond while forwarding
        bonded.add_back_to_memberless_bond(VIRTIO_PORT)
        second = bonded.pmd.create_bonded_device(1, 0)
        with pytest.raises(TestPmdError) as refused:
            bonded.pmd.add_bonding_slave(VIRTIO_PORT, second)
        observe(
            "testpmd's refusal of P0 in a second bond",
            "add bonding slave 0 3",
            refused.value.message,
        )
        verify_bond(bonded.bonding_config(), "P0 is still in P2", BondState(members=(VIRTIO_PORT,)))
        verify_bond(
            bonded.pmd.show_bonding_config(second), "P3 took no member", BondState(members=())
        )
