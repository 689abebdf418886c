"""framework.virt without QEMU: the command line a Vm spec becomes, and migration verdicts."""

from __future__ import annotations

import pytest

from framework.config.model import Vm
from framework.errors import ConfigError, FrameworkError
from framework.virt.image import GuestImage
from framework.virt.qemu import qemu_argv
from framework.virt.vm import (
    MigrationDidNotConverge,
    MigrationResult,
    MigrationTimeout,
    _not_finished,
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
    return qemu_argv(vm, **options)  # type: ignore[arg-type]


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
    assert ("-device", "e1000,netdev=vf0,addr=0x6") in got
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
    assert "mem-path=/dev/hugepages" in backend
    assert ("-accel", "kvm") in got and ("-cpu", "host") in got
    assert ("-netdev", "type=vhost-user,id=n,chardev=chr-n,queues=2") in got
    assert ("-device", "virtio-net-pci,netdev=n,packed=on,mq=on,vectors=6,csum=off") in got
    assert ("-incoming", "tcp:10.0.0.2:5555") in got


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
