"""Deliberate DUT faults, so self-tests can prove that the suite's checks bite.

`pytest --inject-fault NAME testsuites/...` makes the DUT misbehave in one named way (the
container testpmd forwarding nothing, the vhost switch dropping one frame in 50, ...);
tests/ then runs a guide's real test module with the fault and asserts that it fails, and
fails for the right reason. A fault is never active unless named on the command line.

The scenarios (framework/scenarios) hold no fault hooks: they are exactly the code that
runs in a lab. A fault is applied from outside, by wrapping one method of a scenario class
for the length of the pytest session: once the method has done what the guide says, the
fault makes the DUT misbehave through the same typed shells a test uses (testpmd
commands, an eBPF program loaded into testpmd, QMP).
"""

from __future__ import annotations

import functools
import re
import tempfile
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from framework.dpdk.modes import ForwardingMode
from framework.dpdk.version import DpdkVersion
from framework.errors import ConfigError

# The byte the frame-damaging faults flip in a stream frame (untagged IPv4/UDP, marker at
# 42): the fill right behind the 12-byte stamp.
ALTERED_BYTE = 14 + 20 + 8 + 5 + 12 + 3
# A destination MAC nobody has: the switch floods it, so the damaged frames still arrive.
WRONG_PEER = "02:00:00:00:0b:ad"

# Time after a migration before a fault strikes again: beyond the slack the guide-2 test
# grants the migration window, so the fault lands where a correct DUT loses nothing.
AFTER_WINDOW_S = 1.5
# How long the VM stops (twice, from 0.3 s into a migration) in vm-stalls-during-migration.
STALL_DURING_MIGRATION_S = 0.1
# How long the VM is held paused (from 0.3 s into a migration) in vm-paused-during-migration.
PAUSED_DURING_MIGRATION_S = 0.5


@dataclass(frozen=True)
class Fault:
    """One way to break the DUT.

    After the scenario method named by `target` returns, `action(scenario, result, args,
    kwargs)` makes the DUT misbehave.
    """

    name: str
    description: str
    target: str  # "module:Class.method"
    action: Callable[[Any, Any, tuple[Any, ...], dict[str, Any]], None]
    # A fault in the middle of the method: the action runs this many seconds after the
    # method started, while it runs (its result is then None), instead of after it.
    during: float | None = None


def _receive_only(pmd: Any) -> None:
    """Make testpmd keep receiving on its ports but transmit nothing."""
    pmd.stop()
    pmd.set_fwd(ForwardingMode.RXONLY)
    pmd.start()


def _container_forwards_nothing(setup: Any, pmd: Any, *_: Any) -> None:
    _receive_only(pmd)


def _container_port_stopped(setup: Any, pmd: Any, *_: Any) -> None:
    pmd.stop()
    pmd.port_stop(0)
    pmd.start()


def _single_queue(setup: Any, _result: Any, *_: Any) -> None:
    setup.queues = 1


def _dest_forwards_nothing(migration: Any, switch: Any, args: tuple, kwargs: dict) -> None:
    if switch.host is migration.destination:
        _receive_only(switch.pmd)


def _paused_after_migration(migration: Any, *_: Any) -> None:
    # Hold the guest still for longer than any bound: the downtime check must bite.
    migration.dest_vm.pause()
    time.sleep(migration.topology.window_bounds(2, "migration").longest_ms / 1000 + 0.5)
    migration.dest_vm.resume()


def _second_outage(migration: Any, *_: Any) -> None:
    # A short outage after the migration completed: a correct DUT has none.
    time.sleep(AFTER_WINDOW_S)
    migration.dest_vm.pause()
    time.sleep(0.5)
    migration.dest_vm.resume()


def _stall_during_migration(migration: Any, *_: Any) -> None:
    # While its RAM is being copied the VM stalls twice for a moment, well before the
    # switch-over: two more interruptions inside the migration window than a correct DUT
    # shows (a TCG guest may add one stall of its own), each short. A stall, not a pause:
    # QEMU is frozen by its host (SIGSTOP), so its run state stays `running` and only
    # traffic can tell (vm-paused-during-migration is the pause QEMU itself reports).
    vm = migration.source_vm
    for _stall in range(2):
        vm.session.run(["kill", "-STOP", str(vm.pid)])
        time.sleep(STALL_DURING_MIGRATION_S)
        vm.session.run(["kill", "-CONT", str(vm.pid)])
        time.sleep(0.3)


def _paused_during_migration(migration: Any, *_: Any) -> None:
    # A migration that is not live: the VM is stopped (QMP stop) while its RAM is copied,
    # and runs again before the switch-over.
    migration.source_vm.pause()
    time.sleep(PAUSED_DURING_MIGRATION_S)
    migration.source_vm.resume()


def _load_bpf(switch: Any, program: bytes, tag: str, port: int | None = None) -> None:
    """Copy an eBPF object to the switch's host and load it on a port's RX queue 0.

    port: the testpmd port; none: the switch's NIC port.
    """
    remote = f"{switch.host.work_dir}/fault-{tag}.o"
    with tempfile.TemporaryDirectory(prefix="howto-fault-") as tmp:
        local = Path(tmp) / "prog.o"
        local.write_bytes(program)
        switch.host.session.put(local, remote)
    switch.pmd.bpf_load("rx", switch.nic_port if port is None else port, 0, remote)


def _drop_every(switch: Any, n: int) -> None:
    """The switch's NIC port drops stream frames seq n-1, 2n-1, ... (an eBPF program)."""
    from framework.dpdk import bpf
    from framework.traffic.packets import STREAM_SEQ_OFFSET

    _load_bpf(switch, bpf.drop_every_nth(STREAM_SEQ_OFFSET, n, phase=n - 1), f"drop-1-in-{n}")


def _source_drops_every(n: int) -> Callable[..., None]:
    def action(migration: Any, switch: Any, *_: Any) -> None:
        if switch.host is migration.source:
            _drop_every(switch, n)

    return action


def _source_alters_every(n: int) -> Callable[..., None]:
    def action(migration: Any, switch: Any, *_: Any) -> None:
        from framework.dpdk import bpf
        from framework.traffic.packets import STREAM_SEQ_OFFSET

        if switch.host is migration.source:
            # a byte of the fill behind the stamp: headers and stamp stay valid, so only a
            # check of the whole frame can see it
            program = bpf.alter_every_nth(STREAM_SEQ_OFFSET, n, n - 1, ALTERED_BYTE, 0xFF)
            _load_bpf(switch, program, f"alter-1-in-{n}")

    return action


def _duplicates_after_migration(migration: Any, *_: Any) -> None:
    # host_server_1's switch, idle since its VM stopped, starts sending every frame of the
    # TG back to the switch (MACs swapped): the TG receives each frame more than once. Only
    # the TG's own frames are echoed, so echoes of echoes cannot circulate.
    from framework.dpdk import bpf
    from framework.scenarios.vhost_user_migration import STREAM_DST_MAC

    time.sleep(AFTER_WINDOW_S)
    switch = migration.switches[migration.source.name]
    switch.pmd.stop()
    _load_bpf(switch, bpf.keep_only_to(STREAM_DST_MAC), "echo")
    # paired topology: vhost0 <-> vhost1, and the NIC, last and alone, with itself
    switch.pmd.set_portlist([*switch.vhost_ports, switch.nic_port])
    switch.pmd.set_fwd(ForwardingMode.MACSWAP)
    switch.pmd.start()


# -- faults in the middle of a test: something of the lab dies or goes down ------------------


def _primary_ignored(setup: Any, _result: Any, args: tuple, kwargs: dict) -> None:
    # Put back the primary the bond had: `set bonding primary` had no effect.
    wanted = args[0] if args else kwargs["port"]
    others = [p for p in setup.bonding_config().members if p != wanted]
    if others:
        setup.pmd.set_bonding_primary(others[0], setup.bond)


def _vf_not_detached(setup: Any, *_: Any) -> None:
    # device_del is undone at once: QEMU adds the VF back and the guest has it again.
    _removed_devices_kept(setup, None, (setup.vf_nic,))


def _vf_not_reattached(setup: Any, *_: Any) -> None:
    # The VF comes and goes at once: the destination never keeps it.
    setup.vm.unplug_nic(setup.vf_nic)


def _traffic_stops_after_migration(setup: Any, *_: Any) -> None:
    # The destination's tap toward the VM goes down: nothing reaches virtio any more.
    bridge = setup.bridges[setup.destination.name]
    setup.destination.session.run(["ip", "link", "set", bridge.tap, "down"])


def _once(action: Callable[[Any], None]) -> Callable[..., None]:
    """An action that strikes the first time its method runs, in the first test using it."""
    struck: list[bool] = []

    def once(scenario: Any, *_: Any) -> None:
        if not struck:
            struck.append(True)
            action(scenario)

    return once


def _hot_plug_option_dropped(_: Any, argv: list[str], *__: Any) -> None:
    # The guest's testpmd starts without --hot-plug: nothing handles a device's removal.
    # (guide 1's other tests build their argv here too, without it)
    if "--hot-plug" in argv:
        argv.remove("--hot-plug")


def _removed_devices_kept(setup: Any, _: Any, nics: tuple[Any, ...], *__: Any) -> None:
    # Each device_del is undone at once: QEMU adds the device back, the guest has it again.
    setup.plug_back(*nics)
    for nic in nics:
        setup.wait_guest_sees(setup.guest_pci(nic))


def _attached_ports_not_started(setup: Any, ports: list[int], *_: Any) -> None:
    # `port attach` without a working `port start`: the attached ports stay stopped.
    setup.pmd.stop()
    for port in ports:
        setup.pmd.port_stop(port)
    setup.pmd.start()


def _from_the_second(action: Callable[[Any], None]) -> Callable[..., None]:
    """An action that strikes every time its method runs but the first, per scenario.

    A relaunch, a restart, the second of two calls; never a later scenario's first.
    """
    seen: list[weakref.ref[Any]] = []

    def later(scenario: Any, *_: Any) -> None:
        if any(ref() is scenario for ref in seen):
            action(scenario)
        else:
            seen.append(weakref.ref(scenario))

    return later


def _spoken_to_as_22_11(_setup: Any, pmd: Any, *_: Any) -> None:
    # What a suite without the build's translations would do: 22.11's command words, the
    # testpmd's release (and all that reports it) as found.
    pmd.words_of = DpdkVersion(22, 11)


def _guest_testpmd_segfaults(setup: Any) -> None:
    # Once its bond has no member left, the guest's testpmd dies of a segmentation fault as
    # a member is added back, as DPDK 24.11.8's sometimes does.
    pmd = setup.pmd
    add = pmd.add_bonding_slave

    def crashing(slave: int, bond: int) -> None:
        setup.vm.shell.check("kill -SEGV $(pidof dpdk-testpmd)")
        add(slave, bond)

    pmd.add_bonding_slave = crashing


def _guest_image_of_the_host_build(setup: Any, vm: Any, *_: Any) -> None:
    # A mix whose guest boots the host build's image (a cache key that ignores the build):
    # both sides run one DPDK while the run says two.
    from framework.virt.image import ensure_guest_image

    host_build = setup.topology.dpdk
    vm.image = ensure_guest_image(vm.session, testpmd=host_build.testpmd, enter=host_build.enter)


def _vf_link_down(setup: Any, *_: Any) -> None:
    # The VF has no link (a cable or PF fault): the bond cannot make it active.
    setup.set_vf_link(False)


def _backup_port_forwarded(setup: Any, *_: Any) -> None:
    # The application polls the backup member itself, beside the bond.
    setup.pmd.stop()
    setup.pmd.set_portlist([0, setup.bond])
    setup.pmd.start()


def _bond_wrong_peer(setup: Any, *_: Any) -> None:
    # mac forwarding goes on, with a destination MAC other than the peer's
    setup.pmd.stop()
    setup.pmd.set_eth_peer(setup.bond, WRONG_PEER)
    setup.pmd.start()


@_once
def _failover_ignored(setup: Any) -> None:
    # The VF comes back into the bond right after it was removed.
    setup.pmd.add_bonding_slave(1, setup.bond)


@_once
def _kill_host_testpmd(setup: Any) -> None:
    # kill -9 the host testpmd serving the container's vhost-user socket
    from framework.dpdk.launch import kill_testpmd

    kill_testpmd(setup.host.session, setup.switch.pmd)


@_once
def _kill_lab_sshd(setup: Any) -> None:
    # Every sshd of host_server_1's namespace: the daemon and its per-connection children,
    # so the host's SSH sessions (and the programs on their PTYs) go with it.
    import os
    import signal
    import subprocess

    lab = setup.host.lab
    namespace = lab.hosts[setup.host.name].namespace
    pids = subprocess.run(
        ["ip", "netns", "pids", namespace], capture_output=True, text=True, check=False
    ).stdout.split()
    for pid in pids:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "sshd":
                os.kill(int(pid), signal.SIGKILL)
        except (OSError, ValueError):
            continue


@_once
def _switch_port_down(setup: Any) -> None:
    lab = setup.host.lab
    owner = f"{setup.host.name}'s {setup.nic.name}"
    port = next(name for name, whose in lab.switch_ports().items() if whose == owner)
    lab.set_switch_port(port, up=False)


@_once
def _kill_dest_qemu(migration: Any) -> None:
    vm = migration.dest_vm
    migration.destination.session.run(["kill", "-9", str(vm.pid)], check=False)


GUIDE6 = "framework.scenarios.container_networking:ContainerNetworking"
GUIDE2 = "framework.scenarios.vhost_user_migration:VhostUserMigration"
GUIDE1 = "framework.scenarios.sriov_bond_migration:SriovBondMigration"
GUIDE7 = "framework.scenarios.exceptional_path:ExceptionalPath"
GUIDE4 = "framework.scenarios.pvp:Pvp"
RECONNECT = "framework.scenarios.vhost_reconnect:PvpReconnect"
VM_TO_VM = "framework.scenarios.vm_to_vm:KernelVmToVm"


def _relaunched_host_forwards_nothing(scenario: Any) -> None:
    # the relaunched host testpmd (one VM, two, or two kernel VMs) forwards nothing from its
    # first moment, its switch's second start: its links come up only after, so not one
    # frame or segment crosses. (Struck after the relaunch event had returned, links up, a
    # retransmitted TCP segment once crossed first.)
    _receive_only(scenario.host_pmd)


# A byte of a TCP segment's payload as the VMs' kernels send it: behind Ethernet, IPv4
# and TCP with its timestamp option (14 + 20 + 32); pure ACKs (66 bytes) stay untouched.
TCP_PAYLOAD_BYTE = 14 + 20 + 32 + 34


def _vm_to_vm_swaps_payload_words(pair: Any, *_: Any) -> None:
    # every data segment from VM2 has two payload words swapped as the host takes it in:
    # TCP's checksum stays right (a flipped byte the receiving kernel drops, measured), so
    # the segments are taken and only the bytes themselves can tell
    from framework.dpdk import bpf

    program = bpf.swap_words(TCP_PAYLOAD_BYTE)
    _load_bpf(pair.switch, program, "vm2vm-swap", port=pair.switch.vhost_ports[1])


def _relaunched_host_drops_every(n: int) -> Callable[..., None]:
    def action(setup: Any, *_: Any) -> None:
        _drop_every(setup.pvp.switch, n)

    return action


def _relaunch_leaks_a_hugepage_file(setup: Any, *_: Any) -> None:
    # what a host testpmd killed under a --file-prefix of its own leaves: a 2 MB hugepage
    # file named for this run (removed with the run's files when the lab goes down)
    host = setup.pvp.host
    leaked = f"{host.spec.hugepages.mount}/{host.prefix}-leaked-{len(setup.events)}"
    host.session.run(["fallocate", "-l", "2M", leaked])


def _tap_left_down(setup: Any, *_: Any) -> None:
    # ifconfig gave the address; the tap goes down again, as if `up` had been left out.
    setup.run(f"ip link set {setup.tap} down")


def _exceptional_path_forwards_nothing(setup: Any, *_: Any) -> None:
    _receive_only(setup.testpmd)


def _queue_size_ignored(_setup: Any, argv: list[str], *_: Any) -> None:
    # virtio_user0 comes up with the PMD's default ring size, as if queue_size were not read.
    argv[:] = [a.replace(",queue_size=1024", "") for a in argv]


def _rx_cksum_not_applied(setup: Any, *_: Any) -> None:
    # The Rx checksum offloads are taken off virtio_user0 again: no GUEST_CSUM.
    port = 1  # virtio_user0
    for command in (
        f"port stop {port}",
        f"port config {port} rx_offload udp_cksum off",
        f"port config {port} rx_offload tcp_cksum off",
        f"port start {port}",
    ):
        setup.reconfig_output += "\n" + setup.testpmd.command(command)


def _exceptional_path_single_queue(_setup: Any, argv: list[str], *_: Any) -> None:
    # The guide's queues=2 line runs with one queue pair: virtio_user0 and --rxq/--txq.
    argv[:] = [a.replace(",queues=2", "") for a in argv if a not in ("--rxq=2", "--txq=2")]


PVP_FIRST_KEPT = 1000  # pvp-drops-after-1000: frames of a stream the host still forwards


def _pvp_drops_1_in_100(setup: Any, *_: Any) -> None:
    # The host testpmd drops one frame in 100 it receives on NIC 0: a host data path that
    # loses a little at every rate. The frames of the other direction all pass.
    from framework.dpdk import bpf
    from framework.traffic.packets import STREAM_SEQ_OFFSET

    _load_bpf(setup.switch, bpf.drop_every_nth(STREAM_SEQ_OFFSET, 100, phase=99), "pvp-1-in-100")


def _pvp_drops_after(setup: Any, *_: Any) -> None:
    # The host testpmd forwards the first PVP_FIRST_KEPT frames of each stream it receives
    # on NIC 0 and drops the rest: with 1 s trials (one stream per direction), a DUT that
    # loses everything above 2 * PVP_FIRST_KEPT pps. Its NDR is that, far below a correct one.
    from framework.dpdk import bpf
    from framework.traffic.packets import STREAM_SEQ_OFFSET

    _load_bpf(setup.switch, bpf.drop_from(STREAM_SEQ_OFFSET, PVP_FIRST_KEPT), "pvp-after")


def _guest_queues_back_to_one(migration: Any, *_: Any) -> None:
    # The guest's queue change does not last: once the migration is over its ports run
    # one queue pair again.
    pmd = migration.guest_pmd
    pmd.stop()
    pmd.port_stop("all")
    pmd.port_config_queues(1, 1)
    pmd.port_start("all")
    pmd.start()


def _kernel_route_skips_p1(migration: Any, router: Any, *_: Any) -> None:
    # The guest's kernel routes the stream straight back out of P0 (one hop, P1 unused).
    router.vm.shell.check(f"ip route replace {router.dst_ip}/32 dev {router.names[0]}")


def _pvp_host_stop_ignored(setup: Any, *_: Any) -> None:
    # `port stop` of the host's vhost-user ports has no lasting effect: they are started
    # again and the host forwards on.
    for port in setup.switch.vhost_ports:
        setup.host_pmd.port_start(port)
    setup.host_pmd.start()


def _pvp_guest_resumes_nothing(setup: Any, *_: Any) -> None:
    # The guest's ports come back, but its testpmd only receives: nothing returns.
    _receive_only(setup.guest_pmd)


def _vectorized_refused(setup: Any, *_: Any) -> None:
    # Before the guest starts: its virtio device also offers mergeable buffers, with which
    # the PMD turns the split vectorized path down ("disabled split ring vectorized rx for
    # mrg_rxbuf enabled") and takes another: a real refusal by the real PMD.
    from dataclasses import replace

    setup.path = replace(setup.path, mrg_rxbuf=True)


FAULTS: dict[str, Fault] = {
    f.name: f
    for f in [
        Fault(
            "container-forwards-nothing",
            "the container testpmd receives but never transmits (rxonly)",
            f"{GUIDE6}.start_container_testpmd",
            _container_forwards_nothing,
        ),
        Fault(
            "container-port-stopped",
            "the container testpmd's virtio_user port is stopped",
            f"{GUIDE6}.start_container_testpmd",
            _container_port_stopped,
        ),
        Fault(
            "single-queue",
            "both testpmds run with one queue pair although two were asked for",
            f"{GUIDE6}.__init__",
            _single_queue,
        ),
        Fault(
            "dest-host-forwards-nothing",
            "guide 2: host_server_2's vhost switch receives but never transmits (rxonly)",
            f"{GUIDE2}.start_switch",
            _dest_forwards_nothing,
        ),
        Fault(
            "vm-paused-after-migration",
            "guide 2: the migrated VM is held paused for longer than the downtime bound",
            f"{GUIDE2}.migrate",
            _paused_after_migration,
        ),
        Fault(
            "vm-stalls-during-migration",
            f"guide 2: 0.3 s into the migration QEMU is frozen (SIGSTOP) twice for "
            f"{STALL_DURING_MIGRATION_S:g} s (more outages inside the migration window)",
            f"{GUIDE2}.migrate",
            _stall_during_migration,
            during=0.3,
        ),
        Fault(
            "guest-queues-back-to-one",
            "guide 2 (queues changed while migrating): after the migration the guest's "
            "ports run one queue pair again",
            f"{GUIDE2}.reattach_guest_testpmd",
            _guest_queues_back_to_one,
        ),
        Fault(
            "guest-kernel-skips-p1",
            "guide 2 (the guest's kernel forwarding): the guest routes the stream straight "
            "back out of P0, never through P1",
            f"{GUIDE2}.start_guest_router",
            _kernel_route_skips_p1,
        ),
        Fault(
            "vm-paused-during-migration",
            f"guide 2: 0.3 s into the migration the VM is paused (QMP stop) for "
            f"{PAUSED_DURING_MIGRATION_S:g} s: not live",
            f"{GUIDE2}.migrate",
            _paused_during_migration,
            during=0.3,
        ),
        Fault(
            "second-outage-after-migration",
            f"guide 2: {AFTER_WINDOW_S:g} s after the migration the VM stops for 0.5 s",
            f"{GUIDE2}.migrate",
            _second_outage,
        ),
        Fault(
            "duplicates-after-migration",
            f"guide 2: {AFTER_WINDOW_S:g} s after the migration host_server_1 echoes every "
            "TG frame back to the switch",
            f"{GUIDE2}.migrate",
            _duplicates_after_migration,
        ),
        Fault(
            "bond-primary-ignored",
            "guide 1: `set bonding primary` has no effect (the old primary is put back)",
            f"{GUIDE1}.set_primary",
            _primary_ignored,
        ),
        Fault(
            "vf-link-down",
            "guide 1: the VF's link is down once the bond is created",
            f"{GUIDE1}.create_bond",
            _vf_link_down,
        ),
        Fault(
            "backup-port-forwarded",
            "guide 1: testpmd forwards on the backup member P0 besides the bond",
            f"{GUIDE1}.forward_on_bond",
            _backup_port_forwarded,
        ),
        Fault(
            "bond-wrong-peer",
            f"guide 1: the bond's mac forwarding writes destination {WRONG_PEER}, not its peer",
            f"{GUIDE1}.forward_on_bond",
            _bond_wrong_peer,
        ),
        Fault(
            "source-host-alters-1-in-100",
            "guide 2: host_server_1's vhost switch flips one payload byte of every 100th TG frame",
            f"{GUIDE2}.start_switch",
            _source_alters_every(100),
        ),
        Fault(
            "failover-ignored",
            "guide 1: the VF is back in the bond right after `remove bonding slave 1 2`",
            f"{GUIDE1}.remove_from_bond",
            _failover_ignored,
        ),
        Fault(
            "vf-not-detached",
            "guide 1: the VF device_del'ed on host_server_1 is added back at once",
            f"{GUIDE1}.hot_unplug_vf",
            _vf_not_detached,
        ),
        Fault(
            "vf-not-reattached",
            "guide 1: the VF device_add'ed on host_server_2 is unplugged again at once",
            f"{GUIDE1}.hot_plug_vf",
            _vf_not_reattached,
        ),
        Fault(
            "guest-image-of-the-host-build",
            "guide 2 (a mix): the VM boots the guest image of the host's build, not the "
            "mix's guest build",
            f"{GUIDE2}._vm",
            _guest_image_of_the_host_build,
        ),
        Fault(
            "guest-testpmd-spoken-to-as-22.11",
            "guide 1: the suite speaks 22.11's commands to the guest's testpmd whatever its "
            "build (a translation missing: `create bonded device`, `add bonding slave`)",
            f"{GUIDE1}.start_guest_testpmd",
            _spoken_to_as_22_11,
        ),
        Fault(
            "guest-testpmd-segfaults-in-a-memberless-bond",
            "guide 1: the guest's testpmd dies of a segmentation fault as a member is added "
            "back to the bond its members all left (DPDK 24.11.8's crash, made certain)",
            f"{GUIDE1}.remove_from_bond",
            _from_the_second(_guest_testpmd_segfaults),
        ),
        Fault(
            "hot-plug-option-dropped",
            "guide 1 (vm_hotplug): the guest's testpmd starts without --hot-plug",
            f"{GUIDE1}.guest_testpmd_argv",
            _hot_plug_option_dropped,
        ),
        Fault(
            "removed-devices-kept",
            "guide 1 (vm_hotplug): each device_del'ed device is added back to the VM at once",
            f"{GUIDE1}.surprise_unplug",
            _removed_devices_kept,
        ),
        Fault(
            "attached-ports-not-started",
            "guide 1 (vm_hotplug): the ports attached again are left stopped",
            f"{GUIDE1}.attach_ports",
            _attached_ports_not_started,
        ),
        Fault(
            "restarted-testpmd-forwards-nothing",
            "guide 1 (vm_hotplug): the testpmd started again (+ reset) receives, never sends",
            f"{GUIDE1}.start_hot_plug_testpmd",
            _from_the_second(lambda setup: _receive_only(setup.pmd)),
        ),
        Fault(
            "traffic-stops-after-migration",
            "guide 1: host_server_2's tap toward the VM goes down right after the migration",
            f"{GUIDE1}.migrate",
            _traffic_stops_after_migration,
        ),
        Fault(
            "tap-left-down",
            "guide 7: the kernel's tap is given its address but left down",
            f"{GUIDE7}.configure_tap",
            _tap_left_down,
        ),
        Fault(
            "exceptional-path-forwards-nothing",
            "guide 7: testpmd receives on both ports but never transmits (rxonly)",
            f"{GUIDE7}.start_forwarding",
            _exceptional_path_forwards_nothing,
        ),
        Fault(
            "exceptional-path-single-queue",
            "guide 7: the queues=2 form's testpmd runs with one queue pair",
            f"{GUIDE7}.testpmd_argv",
            _exceptional_path_single_queue,
        ),
        Fault(
            "queue-size-ignored",
            "guide 7: virtio_user0 runs with the default ring size, not queue_size=1024",
            f"{GUIDE7}.testpmd_argv",
            _queue_size_ignored,
        ),
        Fault(
            "rx-cksum-not-applied",
            "guide 7: virtio_user0 ends up without the Rx checksum offloads (no GUEST_CSUM)",
            f"{GUIDE7}.start_testpmd",
            _rx_cksum_not_applied,
        ),
        Fault(
            "kill-host-testpmd",
            "guide 6, mid-test: kill -9 the host testpmd serving the vhost-user socket",
            f"{GUIDE6}.clear_stats",
            _kill_host_testpmd,
        ),
        Fault(
            "kill-lab-sshd",
            "guide 6, mid-test: kill -9 every sshd of host_server_1 (virtual lab)",
            f"{GUIDE6}.clear_stats",
            _kill_lab_sshd,
        ),
        Fault(
            "switch-port-down",
            "guide 6, mid-test: host_server_1's port on the switch goes down (virtual lab)",
            f"{GUIDE6}.clear_stats",
            _switch_port_down,
        ),
        Fault(
            "pvp-drops-1-in-100",
            "guide 4: the host testpmd drops 1 in 100 frames it receives on its first NIC",
            f"{GUIDE4}.start_host_testpmd",
            _pvp_drops_1_in_100,
        ),
        Fault(
            "pvp-drops-after-1000",
            f"guide 4: the host testpmd drops every frame of a stream after the first "
            f"{PVP_FIRST_KEPT} on its first NIC (1 s trials: loss above "
            f"{2 * PVP_FIRST_KEPT} pps)",
            f"{GUIDE4}.start_host_testpmd",
            _pvp_drops_after,
        ),
        Fault(
            "pvp-host-stop-ignored",
            "guide 4: the host's vhost-user ports start again and forward after `port stop`",
            f"{GUIDE4}.stop_host_vhost_ports",
            _pvp_host_stop_ignored,
        ),
        Fault(
            "pvp-guest-resumes-nothing",
            "guide 4: after the guest's ports are started again, its testpmd only receives",
            f"{GUIDE4}.start_guest_ports",
            _pvp_guest_resumes_nothing,
        ),
        Fault(
            "virtio-pmd-refuses-vectorized",
            "guide 4: the guest's virtio PMD is asked for a vectorized path it turns down",
            f"{GUIDE4}.start_host_testpmd",
            _vectorized_refused,
        ),
        Fault(
            "relaunched-host-forwards-nothing",
            "reconnect plan: the relaunched host testpmd's links come up, it forwards nothing",
            f"{GUIDE4}.start_host_testpmd",
            _from_the_second(_relaunched_host_forwards_nothing),
        ),
        Fault(
            "two-vm-relaunched-host-forwards-nothing",
            "reconnect plan, two VMs (testpmd or kernel guests): the relaunched host "
            "testpmd's links come up, it forwards nothing",
            "framework.scenarios.pvvp:Pvvp._start_switch",
            _from_the_second(_relaunched_host_forwards_nothing),
        ),
        Fault(
            "vm-to-vm-host-swaps-tcp-payload",
            "reconnect plan, two kernel VMs: the host testpmd swaps two 16-bit payload "
            "words of every TCP segment VM2 sends (its checksum stays right)",
            f"{VM_TO_VM}.start_host_testpmd",
            _vm_to_vm_swaps_payload_words,
        ),
        Fault(
            "relaunched-host-drops-1-in-50",
            "reconnect plan: the relaunched host testpmd drops 1 in 50 frames from the TG",
            f"{RECONNECT}.relaunch_host_testpmd",
            _relaunched_host_drops_every(50),
        ),
        Fault(
            "host-relaunch-leaks-hugepage-file",
            "reconnect plan: each host testpmd relaunch leaves a 2 MB hugepage file behind",
            f"{RECONNECT}.relaunch_host_testpmd",
            _relaunch_leaks_a_hugepage_file,
        ),
        Fault(
            "kill-vm-qemu",
            "guide 2: kill -9 the destination QEMU 1 s into the migration",
            f"{GUIDE2}.migrate",
            _kill_dest_qemu,
            during=1.0,
        ),
    ]
}
# Steady loss: host_server_1's vhost switch drops one frame in N from the TG (an eBPF
# program in its testpmd, on the NIC port's RX queue), any N >= 2.
STEADY_LOSS = re.compile(r"source-host-drops-1-in-(\d+)")
STEADY_LOSS_EXAMPLE = "source-host-drops-1-in-N"


def lookup(name: str) -> Fault:
    """The fault called `name`; ConfigError naming the known ones otherwise."""
    if name in FAULTS:
        return FAULTS[name]
    match = STEADY_LOSS.fullmatch(name)
    if match and int(match.group(1)) >= 2:
        n = int(match.group(1))
        return Fault(
            name,
            f"guide 2: host_server_1's vhost switch drops 1 frame in {n} from the TG",
            f"{GUIDE2}.start_switch",
            _source_drops_every(n),
        )
    known = ", ".join([*FAULTS, STEADY_LOSS_EXAMPLE])
    raise ConfigError(f"--inject-fault: unknown fault {name} (known: {known})")


def names() -> list[str]:
    """Every fault name, the steady-loss family written with N."""
    return [*FAULTS, STEADY_LOSS_EXAMPLE]


def install(names: list[str]) -> Callable[[], None]:
    """Wrap the scenario methods the named faults act on; return what undoes it."""
    faults = [lookup(name) for name in dict.fromkeys(names)]
    restores = [_wrap(fault) for fault in faults]

    def uninstall() -> None:
        for restore in reversed(restores):
            restore()

    return uninstall


def _wrap(fault: Fault) -> Callable[[], None]:
    import importlib

    module_name, _, qualified = fault.target.partition(":")
    class_name, _, method_name = qualified.partition(".")
    cls = getattr(importlib.import_module(module_name), class_name)
    original = cls.__dict__[method_name]

    @functools.wraps(original)
    def faulty(self: Any, *args: Any, **kwargs: Any) -> Any:
        if fault.during is None:
            result = original(self, *args, **kwargs)
            fault.action(self, result, args, kwargs)
            return result
        timer = threading.Timer(fault.during, fault.action, (self, None, args, kwargs))
        timer.start()
        try:
            return original(self, *args, **kwargs)
        finally:
            timer.cancel()
            timer.join()

    setattr(cls, method_name, faulty)
    return lambda: setattr(cls, method_name, original)
