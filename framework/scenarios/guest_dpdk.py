"""DPDK set up inside a guest, as the guides' setup_dpdk_in_vm.sh does, over its shell.

Each function that changes the guest returns (what the guide ran, what ran here), so a
scenario can put both in its report.
"""

from __future__ import annotations

import re

from framework import plan
from framework.config.model import DpdkBuild, Vm, VmNic
from framework.dpdk.version import DpdkVersion, detect_dpdk_version, same_release
from framework.errors import ConfigError, FrameworkError
from framework.remote.session import Session
from framework.report.attach import attach_text
from framework.virt.vm import VirtualMachine

HUGEPAGES_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"


def guest_pci(nic: VmNic, spec: Vm) -> str:
    """The guest PCI address of a NIC of `spec` (its fixed slot; see Vm.guest_pci)."""
    try:
        return spec.guest_pci(nic)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc


def guest_testpmd(spec: Vm, build: DpdkBuild) -> str:
    """The testpmd a guest runs: the VM's own (a disk image's), or the build's guest side's.

    The built-in image holds that build's testpmd at its path in the build's file system.
    """
    return spec.testpmd or build.guest_side.testpmd


def guest_version(
    vm: VirtualMachine, spec: Vm, build: DpdkBuild, host_version: DpdkVersion
) -> DpdkVersion:
    """The release of the testpmd the guest runs, which decides how its commands are spelt.

    The host's when the guest carries the very build the host runs; otherwise (a mix's
    guest side, a disk image's own testpmd) what that testpmd says in the guest. A plan
    asks nothing and takes the host's.
    """
    if (spec.testpmd is None and build.guest_side is build) or plan.current() is not None:
        return host_version
    testpmd = guest_testpmd(spec, build)
    found = vm.dpdk_version(testpmd)
    attach_text(f"{vm.name}: its testpmd's DPDK", f"{testpmd} -v in the guest: DPDK {found}")
    guest = build.guest_side
    declared = guest.version
    if (
        spec.testpmd is None
        and declared != "auto"
        and not same_release(DpdkVersion.parse(declared), found, declared)
    ):
        # the image should carry the guest build's testpmd: a stale or shared image would
        # otherwise pass as a mix while both sides run one DPDK
        raise FrameworkError(
            f"{vm.name}: the guest's testpmd is DPDK {found}, not build {guest.name}'s "
            f"{declared} (its guest image carries another build)"
        )
    return found


def container_version(session: Session, build: DpdkBuild, host_version: DpdkVersion) -> DpdkVersion:
    """The release of the testpmd a container runs: the host's, or a mix's guest build's.

    The image carries that build's testpmd, so the same binary is asked on the host.
    """
    guest = build.guest_side
    if guest is build or plan.current() is not None:
        return host_version
    return detect_dpdk_version(session, guest.host_testpmd)


def dpdk_driver(spec: Vm) -> str:
    """The kernel driver guest NICs are bound to for DPDK.

    A guest with a vIOMMU gets vfio-pci. Otherwise the built-in guest has uio_pci_generic
    (no IOMMU in the guest, and igb_uio is out of tree); a disk-image guest gets vfio-pci
    in no-IOMMU mode, which also takes VFs (uio_pci_generic cannot: VFs have no legacy
    interrupt).
    """
    return "vfio-pci" if spec.viommu or spec.image != "builtin" else "uio_pci_generic"


def reserve_hugepages(vm: VirtualMachine, pages: int) -> tuple[str, str]:
    """2 MB hugepages for DPDK in the guest."""
    vm.shell.check(f"echo {pages} > {HUGEPAGES_2M}")
    return f"echo 1024 > {HUGEPAGES_2M}", f"echo {pages} > {HUGEPAGES_2M} (the guest's memory)"


def hugepages_total(vm: VirtualMachine) -> int:
    """HugePages_Total in the guest."""
    out = vm.shell.check("grep HugePages_Total /proc/meminfo")
    return int(out.split()[-1])


def bind_for_dpdk(vm: VirtualMachine, spec: Vm, *addresses: str) -> tuple[str, str]:
    """Bind guest NICs for DPDK, as the guide's dpdk-devbind.py -b igb_uio does."""
    listed = " ".join(addresses)
    if spec.image == "builtin":
        ran = f"howto-bind {listed}"
        vm.shell.check(ran)
    else:
        # behind a vIOMMU vfio has a real IOMMU: no unsafe no-IOMMU mode
        noiommu = "" if spec.viommu else " enable_unsafe_noiommu_mode=1"
        ran = f"modprobe vfio{noiommu}; modprobe vfio-pci; dpdk-devbind.py -b vfio-pci {listed}"
        vm.shell.check(ran, timeout=60)
    return (
        f"rmmod virtio-pci ixgbevf; insmod igb_uio.ko; dpdk-devbind.py -b igb_uio {listed}",
        f"{ran} ({dpdk_driver(spec)}: igb_uio is out of tree)",
    )


def bound_driver(vm: VirtualMachine, address: str) -> str | None:
    """The kernel driver a guest PCI device is bound to; None if unbound or absent."""
    link = f"/sys/bus/pci/devices/{address}/driver"
    _, out = vm.shell.run(f'echo "driver=$(basename "$(readlink {link})")"')
    # The console may still hold a prompt from before: read the marked line only.
    found = re.search(r"driver=(\S*)", out)
    return found.group(1) if found and found.group(1) not in ("", ".") else None
