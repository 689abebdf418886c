r"""SR-IOV on a lab host: HowTo guide 1, section 1.4.1 (setup_vf_on_212_46.sh).

The guide creates one VF on an Intel 82599 (ixgbe) or X710 (i40e) port and frees it from
the host's VF driver so QEMU can take it::

    cat /sys/bus/pci/devices/0000\:09\:00.0/sriov_numvfs
    echo 1 > /sys/bus/pci/devices/0000\:09\:00.0/sriov_numvfs
    cat /sys/bus/pci/devices/0000\:09\:00.0/sriov_numvfs
    rmmod ixgbevf

Two things changed since. `rmmod ixgbevf` (or i40evf, now iavf) would take the driver away
from every VF on the host, other users' included, so only the one VF is unbound. And QEMU's
pci-assign is gone: the VF is bound to vfio-pci and given with `-device vfio-pci,host=...`.

Everything is done with commands through the host's Session (cat, readlink, echo > file):
the host is normally remote, so no local file I/O. Every command is recorded next to the
guide's line it stands for, for the report.
"""

from __future__ import annotations

import json
import logging
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from framework.errors import FrameworkError

if TYPE_CHECKING:
    from framework.remote.session import CommandResult, Session

log = logging.getLogger("howto.sriov")

# Full form only ("0000:09:00.0"): the sysfs names carry the domain, and checking before use
# keeps an address from a topology out of any path it was not meant for.
PCI_ADDRESS = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")

VFIO_DRIVER = "vfio-pci"
VF_LINK_STATES: tuple[str, ...] = ("enable", "disable", "auto")

# The guide's own lines, as printed in section 1.4.1 (its PF is 0000:09:00.0, one VF).
GUIDE_READ_NUMVFS = r"cat /sys/bus/pci/devices/0000\:09\:00.0/sriov_numvfs"
GUIDE_WRITE_NUMVFS = r"echo 1 > /sys/bus/pci/devices/0000\:09\:00.0/sriov_numvfs"
GUIDE_RMMOD = "rmmod ixgbevf"
GUIDE_PCI_ASSIGN = "(QEMU -device pci-assign took the VF itself)"
GUIDE_BIND_PF = "dpdk-devbind.py -b igb_uio 01:00.0"  # guide 5.1 step 2
# vfio-pci's switch for SR-IOV on a device it drives (off by default).
VFIO_ENABLE_SRIOV = "module/vfio_pci/parameters/enable_sriov"  # under sysfs
NOT_IN_GUIDE = "(not in the guide)"


_NOT_TAKEN = object()


class SriovError(FrameworkError):
    """SR-IOV could not be set up or undone; names the host, the PCI address and the cause."""


@dataclass(frozen=True)
class VirtualFunction:
    """One VF of a PF, as the host's sysfs shows it."""

    host: str
    pf_pci: str
    index: int
    pci: str

    def __str__(self) -> str:
        return f"VF {self.index} ({self.pci}) of {self.pf_pci}"


def _one_line(text: str) -> str:
    """The last lines of a command's output joined into one, for an error message."""
    return " | ".join(line for line in text.strip().splitlines()[-3:]) or "(no output)"


class SriovPf:
    """A physical function's SR-IOV set-up on one host, undone by restore().

    Attributes:
        steps: (what the guide ran, what ran here) for every command, in order. A command
            the guide has no line for is paired with NOT_IN_GUIDE.
    """

    def __init__(
        self, session: Session, pf_pci: str, *, host: str | None = None, sysfs: str = "/sys"
    ) -> None:
        self.session = session
        self.host = host if host is not None else session.name
        self.pf_pci = self._checked(pf_pci, "PF")
        self.sysfs = sysfs.rstrip("/")  # "/" gives "": paths are built as f"{sysfs}/bus/..."
        self.steps: list[tuple[str, str]] = []
        # What restore() puts back: the sriov_numvfs found first (None: enable() never ran),
        # the count enable() set, and every VF taken from its driver with that driver.
        self._original_numvfs: int | None = None
        self._enabled: int | None = None
        self._taken: dict[str, tuple[VirtualFunction, str | None]] = {}
        # The PF's own driver before bind_pf_vfio() (_NOT_TAKEN: the PF was never rebound).
        self._pf_driver: str | None | object = _NOT_TAKEN
        self._enable_sriov: str | None = None  # vfio-pci's enable_sriov as found

    # -- sysfs paths -----------------------------------------------------------------------

    def _device(self, pci: str, *parts: str) -> str:
        return "/".join((self.sysfs, "bus/pci/devices", pci, *parts))

    def _pf(self, *parts: str) -> str:
        return self._device(self.pf_pci, *parts)

    def _checked(self, pci: str, what: str) -> str:
        if not PCI_ADDRESS.fullmatch(pci):
            raise SriovError(
                f"{self.host}: {what} PCI address {pci!r} is not of the form 0000:09:00.0"
            )
        return pci

    # -- commands ----------------------------------------------------------------------------

    def _run(self, guide: str, argv: Sequence[str], *, shown: str | None = None) -> CommandResult:
        """Run argv (never raising on its exit status) and record it against the guide's line."""
        result = self.session.run(list(argv), check=False)
        self.steps.append((guide, shown if shown is not None else shlex.join(argv)))
        return result

    def _write_result(self, path: str, value: str, guide: str) -> CommandResult:
        # A shell redirection as in the guide: one write() of the whole value, which sysfs
        # attributes need (they act on each write call).
        line = f"echo {shlex.quote(value)} > {shlex.quote(path)}"
        return self._run(guide, ["sh", "-c", line], shown=line)

    def _write(self, path: str, value: str, guide: str) -> None:
        result = self._write_result(path, value, guide)
        if not result.ok:
            raise SriovError(
                f"{self.host}: writing {value!r} to {path} failed: "
                f"{_one_line(result.stderr or result.stdout)}"
            )

    def _read_int(self, path: str, guide: str) -> int | None:
        """The number in a sysfs attribute; None if it cannot be read (absent)."""
        result = self._run(guide, ["cat", path])
        if not result.ok:
            return None
        try:
            return int(result.stdout.strip())
        except ValueError:
            raise SriovError(
                f"{self.host}: {path} reads {result.stdout.strip()!r}, not a number"
            ) from None

    def _readlink(self, path: str, guide: str = NOT_IN_GUIDE) -> str | None:
        result = self._run(guide, ["readlink", path])
        target = result.stdout.strip()
        return target.rsplit("/", 1)[-1] if result.ok and target else None

    # -- the guide's steps -----------------------------------------------------------------

    def total_vfs(self) -> int:
        """How many VFs the PF can have (sriov_totalvfs).

        Raises:
            SriovError: the PF does not exist, or has no SR-IOV capability.
        """
        total = self._read_int(self._pf("sriov_totalvfs"), NOT_IN_GUIDE)
        if total is None:
            if not self.session.exists(self._pf()):
                raise SriovError(f"{self.host}: no PCI device {self.pf_pci} ({self._pf()})")
            raise SriovError(f"{self.host}: {self.pf_pci}: no SR-IOV (no sriov_totalvfs)")
        return total

    def num_vfs(self) -> int:
        """How many VFs the PF has now (sriov_numvfs)."""
        current = self._read_int(self._pf("sriov_numvfs"), GUIDE_READ_NUMVFS)
        if current is None:
            raise SriovError(f"{self.host}: {self.pf_pci}: no SR-IOV (no sriov_numvfs)")
        return current

    def enable(self, count: int = 1) -> list[VirtualFunction]:
        """Give the PF count VFs as the guide does: read sriov_numvfs, write it, read it back.

        The count found the first time is remembered for restore(). A different non-zero
        count is first set to 0, since the kernel refuses to go from N VFs to M directly.

        Args:
            count: the number of VFs wanted (the guide: 1).

        Returns:
            The VFs, virtfn0 to virtfn<count-1>.

        Raises:
            SriovError: count is more than the PF supports, the kernel refused the write
                (BIOS SR-IOV or IOMMU off, VFs in use), or sriov_numvfs reads otherwise after.
        """
        if count < 1:
            raise SriovError(f"{self.host}: {self.pf_pci}: asked for {count} VFs, need >= 1")
        total = self.total_vfs()
        if count > total:
            raise SriovError(
                f"{self.host}: {self.pf_pci} supports {total} VFs (sriov_totalvfs), {count} asked"
            )
        numvfs = self._pf("sriov_numvfs")
        current = self.num_vfs()
        if self._original_numvfs is None:
            self._original_numvfs = current
        if current not in (0, count):
            self._write(numvfs, "0", NOT_IN_GUIDE)
        self._write(numvfs, str(count), GUIDE_WRITE_NUMVFS)
        self._enabled = count
        after = self.num_vfs()
        if after != count:
            raise SriovError(
                f"{self.host}: {self.pf_pci}: sriov_numvfs reads {after} after writing {count}"
            )
        return [self.vf(index) for index in range(count)]

    def vf(self, index: int) -> VirtualFunction:
        """The PF's VF number index (0 is the first), from <pf>/virtfn<index>.

        Raises:
            SriovError: the PF has no such VF (not enabled, or fewer VFs).
        """
        target = self._readlink(self._pf(f"virtfn{index}"))
        if target is None:
            raise SriovError(
                f"{self.host}: {self.pf_pci} has no VF {index} (no virtfn{index}; "
                "enable() enough VFs first)"
            )
        if not PCI_ADDRESS.fullmatch(target):
            raise SriovError(
                f"{self.host}: {self.pf_pci}/virtfn{index} points to {target!r}, not a PCI address"
            )
        return VirtualFunction(self.host, self.pf_pci, index, target)

    def driver(self, pci: str) -> str | None:
        """The name of the driver a PCI device is bound to; None when it has none."""
        return self._readlink(self._device(self._checked(pci, "device"), "driver"))

    def unbind(self, vf: VirtualFunction) -> str | None:
        """Unbind the VF alone from its driver: the guide's rmmod, without the other VFs.

        Returns:
            The driver it was bound to; None if it had none (nothing is written then).
        """
        name = self.driver(vf.pci)
        if name is None:
            return None
        self._taken.setdefault(vf.pci, (vf, name))
        self._write(self._driver_path(name, "unbind"), vf.pci, GUIDE_RMMOD)
        return name

    def _driver_path(self, name: str, *parts: str) -> str:
        return "/".join((self.sysfs, "bus/pci/drivers", name, *parts))

    def bind_vfio(self, vf: VirtualFunction) -> None:
        """Bind the VF to vfio-pci, for QEMU's -device vfio-pci,host=<vf.pci> or a DPDK VF.

        Raises:
            SriovError: the VF is not bound to vfio-pci afterwards; the message says what
                it is bound to, and why modprobe or drivers_probe failed if they did.
        """
        before = self.driver(vf.pci)
        self._taken.setdefault(vf.pci, (vf, before))
        self._bind_vfio(vf.pci, str(vf), before, GUIDE_PCI_ASSIGN)

    def bind_pf_vfio(self) -> None:
        """Bind the PF itself to vfio-pci, for a DPDK PF that creates VFs (guide 5.1).

        The guide binds the PF to igb_uio and writes max_vfs; igb_uio is not in the
        kernel, so vfio-pci is used with its `enable_sriov` parameter on, which lets
        sriov_numvfs create VFs of a vfio-bound PF (the DPDK PF and VF processes then
        share a VF token, `--vfio-vf-token`). restore() gives the PF back to its driver.
        """
        before = self.driver(self.pf_pci)
        if self._pf_driver is _NOT_TAKEN:
            self._pf_driver = before
        self._bind_vfio(self.pf_pci, f"PF {self.pf_pci}", before, GUIDE_BIND_PF)
        if self._enable_sriov is None:
            read = self._run(NOT_IN_GUIDE, ["cat", self._enable_sriov_path])
            self._enable_sriov = read.stdout.strip() if read.ok else "N"
        self._write(self._enable_sriov_path, "Y", NOT_IN_GUIDE)

    @property
    def _enable_sriov_path(self) -> str:
        return f"{self.sysfs}/{VFIO_ENABLE_SRIOV}"

    def _bind_vfio(self, pci: str, label: str, before: str | None, guide: str) -> None:
        """Bind one device to vfio-pci, or say why it is not.

        driver_override makes vfio-pci the only driver that may take the device, whatever
        the id tables say; drivers_probe then makes the kernel bind it.
        """
        modprobe = self._run(NOT_IN_GUIDE, ["modprobe", VFIO_DRIVER])
        # Override before unbinding: the old driver could otherwise take it straight back.
        self._write(self._device(pci, "driver_override"), VFIO_DRIVER, NOT_IN_GUIDE)
        if before not in (None, VFIO_DRIVER):
            self._write(self._driver_path(before, "unbind"), pci, GUIDE_RMMOD)
        probe = self._write_result(f"{self.sysfs}/bus/pci/drivers_probe", pci, guide)
        after = self.driver(pci)
        if after == VFIO_DRIVER:
            return
        why = [f"bound to {after}" if after else "bound to no driver"]
        if not modprobe.ok:
            why.append(f"modprobe {VFIO_DRIVER}: {_one_line(modprobe.stderr)}")
        if not probe.ok:
            why.append(f"drivers_probe: {_one_line(probe.stderr)}")
        raise SriovError(f"{self.host}: {label} is not bound to {VFIO_DRIVER}: {'; '.join(why)}")

    def pf_interface(self) -> str:
        """The PF's kernel network interface, the single entry of <pf>/net/.

        Raises:
            SriovError: the PF has no interface (not driven by ixgbe/i40e but by DPDK or
                none) or several.
        """
        result = self._run(NOT_IN_GUIDE, ["ls", "-1", self._pf("net")])
        names = result.stdout.split() if result.ok else []
        if len(names) != 1:
            found = ", ".join(names) if names else "none"
            raise SriovError(
                f"{self.host}: {self.pf_pci} needs one kernel network interface "
                f"(a kernel PF driver such as ixgbe or i40e), found {found}"
            )
        return names[0]

    def vf_address(self, vf: VirtualFunction) -> str:
        """The MAC address the kernel PF keeps for the VF (`ip link show <PF>`: vf N).

        The VF's perm_addr: what the PF hands the VF's driver at reset. Addresses the VF
        adds on top (testpmd's `mac_addr add`) are filters of their own, not this one.

        Raises:
            SriovError: ip failed, or lists no such VF under the PF.
        """
        pf = self.pf_interface()
        result = self._run(NOT_IN_GUIDE, ["ip", "-j", "link", "show", "dev", pf])
        try:
            (link,) = json.loads(result.stdout) if result.ok else [{}]
        except ValueError:
            link = {}
        for entry in link.get("vfinfo_list", []):
            if entry.get("vf") == vf.index and "address" in entry:
                return str(entry["address"]).upper()
        raise SriovError(
            f"{self.host}: `ip link show dev {pf}` lists no address for {vf}: "
            + (_one_line(result.stdout)[:200] if result.ok else _one_line(result.stderr))
        )

    def set_vf_link(self, vf: VirtualFunction, state: Literal["enable", "disable", "auto"]) -> None:
        """Force the VF's link state from the PF (ip link ... vf N state ...).

        The kernel PF driver decides the link a VF sees; this is how the suite takes the
        VF's link down on a lab host, where no one pulls a cable.

        Raises:
            SriovError: state is not one ip knows, or ip failed (the PF driver may not
                support it).
        """
        if state not in VF_LINK_STATES:
            raise SriovError(
                f"{self.host}: {vf}: link state {state!r} is not one of {', '.join(VF_LINK_STATES)}"
            )
        argv = ["ip", "link", "set", "dev", self.pf_interface(), "vf", str(vf.index)]
        result = self._run(NOT_IN_GUIDE, [*argv, "state", state])
        if not result.ok:
            raise SriovError(
                f"{self.host}: {vf}: setting its link state to {state} failed: "
                f"{_one_line(result.stderr)}"
            )

    # -- undo --------------------------------------------------------------------------------

    def restore(self) -> None:
        """Put the host back as found: VFs back to their drivers, sriov_numvfs as it was.

        Stop whatever uses the VFs first (the VM): the kernel waits for vfio's users before
        it unbinds, and refuses to remove VFs in use. A second call does nothing.

        A host that cannot be reached any more (its SSH connection gone) is only logged:
        restoring is the last thing a run does and must not hide why the run ended.

        Raises:
            SriovError: the host answered but refused a step; every step is still tried
                and the message names each that failed.
        """
        try:
            problems = self._restore_vfs() + self._restore_numvfs() + self._restore_pf()
        except Exception as exc:  # session gone: RemoteError, paramiko's errors, OSError
            log.warning(
                "%s: could not restore SR-IOV of %s (host unreachable?): %s: %s",
                self.host,
                self.pf_pci,
                type(exc).__name__,
                exc,
            )
            return
        self._taken.clear()
        self._original_numvfs = self._enabled = None
        self._pf_driver, self._enable_sriov = _NOT_TAKEN, None
        if problems:
            raise SriovError(f"{self.host}: {self.pf_pci}: not restored: {'; '.join(problems)}")

    def _restore_vfs(self) -> list[str]:
        """Unbind the VFs taken from vfio-pci and give them back to their drivers."""
        problems: list[str] = []
        # VFs the numvfs write removes need no driver back; the others (VFs kept because the
        # count is unchanged) go back to the driver they had.
        removed = self._original_numvfs not in (None, self._enabled)
        for vf, original in self._taken.values():
            if not self._write_result(self._device(vf.pci, "driver_override"), "", NOT_IN_GUIDE).ok:
                problems.append(f"{vf}: driver_override not cleared")
            current = self.driver(vf.pci)
            if current is not None and current != original:
                unbound = self._write_result(
                    self._driver_path(current, "unbind"), vf.pci, NOT_IN_GUIDE
                )
                if not unbound.ok:
                    problems.append(f"{vf}: still bound to {current}")
                    continue
            if original is not None and not removed and current != original:
                self._write_result(f"{self.sysfs}/bus/pci/drivers_probe", vf.pci, NOT_IN_GUIDE)
                if self.driver(vf.pci) != original:
                    problems.append(f"{vf}: not bound back to {original}")
        return problems

    def _restore_numvfs(self) -> list[str]:
        """Write back the sriov_numvfs found first (0 in between, as enable() does)."""
        original = self._original_numvfs
        if original is None or original == self._enabled:
            return []
        numvfs = self._pf("sriov_numvfs")
        if original != 0 and not self._write_result(numvfs, "0", NOT_IN_GUIDE).ok:
            return [f"sriov_numvfs not set to 0 before {original}"]
        if not self._write_result(numvfs, str(original), NOT_IN_GUIDE).ok:
            return [f"sriov_numvfs not set back to {original}"]
        return []

    def _restore_pf(self) -> list[str]:
        """Give a PF taken by bind_pf_vfio() back to its driver (after its VFs are gone)."""
        problems: list[str] = []
        if self._pf_driver is not _NOT_TAKEN:
            original = self._pf_driver if isinstance(self._pf_driver, str) else None
            override = self._device(self.pf_pci, "driver_override")
            if not self._write_result(override, "", NOT_IN_GUIDE).ok:
                problems.append(f"PF {self.pf_pci}: driver_override not cleared")
            current = self.driver(self.pf_pci)
            if current is not None and current != original:
                self._write_result(self._driver_path(current, "unbind"), self.pf_pci, NOT_IN_GUIDE)
            if original is not None and current != original:
                self._write_result(f"{self.sysfs}/bus/pci/drivers_probe", self.pf_pci, NOT_IN_GUIDE)
                if self.driver(self.pf_pci) != original:
                    problems.append(f"PF {self.pf_pci}: not bound back to {original}")
        if self._enable_sriov not in (None, "Y"):
            self._write_result(self._enable_sriov_path, self._enable_sriov, NOT_IN_GUIDE)
        return problems
