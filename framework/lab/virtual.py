"""Build and tear down the virtual lab described by a `kind: virtual` topology.

Layout (all names start with the topology's name_prefix, "hc" by default):
- one network namespace per host, `<prefix>-<host>`, with its data ports (veths named as in
  the topology) and a management veth `mgmt0` carrying an address of the management subnet;
- a switch namespace `<prefix>-switch` holding two bridges: `br-mgmt` joins the management
  veths, `br-data` joins the data ports and floods (ageing 0) like the guide's switch;
- one veth in the controller's namespace, `<prefix>-ctl`, so fabric reaches each host's sshd;
- an sshd per host namespace, with host and client keys generated for this run in a
  private directory that is removed at teardown.

Teardown removes every one of those and any process still running in the namespaces, and
it also runs (a) from atexit and signal handlers, so Ctrl-C and SIGTERM leave nothing, and
(b) at the start of the next run for anything a killed run left behind.
"""

from __future__ import annotations

import atexit
import ipaddress
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT, Topology
from framework.errors import LabError

log = logging.getLogger("howto.lab")

SSHD = "/usr/sbin/sshd"
HUGEPAGES_2M = Path("/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise LabError(f"`ip {' '.join(args)}` failed: {done.stderr.strip()}")
    return done


def _netns_exec(ns: str, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["ip", "netns", "exec", ns, *argv], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise LabError(f"in {ns}: `{' '.join(argv)}` failed: {done.stderr.strip()}")
    return done


def existing_namespaces() -> list[str]:
    """Names of the machine's network namespaces (`ip netns list`)."""
    done = _ip("-j", "netns", "list", check=False)
    if done.returncode != 0 or not done.stdout.strip():
        return []
    return [entry["name"] for entry in json.loads(done.stdout)]


def overlapping_routes(subnet: str, ignore_dev: str) -> list[str]:
    """Routes of the controller that overlap the subnet (other than the lab's own link)."""
    net = ipaddress.ip_network(subnet)
    done = _ip("-j", "-4", "route", "show", "table", "all", check=False)
    clashes = []
    for route in json.loads(done.stdout or "[]"):
        dst = route.get("dst", "")
        if (
            route.get("dev") == ignore_dev
            or dst in ("", "default")
            or route.get("type")
            in (
                "broadcast",
                "local",
            )
        ):
            continue
        try:
            other = ipaddress.ip_network(dst, strict=False)
        except ValueError:
            continue
        if other.overlaps(net):
            clashes.append(f"{dst} dev {route.get('dev', '?')}")
    return clashes


@dataclass
class LabHost:
    """How the framework reaches one virtual-lab host."""

    name: str
    namespace: str
    address: str
    ports: dict[str, str]  # topology port name -> interface name inside the namespace
    sshd: subprocess.Popen[bytes] | None = None


@dataclass
class VirtualLab:
    """The namespaces, bridges and sshds that stand in for a virtual topology's hosts."""

    topology: Topology
    run_dir: Path = field(init=False)
    key_file: Path = field(init=False)
    hosts: dict[str, LabHost] = field(default_factory=dict)
    _up: bool = False

    def __post_init__(self) -> None:
        if self.topology.kind != "virtual" or self.topology.virtual_lab is None:
            raise LabError(f"topology {self.topology.name!r} is not a virtual lab")
        spec = self.topology.virtual_lab
        self.prefix = spec.name_prefix
        self.subnet = ipaddress.ip_network(spec.management_subnet)
        self.switch_ns = f"{self.prefix}-switch"
        self.ctl_link = f"{self.prefix}-ctl"
        addresses = list(self.subnet.hosts())
        self.controller_address = str(addresses[0])
        for index, (name, host) in enumerate(self.topology.hosts.items()):
            address = host.address or str(addresses[10 + index])
            self.hosts[name] = LabHost(
                name=name,
                namespace=f"{self.prefix}-{name}",
                address=address,
                ports={port.name: port.interface or port.name for port in host.ports},
            )

    # -- lifecycle ---------------------------------------------------------------------

    def up(self) -> VirtualLab:
        """Build the lab and start its sshds; a failure removes whatever was built.

        Raises:
            LabError: the management subnet clashes with a route, a tool is missing, or
                hugepages cannot be had.
        """
        self.clean_stale(self.prefix, self._hugepage_mounts())
        clashes = overlapping_routes(str(self.subnet), self.ctl_link)
        if clashes:
            raise LabError(
                f"virtual lab management subnet {self.subnet} overlaps existing routes: "
                + ", ".join(clashes)
                + " (set virtual_lab.management_subnet to a free part of 198.18.0.0/15)"
            )
        for tool in ("ip", SSHD, "ssh-keygen"):
            if shutil.which(tool) is None:
                raise LabError(
                    f"{tool} not found: run scripts/setup (it installs iproute2 and openssh)"
                )
        self.run_dir = Path(tempfile.mkdtemp(prefix=f"howto-{self.prefix}-lab-"))
        self._up = True
        _register_cleanup(self)
        try:
            self._build_switch()
            for index, lab_host in enumerate(self.hosts.values()):
                self._build_host(index, lab_host)
            self._ensure_hugepages()
            self._start_sshds()
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        """Remove everything this lab made. Safe to call more than once."""
        if not self._up:
            return
        self._up = False
        for lab_host in self.hosts.values():
            if lab_host.sshd and lab_host.sshd.poll() is None:
                lab_host.sshd.terminate()
                try:
                    lab_host.sshd.wait(5)
                except subprocess.TimeoutExpired:
                    lab_host.sshd.kill()
        self.clean_stale(self.prefix, self._hugepage_mounts())
        if getattr(self, "run_dir", None):
            shutil.rmtree(self.run_dir, ignore_errors=True)
        _unregister_cleanup(self)

    def _hugepage_mounts(self) -> list[str]:
        """The hugetlbfs mounts the topology's hosts use, each once."""
        return sorted({host.hugepages.mount for host in self.topology.hosts.values()})

    @staticmethod
    def clean_stale(
        prefix: str, hugepage_mounts: Sequence[str] = (DEFAULT_HUGEPAGE_MOUNT,)
    ) -> list[str]:
        """Remove namespaces, processes, links and hugepage files named with prefix."""
        removed = []
        for ns in existing_namespaces():
            if not ns.startswith(f"{prefix}-"):
                continue
            _kill_namespace_processes(ns)
            _ip("netns", "del", ns, check=False)
            removed.append(f"netns {ns}")
        if _ip("link", "show", f"{prefix}-ctl", check=False).returncode == 0:
            _ip("link", "del", f"{prefix}-ctl", check=False)
            removed.append(f"link {prefix}-ctl")
        for mount in hugepage_mounts:
            for path in Path(mount).glob(f"{prefix}-*"):
                path.unlink(missing_ok=True)
                removed.append(str(path))
        for run_dir in Path("/run/dpdk").glob(f"{prefix}-*") if Path("/run/dpdk").exists() else []:
            shutil.rmtree(run_dir, ignore_errors=True)
        # Private directories (keys, sockets, logs) of runs that were killed outright.
        for lab_dir in Path(tempfile.gettempdir()).glob(f"howto-{prefix}-lab-*"):
            shutil.rmtree(lab_dir, ignore_errors=True)
            removed.append(str(lab_dir))
        return removed

    # -- building ----------------------------------------------------------------------

    def _build_switch(self) -> None:
        ns = self.switch_ns
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _quiet_ipv6(ns)
        for bridge in ("br-mgmt", "br-data"):
            _ip("-n", ns, "link", "add", bridge, "type", "bridge", "stp_state", "0")
        ageing = str(self.topology.switch.ageing_time * 100)  # iproute2 takes centiseconds
        _ip("-n", ns, "link", "set", "br-data", "type", "bridge", "ageing_time", ageing)
        # Keep bridged frames out of iptables: with br_netfilter active they pass through it,
        # and a frame whose IP length disagrees with its size comes out trimmed.
        for knob in ("call-iptables", "call-ip6tables", "call-arptables"):
            _netns_exec(ns, "sysctl", "-qw", f"net.bridge.bridge-nf-{knob}=0", check=False)
        _ip("link", "add", self.ctl_link, "type", "veth", "peer", "name", "ctl", "netns", ns)
        _ip("-n", ns, "link", "set", "ctl", "master", "br-mgmt", "up")
        _ip(
            "addr",
            "add",
            f"{self.controller_address}/{self.subnet.prefixlen}",
            "dev",
            self.ctl_link,
        )
        _ip("link", "set", self.ctl_link, "up")
        for bridge in ("br-mgmt", "br-data"):
            _ip("-n", ns, "link", "set", bridge, "up")

    def _build_host(self, index: int, lab_host: LabHost) -> None:
        ns = lab_host.namespace
        _ip("netns", "add", ns)
        _ip("-n", ns, "link", "set", "lo", "up")
        _quiet_ipv6(ns)
        self._cable(f"m{index}", "br-mgmt", "mgmt0", ns)
        _ip("-n", ns, "addr", "add", f"{lab_host.address}/{self.subnet.prefixlen}", "dev", "mgmt0")
        _ip("-n", ns, "link", "set", "mgmt0", "up")
        for port_index, interface in enumerate(lab_host.ports.values()):
            self._cable(f"d{index}p{port_index}", "br-data", interface, ns)
            _ip("-n", ns, "link", "set", interface, "up")

    def _cable(self, switch_side: str, bridge: str, host_side: str, ns: str) -> None:
        """A veth from a bridge of the switch namespace to an interface in a host namespace."""
        _ip("-n", self.switch_ns, "link", "add", switch_side, "type", "veth",
            "peer", "name", host_side, "netns", ns)  # fmt: skip
        _ip("-n", self.switch_ns, "link", "set", switch_side, "master", bridge, "up")

    def _ensure_hugepages(self) -> None:
        wanted = max(
            (
                h.hugepages.count
                for h in self.topology.hosts.values()
                if h.hugepages.size_kb == 2048
            ),
            default=0,
        )
        if not wanted:
            return
        have = int(HUGEPAGES_2M.read_text()) if HUGEPAGES_2M.exists() else 0
        if have < wanted:
            HUGEPAGES_2M.write_text(str(wanted))
            have = int(HUGEPAGES_2M.read_text())
        if have < wanted:
            raise LabError(f"only {have} of {wanted} 2 MB hugepages could be reserved")
        for mount in self._hugepage_mounts():
            if subprocess.run(["mountpoint", "-q", mount]).returncode != 0:
                raise LabError(f"{mount} is not a hugetlbfs mount: run scripts/setup")

    def _start_sshds(self) -> None:
        keys = self.run_dir / "keys"
        keys.mkdir(mode=0o700)
        self.key_file = keys / "id_ed25519"
        for path in (self.key_file, keys / "host_ed25519"):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)],
                check=True,
                capture_output=True,
            )
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege-separation directory
        sftp = next(
            (
                p
                for p in ("/usr/lib/openssh/sftp-server", "/usr/libexec/sftp-server")
                if Path(p).exists()
            ),
            "internal-sftp",
        )
        for lab_host in self.hosts.values():
            config = self.run_dir / f"sshd-{lab_host.name}.conf"
            config.write_text(
                "\n".join(
                    [
                        f"ListenAddress {lab_host.address}",
                        "Port 22",
                        f"HostKey {keys / 'host_ed25519'}",
                        f"AuthorizedKeysFile {self.key_file}.pub",
                        "PermitRootLogin prohibit-password",
                        "PasswordAuthentication no",
                        "KbdInteractiveAuthentication no",
                        "UsePAM no",
                        "StrictModes no",
                        "UseDNS no",
                        "MaxSessions 50",
                        "MaxStartups 50",
                        f"PidFile {self.run_dir / f'sshd-{lab_host.name}.pid'}",
                        f"Subsystem sftp {sftp}",
                        "LogLevel ERROR",
                        "",
                    ]
                )
            )
            log_file = self.run_dir / f"sshd-{lab_host.name}.log"
            # nsenter, not `ip netns exec`: the latter remounts /sys for the namespace, which
            # hides the cgroup mount and makes podman's runc fail ("no cgroup mount found").
            lab_host.sshd = subprocess.Popen(
                [
                    "nsenter",
                    f"--net=/run/netns/{lab_host.namespace}",
                    SSHD,
                    "-D",
                    "-f",
                    str(config),
                    "-E",
                    str(log_file),
                ],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        for lab_host in self.hosts.values():
            self._wait_for_ssh(lab_host)

    def _wait_for_ssh(self, lab_host: LabHost, timeout: float = 15.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if lab_host.sshd and lab_host.sshd.poll() is not None:
                log_file = self.run_dir / f"sshd-{lab_host.name}.log"
                text = log_file.read_text().strip() if log_file.exists() else ""
                raise LabError(f"sshd for {lab_host.name} exited: {text or 'no log'}")
            try:
                with socket.create_connection((lab_host.address, 22), timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise LabError(
            f"sshd for {lab_host.name} not listening on {lab_host.address}:22 within {timeout:g} s"
        )


def _quiet_ipv6(ns: str) -> None:
    # No IPv6 autoconf, router solicitations or MLD reports: on the data switch they would
    # be frames nobody sent on purpose, and the guides' counters must add up exactly.
    for scope in ("all", "default"):
        _netns_exec(ns, "sysctl", "-qw", f"net.ipv6.conf.{scope}.disable_ipv6=1", check=False)


def _kill_namespace_processes(ns: str) -> None:
    for attempt_signal in (signal.SIGTERM, signal.SIGKILL):
        pids = _ip("netns", "pids", ns, check=False).stdout.split()
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(int(pid), attempt_signal)
            except (ProcessLookupError, ValueError):
                pass
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and _ip("netns", "pids", ns, check=False).stdout.split():
            time.sleep(0.05)


# Labs still up, torn down at interpreter exit or on SIGTERM/SIGHUP (pytest handles SIGINT
# as KeyboardInterrupt and runs fixture finalizers; these cover the rest).
_LIVE: list[VirtualLab] = []
_HANDLERS_SET = False


def _teardown_all(*_: object) -> None:
    for lab in list(_LIVE):
        try:
            lab.down()
        except Exception as exc:  # noqa: BLE001 - best effort at exit
            log.error("virtual lab teardown failed: %s", exc)


def _on_signal(signum: int, _frame: object) -> None:
    _teardown_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _register_cleanup(lab: VirtualLab) -> None:
    global _HANDLERS_SET
    _LIVE.append(lab)
    if not _HANDLERS_SET:
        atexit.register(_teardown_all)
        for sig in (signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, _on_signal)
        _HANDLERS_SET = True


def _unregister_cleanup(lab: VirtualLab) -> None:
    if lab in _LIVE:
        _LIVE.remove(lab)
