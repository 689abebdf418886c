"""Pre-flight: check every host of a topology before a run uses it.

A nightly lab run that meets a host with too few free hugepages, a NIC port bound to the
wrong driver or no QEMU would otherwise fail test after test, each with an error far
from its cause. The pre-flight asks each host for what the topology says it has, cheaply
and read-only, and names every missing thing in one line. `--preflight` (scripts/nightly)
runs it before the first test uses the lab and stops the run if anything is missing;
`python -m framework.lab.preflight --topology FILE` runs it alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from framework.config.model import Host, Topology
from framework.errors import FrameworkError, HostsUnreachable
from framework.lab.hosts import HostHandle

EXIT_OK = 0
EXIT_FAILED = 3  # the suite's "lab unusable" (framework.plugin.EXIT_LAB_UNUSABLE)
EXIT_BAD_INPUT = 4
KERNEL_DRIVERS_WITH_NETDEV = {"ixgbe", "i40e", "ice", "igb", "e1000e", "virtio-pci", "virtio_net"}


@dataclass(frozen=True)
class Check:
    """One thing a host must have, and whether it has it."""

    host: str
    what: str  # e.g. "hugepages", "port niantic0 driver"
    ok: bool
    detail: str

    def line(self) -> str:
        """'host_server_1: hugepages: 3 of 8 1048576 kB pages free, topology wants 8'."""
        return f"{self.host}: {self.what}: {self.detail}"


def run_preflight(topology: Topology, hosts: dict[str, HostHandle]) -> list[Check]:
    """Every check of every host, in topology order."""
    checks: list[Check] = []
    for handle in hosts.values():
        checks.extend(_host_checks(topology, handle))
    return checks


def _host_checks(topology: Topology, handle: HostHandle) -> Iterator[Check]:
    name, spec, session = handle.name, handle.spec, handle.session

    def run(argv: list[str]) -> tuple[bool, str]:
        try:
            done = session.run(argv, check=False, timeout=30)
        except FrameworkError as exc:
            return False, str(exc)
        return done.ok, (done.stdout.strip() or done.stderr.strip())

    ok, out = run(["uname", "-r"])
    yield Check(name, "SSH", ok, f"answers (kernel {out})" if ok else f"no answer: {out}")
    if not ok:
        return
    if spec.role == "dut":
        yield _dpdk_check(topology, handle)
        yield from _hugepage_checks(topology, spec, name, run)
    for port in spec.ports:
        yield from _port_checks(handle, port.name, run)
    caps = {c.value for c in spec.capabilities}
    if "qemu" in caps:
        qemus = sorted({vm.qemu for vm in topology.vms.values() if vm.host == name})
        for qemu in qemus or ["qemu-system-x86_64"]:
            ok, out = run([qemu, "--version"])
            first = out.splitlines()[0] if out else ""
            yield Check(
                name, "QEMU", ok, first if ok else f"{qemu} does not run: {out or 'not found'}"
            )
    if "kvm" in caps:
        ok, _ = run(["test", "-r", "/dev/kvm", "-a", "-w", "/dev/kvm"])
        yield Check(name, "KVM", ok, "/dev/kvm usable" if ok else "/dev/kvm missing or not usable")
    if "vhost_net" in caps:
        ok, _ = run(["test", "-c", "/dev/vhost-net"])
        yield Check(
            name, "vhost-net", ok, "/dev/vhost-net present" if ok else "/dev/vhost-net missing"
        )
    if "container" in caps and spec.container_engine != "none":
        engine = spec.container_engine
        ok, out = run([engine, "--version"])
        detail = out.splitlines()[0] if ok and out else f"{engine} does not run: {out or 'none'}"
        yield Check(name, "container engine", ok, detail)


def _dpdk_check(topology: Topology, handle: HostHandle) -> Check:
    from framework.dpdk.version import DpdkVersion, detect_dpdk_version, same_release

    testpmd = topology.dpdk.testpmd
    try:
        found = detect_dpdk_version(handle.session, testpmd)
    except FrameworkError as exc:
        return Check(handle.name, "DPDK", False, str(exc).removeprefix(f"{handle.name}: "))
    declared = topology.dpdk.version
    if declared != "auto" and not same_release(DpdkVersion.parse(declared), found, declared):
        return Check(handle.name, "DPDK", False,
                     f"{testpmd} is DPDK {found}, the topology says {declared}")  # fmt: skip
    return Check(handle.name, "DPDK", True, f"{testpmd} is DPDK {found}")


def _hugepage_checks(topology: Topology, spec: Host, name: str, run) -> Iterator[Check]:
    pages = spec.hugepages
    base = f"/sys/kernel/mm/hugepages/hugepages-{pages.size_kb}kB"
    ok, out = run(["cat", f"{base}/nr_hugepages", f"{base}/free_hugepages"])
    numbers = out.split()
    if not ok or len(numbers) != 2 or not all(n.isdigit() for n in numbers):
        yield Check(name, "hugepages", False, f"no {pages.size_kb} kB hugepages: {out}")
    else:
        total, free = int(numbers[0]), int(numbers[1])
        # The virtual lab's hosts share this machine's pages, which its run registry hands
        # out among concurrent runs: there the pool must be big enough, not free now.
        have, what = (total, "reserved") if topology.kind == "virtual" else (free, "free")
        enough = have >= pages.count
        yield Check(name, "hugepages", enough,
                    f"{have} of {total} {pages.size_kb} kB pages {what}, topology wants "
                    f"{pages.count}")  # fmt: skip
    ok, _ = run(["grep", "-q", f" {pages.mount} hugetlbfs ", "/proc/mounts"])
    yield Check(name, "hugetlbfs", ok,
                f"mounted at {pages.mount}" if ok else f"not mounted at {pages.mount}")  # fmt: skip


def _port_checks(handle: HostHandle, port_name: str, run) -> Iterator[Check]:
    name = handle.name
    port = handle.ports[port_name] if port_name in handle.ports else None
    spec = (
        port.spec if port is not None else next(p for p in handle.spec.ports if p.name == port_name)
    )
    what = f"port {spec.name}"
    if spec.pci:
        device = f"/sys/bus/pci/devices/{spec.pci}"
        ok, out = run(["readlink", "-f", f"{device}/driver"])
        bound = out.rsplit("/", 1)[-1] if ok and "/drivers/" in out else ""
        if not run(["test", "-e", device])[0]:
            yield Check(name, what, False, f"no PCI device {spec.pci}")
            return
        if spec.driver:
            wrong = "" if bound == spec.driver else f", topology says {spec.driver}"
            detail = f"{spec.pci} bound to {bound or 'no driver'}{wrong}"
            yield Check(name, what, bound == spec.driver, detail)
        if spec.sriov_vfs:
            ok, out = run(["cat", f"{device}/sriov_totalvfs"])
            total = int(out) if ok and out.isdigit() else 0
            yield Check(name, f"{what} SR-IOV", total >= spec.sriov_vfs,
                        f"{spec.pci} supports {total} VFs, topology wants {spec.sriov_vfs}"
                        if ok else f"{spec.pci} has no SR-IOV ({out})")  # fmt: skip
    kernel_netdev = not spec.pci or (spec.driver or "") in KERNEL_DRIVERS_WITH_NETDEV
    interface = None
    if port is not None and kernel_netdev:
        try:
            interface = port.interface
        except FrameworkError:
            interface = None
    if interface:
        # netlink, not /sys/class/net: sysfs shows the netns that mounted it, not the host's
        ok, _ = run(["ip", "link", "show", "dev", interface])
        yield Check(name, f"{what} interface", ok,
                    f"{interface} present" if ok else f"no interface {interface}")  # fmt: skip


def _unreachable(topology: Topology, exc: FrameworkError) -> list[Check]:
    if isinstance(exc, HostsUnreachable):
        return [Check(host, "SSH", False, why) for host, why in exc.reasons.items()]
    return [Check(topology.name, "hosts", False, str(exc))]


def main(argv: list[str] | None = None) -> int:
    """`python -m framework.lab.preflight --topology FILE [--json FILE]`; exit 0, 3 or 4."""
    from framework.lab.hosts import provision
    from framework.lab.testbeds import load_pool

    parser = argparse.ArgumentParser(
        prog="python -m framework.lab.preflight",
        description="Check every host of a topology before a run (read only).",
    )
    parser.add_argument("--topology", required=True, help="topology YAML file")
    parser.add_argument("--json", type=Path, help="also write the checks as JSON here")
    args = parser.parse_args(argv)
    try:
        (topology,) = load_pool([args.topology])
    except FrameworkError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        with provision(topology) as hosts:
            checks = run_preflight(topology, hosts)
    except FrameworkError as exc:
        checks = _unreachable(topology, exc)
    for check in checks:
        print(f"{'ok  ' if check.ok else 'FAIL'} {check.line()}")
    failed = sum(not c.ok for c in checks)
    print(f"pre-flight: {len(checks)} checks, {failed} failed")
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in checks], indent=1) + "\n")
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
