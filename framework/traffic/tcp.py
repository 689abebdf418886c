"""TCP through a DUT between kernel stacks: iperf3, and an address for the TG's kernel.

The stream engine measures frames; a kernel's TCP (segmentation, checksum offloads, flow
control) needs real sockets on both ends. The TG's data ports carry no address of their
own, so a test that wants the TG's kernel to talk gives one port an address for its
duration (`peer_address`).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from framework.errors import FrameworkError
from framework.remote.session import Session

log = logging.getLogger("howto.traffic")

IPERF3 = "iperf3"
PORT = 5201


class TcpError(FrameworkError):
    """iperf3 could not run or measure."""


@dataclass(frozen=True)
class TcpResult:
    """One iperf3 run as its client reports it."""

    direction: str  # "client->server" or "server->client" (-R)
    seconds: float
    bytes_received: int
    bits_per_second: float
    retransmits: int | None
    mss: int | None  # the MSS the client asked for (-M), if any

    @property
    def gbit_s(self) -> float:
        """Received goodput in Gbit/s."""
        return self.bits_per_second / 1e9


def has_iperf3(session: Session) -> bool:
    """Whether iperf3 is on the host's PATH."""
    return session.run(["bash", "-c", f"command -v {IPERF3}"], check=False).ok


def server_command(bind: str, port: int = PORT) -> str:
    """The shell line that starts an iperf3 server in the background, bound to `bind`."""
    return f"(setsid {IPERF3} -s -B {bind} -p {port} </dev/null >/dev/null 2>&1 &)"


def run_client(
    session: Session,
    server: str,
    *,
    seconds: float = 4,
    reverse: bool = False,
    mss: int | None = None,
    port: int = PORT,
) -> TcpResult:
    """iperf3 -c `server` from `session`'s host; with reverse, the server sends.

    Raises:
        TcpError: iperf3 failed (its own error, e.g. "unable to connect to server").
    """
    argv = [IPERF3, "-c", server, "-p", str(port), "-t", f"{seconds:g}", "-J"]
    argv += ["--connect-timeout", "5000"]
    if reverse:
        argv.append("-R")
    if mss is not None:
        argv += ["-M", str(mss)]
    done = session.run(argv, check=False, timeout=seconds + 30)
    try:
        # raw_decode: a line iperf3 prints after its report (a warning) is not the report.
        report, _ = json.JSONDecoder().raw_decode(done.stdout[done.stdout.find("{") :])
    except json.JSONDecodeError as exc:
        text = " ".join((done.stderr + " " + done.stdout).split())
        raise TcpError(
            f"{session.name}: {' '.join(argv)}: no JSON report (exit {done.exit_code}; "
            f"{exc.msg} at {exc.pos}; {text[:150]} ... {text[-150:]})"
        ) from exc
    if report.get("error"):
        raise TcpError(f"{session.name}: {' '.join(argv)}: {report['error']}")
    end = report["end"]
    received, sent = end["sum_received"], end["sum_sent"]
    result = TcpResult(
        direction="server->client" if reverse else "client->server",
        seconds=float(received["seconds"]),
        bytes_received=int(received["bytes"]),
        bits_per_second=float(received["bits_per_second"]),
        retransmits=sent.get("retransmits"),
        mss=mss,
    )
    log.info("[%s] iperf3 %s: %.3f Gbit/s", session.name, result.direction, result.gbit_s)
    return result


@contextmanager
def peer_address(session: Session, interface: str, address: str) -> Iterator[None]:
    """`address` (CIDR) on the host's `interface` for the block; neighbours flushed after."""
    session.run(["ip", "addr", "add", address, "dev", interface])
    try:
        yield
    finally:
        session.run(["ip", "addr", "del", address, "dev", interface], check=False)
        session.run(["ip", "neigh", "flush", "dev", interface], check=False)
