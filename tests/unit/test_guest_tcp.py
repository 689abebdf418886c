"""framework.traffic.guest_tcp: the receiver's progress, the sender's TCP counters, verdicts.

The data are a real run's (tests/data/guest): VM1's progress samples and VM2's
/proc/net/snmp from the VM-to-VM byte stream across a host testpmd relaunch (split
virtqueues, TCG guests, the host's vhost ports paired).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from framework.traffic.guest_tcp import (
    GuestTransfer,
    Stall,
    parse_progress,
    parse_retransmits,
    verify_transfer,
)
from framework.traffic.tcp import SentStream
from framework.verify import VerifyFailed

DATA = Path(__file__).resolve().parents[1] / "data" / "guest"
PROGRESS = parse_progress((DATA / "tcp_progress.txt").read_text())
SNMP = (DATA / "proc_net_snmp.txt").read_text()
SENT = SentStream(1277952, "7dbc5cdb7cc5679c7b94722a91b8506f8b0a5335340bdf1126dd85b1a0a4a02a")


def transfer(received: SentStream = SENT, **options: object) -> GuestTransfer:
    return GuestTransfer(SENT, received, PROGRESS, 27, **options)  # type: ignore[arg-type]


def test_progress_is_read_sample_by_sample() -> None:
    assert len(PROGRESS) == 92
    assert PROGRESS[0] == (13.32, 0) and PROGRESS[-1] == (26.51, 1277952)
    assert parse_progress("13.3 0\n13.4 12\n13.5\n13.6 x\n") == [(13.3, 0), (13.4, 12)]


def test_the_relaunch_shows_as_the_stall_around_it() -> None:
    # the host testpmd went at VM1's 16.9 s or so: the count stood at 327680 until 18.36,
    # when what TCP had queued arrived at once; the last stall is the sender having stopped
    assert transfer().stalls() == [Stall(16.80, 18.36), Stall(26.34, 26.51)]
    stall = transfer().longest_stall(17.0, 18.0)
    assert stall == Stall(16.80, 18.36) and stall.seconds == pytest.approx(1.56)
    assert transfer().longest_stall(14.0, 15.0) is None, "the stream moved all along there"
    assert transfer().first_growth_after(17.0) == 18.36
    assert transfer().first_growth_after(26.4) is None
    assert transfer().bytes_at(17.5) == 327680 and transfer().bytes_at(10.0) == 0


def test_retransmitted_segments_come_from_the_tcp_lines() -> None:
    assert parse_retransmits(SNMP) == 27


def test_a_whole_transfer_passes_and_a_broken_one_says_how() -> None:
    verify_transfer(transfer(sent_prefix=SENT), "every byte")
    with pytest.raises(VerifyFailed, match="the receiver's bytes are not the bytes sent "
                       r"\(first in the 65536-byte block at byte 0\)"):  # fmt: skip
        verify_transfer(transfer(SentStream(SENT.length, "5470d1"), differs_at=0), "every byte")
    short = SentStream(327680, "abc")
    said = (
        "holds 327680 of the 1277952 bytes sent; its 327680 bytes are not the first 327680 "
        "sent; the sender's socat never ended"
    )
    with pytest.raises(VerifyFailed, match=said):
        verify_transfer(
            transfer(short, sent_prefix=SentStream(327680, "def"), statuses=(None, 0)), "all"
        )
    with pytest.raises(VerifyFailed, match="the sender wrote nothing"):
        verify_transfer(
            GuestTransfer(SentStream(0, "e3b0"), SentStream(0, "e3b0"), [], 0), "something"
        )


def test_a_stream_cut_short_passes_only_as_the_start_of_what_was_sent() -> None:
    start = SentStream(327680, "abc")
    cut = transfer(start, sent_prefix=start, statuses=(None, 0))
    verify_transfer(cut, "what arrived is the start", whole=False)
    with pytest.raises(VerifyFailed, match="holds 327680 of the 1277952"):
        verify_transfer(cut, "every byte")
    with pytest.raises(VerifyFailed, match="are not the first 327680 sent"):
        verify_transfer(
            transfer(start, sent_prefix=SentStream(327680, "xyz")), "the start", whole=False
        )
