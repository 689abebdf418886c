"""QEMU command lines from a topology's Vm spec, and the choice of accelerator.

Guest RAM is always a shared memory backend (memfd, or hugetlbfs files on lab hosts):
vhost-user needs the host's DPDK switch to map guest memory, and live migration with
vhost-user needs the same. Consoles are unix-socket chardevs with a logfile, so what the
guest printed while nobody was attached still reaches reports.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT
from framework.errors import ConfigError, RemoteError
from framework.virt.image import BIND_PARAM

if TYPE_CHECKING:
    from framework.config.model import Vm, VmNic
    from framework.remote.session import Session
    from framework.virt.image import GuestImage

log = logging.getLogger("howto.virt")

# Kernel command line of the built-in guest; the shell console is ttyS1, testpmd's ttyS0.
# panic=-1 with -no-reboot makes a guest that cannot boot end QEMU at once, not hang.
BASE_APPEND = "console=ttyS1 panic=-1 loglevel=4 tsc=reliable no_timer_check"

_probe_cache: dict[str, tuple[str, str]] = {}
ACCEL_CACHE_DIR = "~/.cache/howto-conformance/accel"


def resolve_socket(path: str, base_dir: str) -> str:
    """A vhost-user socket from the topology: relative names live in the VM's directory."""
    return path if path.startswith("/") else f"{base_dir}/{path}"


def qemu_argv(
    spec: Vm,
    *,
    name: str,
    image: GuestImage | None,
    sockets_dir: str,
    accel: str,
    qmp: tuple[str, int],
    serial0: str,
    serial1: str,
    incoming: str | None = None,
    pidfile: str | None = None,
    backends: Mapping[str, str] | None = None,
    extra_append: str = "",
    hugepage_mount: str = DEFAULT_HUGEPAGE_MOUNT,
) -> list[str]:
    """The full QEMU argv for `spec`, to run with -daemonize added by the caller if wanted.

    Args:
        spec: the topology's VM.
        name: QEMU's -name, also used in errors.
        image: the built-in guest; required when spec.image is "builtin".
        sockets_dir: where relative vhost-user socket names resolve.
        accel: "kvm" or "tcg" (probe_accel decides "auto").
        qmp: the (address, port) QMP listens on.
        serial0: ttyS0's unix socket; its log is written to `<socket>.log`.
        serial1: ttyS1's unix socket, likewise.
        incoming: the -incoming URI of a migration destination.
        pidfile: where QEMU writes its pid.
        backends: the host end of tap and vf NICs, by NIC id: a tap's interface name,
            a VF's PCI address.
        extra_append: more guest kernel arguments (built-in image only).
        hugepage_mount: the host's hugetlbfs, for backing: hugepages.

    Raises:
        ConfigError: accel is neither kvm nor tcg, or a built-in image is missing.
    """
    mem = f"{spec.memory_mb}M"
    argv = [spec.qemu, "-name", name, "-machine", _machine(spec), "-nodefaults"]
    argv += ["-display", "none", "-no-reboot", "-m", mem, "-smp", str(spec.vcpus)]
    argv += _accel_args(accel, name)
    argv += _memory_args(spec, mem, hugepage_mount)
    argv += _boot_args(spec, name, image, extra_append)
    argv += viommu_args(spec)
    for serial_id, path in (("ser0", serial0), ("ser1", serial1)):
        argv += [
            "-chardev",
            f"socket,id={serial_id},path={path},server=on,wait=off,logfile={path}.log",
            "-serial",
            f"chardev:{serial_id}",
        ]
    for nic in spec.nics:
        argv += nic_args(nic, sockets_dir, backends or {}, viommu=spec.viommu)
    argv += ["-qmp", f"tcp:{qmp[0]}:{qmp[1]},server=on,wait=off"]
    if pidfile:
        argv += ["-pidfile", pidfile]
    if incoming:
        argv += ["-incoming", incoming]
    if spec.cpu_pinning:
        # The guide's `taskset -c 2-7 $KVM_PATH ...`: keep the guest off the host's
        # DPDK cores.
        argv = ["taskset", "-c", ",".join(str(c) for c in spec.cpu_pinning), *argv]
    return argv


def _machine(spec: Vm) -> str:
    # intel-iommu exists on q35 only. Its interrupt remapping (which vfio needs to trust
    # MSI) wants the IOAPIC in QEMU, not in KVM: kernel-irqchip=split (TCG ignores it).
    return "q35,kernel-irqchip=split" if spec.viommu else "pc"


def viommu_args(spec: Vm) -> list[str]:
    """The vIOMMU and the PCIe root ports the NICs sit behind; nothing without viommu.

    intremap=on: the guest's vfio_iommu_type1 refuses an IOMMU without interrupt
    remapping. caching-mode=on only when a host device is assigned: QEMU's vfio-pci must
    see the guest's every mapping to mirror it on the host IOMMU. One root port per NIC
    slot (spares included): q35's root bus takes no hot-plug, a root port does.
    """
    if not spec.viommu:
        return []
    iommu = "intel-iommu,intremap=on"
    if any(nic.kind in ("vf", "passthrough") for nic in spec.nics):
        iommu += ",caching-mode=on"
    argv = ["-device", iommu]
    for slot in spec.port_slots:
        port = f"pcie-root-port,id={root_port(slot)},bus=pcie.0,addr={slot:#x},chassis={slot}"
        argv += ["-device", port]
    return argv


def viommu_summary(spec: Vm) -> str:
    """What a report says of a VM's vIOMMU: the guest driver it gives, or its absence."""
    if not spec.viommu:
        return "none (pc machine; the built-in guest binds uio_pci_generic)"
    return (
        f"{' '.join(viommu_args(spec)[1::2][:1])} on q35, each NIC behind a PCIe root "
        "port; guest: intel_iommu=on, NICs bound to vfio-pci"
    )


def root_port(slot: int) -> str:
    """The id of the PCIe root port at a slot (viommu VMs)."""
    return f"rp{slot}"


def _accel_args(accel: str, name: str) -> list[str]:
    if accel == "kvm":
        return ["-accel", "kvm", "-cpu", "host"]
    if accel == "tcg":
        return ["-accel", "tcg,thread=multi", "-cpu", "max"]
    raise ConfigError(f"vm {name}: accel must be kvm or tcg here, not {accel!r}")


def _memory_args(spec: Vm, mem: str, hugepage_mount: str) -> list[str]:
    if spec.backing == "memfd":
        backend = f"memory-backend-memfd,id=mem0,size={mem},share=on"
    else:
        backend = f"memory-backend-file,id=mem0,size={mem},mem-path={hugepage_mount},share=on"
        backend += ",prealloc=on"
    return ["-object", backend, "-numa", "node,memdev=mem0"]


def _boot_args(spec: Vm, name: str, image: GuestImage | None, extra_append: str) -> list[str]:
    if spec.image != "builtin":
        return ["-drive", f"file={spec.image},if=virtio,cache=none"]
    if image is None:
        raise ConfigError(f"vm {name}: image is builtin but no guest image was built")
    append = f"{BASE_APPEND} hugepages={spec.guest_hugepages}"
    if spec.viommu:
        # Debian's kernel leaves the Intel IOMMU off unless asked; howto-bind then binds
        # the NICs to vfio-pci (uio_pci_generic's untranslated DMA would fault).
        append += f" intel_iommu=on {BIND_PARAM}=vfio-pci"
    if extra_append:
        append += " " + extra_append
    return ["-kernel", image.kernel, "-initrd", image.initrd, "-append", append]


def nic_args(
    nic: VmNic, sockets_dir: str, backends: Mapping[str, str], *, viommu: bool = False
) -> list[str]:
    """QEMU's -chardev/-netdev/-device arguments for one guest NIC.

    Tap and VF devices carry the NIC's id, so they can be unplugged by it (`device_del`),
    as the guide's `-device pci-assign,host=09:10.0,id=vf1` / `device_del vf1` do. With
    `viommu` a NIC sits behind its slot's root port (the model keeps vhost-user out).

    Raises:
        ConfigError: a vf NIC whose host VF was not given.
    """
    if nic.kind == "vhost-user":
        assert nic.socket is not None  # the model requires it
        socket = resolve_socket(nic.socket, sockets_dir)
        packed = "on" if nic.packed else "off"
        device = f"{nic.model},netdev={nic.id}{_mac(nic)}{_addr(nic)},packed={packed}"
        device += _multiqueue(nic)
        return [
            "-chardev", f"socket,id=chr-{nic.id},path={socket}{_vhost_role(nic)}",
            "-netdev", f"type=vhost-user,id={nic.id},chardev=chr-{nic.id},queues={nic.queues}",
            "-device", device + _options(nic),
        ]  # fmt: skip
    if nic.kind == "tap":
        netdev = tap_netdev(nic, backends.get(nic.id))
        return ["-netdev", netdev, "-device", nic_device(nic, viommu=viommu)]
    if nic.kind == "vf":
        if nic.id not in backends:
            raise ConfigError(f"NIC {nic.id}: no host VF was set up for it")
        return ["-device", vf_device(nic, backends[nic.id], viommu=viommu)]
    # passthrough: a fixed host device, assigned with vfio like a VF
    assert nic.host_device is not None  # the model requires it
    return ["-device", vf_device(nic, nic.host_device, viommu=viommu)]


def _addr(nic: VmNic, viommu: bool = False) -> str:
    if nic.slot is None:
        return ""
    if viommu:
        return f",bus={root_port(nic.slot)},addr=0x0"
    return f",addr={nic.slot:#x}"


def _mac(nic: VmNic) -> str:
    return f",mac={nic.mac}" if nic.mac else ""


def _options(nic: VmNic) -> str:
    return f",{nic.options}" if nic.options else ""


def _vhost_role(nic: VmNic) -> str:
    # QEMU as the server waits (wait=on) at start for the host's vhost port to connect:
    # with no backend the guest's NIC would come up without one.
    if nic.vhost_server:
        return ",server=on,wait=on"
    return f",reconnect={nic.reconnect}" if nic.reconnect else ""


def _multiqueue(nic: VmNic) -> str:
    # One vector per queue pair plus config and control: the guest needs them for MQ
    # (without MSI-X, vectors=0, it shares its INTx).
    vectors = 2 * nic.queues + 2 if nic.msix else 0
    mq = ",mq=on" if nic.queues > 1 else ""
    return f"{mq},vectors={vectors}" if nic.queues > 1 or not nic.msix else ""


def tap_netdev(nic: VmNic, ifname: str | None) -> str:
    """The -netdev of a tap NIC (its id is the NIC's), on host tap `ifname` if given."""
    netdev = f"tap,id={nic.id},script=no,downscript=no"
    if nic.queues > 1:
        netdev += f",queues={nic.queues}"  # the tap must be multi_queue (TapBridge makes it so)
    return f"{netdev},ifname={ifname}" if ifname else netdev


def nic_device(nic: VmNic, *, viommu: bool = False) -> str:
    """The -device of a NIC on a netdev of the same id (tap)."""
    virtio = nic.model.startswith("virtio")
    multiqueue = _multiqueue(nic) if virtio else ""
    device = f"{nic.model},netdev={nic.id},id={nic.id}{_mac(nic)}{_addr(nic, viommu)}"
    if viommu and virtio:
        # virtio DMA bypasses an IOMMU unless the device offers VIRTIO_F_IOMMU_PLATFORM
        # (emulated NICs such as e1000 always go through it)
        device += ",iommu_platform=on"
    return device + multiqueue + _options(nic)


def vf_device(nic: VmNic, host_pci: str, *, viommu: bool = False) -> str:
    """The -device that gives the VM a host PCI device (vfio-pci; pci-assign is gone)."""
    return f"vfio-pci,host={host_pci},id={nic.id}{_addr(nic, viommu)}"


def probe_accel(
    session: Session,
    *,
    qemu: str = "qemu-system-x86_64",
    kernel: str | None = None,
    timeout: float = 15.0,
    refresh: bool = False,
    cache_dir: str = ACCEL_CACHE_DIR,
) -> tuple[str, str]:
    """("kvm" | "tcg", why). KVM only if a test boot really runs under it.

    /dev/kvm can be present and KVM_CREATE_VM succeed while a nested guest never gets
    anywhere, so the proof is a boot: the kernel with no root fs panics within a second or
    two under working KVM, and panic=-1 with -no-reboot ends QEMU. A hanging nested KVM
    costs the whole `timeout`, on every host of every run, so the answer is also kept on
    the host (`cache_dir`) for as long as what decides it stays the same: the host's boot,
    its /dev/kvm node (reloading kvm_intel to enable nesting makes a new one), the QEMU
    binary and the probe's kernel and timeout. `refresh` probes again whatever is kept.
    """
    if not refresh and session.name in _probe_cache:
        return _probe_cache[session.name]
    path = _accel_cache_path(session, qemu, kernel, timeout, cache_dir)
    result = None if refresh or path is None else _read_accel(session, path)
    if result is None:
        accel, why, settled = _probe(session, qemu, kernel, timeout)
        result = (accel, why)
        # only a boot that ran to its end or its time bound is worth keeping; a failure to
        # start QEMU may be passing, and it costs nothing to see again
        if settled and path is not None:
            _keep_accel(session, path, result)
    _probe_cache[session.name] = result
    log.info("[%s] accelerator: %s (%s)", session.name, *result)
    return result


# What decides the probe's answer on a host; printed by one command so the key costs a
# round trip. No /dev/kvm: no line for it, and _probe answers at once anyway.
_ACCEL_INPUTS = r"""
cat /proc/sys/kernel/random/boot_id
stat -Lc 'kvm %d:%i %Z' /dev/kvm 2>/dev/null
q=$(command -v "$1") && stat -Lc 'qemu %n %s %Y' "$q"
printf 'home %s\n' "$HOME"
"""


def _accel_cache_path(
    session: Session, qemu: str, kernel: str | None, timeout: float, cache_dir: str
) -> str | None:
    out = session.run(["sh", "-c", _ACCEL_INPUTS, "sh", qemu], check=False)
    lines = out.stdout.splitlines()
    home = next((ln.removeprefix("home ") for ln in lines if ln.startswith("home ")), "")
    if not out.ok or len(lines) < 3 or not home:
        return None  # cannot tell what the answer depends on: probe every time
    key = hashlib.sha256(f"{out.stdout}kernel={kernel}\ntimeout={timeout:g}\n".encode())
    base = home + cache_dir[1:] if cache_dir.startswith("~/") else cache_dir
    return f"{base}/{key.hexdigest()[:16]}"


def _read_accel(session: Session, path: str) -> tuple[str, str] | None:
    out = session.run(["cat", path], check=False)
    accel, _, rest = out.stdout.strip().partition("\t")
    why, _, when = rest.partition("\t")
    if not out.ok or accel not in ("kvm", "tcg") or not why or not when:
        return None  # absent or torn: probe again
    return accel, f"{why}; test boot at {when}, kept on the host until its boot or KVM changes"


def _keep_accel(session: Session, path: str, result: tuple[str, str]) -> None:
    when = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    # written aside and renamed: a run reading it at the same time sees all of it or none
    session.run(
        ["sh", "-c", 'mkdir -p "${1%/*}" && printf "%s" "$2" >"$1.$$" && mv "$1.$$" "$1"',
         "sh", path, f"{result[0]}\t{result[1]}\t{when}\n"],
        check=False,
    )  # fmt: skip


def _probe(
    session: Session, qemu: str, kernel: str | None, timeout: float
) -> tuple[str, str, bool]:
    """(accel, why, settled): settled when the test boot panicked or hung to the bound."""
    if not session.run(["test", "-r", "/dev/kvm", "-a", "-w", "/dev/kvm"], check=False).ok:
        return "tcg", "no usable /dev/kvm on the host", False
    if kernel is None:
        found = session.run(
            ["bash", "-c", "ls -1 /boot/vmlinuz-* 2>/dev/null | sort -V | tail -n 1"], check=False
        ).stdout.strip()
        if not found:
            return "tcg", "/dev/kvm present but no kernel to test-boot it with", False
        kernel = found
    argv = [
        "timeout", "--kill-after=2", f"{timeout:g}",
        qemu, "-accel", "kvm", "-cpu", "host", "-m", "128", "-nodefaults", "-display", "none",
        "-no-reboot", "-serial", "stdio", "-kernel", kernel,
        "-append", "console=ttyS0 panic=-1 root=/dev/nonexistent",
    ]  # fmt: skip
    try:
        result = session.run(argv, check=False, timeout=timeout + 10)
    except RemoteError as exc:
        return "tcg", f"KVM test boot failed to run: {exc}", False
    if "Kernel panic" in result.stdout or "VFS:" in result.stdout:
        return "kvm", "KVM test boot reached the kernel's root-fs panic", True
    if result.exit_code == 124:
        why = f"KVM test boot did not finish within {timeout:g} s (nested KVM hangs)"
        return "tcg", why, True
    tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
    return "tcg", f"KVM test boot failed (exit {result.exit_code}): {tail[0]}", False


def describe(argv: list[str]) -> str:
    """One shell line for logs and reports."""
    return shlex.join(argv)
