"""framework.virt without QEMU: the command line a Vm spec becomes, migration verdicts,
the console relay and the guest testpmd's launch line."""

from __future__ import annotations

import os
import select
import shlex
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT, Vm
from framework.errors import ConfigError, FrameworkError, ShellClosed
from framework.remote import LocalSession
from framework.remote.shell import InteractiveShell
from framework.virt import guest_testpmd
from framework.virt.console import install_relay, open_console
from framework.virt.hotplug import _options
from framework.virt.image import GuestImage
from framework.virt.migration import _not_finished
from framework.virt.qemu import nic_args, nic_device, qemu_argv, tap_netdev
from framework.virt.vm import (
    MigrationDidNotConverge,
    MigrationResult,
    MigrationTimeout,
)

IMAGE = GuestImage("/c/vmlinuz", "/c/initrd.img", "k", False, 0.0)


def spec(**changes: object) -> Vm:
    base: dict[str, object] = {
        "host": "h1",
        "memory_mb": 1024,
        "vcpus": 2,
        "nics": [
            {"id": "net0", "kind": "vhost-user", "socket": "usvhost-0.sock", "slot": 4,
             "mac": "52:54:00:00:00:01"},
            {"id": "vf0", "kind": "tap", "model": "e1000", "slot": 6},
        ],
    }  # fmt: skip
    base.update(changes)
    return Vm.model_validate(base)


def argv(vm: Vm, **kwargs: object) -> list[str]:
    options: dict[str, object] = {
        "name": "vm1",
        "image": IMAGE,
        "sockets_dir": "/w",
        "accel": "tcg",
        "qmp": ("10.0.0.1", 4444),
        "serial0": "/w/s0",
        "serial1": "/w/s1",
        "incoming": None,
    }
    options.update(kwargs)
    return qemu_argv(vm, **options)  # type: ignore[arg-type]  # qemu_argv's keywords, varied by the test


def pairs(args: list[str]) -> list[tuple[str, str]]:
    return [(args[i], args[i + 1]) for i in range(len(args) - 1) if args[i].startswith("-")]


def test_memfd_guest_with_vhost_user_and_tap_nics() -> None:
    got = pairs(argv(spec()))
    assert ("-object", "memory-backend-memfd,id=mem0,size=1024M,share=on") in got
    assert ("-numa", "node,memdev=mem0") in got
    assert ("-accel", "tcg,thread=multi") in got and ("-cpu", "max") in got
    assert ("-chardev", "socket,id=chr-net0,path=/w/usvhost-0.sock") in got
    assert ("-netdev", "type=vhost-user,id=net0,chardev=chr-net0,queues=1") in got
    assert (
        "-device",
        "virtio-net-pci,netdev=net0,mac=52:54:00:00:00:01,addr=0x4,packed=off",
    ) in got
    assert ("-netdev", "tap,id=vf0,script=no,downscript=no") in got
    assert ("-device", "e1000,netdev=vf0,id=vf0,addr=0x6") in got  # id: for device_del
    assert ("-qmp", "tcp:10.0.0.1:4444,server=on,wait=off") in got
    assert ("-kernel", "/c/vmlinuz") in got and ("-initrd", "/c/initrd.img") in got
    append = dict(got)["-append"]
    assert "console=ttyS1" in append and "hugepages=256" in append
    assert ("-chardev", "socket,id=ser0,path=/w/s0,server=on,wait=off,logfile=/w/s0.log") in got
    assert "-incoming" not in dict(got)


def test_hugepage_backing_kvm_multiqueue_packed_and_incoming() -> None:
    vm = spec(
        backing="hugepages",
        nics=[{"id": "n", "kind": "vhost-user", "socket": "/abs.sock", "queues": 2,
               "packed": True, "options": "csum=off"}],
    )  # fmt: skip
    got = pairs(argv(vm, accel="kvm", incoming="tcp:10.0.0.2:5555"))
    backend = dict(got)["-object"]
    assert backend.startswith("memory-backend-file,") and "share=on" in backend
    assert f"mem-path={DEFAULT_HUGEPAGE_MOUNT}," in backend
    moved = dict(pairs(argv(vm, hugepage_mount="/mnt/huge-1G")))["-object"]
    assert "mem-path=/mnt/huge-1G," in moved
    assert ("-accel", "kvm") in got and ("-cpu", "host") in got
    assert ("-netdev", "type=vhost-user,id=n,chardev=chr-n,queues=2") in got
    assert ("-device", "virtio-net-pci,netdev=n,packed=on,mq=on,vectors=6,csum=off") in got
    assert ("-incoming", "tcp:10.0.0.2:5555") in got


def test_a_vhost_user_nic_without_msix_offers_no_vectors() -> None:
    # guide 2's kernel guest under TCG: QEMU 7.2 dies starting vhost-user with MSI-X on
    one = {"id": "n", "kind": "vhost-user", "socket": "/s", "msix": False}
    got = pairs(argv(spec(nics=[one, {**one, "id": "m", "queues": 2}])))
    assert ("-device", "virtio-net-pci,netdev=n,packed=off,vectors=0") in got
    assert ("-device", "virtio-net-pci,netdev=m,packed=off,mq=on,vectors=0") in got


def test_passthrough_and_disk_image() -> None:
    vm = spec(
        image="/images/lab.qcow2",
        nics=[{"id": "vf", "kind": "passthrough", "host_device": "0000:81:10.0", "slot": 7}],
    )
    got = pairs(argv(vm, image=None))
    assert ("-device", "vfio-pci,host=0000:81:10.0,id=vf,addr=0x7") in got
    assert "-kernel" not in dict(got)
    assert dict(got)["-drive"].startswith("file=/images/lab.qcow2,")


def test_builtin_image_required_and_accel_checked() -> None:
    with pytest.raises(ConfigError, match="no guest image"):
        argv(spec(), image=None)
    with pytest.raises(ConfigError, match="accel"):
        argv(spec(), accel="auto")


def test_stuck_and_slow_migrations_are_told_apart() -> None:
    stuck = _not_finished("vm1", "tcp:h:1", 60, [(500, 1), (400, 2), (450, 5), (480, 9)])
    assert isinstance(stuck, MigrationDidNotConverge)
    slow = _not_finished("vm1", "tcp:h:1", 60, [(900, 1), (700, 1), (400, 1), (100, 1)])
    assert isinstance(slow, MigrationTimeout)
    for error in (stuck, slow):
        assert isinstance(error, FrameworkError) and "\n" not in str(error)


def test_migration_result_from_query_migrate() -> None:
    info = {
        "status": "completed",
        "total-time": 5012,
        "downtime": 50,
        "setup-time": 4,
        "ram": {"transferred": 150_000_000, "mbps": 240.5, "dirty-sync-count": 3,
                "remaining": 0},
    }  # fmt: skip
    result = MigrationResult.from_query(info, 1.0, 6.0)
    assert (result.total_time_ms, result.downtime_ms, result.setup_time_ms) == (5012, 50, 4)
    assert result.transferred_ram_bytes == 150_000_000 and result.throughput_mbps == 240.5
    assert result.dirty_sync_count == 3 and result.remaining_ram == 0
    assert result.raw is info


def test_cpu_pinning_runs_qemu_under_taskset() -> None:
    from framework.config import load_topology
    from framework.config.loader import TOPOLOGY_DIR

    spec = load_topology(TOPOLOGY_DIR / "lab.yaml").vms["vm1"]
    argv = qemu_argv(
        spec, name="vm1", image=None, sockets_dir="/tmp/x", accel="kvm",
        qmp=("198.18.0.11", 5000), serial0="/tmp/x/s0", serial1="/tmp/x/s1",
    )  # fmt: skip
    assert argv[:3] == ["taskset", "-c", "2,3,4,5,6,7"]
    assert argv[3] == "qemu-system-x86_64"


class FakeConsole:
    """A unix socket server standing in for a QEMU serial chardev."""

    def __init__(self, path: str) -> None:
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(path)
        self.server.listen(1)
        self.server.settimeout(10)
        self.conn: socket.socket | None = None
        self._accepted = threading.Thread(target=self._accept)
        self._accepted.start()

    def _accept(self) -> None:
        self.conn, _ = self.server.accept()
        self.conn.settimeout(10)

    def connected(self) -> socket.socket:
        self._accepted.join(10)
        assert self.conn is not None
        return self.conn

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
        self.server.close()


def console_at(tmp_path: Path, socket_name: str, **options: object) -> InteractiveShell:
    session = LocalSession()
    relay = f"{tmp_path}/relay.py"
    install_relay(session, relay)
    options = {"name": "vm/ttyS0", "prompt": "testpmd> ", **options}
    return open_console(session, relay, f"{tmp_path}/{socket_name}", **options)  # type: ignore[arg-type]  # open_console's keywords, varied by the test


@pytest.fixture
def chardev(tmp_path: Path) -> Iterator[FakeConsole]:
    fake = FakeConsole(f"{tmp_path}/ttyS0.sock")
    yield fake
    fake.close()


def test_console_relays_both_ways_and_closes_at_the_end_line(
    chardev: FakeConsole, tmp_path: Path
) -> None:
    console = console_at(tmp_path, "ttyS0.sock", end="@@E@@")
    try:
        console.send_line("")  # typed at once, as a re-attach does: must not be lost
        guest = chardev.connected()
        assert guest.recv(100) == b"\n"
        guest.sendall(b"EAL: ready\r\ntestpmd> ")
        assert console.expect(timeout=10) == "EAL: ready\n"
        console.send_line("quit")
        assert guest.recv(100) == b"quit\n"  # raw PTY: no echo, no CR translation
        guest.sendall(b"Bye...\r\ntestpmd exited 0 @@E@@\r\n")
        with pytest.raises(ShellClosed):
            console.expect("never printed", timeout=10)
        assert "Bye..." in console.transcript and console.closed
        assert guest.recv(100) == b""  # the relay hung up its side
    finally:
        console.close()


def test_console_without_end_line_closes_when_qemu_does(
    chardev: FakeConsole, tmp_path: Path
) -> None:
    console = console_at(tmp_path, "ttyS0.sock", prompt="# ")
    try:
        chardev.connected().sendall(b"x @@E@@ # ")
        assert console.expect(timeout=10) == "x @@E@@ "
        chardev.close()
        with pytest.raises(ShellClosed):
            console.expect("never printed", timeout=10)
    finally:
        console.close()


def test_console_to_a_missing_socket_says_so(tmp_path: Path) -> None:
    with pytest.raises(ShellClosed) as caught:
        console_at(tmp_path, "none.sock")
    assert "cannot connect to" in str(caught.value)


def test_guest_testpmd_line_runs_detached_on_the_tty_then_prints_the_end_line(
    tmp_path: Path,
) -> None:
    line = guest_testpmd.launch_line(["sh", "-c", "echo it\\'s up; exit 3"])
    words = shlex.split(line)
    assert words[:4] == ["(", "setsid", "sh", "-c"] and words[-2:] == ["&", ")"]
    tty = tmp_path / "tty"
    tty.touch()
    subprocess.run(["sh", "-c", line.replace("/dev/ttyS0", str(tty))], check=True, timeout=10)
    deadline = time.monotonic() + 10  # the line returns at once; sh runs on detached
    while guest_testpmd.END not in (text := tty.read_text()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert text == f"it's up\ntestpmd exited 3 {guest_testpmd.END}\n"


def test_guest_testpmd_is_not_given_the_tty_as_its_sessions_controlling_terminal() -> None:
    # A session leader's exit hangs up its controlling serial tty, dropping what the port
    # had not sent yet: once 1 launch in 24 lost END (and the end of EAL's usage text).
    # A pty stands in for ttyS0: the line must reach it with /dev/tty left unopenable.
    master, slave = os.openpty()
    try:
        probe = "if (: </dev/tty) 2>/dev/null; then echo controlling; else echo detached; fi"
        line = guest_testpmd.launch_line(["sh", "-c", probe])
        subprocess.run(["sh", "-c", line.replace("/dev/ttyS0", os.ttyname(slave))], check=True)
        seen = b""
        deadline = time.monotonic() + 10
        while guest_testpmd.END.encode() not in seen and time.monotonic() < deadline:
            if select.select([master], [], [], 0.1)[0]:
                seen += os.read(master, 4096)
        assert seen.decode().split() == ["detached", "testpmd", "exited", "0", guest_testpmd.END]
    finally:
        os.close(master)
        os.close(slave)


# Guide 1: the bonding VM's virtio NIC on a tap and its VF (an e1000 on a tap here).


def _bond_vm() -> Vm:
    from framework.config import load_topology
    from framework.config.loader import TOPOLOGY_DIR

    return load_topology(TOPOLOGY_DIR / "virtual.yaml").vms["bond_vm"]


def test_bond_vm_taps_carry_their_ids_names_and_slots() -> None:
    vm = _bond_vm().model_copy(update={"viommu": False})
    got = pairs(argv(vm, backends={"net1": "hc-tap1", "vf1": "hc-tap2"}))
    assert ("-machine", "pc") in got
    assert ("-netdev", "tap,id=net1,script=no,downscript=no,ifname=hc-tap1") in got
    assert ("-device", "virtio-net-pci,netdev=net1,id=net1,mac=52:54:00:00:01:01,addr=0x3") in got
    assert ("-netdev", "tap,id=vf1,script=no,downscript=no,ifname=hc-tap2") in got
    assert ("-device", "e1000,netdev=vf1,id=vf1,mac=52:54:00:00:01:02,addr=0x4") in got
    vf1 = vm.nics[1]
    assert nic_args(vf1, "/w", {"vf1": "hc-tap2"}) == [
        "-netdev", "tap,id=vf1,script=no,downscript=no,ifname=hc-tap2",
        "-device", "e1000,netdev=vf1,id=vf1,mac=52:54:00:00:01:02,addr=0x4",
    ]  # fmt: skip


def test_a_viommu_vm_is_q35_with_intel_iommu_and_nics_behind_root_ports() -> None:
    vm = _bond_vm().model_copy(update={"viommu": True})
    args = argv(vm, backends={"net1": "hc-tap1", "vf1": "hc-tap2"})
    got = pairs(args)
    assert ("-machine", "q35,kernel-irqchip=split") in got
    assert ("-device", "intel-iommu,intremap=on") in got
    assert ("-device", "pcie-root-port,id=rp3,bus=pcie.0,addr=0x3,chassis=3") in got
    assert ("-device", "pcie-root-port,id=rp4,bus=pcie.0,addr=0x4,chassis=4") in got
    assert (
        "-device",
        "virtio-net-pci,netdev=net1,id=net1,mac=52:54:00:00:01:01,bus=rp3,addr=0x0,"
        "iommu_platform=on",
    ) in got
    # an emulated NIC's DMA always goes through the IOMMU: no virtio flag for it
    assert ("-device", "e1000,netdev=vf1,id=vf1,mac=52:54:00:00:01:02,bus=rp4,addr=0x0") in got
    append = args[args.index("-append") + 1]
    assert append.endswith("hugepages=256 intel_iommu=on howto.bind=vfio-pci")
    # the ports come before the NICs that sit behind them
    assert args.index("pcie-root-port,id=rp4,bus=pcie.0,addr=0x4,chassis=4") < args.index(
        "e1000,netdev=vf1,id=vf1,mac=52:54:00:00:01:02,bus=rp4,addr=0x0"
    )
    # a migration destination without the VF keeps its empty port
    dest = pairs(argv(vm.without("vf1"), backends={"net1": "hc-tap1"}))
    assert ("-device", "pcie-root-port,id=rp4,bus=pcie.0,addr=0x4,chassis=4") in dest
    # hot-plugged back behind its port, iommu_platform spelt as QEMU's property is
    assert _options(nic_device(vm.nics[0], viommu=True))["bus"] == "rp3"
    assert _options(nic_device(vm.nics[0], viommu=True))["iommu_platform"] == "on"


def test_a_viommu_vm_with_a_host_vf_sets_caching_mode() -> None:
    vm = spec(viommu=True, nics=[{"id": "vf1", "kind": "vf", "pf": "p0", "slot": 4}])
    got = pairs(argv(vm, backends={"vf1": "0000:09:10.0"}))
    assert ("-device", "intel-iommu,intremap=on,caching-mode=on") in got
    assert ("-device", "vfio-pci,host=0000:09:10.0,id=vf1,bus=rp4,addr=0x0") in got


def test_vf_nic_is_the_given_host_vf_by_vfio() -> None:
    vm = spec(nics=[{"id": "vf1", "kind": "vf", "pf": "p0", "slot": 4}])
    got = pairs(argv(vm, backends={"vf1": "0000:09:10.0"}))
    assert ("-device", "vfio-pci,host=0000:09:10.0,id=vf1,addr=0x4") in got
    assert nic_args(vm.nics[0], "/w", {"vf1": "0000:09:10.0"}) == [
        "-device",
        "vfio-pci,host=0000:09:10.0,id=vf1,addr=0x4",
    ]
    with pytest.raises(ConfigError, match="vf1: no host VF"):
        argv(vm)
    with pytest.raises(ConfigError, match="vf1: no host VF"):
        nic_args(vm.nics[0], "/w", {"vf0": "0000:09:10.0"})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "e1000,netdev=vf1,id=vf1,addr=0x4",
            {"driver": "e1000", "netdev": "vf1", "id": "vf1", "addr": "0x4"},
        ),
        ("tap,id=vf1,script=no", {"type": "tap", "id": "vf1", "script": "no"}),
    ],
)
def test_hotplug_option_strings_become_qmp_arguments(text: str, expected: dict) -> None:
    assert _options(text) == expected


def test_hotplug_arguments_match_the_command_line() -> None:
    vf1 = _bond_vm().model_copy(update={"viommu": False}).nics[1]
    assert _options(tap_netdev(vf1, "hc-tap2")) == {
        "type": "tap", "id": "vf1", "script": "no", "downscript": "no", "ifname": "hc-tap2",
    }  # fmt: skip
    assert _options(nic_device(vf1)) == {
        "driver": "e1000", "netdev": "vf1", "id": "vf1", "mac": "52:54:00:00:01:02",
        "addr": "0x4",
    }  # fmt: skip
