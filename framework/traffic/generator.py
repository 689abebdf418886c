"""The traffic generator host (TG) as the controller sees it.

Frames are built with scapy here, on the controller; the TG only runs agent.py (standard
library only) through a Session, so a lab TG needs python3 and root, nothing else.
"""

from __future__ import annotations

import json
import logging
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

from scapy.layers.l2 import Ether
from scapy.packet import Packet

from framework.errors import FrameworkError
from framework.remote.session import Session

log = logging.getLogger("howto.traffic")

AGENT_SOURCE = Path(__file__).with_name("agent.py")
AGENT_NAME = "howto_traffic_agent.py"


class TrafficError(FrameworkError):
    """The traffic agent could not run or could not do what it was asked."""


@dataclass(frozen=True)
class CapturedFrame:
    """One frame received on a capture port; time is seconds since the first frame was sent."""

    raw: bytes
    time: float

    @cached_property
    def packet(self) -> Ether:
        # dissected lazily: a 10k-frame capture is mostly counted, rarely dissected
        return Ether(self.raw)


class Capture(dict[str, list[CapturedFrame]]):
    """Frames captured per port during one exchange, plus what happened on the send side."""

    def __init__(
        self,
        frames: dict[str, list[CapturedFrame]] | None = None,
        *,
        sent: int = 0,
        tx_errors: int = 0,
        tx_error: str | None = None,
        send_duration: float = 0.0,
        ignored: dict[str, int] | None = None,
        down: list[str] | None = None,
    ) -> None:
        super().__init__(frames or {})
        self.sent, self.tx_errors, self.tx_error = sent, tx_errors, tx_error
        self.send_duration = send_duration
        # frames on each port that did not carry the marker (background: ND, LLDP, ...)
        self.ignored = ignored or {}
        # capture ports the kernel reported down (ENETDOWN) while capturing
        self.down = down or []

    def frames(self, port: str) -> list[CapturedFrame]:
        """Frames of port ([] if it was not captured), with a clear error on a typo."""
        if port not in self:
            captured = ", ".join(self) or "none"
            raise KeyError(f"port {port!r} was not captured (captured: {captured})")
        return self[port]

    def __repr__(self) -> str:
        counts = ", ".join(f"{port}: {len(frames)}" for port, frames in self.items())
        return f"Capture(sent={self.sent}, tx_errors={self.tx_errors}, frames={{{counts}}})"


class TrafficGenerator:
    """Sends scapy packets from a TG port and captures what comes back on TG ports.

    Ports are interface names on the TG host, or "<netns>:<ifname>" for an interface in a
    named network namespace of that host.
    """

    def __init__(
        self, session: Session, agent_dir: str = "/tmp/howto", python: str = "python3"
    ) -> None:
        self.session = session
        self.agent_dir = agent_dir
        self.python = python
        self.agent_path = posixpath.join(agent_dir, AGENT_NAME)
        self._uploaded = False

    def _ensure_agent(self) -> None:
        if self._uploaded:
            return
        self.session.run(["mkdir", "-p", self.agent_dir])
        self.session.put(AGENT_SOURCE, self.agent_path)
        self._uploaded = True

    def _call(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        self._ensure_agent()
        result = self.session.run(
            [self.python, self.agent_path],
            stdin=json.dumps(request),
            check=False,
            timeout=timeout,
        )
        where = f"{self.session.name}: traffic agent {request['op']}"
        try:
            answer = json.loads(result.stdout)
        except ValueError:
            # python3 missing, a crash, or a shell error: show what the host said
            said = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise TrafficError(
                f"{where} did not answer (exit {result.exit_code}): {said[0]}"
            ) from None
        if not answer.get("ok"):
            raise TrafficError(f"{where} failed: {answer.get('error', 'unknown error')}")
        return answer

    def exchange(
        self,
        tx_port: str,
        packets: Sequence[Packet | bytes],
        capture_ports: Sequence[str],
        *,
        expect: int | None = None,
        timeout: float = 1.0,
        marker: bytes | None = None,
        pps: float | None = None,
        idle: float = 0.2,
    ) -> Capture:
        """Flush the capture ports, send packets on tx_port, and capture.

        Capture ends timeout seconds after the last send, or idle seconds after `expect`
        frames (in total over capture_ports) arrived. With a marker, only frames containing
        it are kept. Frames the TG itself transmits are never captured.
        """
        if pps is not None and pps <= 0:
            raise ValueError(f"pps must be positive, not {pps}")
        request = {
            "op": "exchange",
            "tx": tx_port,
            "frames": [bytes(p).hex() for p in packets],
            "capture": list(capture_ports),
            "expect": expect,
            "timeout": timeout,
            "idle": idle,
            "marker": marker.hex() if marker else None,
            "pps": pps,
        }
        send_time = len(packets) / pps if pps else len(packets) / 50_000
        answer = self._call(request, timeout=timeout + idle + send_time + 30)
        capture = Capture(
            sent=answer["sent"],
            tx_errors=answer["tx_errors"],
            tx_error=answer["tx_error"],
            send_duration=answer["send_duration"],
            ignored={port: seen["ignored"] for port, seen in answer["ports"].items()},
            down=[port for port, seen in answer["ports"].items() if seen.get("down")],
        )
        for port, seen in answer["ports"].items():
            capture[port] = [CapturedFrame(bytes.fromhex(f["hex"]), f["t"]) for f in seen["frames"]]
        log.info("[%s] %r", self.session.name, capture)
        return capture

    def interfaces(self, ports: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """{port: {"mac", "up", "mtu"}} for the given ports (all of the TG's if None)."""
        request: dict[str, Any] = {"op": "interfaces"}
        if ports is not None:
            request["ports"] = list(ports)
        return self._call(request, timeout=30)["interfaces"]

    def mac_of(self, port: str) -> str:
        """MAC address of a TG port, lower case, colon separated."""
        return self.interfaces([port])[port]["mac"]
