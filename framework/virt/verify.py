"""Checks of what QEMU reports about a VM at a guide step (the guide's `info status`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from framework.verify import VerifyFailed, verdict

if TYPE_CHECKING:
    from framework.virt.migration import MigrationResult
    from framework.virt.vm import VirtualMachine

# What the source of a live migration may be in while it migrates: running, and stopped by
# QEMU for the switch-over at the very end (QMP's finish-migrate, then postmigrate).
_SWITCH_OVER = ("finish-migrate", "postmigrate")


def verify_vm_status(vm: VirtualMachine, what: str, expected: str) -> None:
    """QEMU reports the VM in the run state the guide's `info status` shows.

    `expected` is QMP's name for it: running, inmigrate (waiting with -incoming),
    postmigrate (the source after a migration), paused (QMP stop).
    """
    _verify_status(vm.name, vm.qmp("query-status"), what, expected)


@verdict
def _verify_status(name: str, found: Mapping[str, object], what: str, expected: str) -> None:
    status = str(found.get("status"))
    if status != expected:
        raise VerifyFailed(
            f"{what}; QEMU reports {name} {status} (vCPUs running: "
            f"{bool(found.get('running'))}), expected {expected}"
        )


def verify_vcpu_pins(
    affinity: Mapping[int, frozenset[int]], what: str, pins: Sequence[int]
) -> None:
    """Each vCPU's thread runs on exactly the host CPU `pins` gives it (4.2.5's pinning).

    `affinity` is what the host's kernel reports for each vCPU's thread (vm.vcpu_affinity).
    """
    problems = [
        f"vCPU {index} on host CPUs {sorted(affinity.get(index, ())) or 'unknown'}, expected {cpu}"
        for index, cpu in enumerate(pins)
        if affinity.get(index) != frozenset({cpu})
    ]
    if len(affinity) != len(pins):
        problems.append(f"QEMU runs {len(affinity)} vCPUs, {len(pins)} pinned")
    if problems:
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")


@verdict
def verify_migration_refused(refusal: str | None, what: str, because: str) -> None:
    """QEMU refused the migration (vm.migration_refusal), naming `because`."""
    if refusal is None or because not in refusal:
        raise VerifyFailed(
            f"{what}; QEMU "
            + ("started the migration" if refusal is None else f"answered: {refusal}"),
            expected=f"a refusal naming {because!r}",
        )


@verdict
def verify_perm_addr_kept(at_pf: str, what: str, *, perm_addr: str, removed: str) -> None:
    """The kernel PF still keeps the VF's perm_addr, not the address the VF added.

    `at_pf` is the PF's record of the VF (`ip link show <PF>`), read after the VF's port
    was closed; `perm_addr` is the port's own address before the close.
    """
    problems = []
    if at_pf.upper() != perm_addr.upper():
        problems.append(f"the PF keeps {at_pf.upper()}, not the VF's perm_addr {perm_addr.upper()}")
    if at_pf.upper() == removed.upper():
        problems.append(f"the PF keeps {removed.upper()}, the address port close removes")
    if problems:
        raise VerifyFailed(f"{what}; {'; '.join(problems)}")


@verdict
def verify_migration_live(result: MigrationResult, what: str) -> None:
    """The migration was seen active while the source ran, and never failed.

    `result.samples` are the polls of migrate(): QEMU's migration status and the source's
    run state, taken while it ran. Live means `active` with the VM running, and the VM
    stopped only by QEMU for the switch-over (finish-migrate, postmigrate) at the end.
    """
    samples = result.samples
    start = samples[0].at if samples else 0.0
    problems = []
    if not any(s.status == "active" and s.vm_status == "running" for s in samples):
        problems.append("never seen active with the VM running")
    if failed := [s for s in samples if s.status in ("failed", "cancelled", "cancelling")]:
        problems.append(f"{failed[0].status} at +{failed[0].at - start:.2f} s")
    # the switch-over stops the VM for good: once seen, the VM never runs again in it
    over = next((i for i, s in enumerate(samples) if s.vm_status in _SWITCH_OVER), len(samples))
    stopped = [s for s in samples[:over] if s.vm_status != "running"]
    stopped += [s for s in samples[over:] if s.vm_status not in _SWITCH_OVER]
    if stopped:
        problems.append(
            f"the VM was {stopped[0].vm_status} at +{stopped[0].at - start:.2f} s while the "
            f"migration was {stopped[0].status} (not the switch-over)"
        )
    if problems:
        raise VerifyFailed(
            f"{what}; {'; '.join(problems)}",
            expected="active while running, stopped only for the switch-over",
            seen=f"{len(samples)} samples: {result.timeline()}",
        )
