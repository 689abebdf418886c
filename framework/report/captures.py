"""Captures in the reports: the frames of a port as a pcap, openable in Wireshark."""

from __future__ import annotations

import tempfile
from pathlib import Path

from framework.report.attach import attach_file
from framework.traffic.generator import Capture
from framework.traffic.pcap import write_pcap


def attach_capture(name: str, capture: Capture, port: str) -> None:
    """Attach the frames captured on port to the report as a pcap, openable in Wireshark."""
    with tempfile.TemporaryDirectory(prefix="howto-pcap-") as tmp:
        attach_file(
            name,
            write_pcap(capture, port, Path(tmp) / "capture.pcap"),
            "application/vnd.tcpdump.pcap",
        )
