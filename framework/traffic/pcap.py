"""Captures as pcap files, attached to the reports so a failure can be opened in Wireshark."""

from __future__ import annotations

import tempfile
from pathlib import Path

from scapy.utils import PcapWriter

from framework.report.attach import attach_file
from framework.traffic.generator import Capture


def write_pcap(capture: Capture, port: str, path: str | Path) -> Path:
    """Write the frames captured on port to a pcap file at path, with their times."""
    path = Path(path)
    with PcapWriter(str(path), linktype=1, sync=True) as writer:  # 1 = Ethernet
        for frame in capture.frames(port):
            packet = frame.packet
            packet.time = frame.time
            writer.write(packet)
    return path


def attach_capture(name: str, capture: Capture, port: str) -> None:
    """Attach the frames captured on port to the report as a pcap, openable in Wireshark."""
    with tempfile.TemporaryDirectory(prefix="howto-pcap-") as tmp:
        attach_file(
            name,
            write_pcap(capture, port, Path(tmp) / "capture.pcap"),
            "application/vnd.tcpdump.pcap",
        )
