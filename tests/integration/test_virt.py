"""framework.virt on this machine: the built-in guest image, a real QEMU guest on two
vhost-user NICs served by a host dpdk-testpmd, the guest's testpmd, a live migration to a
second QEMU, the boot-timeout error, and a clean machine afterwards.

Boots under TCG take ~10 s each, so the guest is shared: one source boot, one migration
destination and one deliberately failing boot.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from framework.config.model import Vm
from framework.dpdk.testpmd import TestPmd, TestPmdStartError
from framework.errors import ShellTimeout
from framework.remote import LocalSession
from framework.verify import VerifyFailed
from framework.virt.image import GuestImage, ensure_guest_image
from framework.virt.qemu import probe_accel
from framework.virt.verify import (
    verify_migration_refused,
    verify_vcpu_pins,
    verify_vm_status,
)
from framework.virt.vm import (
    MigrationFailed,
    MigrationResult,
    SilentBootWarning,
    VirtualMachine,
    VmBootTimeout,
    VmError,
)
from tests.bites.scan import scan

pytestmark = pytest.mark.slow

TAG = f"hcf-virt{os.getpid()}"
ADDRESS = "127.0.0.1"
TESTPMD = "/usr/bin/dpdk-testpmd"
# Small mbuf pools: the guest has 256 hugepages (512 MB), the host testpmds run without.
GUEST_TESTPMD = [TESTPMD, "-l", "0-1", "--", "-i", "--total-num-mbufs=4096"]
TIMINGS: dict[str, float] = {}


def vm_spec() -> Vm:
    """topologies/virtual.yaml's vm1: two vhost-user NICs on fixed slots."""
    return Vm(
        host="host_server_1",
        memory_mb=1024,
        vcpus=2,
        backing="memfd",
        accel="auto",
        guest_hugepages=256,
        nics=[
            {"id": "net0", "kind": "vhost-user", "socket": "usvhost-0.sock", "slot": 4,
             "mac": "52:54:00:00:00:01"},
            {"id": "net1", "kind": "vhost-user", "socket": "usvhost-1.sock", "slot": 5,
             "mac": "52:54:00:00:00:02"},
        ],
    )  # fmt: skip


def host_switch(session: LocalSession, directory: str, prefix: str) -> TestPmd:
    """The host's vhost-user server, listening before QEMU starts (QEMU is the client)."""
    os.makedirs(directory, exist_ok=True)
    argv = [TESTPMD, "-l", "0-1", "--no-huge", "-m", "512", "--no-pci", "--file-prefix", prefix]
    argv += [f"--vdev=net_vhost{i},iface={directory}/usvhost-{i}.sock" for i in range(2)]
    argv += ["--", "-i", "--total-num-mbufs=4096"]
    return TestPmd.launch(session, argv, name=prefix, timeout=60)


@dataclass
class Lab:
    session: LocalSession
    root: str
    image: GuestImage
    switches: dict[str, TestPmd] = field(default_factory=dict)
    vms: list[VirtualMachine] = field(default_factory=list)
    guest_pmd: TestPmd | None = None
    migration: MigrationResult | None = None

    def vm(self, name: str, side: str, spec: Vm | None = None, **kwargs: object) -> VirtualMachine:
        vm = VirtualMachine(
            spec or vm_spec(),
            self.session,
            name=f"{TAG}-{name}",
            image=self.image,
            work_dir=f"{self.root}/{side}",
            address=ADDRESS,
            **kwargs,  # type: ignore[arg-type]  # the caller's VirtualMachine keywords
        )
        self.vms.append(vm)
        return vm

    def teardown(self) -> None:
        for vm in self.vms:
            vm.kill()
        for pmd in self.switches.values():
            pmd.close()


@pytest.fixture(scope="module")
def session() -> LocalSession:
    return LocalSession()


@pytest.fixture(scope="module")
def lab(session: LocalSession) -> Iterator[Lab]:
    started = time.monotonic()
    image = ensure_guest_image(session)
    TIMINGS["image"] = time.monotonic() - started
    root = tempfile.mkdtemp(prefix="hcf-virt-", dir="/tmp")
    lab = Lab(session, root, image)
    try:
        for side in ("src", "dst"):
            lab.switches[side] = host_switch(session, f"{root}/{side}", f"{TAG}-{side}")
        yield lab
    finally:
        lab.teardown()
        shutil.rmtree(root, ignore_errors=True)
        print("\nvirt timings (s):", {k: round(v, 2) for k, v in TIMINGS.items()})
        if lab.migration is not None:
            m = lab.migration
            print(
                f"migration: total {m.total_time_ms} ms, downtime {m.downtime_ms} ms, "
                f"setup {m.setup_time_ms} ms, {m.transferred_ram_bytes} bytes, "
                f"{m.throughput_mbps} Mbps, dirty syncs {m.dirty_sync_count}"
            )


@pytest.fixture(scope="module")
def source(lab: Lab) -> VirtualMachine:
    vm = lab.vm("src", "src")
    started = time.monotonic()
    vm.start()
    vm.wait_for_shell(timeout=90)
    TIMINGS["boot_to_shell"] = time.monotonic() - started
    return vm


def test_guest_image_is_cached_by_its_inputs(session: LocalSession, lab: Lab) -> None:
    again = ensure_guest_image(session)
    TIMINGS["image_reuse"] = again.seconds
    assert not again.built
    assert again.key == lab.image.key
    assert again.kernel == lab.image.kernel and again.initrd == lab.image.initrd
    size = os.path.getsize(again.initrd)
    assert 2_000_000 < size < 60_000_000, size


def test_guest_boots_with_nics_bound_for_dpdk(source: VirtualMachine) -> None:
    assert source.accel in ("kvm", "tcg") and source.accel_reason
    assert source.status() == "running"
    status, drivers = source.shell.run(
        "for d in /sys/bus/pci/devices/*; do [ $(cat $d/class) = 0x020000 ] && "
        "echo ${d##*/} $(basename $(readlink $d/driver)); done"
    )
    assert status == 0
    assert drivers.split("\n") == [
        "0000:00:04.0 uio_pci_generic",
        "0000:00:05.0 uio_pci_generic",
    ]
    assert "HugePages_Total:     256" in source.shell.check("grep HugePages_Total /proc/meminfo")
    status, _ = source.shell.run("false")
    assert status == 1
    # A line the shell cannot parse is an error at once, not a wait for the timeout.
    started = time.monotonic()
    status, said = source.shell.run("( echo unclosed", timeout=10)
    assert status != 0 and "syntax error" in said
    assert time.monotonic() - started < 5


def test_guest_testpmd_that_cannot_start_fails_at_once(source: VirtualMachine) -> None:
    # The guest has 2 vCPUs: EAL refuses lcores 2-7 and testpmd exits. Its console closes
    # with it, so the error comes at once with EAL's reason, not after the prompt timeout.
    started = time.monotonic()
    with pytest.raises(TestPmdStartError) as caught:
        source.launch_testpmd([TESTPMD, "-l", "0-7", "--", "-i"], timeout=90)
    assert time.monotonic() - started < 30
    assert "lcore" in caught.value.message, caught.value.message


def test_guest_testpmd_drives_both_virtio_ports(lab: Lab, source: VirtualMachine) -> None:
    started = time.monotonic()
    pmd = source.launch_testpmd(GUEST_TESTPMD, timeout=90)
    TIMINGS["guest_testpmd_start"] = time.monotonic() - started
    lab.guest_pmd = pmd
    ports = pmd.show_port_summary()
    assert [(p.port, p.driver, p.mac) for p in ports] == [
        (0, "net_virtio", "52:54:00:00:00:01"),
        (1, "net_virtio", "52:54:00:00:00:02"),
    ]
    host = lab.switches["src"]
    for port in (0, 1):
        assert host.wait_link_up(port, timeout=10).link_up


def test_vcpus_pinned_one_host_cpu_each_as_guide_4_pins_them(
    session: LocalSession, source: VirtualMachine
) -> None:
    """4.2.5's qmp-vcpu-pin on a running TCG guest: a thread per vCPU (QMP query-cpus-fast),
    each moved to its host CPU, as the host's kernel then reports; a pin that does not
    hold is named by verify_vcpu_pins."""
    threads = source.vcpu_threads()
    assert sorted(threads) == [0, 1] and len(set(threads.values())) == 2, threads
    every = ",".join(str(cpu) for cpu in range(os.cpu_count() or 1))
    try:
        source.pin_vcpus([1, 0])
        affinity = source.vcpu_affinity()
        assert affinity == {0: frozenset({1}), 1: frozenset({0})}, affinity
        verify_vcpu_pins(affinity, "pinned as asked", [1, 0])
        with pytest.raises(VerifyFailed, match=r"vCPU 0 on host CPUs \[1\], expected 0"):
            verify_vcpu_pins(affinity, "guide 4.2.5", [0, 1])
        with pytest.raises(VmError, match="3 CPUs to pin, QEMU runs vCPUs"):
            source.pin_vcpus([0, 1, 0])
    finally:
        for thread in threads.values():  # float again, as the later tests expect
            session.run(["taskset", "-p", "-c", every, str(thread)])


def test_a_migration_blocker_is_told_from_a_migration_that_starts(
    source: VirtualMachine,
) -> None:
    """What guide 1's "QEMU refuses to migrate a VM with its VF" reads, on real QEMU: a VM
    without a blocker starts the migration (cancelled at once); with a device that blocks
    migration (ivshmem in peer mode, as a VFIO device without migration support does)
    QEMU refuses at once and says why; the VM keeps running either way."""
    nowhere = f"tcp:{ADDRESS}:9"  # the discard port: nothing listens there
    assert source.migration_refusal(nowhere) is None
    source.qmp("object-add", qom_type="memory-backend-memfd", id="hcfblk", size=1 << 20,
               share=True)  # fmt: skip
    source.qmp("device_add", driver="ivshmem-plain", id="hcfblk0", memdev="hcfblk")
    try:
        refusal = source.migration_refusal(nowhere)
        verify_migration_refused(refusal, "a blocker refuses", because="Migration is disabled")
        # Bite for the guide's calls: a QEMU that migrates a VM with its VF, and one that
        # refuses for another reason, each fail with the call's message.
        calls = [a for s in scan().values() for a in s.assertions
                 if a.key.startswith("verify_migration_refused")]  # fmt: skip
        assert calls, "guide 1 calls verify_migration_refused"
        for call in calls:
            what, because = call.fragments[:2]
            with pytest.raises(VerifyFailed) as started:
                verify_migration_refused(None, what, because=because)
            assert str(started.value).startswith(f"{what}; QEMU started the migration"), call.id
            with pytest.raises(VerifyFailed) as other:
                verify_migration_refused(refusal, what, because=because)
            assert str(other.value).startswith(f"{what}; QEMU answered: "), call.id
            assert "Migration is disabled" in str(other.value), call.id
    finally:
        source.qmp("device_del", id="hcfblk0")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(
            d.get("qdev_id") == "hcfblk0" for d in source.qmp("query-pci")[0]["devices"]
        ):
            time.sleep(0.5)
        source.qmp("object-del", id="hcfblk")
    assert source.migration_refusal(nowhere) is None, "the blocker went with the device"
    assert source.status() == "running"


def test_a_paused_vm_is_named_when_its_testpmd_is_silent(lab: Lab, source: VirtualMachine) -> None:
    # Bite for "a timeout names its cause": the guest's vCPUs stopped (QMP stop) under a
    # guest testpmd; the console's timeout must say the VM is paused, not only "(nothing)".
    if lab.guest_pmd is None:
        pytest.skip("guest testpmd did not start")
    source.pause()
    try:
        with pytest.raises(ShellTimeout) as caught:
            lab.guest_pmd.shell.send_command("show port summary", timeout=2)
    finally:
        source.resume()
    message = str(caught.value)
    assert "\n" not in message
    assert f"(VM {source.name} is paused (QMP stop): its vCPUs do not run)" in message, message
    # Running again, the guest answers what was typed meanwhile: the console is intact.
    lab.guest_pmd.shell.expect(timeout=30)
    assert lab.guest_pmd.show_port_summary()


def test_failed_migration_is_told_apart_and_source_keeps_running(
    lab: Lab, source: VirtualMachine
) -> None:
    dest = lab.vm("nowhere", "dst", accel=source.accel)
    dest.start(incoming=f"tcp:{ADDRESS}:{_free_port()}")
    try:
        # Nothing listens on this port: QEMU's migration fails at connect.
        with pytest.raises(MigrationFailed) as caught:
            source.migrate_to(dest, port=_free_port(), timeout=30)
        message = str(caught.value)
        assert "\n" not in message and "migration failed" in message, message
        assert "last console output:" in message
        assert source.status() == "running", "a failed migration leaves the source running"
    finally:
        dest.kill()


def test_live_migration_keeps_guest_testpmd(lab: Lab, source: VirtualMachine) -> None:
    if lab.guest_pmd is None:
        pytest.skip("guest testpmd did not start")
    port = _free_port()
    dest = lab.vm("dst", "dst", accel=source.accel)
    dest.start(incoming=f"tcp:{ADDRESS}:{port}")
    assert dest.status() == "inmigrate"

    started = time.monotonic()
    result = source.migrate_to(dest, port=port, timeout=120, downtime_limit_ms=300)
    TIMINGS["migration_wall"] = time.monotonic() - started
    lab.migration = result
    assert result.status == "completed"
    assert result.total_time_ms and result.total_time_ms > 0
    assert result.downtime_ms is not None and result.transferred_ram_bytes
    assert source.status() == "postmigrate"
    assert dest.status() == "running"
    names = [name for _, name, _ in source.events]
    assert "MIGRATION" in names and "STOP" in names
    assert [d.get("status") for _, n, d in source.events if n == "MIGRATION"][-1] == "completed"
    assert "RESUME" in [name for _, name, _ in dest.events]

    # The source's console, still connected, is silent now: its timeout names the state
    # QEMU left the VM in after migrating, not only "no 'testpmd> ' within 1 s; (nothing)".
    with pytest.raises(ShellTimeout) as caught:
        lab.guest_pmd.shell.send_command("show port summary", timeout=1)
    assert f"(VM {source.name} is paused (postmigrate)" in str(caught.value), str(caught.value)

    started = time.monotonic()
    pmd = dest.attach_testpmd(lab.guest_pmd)
    TIMINGS["reattach_testpmd"] = time.monotonic() - started
    lab.guest_pmd = pmd
    assert [p.port for p in pmd.show_port_summary()] == [0, 1]
    pmd.start()
    pmd.stop()
    for port_id in (0, 1):
        assert lab.switches["dst"].wait_link_up(port_id, timeout=10).link_up
    # The guest shell moved too: reconnect to the destination's ttyS1.
    shell = dest.wait_for_shell(timeout=20)
    assert shell.check("echo moved") == "moved"
    # The guest testpmd quits like a host one: its console closes as testpmd exits.
    assert "Bye..." in pmd.quit(timeout=30)
    assert not pmd.alive
    lab.guest_pmd = None


def test_guides_vm_status_checks_bite(lab: Lab, source: VirtualMachine) -> None:
    """Bite for every verify_vm_status call of the guide modules: each is fed a real VM that
    QEMU reports in another run state (after the migration above: the source postmigrate,
    the destination running), and fails with the call's message and QEMU's state."""
    dest = next((vm for vm in lab.vms if vm.name == f"{TAG}-dst" and vm.alive()), None)
    if dest is None:
        pytest.fail("the migration test left no running destination VM to feed the checks")
    calls = [a for s in scan().values() for a in s.assertions if a.key.startswith("verify_vm")]
    assert calls, "the guide modules call verify_vm_status"
    for call in calls:
        what, expected = call.fragments[:2]
        vm = source if expected == "running" else dest
        status = vm.status()
        with pytest.raises(AssertionError) as failed:
            verify_vm_status(vm, what, expected)
        assert str(failed.value) == (
            f"{what}; QEMU reports {vm.name} {status} (vCPUs running: {status == 'running'}), "
            f"expected {expected}"
        ), call.id
    verify_vm_status(dest, "the destination runs", "running")


def test_boot_timeout_is_one_line_with_console_output(lab: Lab) -> None:
    # No /init to run: the kernel panics, panic=-1 with -no-reboot ends QEMU.
    spec = vm_spec().model_copy(update={"nics": []})
    broken = lab.vm("bad", "bad", spec, append="rdinit=/nonexistent")
    broken.start()
    with pytest.raises(VmBootTimeout) as caught:
        broken.wait_for_shell(timeout=30)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{broken.name}: ")
    assert "last console output:" in message
    assert re.search(r"Kernel panic|/init|rdinit", message), message
    broken.kill()


def test_a_silent_boot_is_started_once_more_and_named(lab: Lab) -> None:
    # Paused at once, before its kernel prints anything (loglevel=4 says nothing before
    # init): the guest stays silent as the TCG hang CI saw.
    spec = vm_spec().model_copy(update={"nics": []})
    silent = lab.vm("silent", "silent", spec)
    silent.start()
    silent.pause()
    # the window is also the restarted guest's to boot in: 8 s was too short once in CI
    with pytest.warns(SilentBootWarning, match=f"{silent.name} on .* printed nothing in 20 s"):
        shell = silent.wait_for_shell(timeout=20)
    assert shell.run("echo answered") == (0, "answered")
    [hang] = silent.boot_hangs
    assert f"VM {silent.name} is paused (QMP stop)" in hang, hang
    assert re.search(r"; cpu0 [re]ip=[0-9a-f]+, cpu1 [re]ip=[0-9a-f]+$", hang), hang
    silent.kill()


def test_nothing_left_behind(session: LocalSession, lab: Lab) -> None:
    lab.teardown()
    for vm in lab.vms:
        assert not vm.alive()
        for path in (vm.serial0, vm.serial1, vm.pidfile):
            assert not os.path.exists(path), path
    running = subprocess.run(["pgrep", "-f", TAG], capture_output=True, text=True).stdout
    assert running.strip() == ""
    leftovers = [
        os.path.join(d, f)
        for d, _, files in os.walk(lab.root)
        for f in files
        if f.endswith((".sock", ".pid"))
    ]
    assert leftovers == []
    assert not any(name.startswith(TAG) for name in os.listdir("/dev/hugepages"))


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((ADDRESS, 0))
        return int(sock.getsockname()[1])


def test_the_accelerator_probe_is_kept_on_the_host_until_its_kvm_changes(tmp_path: Path) -> None:
    """A test boot that hangs costs its whole bound on every host of every run: the answer
    is kept on the host, keyed by its boot, /dev/kvm node and QEMU, and probed anew on
    request or when the probe itself changes (here: its time bound)."""
    cache = str(tmp_path / "accel")
    runs = iter(range(10))

    def probe(timeout: float, refresh: bool = False) -> tuple[str, str]:
        # a new session name per call: what a new run sees, with nothing in the process
        run = LocalSession(f"probe-{next(runs)}")
        return probe_accel(run, timeout=timeout, refresh=refresh, cache_dir=cache)

    first = probe(2, refresh=True)
    assert "kept on the host" not in first[1], first
    started = time.monotonic()
    again = probe(2)
    if first[0] == "tcg" and "did not finish" not in first[1]:
        # no /dev/kvm (or QEMU failed at once): cheap to see again, so nothing is kept
        assert again == first, again
        return
    assert again[0] == first[0] and again[1].startswith(first[1] + "; test boot at "), again
    assert time.monotonic() - started < 1.5, "a kept answer costs no test boot"
    other = probe(3)
    assert "kept on the host" not in other[1], f"another time bound probes anew: {other}"
    refreshed = probe(2, refresh=True)
    assert "kept on the host" not in refreshed[1], refreshed
