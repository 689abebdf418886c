"""Guide 2: live migration of a VM with virtio on hosts running vhost-user (chapter 2).

Each host runs the vhost-switch role (a host testpmd serving the VM's two vhost-user
sockets and owning the host's NIC toward the switch); the VM runs testpmd on P0/P1 with
`set fwd mac retry` / `start tx_first`; a sequenced stream from the TG crosses the VM
while it migrates from host_server_1 to host_server_2, and measures the downtime.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import allure
import pytest

from framework.dpdk.version import DpdkVersion
from framework.lab.hosts import HostHandle
from framework.report.attach import attach_image, attach_table, attach_text, step
from framework.report.plugin import set_environment
from framework.scenarios.vhost_user_migration import GUIDE_GUEST_TESTPMD, VhostUserMigration
from framework.traffic.generator import TrafficGenerator
from framework.traffic.packets import udp_flow
from framework.traffic.plot import plot_stream

pytestmark = [
    pytest.mark.migration,
    pytest.mark.vhost,
    pytest.mark.virtio,
    pytest.mark.virtual,
    pytest.mark.slow,
    allure.parent_suite("DPDK HowTo guides"),
    allure.suite("2 Live migration of a VM with virtio on hosts running vhost-user"),
]

STREAM_PPS = 1000  # what a TCG guest forwards without loss here (DESIGN: 500-1000 pps)
SETTLE_S = 2.0  # traffic before and after the migration


@pytest.fixture(params=["split", "packed"], ids=["split-virtqueue", "packed-virtqueue"])
def migration(
    request: pytest.FixtureRequest,
    topology,
    host_server_1: HostHandle,
    host_server_2: HostHandle,
    dpdk_version: DpdkVersion,
) -> Iterator[VhostUserMigration]:
    if "vm1" not in topology.vms:
        pytest.skip(f"topology '{topology.name}' defines no vms.vm1 for guide 2")
    setup = VhostUserMigration(
        topology, host_server_1, host_server_2, dpdk_version, packed=request.param == "packed"
    )
    try:
        yield setup
    finally:
        setup.close()


def _pvp_frame(tg: TrafficGenerator, tg_port: str) -> object:
    # Any destination MAC: the switch floods and the host NIC ports are promiscuous.
    return udp_flow(tg.mac_of(tg_port), "02:00:00:00:00:99", "198.18.1.1", "198.18.2.1",
                    10000, 20000, seq=0, size=128)  # fmt: skip


def test_live_migration_with_vhost_user(
    migration: VhostUserMigration,
    topology,
    traffic_generator: TrafficGenerator,
    tg_host: HostHandle,
    pytestconfig: pytest.Config,
) -> None:
    src, dst = migration.source, migration.destination
    tx_port, rx_port = tg_host.data_port(0).interface, tg_host.data_port(1).interface
    template = _pvp_frame(traffic_generator, tx_port)
    tx_mac = traffic_generator.mac_of(tx_port)

    with step("2.3.1-2.3.3 host_server_1: set up DPDK, run the vhost switch"):
        migration.start_switch(src)
    with step("2.3.4 Start the VM on host_server_1"):
        vm = migration.start_vm()
        attach_text("QEMU", f"accelerator: {vm.accel} ({vm.accel_reason})\n"
                    f"{' '.join(vm.argv)}")  # fmt: skip
        set_environment(pytestconfig, {"QEMU accelerator": f"{vm.accel} ({vm.accel_reason})"})
    with step("2.3.6 In the VM: run testpmd, set fwd mac retry, start tx_first"):
        pmd = migration.start_guest_testpmd()
        attach_text("guest testpmd", f"guide: {GUIDE_GUEST_TESTPMD}\nran: {' '.join(pmd.argv)}")
    with step("Virtio traffic is seen at P0 and P1"):
        traffic_generator.stream(tx_port, template, rx_port, pps=STREAM_PPS, duration=1.0,
                                 ignore_src=tx_mac)  # fmt: skip
        stats = pmd.show_port_stats_all()
        for port in (0, 1):
            assert stats[port].rx_packets > 0 and stats[port].tx_packets > 0, (
                f"guide: virtio traffic is seen at P{port}; guest port {port} "
                f"RX {stats[port].rx_packets} TX {stats[port].tx_packets}")  # fmt: skip
    with step("2.3.7-2.3.9 host_server_2: set up DPDK, run the vhost switch"):
        migration.start_switch(dst)
    with step("2.3.10-2.3.11 Start the VM on host_server_2: VM status paused (inmigrate)"):
        dest_vm = migration.start_destination_vm()
        assert dest_vm.status() == "inmigrate", "guide: VM status: paused (inmigrate)"

    with step(f"Stream {STREAM_PPS} pps from the TG through the VM"):
        run = traffic_generator.start_stream(
            tx_port, template, rx_port, pps=STREAM_PPS,
            duration=SETTLE_S + 60 + SETTLE_S, ignore_src=tx_mac,
        )  # fmt: skip
        run.wait_started()
        time.sleep(SETTLE_S)
    try:
        with step(f"2.3.12 migrate tcp:{dst.session.address}:5555"):
            result = migration.migrate()
        with step("2.3.12 info status on host_server_1: paused (postmigrate)"):
            assert result.status == "completed", f"guide: Migration status: completed, got {result}"
            assert vm.status() == "postmigrate", "guide: VM status: paused (postmigrate)"
        with step("2.3.14 info status on host_server_2: running"):
            assert dest_vm.status() == "running", "guide: VM status: running"
        time.sleep(SETTLE_S)
    finally:
        run.stop()
    stream = run.wait()

    with step("2.3.13 In the VM, now on host_server_2: the testpmd prompt"):
        pmd = migration.reattach_guest_testpmd()
    with step("2.3.15 Virtio traffic is seen at P0 and P1, on host_server_2's vhost ports"):
        for switch in migration.switches.values():
            switch.clear_stats()
        pmd.clear_counters()
        traffic_generator.stream(tx_port, template, rx_port, pps=STREAM_PPS, duration=1.0,
                                 ignore_src=tx_mac)  # fmt: skip
        after_dst = migration.switches[dst.name].vhost_stats()
        after_src = migration.switches[src.name].vhost_stats()
        guest = pmd.show_port_stats_all()
        attach_table(
            "vhost ports after migration", ["host", "port", "RX", "TX"],
            [[host, port, s.rx_packets, s.tx_packets]
             for host, stats in ((dst.name, after_dst), (src.name, after_src))
             for port, s in stats.items()],
        )  # fmt: skip
        for port, s in after_dst.items():
            assert s.rx_packets > 0 and s.tx_packets > 0, (
                f"traffic crosses host_server_2's vhost port {port} after migration "
                f"(RX {s.rx_packets}, TX {s.tx_packets})")  # fmt: skip
        for port, s in after_src.items():
            assert s.rx_packets == 0 and s.tx_packets == 0, (
                f"no traffic on host_server_1's vhost port {port} after migration "
                f"(RX {s.rx_packets}, TX {s.tx_packets})")  # fmt: skip
        for port in (0, 1):
            assert guest[port].rx_packets > 0 and guest[port].tx_packets > 0, (
                f"guide: virtio traffic is seen at P{port} on host_server_2"
            )

    window = (stream.at(result.started_at), stream.at(result.finished_at))
    gap = stream.gap_around(*window, slack=0.5)
    _report(migration, stream, window, gap)
    bound = topology.migration_downtime_bound_ms
    with step(f"Traffic-measured downtime is at most {bound:g} ms; loss is accounted for"):
        assert stream.received > 0, "the stream crossed the VM before and after migration"
        assert stream.downtime_ms <= bound, (
            f"traffic downtime {stream.downtime_ms:.1f} ms exceeds the bound {bound:g} ms "
            f"(QEMU reported {result.downtime_ms} ms); {stream.summary()}")  # fmt: skip
        in_gaps = sum(g.lost for g in stream.gaps)
        assert stream.lost == in_gaps, (
            f"every lost packet lies in a measured gap: lost {stream.lost}, in gaps {in_gaps}"
        )


def _report(migration: VhostUserMigration, stream, window, gap) -> None:
    result = migration.migration
    assert result is not None
    gap_ms = f"{gap.duration_ms:.1f}" if gap else "no gap"
    attach_table(
        "info migrate vs traffic",
        ["field (guide: info migrate)", "QEMU", "measured from traffic"],
        [
            ["Migration status", result.status, ""],
            ["total time (ms)", result.total_time_ms, f"{(window[1] - window[0]) * 1000:.0f}"],
            ["downtime (ms)", result.downtime_ms, gap_ms],
            ["setup (ms)", result.setup_time_ms, ""],
            ["transferred ram (kbytes)", (result.transferred_ram_bytes or 0) // 1024, ""],
            ["throughput (mbps)", result.throughput_mbps, ""],
            ["remaining ram (kbytes)", (result.remaining_ram or 0) // 1024, ""],
            ["dirty sync count", result.dirty_sync_count, ""],
            ["packets sent / received / lost / duplicated", "",
             f"{stream.sent} / {stream.received} / {stream.lost} / {stream.duplicated}"],
            ["migration gap start / end after `migrate` (ms)", "",
             f"{(gap.start_s - window[0]) * 1000:+.1f} / {(gap.end_s - window[0]) * 1000:+.1f}"
             if gap else "no gap"],
            ["longest gap anywhere (ms)", "", f"{stream.downtime_ms:.1f}"],
            ["resolution (ms)", "", f"{stream.resolution_ms:.3f}"],
        ],
    )  # fmt: skip
    headers, rows = stream.table()
    attach_table("traffic gaps", headers, rows)
    attach_text("stream", stream.summary())
    with tempfile.TemporaryDirectory(prefix="howto-plot-") as tmp:
        events = [
            (stream.at(t), f"{vm.name}: {name}")
            for vm in (migration.source_vm, migration.dest_vm) if vm is not None
            for t, name, _ in vm.events if name in ("STOP", "RESUME")
        ]  # fmt: skip
        png = plot_stream(stream, Path(tmp) / "migration.png", events=events, window=window,
                          title=f"received packets, {migration.vm_name} migrating "
                          f"({'packed' if migration.packed else 'split'} virtqueues)")  # fmt: skip
        attach_image("received packets over time", png)
