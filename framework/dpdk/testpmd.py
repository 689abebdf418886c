"""dpdk-testpmd as a typed interactive shell.

Every command goes through one path: send the line, wait for the "testpmd> " prompt,
drop the echo, note the line in the ledger (framework.dpdk.ledger), raise TestPmdParseError
if testpmd's parser refused it, scan the output for testpmd's error lines and raise
TestPmdError with the command, the line and the full output. Typed methods parse the output
into dataclasses (framework.dpdk.parsers); `send_command` is the escape hatch that judges
no answer but the parser's.
"""

from __future__ import annotations

import logging
import re
import shlex
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Self

from framework.config.model import DEFAULT_HUGEPAGE_MOUNT
from framework.dpdk import ledger
from framework.dpdk.args import bonding_device_word, bonding_member_word
from framework.dpdk.modes import ForwardingMode, ForwardingModeLike, VfRxMode
from framework.dpdk.parsers import (
    BondingConfig,
    ForwardingStats,
    FwdConfig,
    PortInfo,
    PortStats,
    PortSummary,
    RxPacket,
    RxTxConfig,
    VfStats,
    decisive_startup_line,
    find_command_error,
    find_fatal_at_prompt,
    parse_attached_port,
    parse_bonded_device_port,
    parse_bonding_config,
    parse_forwarding_lcores,
    parse_forwarding_stats,
    parse_fwd_config,
    parse_port_info,
    parse_port_macs,
    parse_port_stats,
    parse_port_summary,
    parse_port_xstats,
    parse_rss_enabled,
    parse_rxtx_config,
    parse_verbose_rx,
    parse_vf_stats,
)
from framework.dpdk.version import DpdkVersion, detect_dpdk_version, rte_version
from framework.errors import RemoteError, ShellClosed, ShellTimeout, TestPmdError
from framework.remote.session import Session
from framework.remote.shell import InteractiveShell
from framework.verify import poll, wait_for_dut

log = logging.getLogger("howto.dpdk.testpmd")

PROMPT = "testpmd> "
# testpmd's event callback prints "\nPort N: <event> event\n" from its own thread, at any
# moment, even inside a prompt being written (cmdline writes it a character at a time);
# the vhost library logs whole "VHOST_CONFIG: ..." lines the same way whenever a
# vhost-user peer connects or goes (a relaunched peer: dozens of them).
# EAL's device event thread (--hot-plug) says so when a device added to the VM is not one
# it can take yet, as whole lines at any moment too. A forwarding lcore that polls a port
# just taken into a bond logs "lcore N called rx_pkt_burst for not ready port N" and a
# stack dump (rte_dump_stack: "N: <object> (<symbol>+0x..) [<address>]" lines) and goes
# on: seen cutting a guest's prompt in two (guide 1's membership rules, 2026-12-07).
ASYNC_EVENT = re.compile(
    r"\nPort \d+: [a-z ]+ event\n|VHOST_(?:CONFIG|DATA): [^\n]*\n"
    r"|EAL: Cannot find device \([^)\n]*\) on bus \([^)\n]*\)\n"
    r"|lcore \d+ called [rt]x_pkt_burst for not ready port \d+\n"
    r"|\d+: /[^\n()]*\([^()\n]*\+0x[0-9a-f]+\) \[[0-9a-f]+\]\n"
)
PortId = int | Literal["all"]

_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[=>78]|[\x07\x08]")
_SAFE_PREFIX = re.compile(r"^[A-Za-z0-9_.-]+$")


def default_eth_peer(port: int) -> str:
    """The peer MAC testpmd gives a port unless told otherwise (--eth-peer, set eth-peer).

    testpmd's start-up sets peer i to the locally administered 02:00:00:00:00:<i>.
    """
    return f"02:00:00:00:00:{port:02x}"


class TestPmdStartError(TestPmdError):
    """testpmd exited, or reported a fatal EAL/port error, before it was usable."""

    __test__ = False


class TestPmdParseError(TestPmdError):
    """This release's testpmd could not parse a line ("Bad arguments", "Command not found")."""

    __test__ = False


@dataclass(frozen=True)
class StartAttempt:
    """What came of starting a testpmd that a guide says may be refused."""

    command: str
    refusal: str | None  # the line that best says why it did not start; None: it started
    output: str  # all it printed up to its first prompt, or until it exited

    @property
    def refused(self) -> bool:
        """Whether testpmd did not start (or started with a port it could not use)."""
        return self.refusal is not None

    @classmethod
    def of(cls, error: TestPmdStartError) -> StartAttempt:
        """The attempt a start-up failure tells of."""
        return cls(error.command, error.message, error.output)


def _clean(text: str) -> str:
    return _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "")


def _on_off(on: bool) -> str:
    return "on" if on else "off"


def argv_value(argv: Sequence[str], option: str) -> str | None:
    """The value of `option` in argv, spelled "--opt value" or "--opt=value"."""
    for i, arg in enumerate(argv):
        if arg == option and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1]
    return None


# Every testpmd started or attached and not yet stopped by the framework, so that a failed
# test can be told which of them died under it (see died()).
_RUNNING: weakref.WeakSet[TestPmd] = weakref.WeakSet()


def died() -> list[TestPmd]:
    """The testpmds that exited by themselves (killed, crashed) since last asked.

    Each is returned once; a testpmd the framework quit or closed is never returned.
    """
    dead = []
    for pmd in list(_RUNNING):
        if pmd._quitting:
            continue
        if pmd.shell.poll() and pmd.shell.exited_by_itself:
            dead.append(pmd)
            _RUNNING.discard(pmd)
    return dead


class TestPmd:
    """A running interactive testpmd. Build it with TestPmd.launch."""

    __test__ = False

    def __init__(
        self,
        session: Session,
        shell: InteractiveShell,
        argv: Sequence[str],
        version: DpdkVersion,
        startup_output: str,
        *,
        name: str = "testpmd",
        command_timeout: float = 30.0,
    ) -> None:
        self.session = session
        self.shell = shell
        self.name = name
        shell.interrupts = ASYNC_EVENT
        self.argv = list(argv)
        self.version = version
        # The release whose command words the suite speaks to it: its own, unless a self-test
        # speaks another's (a suite without the build's translations).
        self.words_of = version
        self.startup_output = startup_output
        self.command_timeout = command_timeout
        # Text testpmd printed between commands (link state events...), oldest first.
        self.events: list[str] = []
        self.quit_output = ""
        self._cleaned = False
        self._quitting = False
        _RUNNING.add(self)

    # ------------------------------------------------------------------ lifecycle

    @classmethod
    def launch(
        cls,
        session: Session,
        argv: Sequence[str],
        *,
        name: str = "testpmd",
        timeout: float = 60,
        version: DpdkVersion | None = None,
        check_startup: bool = True,
        command_timeout: float = 30.0,
    ) -> TestPmd:
        """Start testpmd (argv must include -i) and wait for its first prompt.

        Raises TestPmdStartError naming the decisive line when testpmd exits, never
        prompts, or (with check_startup) reached the prompt after a fatal port error.
        """
        shell = session.open_shell(argv, name=name, prompt=PROMPT, timeout=timeout)
        return cls.attach(
            session,
            shell,
            argv,
            timeout=timeout,
            version=version,
            check_startup=check_startup,
            command_timeout=command_timeout,
            owns_files=True,
        )

    @classmethod
    def attach(
        cls,
        session: Session,
        shell: InteractiveShell,
        argv: Sequence[str],
        *,
        name: str | None = None,
        timeout: float = 60,
        version: DpdkVersion | None = None,
        startup_output: str | None = None,
        check_startup: bool = True,
        command_timeout: float = 30.0,
        owns_files: bool = False,
    ) -> TestPmd:
        """Wrap a testpmd that `shell` already talks to (e.g. a guest's serial console).

        Without startup_output, waits for its first prompt like launch does; with it (a
        re-attach after migration), the caller has already seen the prompt. `session` is
        the host the shell runs through; owns_files says whether testpmd's --file-prefix
        files live there (false for a guest testpmd: they are in the guest).
        """
        command = shlex.join(argv)
        name = name or shell.name
        if startup_output is not None:
            startup = startup_output
        else:
            try:
                startup = shell.expect(timeout=timeout)
            except ShellClosed as exc:
                output = _clean(shell.transcript)
                shell.close()
                if owns_files:
                    _cleanup_files(session, argv)
                raise TestPmdStartError(command, decisive_startup_line(output), output) from exc
            except ShellTimeout as exc:
                output = _clean(shell.transcript)
                shell.close()
                if owns_files:
                    _cleanup_files(session, argv)
                last = decisive_startup_line(output)
                why = f" ({exc.state})" if exc.state else ""
                raise TestPmdStartError(
                    command,
                    f"no '{PROMPT.strip()}' prompt within {timeout:g} s{why}; last: {last}",
                    output,
                ) from exc
        if version is None:
            version = rte_version(startup)
        if version is None and not owns_files:
            # argv[0] is not a host path (a guest's testpmd): the host cannot be asked
            shell.close()
            raise TestPmdStartError(
                command, f"{name}: its DPDK release is unknown (no version given, no -v)", startup
            )
        if version is None:
            version = detect_dpdk_version(session, argv[0])
        pmd = cls(
            session, shell, argv, version, startup, name=name, command_timeout=command_timeout
        )
        pmd._cleaned = not owns_files  # nothing of a guest testpmd to remove on the host
        if check_startup and startup_output is None:
            fatal = find_fatal_at_prompt(startup)
            if fatal:
                pmd.close()
                raise TestPmdStartError(command, fatal, startup)
        log.info("[%s] testpmd %s up (DPDK %s)", session.name, name, version)
        return pmd

    @property
    def alive(self) -> bool:
        """Whether testpmd is still running (its shell has not closed)."""
        return not self.shell.closed

    def quit(self, timeout: float = 30.0) -> str:
        """Send `quit` and wait until testpmd has exited; return what it printed."""
        if self.shell.closed:
            return self.quit_output
        self._quitting = True
        _RUNNING.discard(self)
        mark = len(self.shell.transcript)
        self.shell.send_line("quit")
        try:
            # Nothing matches this: it returns only through ShellClosed (exit) or timeout.
            self.shell.expect(re.compile(r"(?!x)x"), timeout=timeout)
        except ShellClosed:
            pass
        except ShellTimeout as exc:
            self.shell.close()
            raise TestPmdError(
                "quit",
                f"testpmd still running {timeout:g} s after quit; killed it",
                _clean(self.shell.transcript[-4000:]),
            ) from exc
        finally:
            self.quit_output = _clean(self.shell.transcript[mark:])
            self.shell.close()
            self._cleanup()
        return self.quit_output

    def close(self) -> None:
        """Stop testpmd however it can: quit, else kill. Idempotent, safe on a dead shell."""
        _RUNNING.discard(self)
        if not self.shell.closed:
            try:
                self.quit(timeout=10)
            except (TestPmdError, RemoteError, OSError) as exc:
                log.warning("testpmd did not quit cleanly: %s", exc)
        self.shell.close()
        self._cleanup()

    def _cleanup(self) -> None:
        if not self._cleaned:
            self._cleaned = True
            _cleanup_files(self.session, self.argv)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ commands

    def send_command(
        self, command: str, timeout: float | None = None, *, may_be_unparsed: bool = False
    ) -> str:
        """Send one line and return its output (echo and prompt removed).

        The driver's answer is not judged; the parser's is: TestPmdParseError, naming this
        testpmd's release, if it could not parse the line (unless `may_be_unparsed`, for a
        probe of the parser itself).
        """
        self.shell.send_line(command)
        before = self.shell.expect(timeout=timeout or self.command_timeout)
        lines = before.split("\n")
        wanted = command.strip()
        output = before
        for i, line in enumerate(lines):
            if line.strip().endswith(wanted):
                if i:
                    self.events.append("\n".join(lines[:i]))
                output = "\n".join(lines[i + 1 :])
                break
        refused = ledger.parser_refusal(output)
        where = f"{self.session.name}: {self.name}"
        ledger.note(ledger.Sent(where, str(self.version), wanted, refused))
        if refused and not may_be_unparsed:
            raise TestPmdParseError(
                command, f"DPDK {self.version}'s testpmd cannot parse it: {refused}", output
            )
        return output

    def command(self, command: str, timeout: float | None = None) -> str:
        """Send one line; raise TestPmdError if testpmd answered with an error line."""
        output = self.send_command(command, timeout)
        error = find_command_error(output)
        if error:
            raise TestPmdError(command, error, output)
        return output

    # ------------------------------------------------------------------ forwarding

    def start(self) -> None:
        """Start packet forwarding in the current mode."""
        self.command("start")

    def start_tx_first(self, bursts: int | None = None) -> None:
        """Start forwarding after sending `bursts` bursts (default 1) out of every port."""
        self.command("start tx_first" + (f" {bursts}" if bursts else ""))

    def stop(self) -> ForwardingStats:
        """Stop forwarding and return the per-port Forward statistics testpmd prints."""
        output = self.command("stop")
        if "Packet forwarding not started" in output:
            raise TestPmdError("stop", "Packet forwarding not started", output)
        return parse_forwarding_stats(output)

    def set_fwd(self, mode: ForwardingModeLike, retry: bool = False) -> None:
        """Select the forwarding mode; retry resends when a TX ring is full."""
        cmd = f"set fwd {mode}" + (" retry" if retry else "")
        output = self.command(cmd)
        if f"Set {mode} packet forwarding mode" not in output:
            raise TestPmdError(cmd, "testpmd did not confirm the forwarding mode", output)

    def set_portlist(self, ports: Sequence[int]) -> None:
        """Forward on these ports only, paired in the order given."""
        self.command("set portlist " + ",".join(str(p) for p in ports))

    def set_eth_peer(self, port: int, mac: str) -> None:
        """The destination MAC `mac` forwarding gives frames it sends out of `port`."""
        self.command(f"set eth-peer {port} {mac}")

    def set_verbose(self, level: int) -> None:
        """1: print every received packet (port, queue, type, VNI...); 0: quiet."""
        self.command(f"set verbose {level}")

    def verbose_received(self, settle: float = 0.3) -> list[RxPacket]:
        """The packets testpmd printed (`set verbose 1`) since the last command or call.

        Waits `settle` s for the last ones, then takes everything printed meanwhile.
        """
        wait_for_dut(settle)
        return parse_verbose_rx(self.shell.drain())

    def set_link(self, port: int, up: bool) -> None:
        """`set link-up|link-down port P`: the port's physical link (the PF's, for VFs)."""
        self.command(f"set link-{'up' if up else 'down'} port {port}")

    def port_config_mtu(self, port: int, mtu: int) -> None:
        """`port config mtu P MTU` (stop the port first on most PMDs)."""
        self.command(f"port config mtu {port} {mtu}")

    def port_config_queues(self, rxq: int, txq: int) -> None:
        """`port config all rxq N` and `txq N`: every port's queue pairs (ports stopped)."""
        self.command(f"port config all rxq {rxq}")
        self.command(f"port config all txq {txq}")

    def port_config_dcb(self, port: int, tcs: int, *, vt: bool = True, pfc: bool = False) -> None:
        """`port config P dcb vt on|off TCS pfc on|off` (the port stopped; TCS 4 or 8)."""
        self.command(f"port config {port} dcb vt {_on_off(vt)} {tcs} pfc {_on_off(pfc)}")

    def set_promisc(self, port: PortId, on: bool = True) -> None:
        """Turn a port's promiscuous mode on or off."""
        self.command(f"set promisc {port} {_on_off(on)}")

    def show_config_fwd(self) -> FwdConfig:
        """The forwarding mode and which core polls which RX/TX queue pair."""
        return parse_fwd_config(self.command("show config fwd"))

    def show_config_rxtx(self) -> RxTxConfig:
        """The forwarding cores' count and each port's queues and descriptors, as running."""
        return parse_rxtx_config(self.command("show config rxtx"))

    def forwarding_lcores(self) -> list[int]:
        """The lcores that forward (`show config cores`)."""
        return parse_forwarding_lcores(self.command("show config cores"))

    def rss_enabled(self, port: int) -> bool | None:
        """Whether a port hashes packets to queues (RSS); None if the port has no RSS."""
        return parse_rss_enabled(self.command(f"show port {port} rss-hash"))

    def mac_forwarding_addresses(self) -> list[tuple[str, str]]:
        """(source, destination) MACs `set fwd mac` writes, one pair per forwarding stream.

        The source is the TX port's MAC, the destination that port's peer, as `show config
        fwd` lists them while the mode is mac; TestPmdError in any other mode.
        """
        fwd = self.show_config_fwd()
        if fwd.mode != ForwardingMode.MAC:
            raise TestPmdError("show config fwd", f"forwarding mode is {fwd.mode}, not mac", "")
        pairs = []
        for stream in fwd.streams:
            pair = (self.show_port_info(stream.tx_port).mac, stream.peer or "")
            if pair not in pairs:
                pairs.append(pair)
        return pairs

    # ------------------------------------------------------------------ ports

    def port_start(self, port: PortId = "all") -> None:
        """Start a stopped port (or all ports)."""
        self.command(f"port start {port}")

    def port_stop(self, port: PortId = "all") -> None:
        """Stop a port (or all), as reconfiguring or closing it requires."""
        self.command(f"port stop {port}")

    def restart_ports(self, ports: Sequence[int]) -> None:
        """Stop forwarding and every port, start them again, and forward once `ports` are up.

        What a setting that a port takes only when it starts needs (a VF's MAC set by its
        PF, guide 5.2.2).
        """
        self.stop()
        self.port_stop("all")
        self.port_start("all")
        for port in ports:
            self.wait_link_up(port)
        self.start()

    def port_close(self, port: PortId = "all") -> None:
        """Close a stopped port (or all), freeing its resources."""
        self.command(f"port close {port}")

    def port_attach(self, devargs: str, timeout: float | None = None) -> int:
        """Hot-plug a device (PCI address or vdev devargs); return its new port id."""
        cmd = f"port attach {devargs}"
        return parse_attached_port(self.command(cmd, timeout))

    def port_detach(self, port: int) -> None:
        """Hot-unplug a closed port; TestPmdError unless testpmd confirms it."""
        output = self.command(f"port detach {port}")
        if "Device is detached" not in output:
            raise TestPmdError(f"port detach {port}", "testpmd did not confirm detach", output)

    def show_port_info(self, port: int) -> PortInfo:
        """A port's MAC, driver, link state and queue counts."""
        return parse_port_info(self.command(f"show port info {port}"))

    def show_port_summary(self) -> list[PortSummary]:
        """One row per port: MAC, device name, driver, link status and speed."""
        return parse_port_summary(self.command("show port summary all"))

    def port_ids(self) -> list[int]:
        """The ids of every port testpmd has, in its order."""
        return [row.port for row in self.show_port_summary()]

    def show_port_stats(self, port: int) -> PortStats:
        """One port's NIC counters."""
        stats = parse_port_stats(self.command(f"show port stats {port}"))
        if port not in stats:
            raise TestPmdError(f"show port stats {port}", "no statistics block for the port")
        return stats[port]

    def show_port_stats_all(self) -> dict[int, PortStats]:
        """Every port's NIC counters, by port id."""
        return parse_port_stats(self.command("show port stats all"))

    def show_port_xstats(self, port: int) -> dict[str, int]:
        """One port's extended counters by name, per-queue ones included."""
        return parse_port_xstats(self.command(f"show port xstats {port}"))

    def clear_port_stats(self, port: PortId = "all") -> None:
        """Zero a port's (or every port's) NIC counters."""
        self.command(f"clear port stats {port}")

    def clear_port_xstats(self, port: PortId = "all") -> None:
        """Zero a port's (or every port's) extended counters."""
        self.command(f"clear port xstats {port}")

    def clear_counters(self) -> None:
        """Zero stats and xstats of every port, with forwarding paused meanwhile.

        A forwarding lcore updates its per-queue counters with a plain read-modify-write
        on every poll, even when it receives nothing (seen with virtio_user), so a clear
        issued from the command line while it runs can be lost.
        """
        try:
            self.stop()
            forwarding = True
        except TestPmdError as exc:
            if "not started" not in exc.message:
                raise
            forwarding = False
        self.clear_port_stats("all")
        self.clear_port_xstats("all")
        if forwarding:
            self.start()

    def wait_link_up(
        self, port: int, timeout: float = 10.0, interval: float = 0.2, *, check: bool = True
    ) -> PortInfo:
        """Poll `show port info` until the link is up (an e1000 link takes ~3 s).

        With check=False a link still down at the timeout is returned, not raised: the
        caller's own assertion is then the check.
        """
        info = self.wait_link(port, up=True, timeout=timeout, interval=interval)
        if check and not info.link_up:
            raise TestPmdError(
                f"show port info {port}", f"link still {info.link_status} after {timeout:g} s"
            )
        return info

    def wait_link(
        self, port: int, *, up: bool, timeout: float = 10.0, interval: float = 0.2
    ) -> PortInfo:
        """`show port info` once the link is up (or down), or as it is after `timeout` s."""
        return poll(lambda: self.show_port_info(port), lambda i: i.link_up == up, timeout, interval)

    # ------------------------------------------------------------------ MAC addresses

    def mac_addr_add(self, port: int, mac: str) -> None:
        """Add a unicast MAC address to a port's filter (`mac_addr add N MAC`)."""
        self.command(f"mac_addr add {port} {mac}")

    def mac_addr_remove(self, port: int, mac: str) -> None:
        """Remove a MAC address `mac_addr add` gave a port."""
        self.command(f"mac_addr remove {port} {mac}")

    def show_port_macs(self, port: int) -> list[str]:
        """The port's unicast MAC addresses (`show port N macs`), upper case."""
        return parse_port_macs(self.command(f"show port {port} macs"))

    def device_detach(self, identifier: str) -> None:
        """Hot-unplug a device by name or PCI address, its ports closed first."""
        output = self.command(f"device detach {identifier}")
        if "is detached" not in output:
            raise TestPmdError(f"device detach {identifier}", "testpmd did not confirm", output)

    def vf_mac_addr_add(self, port: int, vf: int, mac: str) -> None:
        """Guide 1: `mac_addr add port 1 vf 0 AA:BB:CC:DD:EE:FF`."""
        self.command(f"mac_addr add port {port} vf {vf} {mac}")

    # ------------------------------------------------------------------ BPF filters

    def bpf_load(
        self, direction: Literal["rx", "tx"], port: int, queue: int, path: str, flags: str = "JM"
    ) -> None:
        """Load an eBPF filter (an ELF object on testpmd's host) on one queue of a port.

        Args:
            direction: "rx" or "tx" callback. A filter returning 0 drops the packet on RX;
                on TX, testpmd counts it as TX-dropped.
            port: Port id (testpmd takes 0-255).
            queue: Queue id; it must exist on the port.
            path: ELF object, e.g. from framework.dpdk.bpf (whose filters need "M").
            flags: Letters of J (use the JIT), M (the argument is the mbuf, else the
                packet data), or "-" for none.

        The port may be started and forwarding: the callback is added live, no stop is
        needed. A new filter replaces the queue's previous one. Port RX counters count
        packets before an RX filter runs; only forwarding shows what it kept.

        Raises:
            TestPmdError: testpmd answered "<rc>:<strerror>" with rc != 0 (the message
                carries the loader's or verifier's reason), or no answer line at all.
            ValueError: a bad direction, flag letter, or a path with whitespace.
        """
        if direction not in ("rx", "tx"):
            raise ValueError(f"direction must be rx or tx, not {direction!r}")
        if not flags or set(flags) - set("JM-"):
            raise ValueError(f"bpf-load flags are letters of J, M and -, not {flags!r}")
        if not path or any(c.isspace() for c in path):
            raise ValueError(f"testpmd cannot take this path as one token: {path!r}")
        cmd = f"bpf-load {direction} {port} {queue} {flags} {path}"
        output = self.command(cmd)
        answers = re.findall(r"(?m)^(-?\d+):(.*)$", output)
        if not answers:
            raise TestPmdError(cmd, "no '<rc>:<reason>' answer from bpf-load", output)
        rc, said = answers[-1]
        if int(rc) != 0:
            lines = [ln.strip() for ln in output.splitlines()]
            why = "; ".join(ln for ln in lines if ln and not re.match(r"-?\d+:", ln))
            raise TestPmdError(cmd, f"{rc}:{said.strip()}" + (f" ({why})" if why else ""), output)

    def bpf_unload(self, direction: Literal["rx", "tx"], port: int, queue: int) -> None:
        """Remove the eBPF filter of a port's queue; testpmd is silent if there is none."""
        if direction not in ("rx", "tx"):
            raise ValueError(f"direction must be rx or tx, not {direction!r}")
        self.command(f"bpf-unload {direction} {port} {queue}")

    # ------------------------------------------------------------------ bonding

    @property
    def member_word(self) -> str:
        """How this release names a bonded port in commands: "slave" or "member"."""
        return bonding_member_word(self.words_of)

    @property
    def device_word(self) -> str:
        """How this release names a bond in `create ... device`: "bonded" or "bonding"."""
        return bonding_device_word(self.words_of)

    def create_bonded_device(self, mode: int, socket: int = 0) -> int:
        """Create a bonding device (mode 1: active-backup) on a NUMA socket; return its port id."""
        word = self.device_word
        return parse_bonded_device_port(self.command(f"create {word} device {mode} {socket}"))

    def add_bonding_slave(self, slave: int, bond: int) -> None:
        """Add port `slave` to bonding device `bond`, in the release's wording."""
        self.command(f"add bonding {self.member_word} {slave} {bond}")

    def remove_bonding_slave(self, slave: int, bond: int) -> None:
        """Remove port `slave` from bonding device `bond`, in the release's wording."""
        self.command(f"remove bonding {self.member_word} {slave} {bond}")

    def set_bonding_primary(self, port: int, bond: int) -> None:
        """Make `port` the primary (preferred active) port of `bond`."""
        self.command(f"set bonding primary {port} {bond}")

    def set_bonding_mac_addr(self, bond: int, mac: str) -> None:
        """Give bonding device `bond` its own MAC address (the members' is then not used)."""
        self.command(f"set bonding mac_addr {bond} {mac}")

    def show_bonding_config(self, bond: int) -> BondingConfig:
        """A bonding device's mode, its ports, the active ones and the primary.

        A bond without members prints "Failed to get primary slave" after its (empty)
        lists: that is its state, not a failed command.
        """
        return parse_bonding_config(self.send_command(f"show bonding config {bond}"))

    # ------------------------------------------------------------------ VF daemon (guide 5)
    # Implemented by ixgbe/i40e PFs only; elsewhere testpmd answers "function not
    # implemented" (or an "Operation not supported" variant), raised as TestPmdError.

    def set_tx_loopback(self, port: int, on: bool) -> None:
        """Let traffic between VFs of a PF loop back inside the NIC, or not."""
        self.command(f"set tx loopback {port} {_on_off(on)}")

    def set_vf_mac_addr(self, port: int, vf: int, mac: str) -> None:
        """Set the MAC address of a VF from its PF."""
        self.command(f"set vf mac addr {port} {vf} {mac}")

    def set_vf_mac_antispoof(self, port: int, vf: int, on: bool) -> None:
        """Drop, or not, frames a VF sends from a source MAC that is not its own."""
        self.command(f"set vf mac antispoof {port} {vf} {_on_off(on)}")

    def set_vf_vlan_antispoof(self, port: int, vf: int, on: bool) -> None:
        """Drop, or not, frames a VF sends on a VLAN it is not a member of."""
        self.command(f"set vf vlan antispoof {port} {vf} {_on_off(on)}")

    def set_vf_vlan_insert(self, port: int, vf: int, vlan: int) -> None:
        """Tag every frame a VF sends with `vlan` (0 stops inserting)."""
        self.command(f"set vf vlan insert {port} {vf} {vlan}")

    def set_vf_vlan_stripq(self, port: int, vf: int, on: bool) -> None:
        """Strip, or not, VLAN tags on all of a VF's receive queues."""
        self.command(f"set vf vlan stripq {port} {vf} {_on_off(on)}")

    def set_vf_vlan_filter(self, vlan: int, port: int, vf_mask: int, on: bool = True) -> None:
        """`rx_vlan add|rm VLAN port P vf MASK` (guide 5.2.7)."""
        verb = "add" if on else "rm"
        self.command(f"rx_vlan {verb} {vlan} port {port} vf {vf_mask:#x}")

    def set_all_queues_drop(self, port: int, on: bool) -> None:
        """Drop, or hold, frames for any queue of the port that has no free descriptor."""
        self.command(f"set all queues drop {port} {_on_off(on)}")

    def set_vf_split_drop(self, port: int, vf: int, on: bool) -> None:
        """Set a VF's split-drop bit: drop frames, rather than stall, when its RX queue is full."""
        self.command(f"set vf split drop {port} {vf} {_on_off(on)}")

    def set_vf_rate_limit(self, port: int, vf: int, rate: int, queue_mask: int) -> None:
        """Limit the TX rate (Mbit/s) of the VF's queues in queue_mask."""
        self.command(f"set port {port} vf {vf} rate {rate} queue_mask {queue_mask:#x}")

    def set_vf_rx(self, port: int, vf: int, on: bool) -> None:
        """Enable or disable receive on a VF."""
        self.command(f"set port {port} vf {vf} rx {_on_off(on)}")

    def set_vf_tx(self, port: int, vf: int, on: bool) -> None:
        """Enable or disable transmit on a VF."""
        self.command(f"set port {port} vf {vf} tx {_on_off(on)}")

    def set_vf_rxmode(self, port: int, vf: int, mode: VfRxMode, on: bool) -> None:
        """Accept, or not, one kind of frame on a VF; testpmd takes one mode per command.

        AUPE untagged, ROPE unicast hash (PFUTA) matches, BAM broadcast, MPE all multicast.
        """
        self.command(f"set port {port} vf {vf} rxmode {mode} {_on_off(on)}")

    def set_uta(self, port: int, mac: str, on: bool) -> None:
        """ixgbe: put `mac` in (or out of) the port's unicast hash table (PFUTA).

        A VF with rxmode ROPE accepts frames to the addresses in it.
        """
        self.command(f"set port {port} uta {mac} {_on_off(on)}")

    def set_vf_vlan_tag(self, port: int, vf: int, on: bool) -> None:
        """i40e: accept only VLAN-tagged frames on a VF (a VLAN tag to its VSI), or not."""
        self.command(f"set vf vlan tag {port} {vf} {_on_off(on)}")

    def show_vf_stats(self, port: int, vf: int) -> VfStats:
        """i40e (5.4.1): a VF's counters as its PF reads them."""
        return parse_vf_stats(self.command(f"show vf stats {port} {vf}"), port, vf)

    def clear_vf_stats(self, port: int, vf: int) -> None:
        """i40e (5.4.2): zero a VF's counters from its PF."""
        self.command(f"clear vf stats {port} {vf}")

    def set_vf_broadcast(self, port: int, vf: int, on: bool) -> None:
        """Let a VF receive broadcast frames, or not."""
        self.command(f"set vf broadcast {port} {vf} {_on_off(on)}")

    def set_vf_allmulti(self, port: int, vf: int, on: bool) -> None:
        """Let a VF receive all multicast frames, or not."""
        self.command(f"set vf allmulti {port} {vf} {_on_off(on)}")

    def set_vf_promisc(self, port: int, vf: int, on: bool) -> None:
        """Let a VF receive every frame (promiscuous), or not."""
        self.command(f"set vf promisc {port} {vf} {_on_off(on)}")

    def set_vf_tx_max_bandwidth(self, port: int, vf: int, mbps: int) -> None:
        """Cap a VF's total transmit bandwidth (Mbit/s)."""
        self.command(f"set vf tx max-bandwidth {port} {vf} {mbps}")

    def set_vf_tc_min_bandwidth(self, port: int, vf: int, percents: Sequence[int]) -> None:
        """Share a VF's bandwidth among its traffic classes, in percent per class."""
        self.command(f"set vf tc tx min-bandwidth {port} {vf} ({','.join(map(str, percents))})")

    def set_vf_tc_max_bandwidth(self, port: int, vf: int, tc: int, mbps: int) -> None:
        """Cap one traffic class of a VF (Mbit/s)."""
        self.command(f"set vf tc tx max-bandwidth {port} {vf} {tc} {mbps}")

    def set_tx_strict_link_priority(self, port: int, tc_bitmap: int) -> None:
        """Give the traffic classes in tc_bitmap strict priority on the link."""
        self.command(f"set tx strict-link-priority {port} {tc_bitmap:#x}")


def _cleanup_files(session: Session, argv: Sequence[str]) -> None:
    """Remove what a finished testpmd leaves behind for its own --file-prefix.

    22.11 keeps its hugepage files (<prefix>map_N) after a clean quit unless started with
    --in-memory or --huge-unlink, and always leaves /var/run/dpdk/<prefix>. Only an
    explicit, plain prefix is touched: the default "rte" may belong to someone else.
    """
    prefix = argv_value(argv, "--file-prefix")
    if not prefix or not _SAFE_PREFIX.match(prefix) or prefix in (".", ".."):
        return
    huge_dir = argv_value(argv, "--huge-dir") or DEFAULT_HUGEPAGE_MOUNT
    try:
        session.run(
            ["find", huge_dir, "-maxdepth", "1", "-name", f"{prefix}map_*", "-delete"],
            check=False,
            timeout=30,
        )
        session.run(["rm", "-rf", f"/var/run/dpdk/{prefix}"], check=False, timeout=30)
    except RemoteError as exc:
        log.warning("could not remove files of testpmd prefix %s: %s", prefix, exc)
