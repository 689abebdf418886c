"""Parsers from testpmd's text output to dataclasses.

Each parser takes the text of one command's output (echo and prompt removed) as DPDK
22.11 prints it; tests/data/testpmd/ holds real captures they are tested against. They
tolerate the 17.05 spellings where those are known to differ (e.g. "10000 Mbps").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from framework.errors import TestPmdError

# ----------------------------------------------------------------------------- errors

# Lines testpmd prints when a command did not do what was asked (all seen on 22.11).
_COMMAND_ERRORS = [
    re.compile(p)
    for p in (
        r"Command not found",
        r"[Bb]ad arguments",
        r"function not implemented",  # VFd on a non-ixgbe/i40e port
        r"^Invalid\b",  # "Invalid port 9", "Invalid port_id=1"
        # the refusals of testpmd's own and the i40e/ixgbe commands, lower case: "invalid
        # vf_id 1 or bandwidth" (rte_pmd_i40e_set_vf_tc_bw_alloc said -EINVAL), "invalid
        # port_id 3", "invalid tc_bitmap 0x3"
        r"^invalid\b",
        r"not supported on port",
        r"failed diag=",
        r"\berror: \(",  # "mac_addr_cmd error: (Operation not supported)"
        r"^Error\b",  # "Error during disabling promiscuous mode ..."
        r"\bFail(?:ed)? to\b",  # "Fail to start port 2", "Failed to attach device ..."
        r"^Fail:",
        r"bad VF receive mode parameter",
        r"Please stop (?:all ports|port \d+|forwarding) first",
        r"Operation not supported",
        r"is not a valid",
        r"Please remove port \d+ from bond(?:ed|ing) device",  # port stop on a bond member
        r"^Port not stopped$",  # port detach of a started port
    )
]

# Driver debug logs ("bond_ethdev_allmulticast_disable(2937) - Failed to ...",
# "vhost_user_setup(): connect error") report details of a step testpmd itself may
# tolerate; testpmd's own verdict is on a line of its own. From 24.11 (ethdev from 24.03)
# they start with their log type: "BOND: bond_ethdev_...(2937) - Failed to ...".
_DRIVER_LOG = re.compile(r"^(?:[A-Z][A-Z0-9_]*: )?[A-Za-z_]\w*\(\d*\):?\s*(?:-\s|\S)")


def find_command_error(output: str) -> str | None:
    """The first line of `output` that says the command failed, or None."""
    for raw in output.splitlines():
        line = raw.strip()
        if not line or _DRIVER_LOG.match(line):
            continue
        # testpmd goes on after these ("Error during enabling promiscuous mode for port 1:
        # Operation not supported - ignore", a virtio_user port on vhost-net)
        if line.endswith("- ignore"):
            continue
        if any(p.search(line) for p in _COMMAND_ERRORS):
            return line
    return None


# Startup failures, most specific first: the first pattern that matches names the cause.
_STARTUP_DECISIVE = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"unrecognized option.*|invalid option.*",
        r".*too many memory regions.*",
        r".*Cannot init memory.*",
        r".*Cannot get hugepage information.*",
        r".*Cannot create lock.*|.*Is another primary process running.*",
        r".*Fail to (?:start|configure) port \d+.*",
        r".*(?:failed|unable) to parse device.*",
        r".*failed to initialize \S+ device.*",
        r".*lcore \d+ unavailable.*|.*invalid core list.*",
        r"^Fail:.*",
        r"Cause:.*",
        r"EAL: Error.*",
        r".*(?:error|failed|cannot).*",
    )
]

# Seen before a prompt, these mean a requested port is missing or unusable, even though
# testpmd went on to the prompt.
STARTUP_FATAL_AT_PROMPT = [
    re.compile(p, re.IGNORECASE)
    for p in (
        r"Fail to (?:start|configure) port \d+",
        r"too many memory regions",
        r"failed to initialize \S+ device",
        r"Bus \(\w+\) probe failed",
    )
]

_CAUSE = re.compile(r"Cause:\s*(.+)")


def decisive_startup_line(output: str) -> str:
    """The line that best explains why testpmd did not start (one line, actionable)."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    decisive = ""
    for pattern in _STARTUP_DECISIVE:
        decisive = next((ln for ln in lines if pattern.search(ln)), "")
        if decisive:
            break
    if not decisive:
        decisive = lines[-1] if lines else "testpmd printed nothing"
    cause = next((m.group(1).strip() for ln in lines if (m := _CAUSE.search(ln))), "")
    if cause and cause not in decisive:
        decisive = f"{decisive} (Cause: {cause})"
    return decisive


def find_fatal_at_prompt(output: str) -> str | None:
    """The first start-up line saying a requested port is unusable, or None if there is none.

    testpmd reaches its prompt even then, so the prompt alone does not prove a good start.
    """
    for raw in output.splitlines():
        line = raw.strip()
        if any(p.search(line) for p in STARTUP_FATAL_AT_PROMPT):
            return line
    return None


# ----------------------------------------------------------------------------- stats


@dataclass(frozen=True)
class ForwardingPortStats:
    """One "Forward statistics for port N" block printed by `stop` (port -1: all ports)."""

    port: int
    rx_packets: int
    rx_dropped: int
    rx_total: int
    tx_packets: int
    tx_dropped: int
    tx_total: int


@dataclass(frozen=True)
class ForwardingStreamStats:
    """One "Forward Stats for RX Port=P/Queue=Q -> TX Port=P/Queue=Q" block of `stop`.

    testpmd prints one per forwarding stream when there are more streams than ports
    (several queues), and only for streams that moved a packet.
    """

    rx_port: int
    rx_queue: int
    tx_port: int
    tx_queue: int
    rx_packets: int
    tx_packets: int
    tx_dropped: int


@dataclass(frozen=True)
class ForwardingStats:
    """Everything `stop` printed: the per-port blocks, the all-ports total, the streams."""

    ports: dict[int, ForwardingPortStats]
    total: ForwardingPortStats | None
    streams: list[ForwardingStreamStats] = field(default_factory=list)

    def tx_packets_by_queue(self, port: int) -> dict[int, int]:
        """Packets each Tx queue of `port` sent (its streams' TX-packets), by queue.

        With one queue per port testpmd prints no stream blocks: queue 0 sent what the
        port's block says.
        """
        sent: dict[int, int] = {}
        for s in self.streams:
            if s.tx_port == port:
                sent[s.tx_queue] = sent.get(s.tx_queue, 0) + s.tx_packets
        if not self.streams and port in self.ports:
            sent[0] = self.ports[port].tx_packets
        return sent

    @property
    def rx_packets(self) -> int:
        """Packets received, summed over the ports."""
        return sum(p.rx_packets for p in self.ports.values())

    @property
    def tx_packets(self) -> int:
        """Packets sent, summed over the ports."""
        return sum(p.tx_packets for p in self.ports.values())

    @property
    def dropped(self) -> int:
        """Packets dropped on receive and on transmit, summed over the ports."""
        return sum(p.rx_dropped + p.tx_dropped for p in self.ports.values())


_FWD_BLOCK = re.compile(
    r"(?:Forward statistics for port (?P<port>\d+)|Accumulated forward statistics for all ports)"
    r".*?RX-packets:\s*(?P<rxp>\d+)\s+RX-dropped:\s*(?P<rxd>\d+)\s+RX-total:\s*(?P<rxt>\d+)"
    r".*?TX-packets:\s*(?P<txp>\d+)\s+TX-dropped:\s*(?P<txd>\d+)\s+TX-total:\s*(?P<txt>\d+)",
    re.DOTALL,
)


_FWD_STREAM_STATS = re.compile(
    r"Forward Stats for RX Port=\s*(?P<rxport>\d+)/Queue=\s*(?P<rxq>\d+)"
    r"\s*->\s*TX Port=\s*(?P<txport>\d+)/Queue=\s*(?P<txq>\d+).*?"
    r"RX-packets:\s*(?P<rxp>\d+)\s+TX-packets:\s*(?P<txp>\d+)\s+TX-dropped:\s*(?P<txd>\d+)",
    re.DOTALL,
)


def parse_forwarding_stats(text: str) -> ForwardingStats:
    """Parse the forward statistics `stop` prints; text without any block gives no ports."""
    streams = [
        ForwardingStreamStats(
            *(int(m[k]) for k in ("rxport", "rxq", "txport", "txq", "rxp", "txp", "txd"))
        )
        for m in _FWD_STREAM_STATS.finditer(text)
    ]
    ports: dict[int, ForwardingPortStats] = {}
    total = None
    for m in _FWD_BLOCK.finditer(text):
        port = int(m["port"]) if m["port"] is not None else -1
        stats = ForwardingPortStats(
            port,
            int(m["rxp"]),
            int(m["rxd"]),
            int(m["rxt"]),
            int(m["txp"]),
            int(m["txd"]),
            int(m["txt"]),
        )
        if port < 0:
            total = stats
        else:
            ports[port] = stats
    return ForwardingStats(ports, total, streams)


@dataclass(frozen=True)
class PortStats:
    """`show port stats N`: the NIC counters of one port."""

    port: int
    rx_packets: int
    rx_missed: int
    rx_bytes: int
    rx_errors: int
    rx_nombuf: int
    tx_packets: int
    tx_errors: int
    tx_bytes: int
    rx_pps: int | None = None
    tx_pps: int | None = None


_STATS_HEADER = re.compile(r"NIC statistics for port (\d+)")


def _int_after(label: str, text: str) -> int:
    m = re.search(rf"{re.escape(label)}:\s*(\d+)", text)
    if not m:
        raise TestPmdError("show port stats", f"no {label} counter in output", text)
    return int(m.group(1))


def parse_port_stats(text: str) -> dict[int, PortStats]:
    """Every "NIC statistics for port N" block in `text`, by port id."""
    headers = list(_STATS_HEADER.finditer(text))
    result: dict[int, PortStats] = {}
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        block = text[header.end() : end]
        port = int(header.group(1))
        rx_pps = re.search(r"Rx-pps:\s*(\d+)", block)
        tx_pps = re.search(r"Tx-pps:\s*(\d+)", block)
        result[port] = PortStats(
            port=port,
            rx_packets=_int_after("RX-packets", block),
            rx_missed=_int_after("RX-missed", block),
            rx_bytes=_int_after("RX-bytes", block),
            rx_errors=_int_after("RX-errors", block),
            rx_nombuf=_int_after("RX-nombuf", block),
            tx_packets=_int_after("TX-packets", block),
            tx_errors=_int_after("TX-errors", block),
            tx_bytes=_int_after("TX-bytes", block),
            rx_pps=int(rx_pps.group(1)) if rx_pps else None,
            tx_pps=int(tx_pps.group(1)) if tx_pps else None,
        )
    return result


@dataclass(frozen=True)
class VfStats(PortStats):
    """`show vf stats P V` (i40e): a VF's counters as its PF reads them."""

    vf: int = 0


_VF_STATS_HEADER = re.compile(r"NIC statistics for port (\d+)\s+vf (\d+)")


def parse_vf_stats(text: str, port: int, vf: int) -> VfStats:
    """The "NIC statistics for port P vf V" block of `show vf stats P V`."""
    for header in _VF_STATS_HEADER.finditer(text):
        if (int(header.group(1)), int(header.group(2))) == (port, vf):
            block = text[header.end() :]
            return VfStats(
                port=port,
                vf=vf,
                **{
                    name: _int_after(label, block)
                    for name, label in (
                        ("rx_packets", "RX-packets"),
                        ("rx_missed", "RX-missed"),
                        ("rx_bytes", "RX-bytes"),
                        ("rx_errors", "RX-errors"),
                        ("rx_nombuf", "RX-nombuf"),
                        ("tx_packets", "TX-packets"),
                        ("tx_errors", "TX-errors"),
                        ("tx_bytes", "TX-bytes"),
                    )  # fmt: skip
                },
            )
    raise TestPmdError(f"show vf stats {port} {vf}", "no statistics block for that VF", text)


def parse_port_xstats(text: str) -> dict[str, int]:
    """`show port xstats N`: name -> value, per-queue counters (rx_q0_packets...) included."""
    result: dict[str, int] = {}
    for line in text.splitlines():
        m = re.match(r"^\s*([A-Za-z0-9_\[\]\-.]+):\s*(\d+)\s*$", line)
        if m:
            result[m.group(1)] = int(m.group(2))
    return result


# ----------------------------------------------------------------------------- ports


@dataclass(frozen=True)
class PortInfo:
    """`show port info N`. `fields` keeps every "Key: value" line for anything else."""

    port: int
    mac: str
    device_name: str
    driver: str
    link_status: str
    link_speed: str
    link_duplex: str
    mtu: int | None
    promiscuous: bool
    allmulticast: bool
    nb_rx_queues: int | None
    nb_tx_queues: int | None
    max_rx_queues: int | None
    max_tx_queues: int | None
    fields: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def link_up(self) -> bool:
        """Whether testpmd reports the link up."""
        return self.link_status == "up"

    @property
    def speed_mbps(self) -> int | None:
        """Link speed in Mbit/s, None while unknown (no link)."""
        return link_speed_mbps(self.link_speed)


def link_speed_mbps(text: str) -> int | None:
    """Convert a testpmd link speed to Mbit/s.

    "10 Gbps" -> 10000, "10000 Mbps" -> 10000, "None"/"Unknown" -> None.
    """
    m = re.match(r"\s*(\d+(?:\.\d+)?)\s*([MGT])bps", text)
    if not m:
        return None
    factor = {"M": 1, "G": 1000, "T": 1000000}[m.group(2)]
    return int(float(m.group(1)) * factor)


def _opt_int(fields: dict[str, str], key: str) -> int | None:
    value = fields.get(key, "")
    m = re.match(r"\s*(\d+)", value)
    return int(m.group(1)) if m else None


def parse_port_info(text: str) -> PortInfo:
    """Parse `show port info N`; TestPmdError if the output has no port header."""
    header = re.search(r"Infos for port (\d+)", text)
    if not header:
        raise TestPmdError("show port info", "no 'Infos for port' header in output", text)
    fields: dict[str, str] = {}
    for line in text[header.end() :].splitlines():
        m = re.match(r"^([A-Za-z][^:]*?):\s*(.*?)\s*$", line)
        if m and m.group(1) not in fields:
            fields[m.group(1)] = m.group(2)
    return PortInfo(
        port=int(header.group(1)),
        mac=fields.get("MAC address", ""),
        device_name=fields.get("Device name", ""),
        driver=fields.get("Driver name", ""),
        link_status=fields.get("Link status", "").lower(),
        link_speed=fields.get("Link speed", ""),
        link_duplex=fields.get("Link duplex", ""),
        mtu=_opt_int(fields, "MTU"),
        promiscuous=fields.get("Promiscuous mode", "") == "enabled",
        allmulticast=fields.get("Allmulticast mode", "") == "enabled",
        nb_rx_queues=_opt_int(fields, "Current number of RX queues"),
        nb_tx_queues=_opt_int(fields, "Current number of TX queues"),
        max_rx_queues=_opt_int(fields, "Max possible RX queues"),
        max_tx_queues=_opt_int(fields, "Max possible TX queues"),
        fields=fields,
    )


@dataclass(frozen=True)
class PortSummary:
    """One row of `show port summary all`."""

    port: int
    mac: str
    name: str
    driver: str
    status: str
    link_speed: str


_SUMMARY_ROW = re.compile(
    r"^(\d+)\s+([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\s+(\S+)\s+(\S+)\s+(\S+)\s+(.*?)\s*$"
)


def parse_port_summary(text: str) -> list[PortSummary]:
    """Parse the rows of `show port summary all`, in the order printed."""
    rows = []
    for line in text.splitlines():
        m = _SUMMARY_ROW.match(line.strip())
        if m:
            rows.append(PortSummary(int(m[1]), m[2], m[3], m[4], m[5], m[6]))
    return rows


def parse_port_macs(text: str) -> list[str]:
    """Parse `show port N macs`: the port's unicast MAC addresses, upper case, in order."""
    m = re.search(r"Number of MAC address added: (\d+)", text)
    if not m:
        raise TestPmdError("show port macs", "no 'Number of MAC address added' in output", text)
    macs = re.findall(r"^\s*([0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5})\s*$", text[m.end() :], re.M)
    if len(macs) != int(m.group(1)):
        raise TestPmdError(
            "show port macs", f"{m.group(1)} addresses announced, {len(macs)} listed", text
        )
    return [mac.upper() for mac in macs]


# ----------------------------------------------------------------------------- forwarding


@dataclass(frozen=True)
class FwdStream:
    """One forwarding stream: the core polling it, its RX port/queue and TX port/queue."""

    core: int
    rx_port: int
    rx_queue: int
    tx_port: int
    tx_queue: int
    peer: str | None = None


@dataclass(frozen=True)
class FwdConfig:
    """`show config fwd`: the forwarding mode and the stream -> core mapping."""

    mode: str
    retry: bool
    nb_ports: int
    nb_cores: int
    nb_streams: int
    streams: list[FwdStream]

    def tx_port_of(self, rx_port: int) -> int | None:
        """Where frames received on `rx_port` are sent, None if no stream reads it."""
        return next((s.tx_port for s in self.streams if s.rx_port == rx_port), None)


_FWD_HEADER = re.compile(
    r"^(?P<mode>\S+) packet forwarding(?P<retry> with retry)? - ports=(?P<ports>\d+)"
    r" - cores=(?P<cores>\d+) - streams=(?P<streams>\d+)",
    re.MULTILINE,
)
_FWD_CORE = re.compile(r"Logical Core (\d+) \(socket \d+\) forwards packets on \d+ streams?:")
_FWD_STREAM = re.compile(
    r"RX P=(\d+)/Q=(\d+) \(socket \d+\) -> TX P=(\d+)/Q=(\d+) \(socket \d+\)"
    r"(?: peer=([0-9A-Fa-f:]{17}))?"
)


def parse_fwd_config(text: str) -> FwdConfig:
    """Parse `show config fwd`; TestPmdError if the output has no forwarding header."""
    header = _FWD_HEADER.search(text)
    if not header:
        raise TestPmdError("show config fwd", "no 'packet forwarding' header in output", text)
    streams: list[FwdStream] = []
    core = -1
    for line in text[header.end() :].splitlines():
        m = _FWD_CORE.search(line)
        if m:
            core = int(m.group(1))
            continue
        m = _FWD_STREAM.search(line)
        if m:
            streams.append(FwdStream(core, int(m[1]), int(m[2]), int(m[3]), int(m[4]), m[5]))
    return FwdConfig(
        mode=header["mode"],
        retry=header["retry"] is not None,
        nb_ports=int(header["ports"]),
        nb_cores=int(header["cores"]),
        nb_streams=int(header["streams"]),
        streams=streams,
    )


@dataclass(frozen=True)
class PortQueues:
    """One port of `show config rxtx`: its queue counts and its queues' descriptor counts.

    Descriptors are testpmd's --rxd/--txd as configured; 0 means the PMD's own default.
    """

    port: int
    rx_queues: int
    tx_queues: int
    rx_descriptors: int
    tx_descriptors: int


@dataclass(frozen=True)
class RxTxConfig:
    """`show config rxtx`: the forwarding mode, how many cores forward, each port's queues."""

    mode: str
    nb_cores: int
    ports: dict[int, PortQueues]


_RXTX_HEADER = re.compile(
    r"^\s*(?P<mode>\S+) packet forwarding(?: with retry)? packets/burst=\d+\s*\n"
    r"\s*nb forwarding cores=(?P<cores>\d+) - nb forwarding ports=\d+",
    re.MULTILINE,
)
_RXTX_PORT = re.compile(r"port (\d+): RX queue number: (\d+) Tx queue number: (\d+)")
_RXTX_DESC = re.compile(r"([RT]X) desc=(\d+)")


def parse_rxtx_config(text: str) -> RxTxConfig:
    """Parse `show config rxtx`; TestPmdError if the output has no forwarding header.

    testpmd shows one queue's settings per port (all its queues share them).
    """
    header = _RXTX_HEADER.search(text)
    if not header:
        raise TestPmdError("show config rxtx", "no 'packet forwarding' header in output", text)
    ports: dict[int, PortQueues] = {}
    blocks = _RXTX_PORT.split(text[header.end() :])
    # split with 3 groups: [before, port, rxq, txq, block, port, rxq, txq, block, ...]
    for i in range(1, len(blocks) - 3, 4):
        port, rxq, txq = (int(n) for n in blocks[i : i + 3])
        desc = {kind: int(n) for kind, n in reversed(_RXTX_DESC.findall(blocks[i + 3]))}
        ports[port] = PortQueues(port, rxq, txq, desc.get("RX", 0), desc.get("TX", 0))
    return RxTxConfig(header["mode"], int(header["cores"]), ports)


def parse_forwarding_lcores(text: str) -> list[int]:
    """Parse `show config cores`: the lcores that forward, in testpmd's order."""
    m = re.search(r"List of forwarding lcores:([\d\s]*)", text)
    if not m:
        raise TestPmdError("show config cores", "no 'List of forwarding lcores' in output", text)
    return [int(n) for n in m.group(1).split()]


# What `show port N rss-hash` prints for a port without RSS: no hash key (virtio without
# VIRTIO_NET_F_RSS, vhost, null), or no way to read the hash configuration (tap).
_NO_RSS = ("dev_info did not provide a valid hash key size", "operation not supported by device")


def parse_rss_enabled(text: str) -> bool | None:
    """Parse `show port N rss-hash`: True if RSS hashes, False if disabled, None if no RSS.

    22.11's app/test-pmd/config.c port_rss_hash_conf_show: "RSS disabled" when no hash
    function is set, "RSS functions:" and their names otherwise.
    """
    if "RSS disabled" in text:
        return False
    if "RSS functions:" in text:
        return True
    if any(line in text for line in _NO_RSS):
        return None
    raise TestPmdError("show port rss-hash", "neither RSS functions nor RSS disabled", text)


# ----------------------------------------------------------------------------- bonding


@dataclass(frozen=True)
class BondingConfig:
    """`show bonding config N`. 22.11 says Slaves, 23.11 says Members: both parse here."""

    mode: int
    slaves: list[int]
    active_slaves: list[int]
    primary: int | None

    @property
    def members(self) -> list[int]:
        """The bonded ports, in 23.11's word."""
        return self.slaves

    @property
    def active_members(self) -> list[int]:
        """The bonded ports with link, in 23.11's word."""
        return self.active_slaves


def _id_list(text: str) -> list[int]:
    return [int(x) for x in re.findall(r"\d+", text)]


def parse_bonding_config(text: str) -> BondingConfig:
    """Parse `show bonding config N`; TestPmdError if the output names no bonding mode."""
    # 22.11: "Bonding mode: 1", "Primary: [1]"; 23.03 on: "Bonding mode: ACTIVE_BACKUP(1)",
    # "Current Primary: [1]" (and "User Defined Primary" once one was set).
    mode = re.search(r"Bonding mode:\s*(?:\w+\()?(\d+)", text)
    if not mode:
        raise TestPmdError("show bonding config", "no 'Bonding mode' in output", text)
    ml = re.MULTILINE
    slaves = re.search(r"^\s*(?:Slaves|Members)(?: \(\d+\))?:\s*\[([^\]]*)\]", text, ml)
    active = re.search(r"^\s*Active (?:Slaves|Members)(?: \(\d+\))?:\s*\[([^\]]*)\]", text, ml)
    primary = re.search(r"^\s*(?:Current )?Primary:\s*\[(\d+)\]", text, ml)
    return BondingConfig(
        mode=int(mode.group(1)),
        slaves=_id_list(slaves.group(1)) if slaves else [],
        active_slaves=_id_list(active.group(1)) if active else [],
        primary=int(primary.group(1)) if primary else None,
    )


def parse_bonded_device_port(text: str) -> int:
    """The port id of a bonded device `create bonded device` just made.

    "Created new bonded device net_bonding_testpmd_0 on (port 2)." -> 2.
    """
    m = re.search(r"Created new bond(?:ed|ing) device \S+ on \(port (\d+)\)", text)
    if not m:
        raise TestPmdError("create bonded device", "no 'Created new bonded device' line", text)
    return int(m.group(1))


def parse_attached_port(text: str) -> int:
    """The port id `port attach` gave the device.

    "Port 1 is attached. Now total ports is 2" -> 1.
    """
    m = re.search(r"Port (\d+) is attached", text)
    if not m:
        raise TestPmdError("port attach", "no 'Port N is attached' line", text)
    return int(m.group(1))


# ----------------------------------------------------------------------------- verbose Rx


@dataclass(frozen=True)
class RxPacket:
    """One received packet as `set verbose 1` prints it (testpmd's dump_pkt_burst).

    `vni` and `udp_port` are set only for a packet the NIC typed as a tunnel (its hardware
    packet type): testpmd prints "VXLAN packet: ..." from the hardware type alone.
    """

    port: int
    queue: int  # the queue the header line names ("port 0/queue 2: received ...")
    src: str
    dst: str
    ether_type: int
    length: int
    hw_ptype: str | None
    sw_ptype: str | None
    vni: int | None
    udp_port: int | None
    ol_flags: str = ""

    @property
    def tunnel(self) -> bool:
        """Whether the NIC typed the packet as a tunnel (TUNNEL_* in its hw ptype)."""
        return "TUNNEL" in (self.hw_ptype or "")


_VERBOSE_HEADER = re.compile(r"^port (\d+)/queue (\d+): received \d+ packets", re.M)
_VERBOSE_FIELD = re.compile(
    r"src=(?P<src>[0-9A-Fa-f:]{17}) - dst=(?P<dst>[0-9A-Fa-f:]{17}).*?"
    r"type=0x(?P<type>[0-9a-fA-F]+) - length=(?P<length>\d+)"
)


def parse_verbose_rx(text: str) -> list[RxPacket]:
    """Every packet of every "port P/queue Q: received N packets" block, in order."""
    packets: list[RxPacket] = []
    headers = list(_VERBOSE_HEADER.finditer(text))
    for i, header in enumerate(headers):
        end = headers[i + 1].start() if i + 1 < len(headers) else len(text)
        lines = text[header.end() : end].splitlines()
        for j, line in enumerate(lines):
            m = _VERBOSE_FIELD.search(line)
            if not m:
                continue
            hw = re.search(r" - hw ptype: (.*?)\s+(?: - |$)", line)
            sw = re.search(r" - sw ptype: (.*?)\s+(?: - |$)", line)
            vx = re.search(r"Destination UDP port =(\d+), VNI = (\d+)", line)
            flags = lines[j + 1].strip() if j + 1 < len(lines) else ""
            packets.append(
                RxPacket(
                    port=int(header.group(1)),
                    queue=int(header.group(2)),
                    src=m.group("src").lower(),
                    dst=m.group("dst").lower(),
                    ether_type=int(m.group("type"), 16),
                    length=int(m.group("length")),
                    hw_ptype=hw.group(1).strip() if hw else None,
                    sw_ptype=sw.group(1).strip() if sw else None,
                    vni=int(vx.group(2)) if vx else None,
                    udp_port=int(vx.group(1)) if vx else None,
                    ol_flags=flags.removeprefix("ol_flags:").strip(),
                )
            )
    return packets
