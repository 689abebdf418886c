"""Captures as pcap files (framework.report.captures attaches them to the reports)."""

from __future__ import annotations

from pathlib import Path

from scapy.utils import PcapWriter

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
