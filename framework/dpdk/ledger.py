"""Every line sent to a testpmd, and whether testpmd's command parser took it.

testpmd's cmdline answers a line it cannot match to a command of this release with
"Command not found", "Bad arguments" or "Ambiguous command", and does nothing. A line it
parsed may still be refused by the driver ("Invalid port", "not supported"): that is the
DUT's answer. A parser's refusal is never what a guide step meant (a word this release
spells otherwise, a misspelling), so TestPmd raises on it for every line, and notes every
line here: the run's report lists, per DPDK build, each command the suite sent to it and
whether that build's parser took it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

# cmdline's own answers (lib/cmdline: cmdline_valid_buffer), each on a line of its own
PARSER_REFUSALS = ("Command not found", "Bad arguments", "Ambiguous command")


@dataclass(frozen=True)
class Sent:
    """One line sent to a testpmd of a DPDK release, and the parser's refusal ("" if taken)."""

    testpmd: str  # which: "<host session>: <testpmd name>" ("dut: vm1 testpmd")
    release: str  # the DPDK release of that testpmd, as found ("24.11.3")
    command: str
    refused: str = ""


def parser_refusal(output: str) -> str:
    """The line of `output` with which testpmd's parser refused the command, or ""."""
    for line in output.splitlines():
        if line.strip() in PARSER_REFUSALS:
            return line.strip()
    return ""


_lock = threading.Lock()
_sent: dict[Sent, None] = {}


def note(sent: Sent) -> None:
    """Keep `sent` until the next take() (each distinct line once)."""
    with _lock:
        _sent[sent] = None


def take() -> list[Sent]:
    """Return the lines noted since it was last called, in the order first sent."""
    global _sent
    with _lock:
        taken, _sent = list(_sent), {}
    return taken
