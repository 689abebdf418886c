"""What the migration scenarios share around their VMs.

Making one on a host, QEMU's run-state marks for plots, teardown.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from framework import plan
from framework.config.model import DpdkBuild, Vm
from framework.lab.hosts import HostHandle
from framework.plan_virt import PlanVirtualMachine
from framework.report.attach import attach_text
from framework.traffic.stream import StreamResult
from framework.virt.image import GuestImage, ensure_guest_image
from framework.virt.qemu import probe_accel
from framework.virt.vm import VirtualMachine

log = logging.getLogger("howto.scenarios")


def vm_on(
    host: HostHandle,
    spec: Vm,
    name: str,
    images: dict[str, GuestImage | None],
    build: DpdkBuild,
    **options: Any,
) -> VirtualMachine:
    """A VM (not started) on `host`.

    Its files live in the host's work dir, QMP and incoming migrations on its management
    address; the built-in guest image, carrying the testpmd of `build`'s guest side, is
    built once per host (cached in `images`). `options` go to VirtualMachine (taps, VFs...).
    """
    image = None
    if spec.image == "builtin":
        guest = build.guest_side
        image = images.get(host.name) or ensure_guest_image(
            host.session, testpmd=guest.testpmd, enter=guest.enter
        )
        images[host.name] = image
    # a plan's VM records QEMU's command line and QMP on its plan host, connecting to nothing
    kind = VirtualMachine if plan.current() is None else PlanVirtualMachine
    return kind(
        spec,
        host.session,
        name=name,
        image=image,
        work_dir=host.work_dir,
        address=host.session.address,
        hugepage_mount=host.spec.hugepages.mount,
        **options,
    )


def kernel_guest_spec(host: HostHandle, spec: Vm) -> Vm:
    """`spec` made fit for a guest that drives its vhost-user NICs with the kernel's virtio-net.

    QEMU 7.2 without KVM (no irqfd) dies (SIGSEGV in msix_set_vector_notifiers, from
    vhost_net_start) once a guest driver starts a vhost-user NIC with MSI-X on, as the
    kernel's virtio-net does (measured here; DPDK's guests, on uio_pci_generic, use INTx):
    under TCG those NICs offer INTx only.
    """
    kvm = spec.accel == "kvm" or (
        spec.accel == "auto" and probe_accel(host.session, qemu=spec.qemu)[0] == "kvm"
    )
    if kvm:
        return spec
    nics = [
        nic.model_copy(update={"msix": False}) if nic.kind == "vhost-user" else nic
        for nic in spec.nics
    ]
    return spec.model_copy(update={"nics": nics})


def run_state_marks(stream: StreamResult, vms: Iterable[VirtualMachine | None]) -> list:
    """QEMU's STOP and RESUME events of the VMs, as (stream time, label) plot marks."""
    return [
        (stream.at(t), f"{vm.name}: {name}")
        for vm in vms
        if vm is not None
        for t, name, _ in vm.events
        if name in ("STOP", "RESUME")
    ]


def close_vms(vms: Iterable[VirtualMachine | None]) -> None:
    """Stop each VM, its console logs attached to the report first; never raises."""
    for vm in vms:
        if vm is None:
            continue
        try:
            attach_text(f"{vm.name} console", vm.console_log)
        except Exception as exc:  # reporting must not stop teardown
            log.warning("could not attach console log: %s", exc)
        vm.close()
