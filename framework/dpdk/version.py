"""Which DPDK release a host's testpmd belongs to.

The version decides how a guide's 17.05 command line must be rewritten (``-w`` vs ``-a``,
removed options, bonding "slave" vs "member"), so it is read from the binary itself.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from framework.config.model import DEFAULT_TESTPMD
from framework.errors import RemoteError
from framework.remote.session import Session

_VERSION = re.compile(r"(?:DPDK\s+)?v?(\d{2})\.(\d{1,2})(?:\.(\d+))?")
_RTE_VERSION = re.compile(r"RTE Version:\s*'?(DPDK\s+[0-9][0-9.]*[0-9])")


@dataclass(frozen=True, order=True)
class DpdkVersion:
    """A DPDK release, YY.MM.patch; compares in release order."""

    year: int
    month: int
    patch: int = 0

    @classmethod
    def parse(cls, text: str) -> DpdkVersion:
        """Accept "22.11", "22.11.11", "DPDK 17.05.0", "v23.11" or "DPDK 23.11.0-rc1"."""
        match = _VERSION.search(text.strip())
        if not match:
            raise ValueError(f"not a DPDK version: {text!r} (expected YY.MM[.patch])")
        year, month, patch = match.groups()
        return cls(int(year), int(month), int(patch or 0))

    def at_least(self, other: DpdkVersion | str) -> bool:
        """Whether this release is `other` or newer; `other` may be a version string."""
        return self >= (other if isinstance(other, DpdkVersion) else DpdkVersion.parse(other))

    def __str__(self) -> str:
        return f"{self.year:02d}.{self.month:02d}.{self.patch}"


def same_release(declared: DpdkVersion, found: DpdkVersion, text: str) -> bool:
    """Whether `found` is the release a topology's `dpdk.version` (`text`) names.

    "22.11" names the release (any patch level); "22.11.3" the patch level too.
    """
    if text.count(".") == 1:
        return (declared.year, declared.month) == (found.year, found.month)
    return declared == found


def version_probe_argv(testpmd: str, file_prefix: str) -> list[str]:
    """The argv that asks testpmd its release: EAL's -v prints "RTE Version: 'DPDK 22.11.11'".

    --no-huge/--no-pci/--no-shconf with a testpmd --help makes EAL start without touching
    hugepages or devices and testpmd exit at once; EAL still makes an empty runtime
    directory, /var/run/dpdk/<file_prefix>, for the caller to remove.
    """
    return [
        testpmd, "-v", "--no-huge", "--no-pci", "--no-shconf", "-m", "64",
        "--file-prefix", file_prefix, "--", "--help",
    ]  # fmt: skip


def rte_version(output: str) -> DpdkVersion | None:
    """The release EAL's -v banner in `output` names (None: no banner)."""
    match = _RTE_VERSION.search(output)
    return DpdkVersion.parse(match.group(1)) if match else None


def detect_dpdk_version(session: Session, testpmd: str = DEFAULT_TESTPMD) -> DpdkVersion:
    """Ask the binary (version_probe_argv), then remove the runtime directory it made.

    pkg-config libdpdk is the fallback for a binary that cannot run here (e.g. a wrong EAL
    build).
    """
    if not session.run(["test", "-x", testpmd], check=False, timeout=10).ok:
        # A pkg-config answer would describe some other DPDK than the one under test.
        raise RemoteError(f"{session.name}: testpmd not found or not executable: {testpmd}")
    prefix = f"hcbver{os.getpid()}"
    argv = version_probe_argv(testpmd, prefix)
    first_error = ""
    try:
        result = session.run(argv, check=False, timeout=30)
        found = rte_version(result.stdout + result.stderr)
        if found is not None:
            return found
        lines = (result.stderr or result.stdout).strip().splitlines()
        first_error = lines[-1] if lines else "no output"
    except RemoteError as exc:
        first_error = str(exc)
    finally:
        # Only the directory for our own, pid-unique prefix.
        session.run(["rm", "-rf", f"/var/run/dpdk/{prefix}"], check=False, timeout=10)
    pkg = session.run(["pkg-config", "--modversion", "libdpdk"], check=False, timeout=10)
    if pkg.ok and pkg.stdout.strip():
        return DpdkVersion.parse(pkg.stdout)
    raise RemoteError(
        f"{session.name}: cannot tell the DPDK version of {testpmd}: "
        f"`{testpmd} -v` printed no RTE Version ({first_error}) and pkg-config has no libdpdk"
    )
