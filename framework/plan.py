"""`--plan`: the commands each test would run on each host, in order, without running them.

A lab engineer reviews a run before it touches hardware. The tests' own code runs, so the
plan is the exact sequence a real run sends, as the DPDK version under test spells it:
host commands and interactive testpmd lines are recorded by a PlanSession in place of
SSH, frames the TG would send by a PlanTrafficGenerator, and each promise a verdict
would check (framework.verify) is recorded instead of judged. Nothing is
connected to: not the hosts, not the TG.

What a real run reads back from a host (a VF's PCI address, a MAC, a counter) cannot be
known in advance; the plan answers with a placeholder of the right form and prints it as
what it stands for, e.g. `<VF 1 of 0000:09:00.0>` or `<MAC of host_server_1 testpmd
port 0>`. Counters read 0, links read up.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scapy.packet import Packet

from framework.config.model import Host, Topology
from framework.remote.session import CommandResult, Session
from framework.remote.shell import PtyTransport
from framework.traffic.generator import Capture, StreamRun, TrafficGenerator
from framework.traffic.stream import StreamResult
from framework.verify import recording_promises


@dataclass
class Plan:
    """Every recorded line, per test, in order; placeholders and what they stand for."""

    lines: dict[str, list[str]] = field(default_factory=dict)
    placeholders: dict[str, str] = field(default_factory=dict)
    test: str = "(set-up)"
    _counter: itertools.count = field(default_factory=itertools.count)

    def note(self, where: str, text: str) -> None:
        """Record one line of what `where` (a host, a testpmd, the TG, a verdict) does."""
        self.lines.setdefault(self.test, []).append(f"[{where}] {text}")

    @contextmanager
    def recording_test(self, test: str) -> Iterator[None]:
        """Record what `test` does, and each promise its verdicts would check, judging none.

        Around the whole of a test's run (set-up, call, teardown): a module's set-up has
        verdicts too, and what it reads back is placeholders that a judge would fail.
        """
        self.test = test
        with recording_promises(self.note_promise):
            yield

    def note_promise(self, promise: str) -> None:
        """Record what a verdict would check: the first line of its promise."""
        self.note("verify", promise.splitlines()[0])

    def placeholder_mac(self, label: str) -> str:
        """A locally administered MAC standing for one the run would read back."""
        n = next(self._counter)
        mac = f"02:00:5e:{(n >> 16) & 0xFF:02x}:{(n >> 8) & 0xFF:02x}:{n & 0xFF:02x}"
        self.placeholders[mac] = f"<MAC of {label}>"
        return mac

    def placeholder_pci(self, label: str) -> str:
        """A PCI address (domain ffff, which no host has) standing for one read back."""
        n = next(self._counter)
        address = f"ffff:{(n >> 8) & 0xFF:02x}:{(n >> 3) & 0x1F:02x}.{n & 0x7}"
        self.placeholders[address] = f"<{label}>"
        return address

    def placeholder_port(self, label: str) -> int:
        """A TCP port (64001 up) standing for one a run asks the host for."""
        port = 64001 + next(self._counter) % 1000
        self.placeholders[str(port)] = f"<{label}>"
        return port

    def render(self, header: str = "") -> str:
        """The plan as text: a section per test, its lines in order, placeholders named.

        A module's set-up (its fixture) appears under the first test that needs it.
        """
        out: list[str] = [header] if header else []
        for test, lines in self.lines.items():
            out.append(f"== {test}")
            out += [f"  {line}" for line in lines]
            out.append("")
        text = "\n".join(out)
        for placeholder, meaning in self.placeholders.items():
            text = re.sub(re.escape(placeholder), meaning, text, flags=re.I)
        return text


_PLAN: Plan | None = None


def start(plan: Plan | None) -> None:
    """Make `plan` the recorder of this process (the --plan run); None ends recording."""
    global _PLAN
    _PLAN = plan


def current() -> Plan | None:
    """The plan being recorded, or None in a real run."""
    return _PLAN


# -- hosts -------------------------------------------------------------------------------------


class PlanSession(Session):
    """A host that records commands and answers as a freshly booted lab host would.

    Its sysfs is a small model: SR-IOV counts, drivers bound by driver_override and
    drivers_probe, VFs at placeholder addresses; ethtool counts the rules added.
    """

    def __init__(self, name: str, spec: Host, plan: Plan) -> None:
        self.name = name
        self.spec, self.plan = spec, plan
        self.files: dict[str, str] = {}
        self.drivers: dict[str, str | None] = {
            p.pci.lower(): p.driver for p in spec.ports if p.pci is not None
        }
        self.overrides: dict[str, str] = {}
        self.vfs: dict[tuple[str, int], str] = {}
        self.vf_macs: dict[tuple[str, int], str] = {}
        self.rules = 0
        self.rule_ids = itertools.count(2045)  # ixgbe numbers rules from the top

    @property
    def address(self) -> str:
        """Where the host would be reached (never connected to)."""
        return self.spec.address or self.name

    def _execute(self, command: str, timeout: float | None, stdin: str | None) -> CommandResult:
        self.plan.note(self.name, f"$ {command}")
        return CommandResult(self.name, command, 0, self._answer(shlex.split(command)), "")

    def _open_pty(self, command: str) -> PlanPty:
        self.plan.note(self.name, f"$ {command}")
        return PlanPty(self, shlex.split(command))

    def put(self, local: str | Path, remote: str) -> None:
        """Record an upload."""
        self.plan.note(self.name, f"(copy {Path(local).name} to {remote})")

    def get(self, remote: str, local: str | Path) -> None:
        """Record a download."""
        self.plan.note(self.name, f"(copy {remote} back)")

    def exists(self, path: str) -> bool:
        """Every path exists on a plan host."""
        return True

    # -- answers ---------------------------------------------------------------------------

    def _answer(self, argv: list[str]) -> str:
        if argv[:2] == ["sh", "-c"]:
            self._write(shlex.split(argv[2]))
            return ""
        program = argv[0].rsplit("/", 1)[-1]
        if program == "cat":
            return self._cat(argv[1])
        if program == "readlink":
            return self._readlink(argv[1])
        if program == "ls":
            return self._ls(argv[-1])
        if program == "ethtool":
            return self._ethtool(argv[1:])
        if program == "ip" and argv[1:4] == ["-j", "link", "show"]:
            return self._ip_link(argv[-1])
        return ""

    def _ip_link(self, interface: str) -> str:
        # `ip -j link show dev PF`: the PF's record of each of its VFs (vfinfo_list)
        pci = next((p.pci for p in self.spec.ports if p.interface == interface), None)
        vfs = sorted(index for pf, index in self.vfs if pci and pf == pci.lower())
        for index in vfs:
            if (interface, index) not in self.vf_macs:
                label = f"VF {index}'s address at {self.name} {interface}"
                self.vf_macs[(interface, index)] = self.plan.placeholder_mac(label)
        listed = [{"vf": i, "address": self.vf_macs[(interface, i)]} for i in vfs]
        return json.dumps([{"ifname": interface, "vfinfo_list": listed}])

    def _write(self, words: list[str]) -> None:
        # echo VALUE > PATH, as framework.lab.sriov writes sysfs attributes
        if len(words) < 4 or words[0] != "echo" or words[2] != ">":
            return
        value, path = words[1], words[3]
        self.files[path] = value
        device = path.split("/")[-2] if path.count("/") > 2 else ""
        if path.endswith("/driver_override"):
            self.overrides[device] = value
        elif path.endswith("/unbind"):
            self.drivers[value] = None
        elif path.endswith("/drivers_probe"):
            self.drivers[value] = self.overrides.get(value) or self._own_driver(value)

    def _own_driver(self, pci: str) -> str:
        for (pf, _), vf in self.vfs.items():
            if vf == pci:
                return "iavf" if self.drivers.get(pf) in ("i40e", None) else "ixgbevf"
        return next((p.driver or "" for p in self.spec.ports if p.pci == pci), "")

    def _cat(self, path: str) -> str:
        name = path.rsplit("/", 1)[-1]
        if name == "sriov_totalvfs":
            return "64"
        if name in ("sriov_numvfs", "enable_sriov"):
            return self.files.get(path, "0" if name == "sriov_numvfs" else "N")
        if name == "address" and "/class/net/" in path:
            return self.plan.placeholder_mac(f"{self.name} {path.split('/')[-2]}")
        if "/statistics/" in path:
            return "0"
        return self.files.get(path, "")

    def _readlink(self, path: str) -> str:
        parts = path.split("/")
        device, name = parts[-2], parts[-1]
        if name.startswith("virtfn"):
            index = int(name.removeprefix("virtfn"))
            key = (device, index)
            if key not in self.vfs:
                self.vfs[key] = self.plan.placeholder_pci(f"VF {index} of {device}")
                self.drivers[self.vfs[key]] = self._own_driver(self.vfs[key])
            return f"../{self.vfs[key]}"
        if name == "driver":
            driver = self.drivers.get(device)
            return f"../../../bus/pci/drivers/{driver}" if driver else ""
        return ""

    def _ls(self, path: str) -> str:
        device = path.rstrip("/").split("/")[-2]
        for port in self.spec.ports:
            if port.pci is not None and port.pci.lower() == device and port.interface:
                return port.interface
        return f"{device.replace(':', '')[-6:]}vf"  # a VF's kernel netdev

    def _ethtool(self, args: list[str]) -> str:
        if args[:1] == ["-N"] and "delete" in args:
            self.rules -= 1
            return ""
        if args[:1] == ["-N"]:
            self.rules += 1
            return "" if "loc" in args else f"Added rule with ID {next(self.rule_ids)}"
        if args[:1] == ["-n"]:
            return f"4 RX rings available\nTotal {self.rules} rules\n"
        if args[:1] == ["-S"]:
            return "\n".join(f"     rx-{q}.packets: 0" for q in range(64))
        return ""


_PROMPT = b"testpmd> "
_PORT_INFO = """
********************* Infos for port {port}  *********************
MAC address: {mac}
Device name: {device}
Driver name: (plan)
Link status: up
Link speed: 10 Gbps
Link duplex: full-duplex
MTU: 1500
Promiscuous mode: disabled
Allmulticast mode: disabled
"""
_STATS = """
  ######################## NIC statistics for port {port}{vf} ########################
  RX-packets: 0          RX-missed: 0          RX-bytes:  0
  RX-errors: 0
  RX-nombuf:  0
  TX-packets: 0          TX-errors: 0          TX-bytes:  0
  ############################################################################
"""


class PlanPty(PtyTransport):
    """An interactive program that records each line and answers with its prompt.

    For testpmd, `show port info|stats` and `show vf stats` answer in testpmd's format
    with placeholder MACs, link up and zero counters, so the typed shell parses them.
    """

    def __init__(self, session: PlanSession, argv: Sequence[str]) -> None:
        self.session = session
        program = Path(argv[0]).name if argv else "shell"
        # testpmds are told apart by their --file-prefix (the run's, the host's, then the
        # testpmd's own name: hc-plan-host-server-1-vfd-pf -> vfd-pf)
        prefix = next((argv[i + 1] for i, a in enumerate(argv[:-1]) if a == "--file-prefix"), "")
        own = prefix.removeprefix(f"hc-plan-{session.name.replace('_', '-')}-")
        self.name = f"{session.name} {program}" + (f" {own}" if own else "")
        self.devices = [argv[i + 1] for i, a in enumerate(argv) if a in ("-a", "-w")]
        self.macs: dict[int, str] = {}
        self.pending = _PROMPT
        self.closed = False

    def read(self, timeout: float) -> bytes | None:
        """What the program printed since the last read; None once it quit."""
        if self.closed and not self.pending:
            return None
        data, self.pending = self.pending, b""
        return data

    def write(self, data: bytes) -> None:
        """One line typed: recorded, answered, prompt."""
        for line in data.decode().splitlines():
            self.session.plan.note(self.name, f"testpmd> {line}")
            if line.strip() == "quit":
                self.pending += b"\r\nBye...\r\n"
                self.closed = True
                return
            self.pending += f"{line}\r\n{self._answer(line.split())}".encode() + _PROMPT

    def _mac(self, port: int) -> str:
        if port not in self.macs:
            device = self.devices[port] if port < len(self.devices) else f"port {port}"
            # a VF's placeholder address by what it stands for, without nested <...>
            device = self.session.plan.placeholders.get(device, device).strip("<>")
            self.macs[port] = self.session.plan.placeholder_mac(
                f"{self.name} port {port} ({device})"
            )
        return self.macs[port]

    def _answer(self, words: list[str]) -> str:
        if words[:3] == ["show", "port", "info"] and words[3].isdigit():
            port = int(words[3])
            return _PORT_INFO.format(port=port, mac=self._mac(port), device=f"port{port}")
        if words[:3] == ["show", "port", "stats"]:
            ports = range(max(len(self.devices), 1)) if words[3] == "all" else [int(words[3])]
            return "".join(_STATS.format(port=p, vf="") for p in ports)
        if words[:2] == ["set", "fwd"] and len(words) > 2:
            return f"Set {words[2]} packet forwarding mode\n"
        if words[:3] == ["show", "vf", "stats"]:
            return _STATS.format(port=words[3], vf=f"  vf {words[4]} ")
        return ""

    def close(self) -> None:
        """Hang up."""
        self.closed = True


# -- the traffic generator ----------------------------------------------------------------------


_FIELDS = {"Ether": ("src", "dst"), "Dot1Q": ("vlan",), "IP": ("src", "dst"),
           "UDP": ("sport", "dport"), "TCP": ("sport", "dport"), "VXLAN": ("vni",)}  # fmt: skip


def describe_frame(frame: Packet) -> str:
    """Each header with the fields a filter or a VF looks at: Ether(src>dst)/Dot1Q(10)/..."""
    parts = []
    layer: Packet | None = frame
    while layer is not None and layer.name != "Raw" and layer.__class__.__name__ != "NoPayload":
        name = layer.__class__.__name__
        values = [str(layer.getfieldval(f)) for f in _FIELDS.get(name, ())]
        parts.append(f"{name}({' > '.join(values)})" if values else name)
        layer = layer.payload if layer.payload else None
    return "/".join(parts)


def describe_frames(frames: Sequence[Packet | bytes]) -> str:
    """`N x <the first frame's headers>, <size> B`."""
    if not frames:
        return "no frames"
    first = frames[0]
    summary = describe_frame(first) if isinstance(first, Packet) else f"{len(first)} bytes"
    return f"{len(frames)} x {summary}, {len(bytes(first)) + 4} B"


class PlanTrafficGenerator(TrafficGenerator):
    """The TG of a plan: what it would send, on which port, and where it would capture."""

    def __init__(self, session: PlanSession) -> None:
        self.session = self.host = session  # host: the same, typed as what a plan records on
        self.plan = session.plan
        self._macs: dict[str, str] = {}

    def mac_of(self, port: str) -> str:
        """A placeholder for the TG port's MAC."""
        if port not in self._macs:
            self._macs[port] = self.plan.placeholder_mac(f"TG {port}")
        return self._macs[port]

    def interfaces(self, ports: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Every port up, MTU 1500."""
        names = (
            list(ports)
            if ports is not None
            else [p.interface or p.name for p in self.host.spec.ports]
        )
        return {p: {"mac": self.mac_of(p), "up": True, "mtu": 1500} for p in names}

    def exchange(
        self,
        tx_port: str,
        packets: Sequence[Packet | bytes],
        capture_ports: Sequence[str],
        **options: Any,
    ) -> Capture:
        """Record the frames and where they would be captured; nothing comes back."""
        where = f"; capture on {', '.join(capture_ports)}" if capture_ports else ""
        self.plan.note("TG", f"send on {tx_port}: {describe_frames(packets)}{where}")
        return Capture({port: [] for port in capture_ports}, sent=len(packets))

    def start_stream(
        self,
        tx_port: str,
        template: Packet | bytes,
        rx_ports: str | Sequence[str],
        **options: Any,
    ) -> StreamRun:
        """Record a background stream's start; it runs until stopped, nothing is received."""
        self.stream(tx_port, template, rx_ports, **options)
        return PlanStreamRun(self)

    def stream(
        self, tx_port: str, template: Packet | bytes, rx_ports: str | Sequence[str], **options: Any
    ) -> StreamResult:
        """Record the stream: rate, length, frame; nothing is received."""
        rate = f"{options['pps']:.0f} pps" if options.get("pps") else "flat out"
        length = (
            f"{options['duration']:g} s"
            if options.get("duration")
            else f"{options.get('count')} frames"
        )
        rx = rx_ports if isinstance(rx_ports, str) else ", ".join(rx_ports)
        self.plan.note(
            "TG",
            f"stream on {tx_port} at {rate} for {length}: {describe_frames([template])}; "
            f"receive on {rx}",
        )
        return StreamResult(
            sent=0, seq=np.zeros(0, dtype=np.int64), rx_s=np.zeros(0, dtype=np.float64)
        )


class PlanStreamRun(StreamRun):
    """A background stream of a plan: started at once, stopped when asked, nothing received."""

    def __init__(self, tg: PlanTrafficGenerator) -> None:
        self.tg, self.plan = tg, tg.plan
        self._t0_wall = time.time()
        self._stopped = False

    @property
    def done(self) -> bool:
        """Whether it was stopped."""
        return self._stopped

    def wait_started(self, timeout: float = 15.0) -> float:
        """The TG sends at once in a plan."""
        assert self._t0_wall is not None
        return self._t0_wall

    @property
    def tx_path(self) -> str | None:
        """No path: nothing was sent."""
        return None

    @property
    def tx_path_note(self) -> str | None:
        """Nothing was sent."""
        return "a plan sends nothing"

    def stop(self) -> None:
        """Record the stream's end."""
        if not self._stopped:
            self.plan.note("TG", "stop the stream")
            self._stopped = True

    def wait(self, timeout: float | None = None) -> StreamResult:
        """What a plan's stream measured: nothing."""
        self.stop()
        return StreamResult(
            sent=0,
            seq=np.zeros(0, dtype=np.int64),
            rx_s=np.zeros(0, dtype=np.float64),
            ended="stop",
            t0_wall=self._t0_wall or 0.0,
        )

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def plan_topology_hosts(topology: Topology, plan: Plan) -> dict[str, Any]:
    """HostHandles of the topology over PlanSessions (imported late: hosts imports us)."""
    from framework.lab.hosts import HostHandle, PortHandle

    return {
        name: HostHandle(
            name=name,
            spec=spec,
            session=PlanSession(name, spec, plan),  # type: ignore[arg-type]
            prefix="hc-plan",
            work_dir=spec.work_dir,
            ports={p.name: PortHandle(name, p) for p in spec.ports},
        )
        for name, spec in topology.hosts.items()
    }
