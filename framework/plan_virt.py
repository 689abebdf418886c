"""`--plan` for VMs: QEMU's command line, its QMP commands, the guest shell and testpmd.

A PlanVirtualMachine is a VirtualMachine whose host is a PlanSession: QEMU's command line
is recorded on the host as a real run would start it, and nothing is connected to. QMP
commands are recorded as the JSON a real run sends, and answered as QEMU answers a run
that goes as the guide says: a VM started with -incoming waits (inmigrate), the others
run; `migrate` to a waiting VM's URI leaves the source postmigrate and the destination
running; query-migrate answers "completed"; device_del's DEVICE_DELETED comes at once.
What QEMU would answer otherwise (a refusal, a failed migration) cannot be known in
advance: the verdicts that judge it are recorded as promises, not judged.

The guest shell records each line and answers as the guide's guest would (hugepages
reserved, NICs bound, devices present until device_del); the guest testpmd is a PlanPty.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from framework.dpdk.testpmd import PROMPT, TestPmd
from framework.plan import Plan, PlanPty, PlanSession
from framework.remote.shell import InteractiveShell
from framework.virt.console import GuestShell
from framework.virt.guest_testpmd import launch_line
from framework.virt.vm import VirtualMachine

if TYPE_CHECKING:
    from framework.dpdk.version import DpdkVersion

# QEMU 7.2's answer to query-version, as the lab's Debian 12 hosts have it.
_QEMU_VERSION = {"qemu": {"major": 7, "minor": 2, "micro": 0}, "package": "(plan)"}


class PlanQmp:
    """QMP of a plan VM: each command recorded as its JSON, answered by a small model."""

    def __init__(self, vm: PlanVirtualMachine) -> None:
        self.vm = vm
        self.events: list[tuple[float, str, dict[str, Any]]] = []

    def execute(self, command: str, arguments: dict[str, Any] | None, timeout: float) -> Any:
        """Record `{"execute": command, "arguments": ...}`; QEMU's answer as a run expects."""
        sent: dict[str, Any] = {"execute": command}
        if arguments:
            sent["arguments"] = arguments
        self.vm.plan.note(f"{self.vm.session.name} QMP {self.vm.name}", json.dumps(sent))
        return self.vm.answer(command, arguments or {})

    def close(self) -> None:
        """Nothing to hang up."""


class PlanGuestShell(GuestShell):
    """The guest shell (ttyS1) of a plan VM: each line recorded, answered as the guide's guest.

    Devices at the VM's NIC slots are present until device_del; a bound NIC reads back the
    driver it was bound to; HugePages_Total reads what was reserved.
    """

    def __init__(self, vm: PlanVirtualMachine) -> None:
        self.vm_name = vm.name
        self.vm = vm
        self.bound: dict[str, str] = {}
        self.hugepages = 0

    def run(
        self, command: str, timeout: float = 30.0, *, own_shell: bool = True
    ) -> tuple[int, str]:
        """Record the line; exit status and output as the guest would give them."""
        self.vm.plan.note(f"{self.vm.session.name} {self.vm.name} shell", f"# {command}")
        words = command.split()
        if found := re.match(r"echo (\d+) > \S*nr_hugepages", command):
            self.hugepages = int(found.group(1))
        elif found := re.search(r"(howto-bind|-b (\S+)) (.*)$", command):
            # howto-bind binds what the guest's kernel command line names (vIOMMU: vfio-pci)
            builtin = "vfio-pci" if self.vm.spec.viommu else "uio_pci_generic"
            driver = found.group(2) or (builtin if "howto-bind" in command else "")
            self.bound.update({address: driver for address in found.group(3).split()})
        elif words[:1] == ["grep"] and "HugePages_Total" in command:
            return 0, f"HugePages_Total:    {self.hugepages}"
        elif found := re.search(r"/sys/bus/pci/devices/(\S+)/driver", command):
            return 0, f"driver={self.bound.get(found.group(1), '')}"
        elif words[:2] == ["test", "-e"]:
            address = words[2].rsplit("/", 1)[-1]
            return (0 if address in self.vm.present else 1), ""
        return 0, ""

    def handshake(self, deadline: float) -> None:
        """The plan guest answers at once."""


_BOND_CONFIG = """
\tBonding mode: {mode}
\tBalance Xmit Policy: BALANCE_XMIT_POLICY_LAYER2
\t{word}s ({n}): [{members}]
\tActive {word}s ({n}): [{members}]
\tPrimary: [{primary}]
"""


CREATE_BONDED = ["create", "bonded", "device"]
CREATE_BONDING = ["create", "bonding", "device"]  # DPDK 23.11's spelling


class PlanGuestPty(PlanPty):
    """The guest testpmd of a plan: ports as testpmd numbers them, bonds, attach, detach.

    Ports start as the devices of its -a options; a bonded device, an attached device take
    the lowest free id; `port close` releases one (as since DPDK 20.11). Every link is up
    and every member active.
    """

    def __init__(self, session: PlanSession, argv: Sequence[str], name: str) -> None:
        super().__init__(session, argv)
        self.name = name
        self.ports: dict[int, str] = dict(enumerate(self.devices))
        self.bonds: dict[int, dict[str, Any]] = {}
        self.added: dict[int, list[str]] = {}
        self.word = "Slave"

    def _free_id(self) -> int:
        return next(i for i in range(len(self.ports) + 1) if i not in self.ports)

    def _answer(self, words: list[str]) -> str:
        if words[1:2] == ["bonding"] or words[:3] in (CREATE_BONDED, CREATE_BONDING):
            return self._bonding(words, [int(w) for w in words if w.isdigit()])
        return self._ports(words, [int(w) for w in words if w.isdigit()])

    def _bonding(self, words: list[str], n: list[int]) -> str:
        if words[:3] in (CREATE_BONDED, CREATE_BONDING):
            port = self._free_id()
            self.ports[port] = f"net_bonding_testpmd_{len(self.bonds)}"
            self.bonds[port] = {"mode": n[0], "members": [], "primary": None}
            # the release's word, as the command spelt it (23.11 renamed bonded to bonding)
            return f"Created new {words[1]} device {self.ports[port]} on (port {port}).\n"
        if words[:2] in (["add", "bonding"], ["remove", "bonding"]) and len(n) == 2:
            self.word = words[2].capitalize()  # the release's: Slave or Member
            members = self.bonds.setdefault(n[1], {"mode": 1, "members": [], "primary": None})
            if words[0] == "add" and n[0] not in members["members"]:
                members["members"].append(n[0])
                members["primary"] = members["primary"] if members["primary"] is not None else n[0]
            elif words[0] == "remove" and n[0] in members["members"]:
                members["members"].remove(n[0])
                if members["primary"] == n[0]:
                    members["primary"] = members["members"][0] if members["members"] else None
            return ""
        if words[:3] == ["set", "bonding", "primary"] and len(n) == 2 and n[1] in self.bonds:
            self.bonds[n[1]]["primary"] = n[0]
            return ""
        if words[:3] == ["show", "bonding", "config"] and n and n[0] in self.bonds:
            bond = self.bonds[n[0]]
            return _BOND_CONFIG.format(
                mode=bond["mode"], word=self.word, n=len(bond["members"]),
                members=" ".join(map(str, bond["members"])), primary=bond["primary"],
            )  # fmt: skip
        return PlanPty._answer(self, words)

    def _ports(self, words: list[str], n: list[int]) -> str:
        if words[:3] == ["show", "port", "summary"]:
            rows = [f"{p} {self._mac(p)} {d} net_plan up 10 Gbps\n" for p, d in self.ports.items()]
            head = "Port MAC Address Name Driver Status Link\n"
            return f"Number of available ports: {len(rows)}\n{head}" + "".join(rows)
        if words[:3] == ["show", "port", "info"] and n:
            info = PlanPty._answer(self, words)
            device = self.ports.get(n[0], "")
            return info.replace(f"Device name: port{n[0]}", f"Device name: {device}")
        if words[:2] == ["show", "port"] and words[-1:] == ["macs"] and n:
            macs = [self._mac(n[0]).upper(), *self.added.get(n[0], [])]
            return f"Number of MAC address added: {len(macs)}\n" + "".join(f"  {m}\n" for m in macs)
        if words[:2] == ["mac_addr", "add"] and n:
            self.added.setdefault(n[0], []).append(words[-1].upper())
            return ""
        if words[:2] == ["port", "close"] and n:
            self.ports.pop(n[0], None)
            return ""
        if words[:2] in (["device", "detach"], ["port", "detach"]):
            gone = words[2]
            self.ports = {p: d for p, d in self.ports.items() if d != gone and str(p) != gone}
            return f"Device {gone} is detached\nNow total ports is {len(self.ports)}\nDone\n"
        if words[:2] == ["port", "attach"]:
            port = self._free_id()
            self.ports[port] = words[2]
            self.macs.pop(port, None)
            return f"Port {port} is attached. Now total ports is {len(self.ports)}\nDone\n"
        if words[:3] == ["show", "port", "stats"] and words[3:] == ["all"]:
            each = [PlanPty._answer(self, ["show", "port", "stats", str(p)]) for p in self.ports]
            return "".join(each)
        return PlanPty._answer(self, words)


class PlanVirtualMachine(VirtualMachine):
    """A VM of a plan: QEMU's command line recorded on its PlanSession, QMP a PlanQmp."""

    # The VMs waiting for a migration, by their -incoming URI (the destination of a migrate).
    waiting: dict[str, PlanVirtualMachine] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not isinstance(self.session, PlanSession):
            raise TypeError(f"a plan VM runs on a PlanSession, not {self.session!r}")
        self.plan: Plan = self.session.plan
        self.state = "not started"
        # Guest PCI addresses of the NICs at their slots (present until device_del).
        self.present = {self.spec.guest_pci(n): n.id for n in self.spec.nics if n.slot}
        self._plan_qmp: PlanQmp | None = None

    def start(self, incoming: str | None = None, timeout: float = 60.0) -> None:
        """Record QEMU's start as a real run makes it; QMP and the guest shell stand ins."""
        self._prepare(incoming)
        self._closed = False
        self.started_at = time.monotonic()
        self.session.run([*self.argv, "-daemonize"])
        self.pid = None  # read from the pidfile in a real run; a plan has no process
        self.state = "inmigrate" if incoming else "running"
        if incoming:
            PlanVirtualMachine.waiting[incoming] = self
        self._plan_qmp = PlanQmp(self)
        self._qmp = self._plan_qmp  # type: ignore[assignment]
        self._shell = PlanGuestShell(self)
        if self.spec.vcpu_pins is not None:
            self.pin_vcpus(self.spec.vcpu_pins)

    def _choose_accel(self) -> tuple[str, str]:
        # a lab host runs KVM; `auto` would ask the host (/dev/kvm)
        if self.spec.accel == "auto":
            return "kvm", "the plan's lab host (KVM)"
        return self.spec.accel, "set in the topology"

    def _qmp_port(self) -> int:
        label = f"free TCP port of {self.session.name} for {self.name}'s QMP"
        return self.plan.placeholder_port(label)

    @property
    def events(self) -> list[tuple[float, str, dict[str, Any]]]:
        """The events the plan's QMP raised (DEVICE_DELETED)."""
        return list(self._plan_qmp.events) if self._plan_qmp else []

    def alive(self) -> bool:
        """A plan VM runs until closed."""
        return not self._closed and self.state != "not started"

    def wait_for_shell(self, timeout: float = 60.0) -> GuestShell:
        """The guest shell answers at once in a plan."""
        self.boot_seconds = 0.0
        return self.shell

    def launch_testpmd(
        self,
        argv: Sequence[str],
        timeout: float = 60.0,
        *,
        version: DpdkVersion | None = None,
        check_startup: bool = True,
    ) -> TestPmd:
        """Record testpmd's start from the guest shell; its lines on ttyS0 as a PlanPty."""
        self.shell.check(launch_line(argv))
        self._testpmd = TestPmd.attach(
            self.session, self._console(argv), argv, name=f"{self.name}/testpmd",
            timeout=timeout, version=version, check_startup=check_startup,
        )  # fmt: skip
        return self._testpmd

    def attach_testpmd(self, previous: TestPmd, timeout: float = 15.0) -> TestPmd:
        """After a migration: testpmd's lines now go to this VM's ttyS0."""
        previous.shell.close()
        console = self._console(previous.argv)
        # testpmd's state is in guest RAM: its ports and bonds carry over; its prompt was
        # printed before the console was opened
        pty = console._transport
        assert isinstance(pty, PlanGuestPty)
        old = getattr(previous.shell, "_transport", None)
        if isinstance(old, PlanGuestPty):
            pty.ports, pty.bonds, pty.added, pty.word = old.ports, old.bonds, old.added, old.word
            pty.macs = old.macs
        pty.pending = b""
        self._testpmd = TestPmd.attach(
            self.session, console, previous.argv,
            name=f"{self.name}/testpmd", version=previous.version,
            startup_output=previous.startup_output,
        )  # fmt: skip
        return self._testpmd

    def _console(self, argv: Sequence[str]) -> InteractiveShell:
        assert isinstance(self.session, PlanSession)
        pty = PlanGuestPty(self.session, argv, f"{self.session.name} {self.name} testpmd")
        return InteractiveShell(pty, name=f"{self.name}/testpmd", prompt=PROMPT)

    # -- QEMU's answers ----------------------------------------------------------------------

    def answer(self, command: str, arguments: dict[str, Any]) -> Any:
        """What QEMU answers `command` in a run that goes as the guide says."""
        if command == "query-status":
            return {"status": self.state, "running": self.state == "running"}
        if command == "migrate":
            dest = PlanVirtualMachine.waiting.pop(str(arguments.get("uri")), None)
            self.state = "postmigrate"
            if dest is not None:
                dest.state = "running"
            return {}
        if command == "migrate_cancel":
            self.state = "running"
            return {}
        if command == "query-migrate":
            # the figures a run reads back are unknown: 1 ms, nothing transferred
            return {"status": "completed", "total-time": 1, "downtime": 1, "setup-time": 1,
                    "ram": {"transferred": 0, "remaining": 0, "mbps": 0}}  # fmt: skip
        if command == "query-cpus-fast":
            return [{"cpu-index": i, "thread-id": 0} for i in range(self.spec.vcpus)]
        if command == "query-version":
            return _QEMU_VERSION
        if command == "device_del":
            device = str(arguments.get("id"))
            self.present = {a: n for a, n in self.present.items() if n != device}
            assert self._plan_qmp is not None
            self._plan_qmp.events.append((time.time(), "DEVICE_DELETED", {"device": device}))
        if command == "device_add":
            device = str(arguments.get("id"))
            nic = next((n for n in self.spec.nics if n.id == device), None)
            if nic is not None and nic.slot is not None:
                # back at its slot (behind its root port when the VM has a vIOMMU)
                self.present[self.spec.guest_pci(nic)] = device
            else:
                address = str(arguments.get("addr", ""))
                slot = int(address.split(".")[0], 16) if address else 0
                self.present[f"0000:00:{slot:02x}.0"] = device
        return {}

    def kill(self) -> None:
        """Record QMP quit and the files' removal; a plan has no process to wait for."""
        if self._closed:
            return
        if self.incoming is not None:
            PlanVirtualMachine.waiting.pop(self.incoming, None)
        if self._testpmd is not None:
            self._testpmd.shell.close()
        if self._qmp is not None:
            self._qmp.execute("quit", None, 5)
        self.session.run(["rm", "-f", *self._files()], check=False)
        self._closed = True
        self._qmp = None
        self._shell = None
        self._testpmd = None

    close = kill

    @property
    def console_log(self) -> str:
        """A plan VM printed nothing."""
        return ""
