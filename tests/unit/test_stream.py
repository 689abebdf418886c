"""Stream analysis on synthetic sequences: every count is known in advance."""

from __future__ import annotations

import base64
import sys
import time
import zlib
from array import array
from pathlib import Path

import numpy as np
import pytest

from framework.traffic.plot import plot_stream
from framework.traffic.stream import LossWindow, Outage, StreamResult, synthetic


def steady(n: int, pps: float, start: float = 0.0) -> tuple[list[int], list[float]]:
    return list(range(n)), [start + i / pps for i in range(n)]


def test_clean_stream_has_no_gap() -> None:
    seqs, times = steady(1000, 1000)
    r = synthetic(seqs, times, sent=1000, pps=1000)
    assert (r.received, r.lost, r.duplicated, r.reordered) == (1000, 0, 0, 0)
    assert r.outages == [] and r.downtime_ms == 0.0
    assert r.resolution_ms == 1.0
    assert r.rate_achieved_pps == pytest.approx(1000)


def test_outage_is_one_gap_with_exact_loss() -> None:
    pps = 10_000
    seqs, times = steady(20_000, pps)
    # seqs 5000..7999 lost: 300 ms of traffic
    keep = [i for i in seqs if not 5000 <= i < 8000]
    r = synthetic(keep, [times[i] for i in keep], sent=20_000, pps=pps)
    assert r.lost == 3000 and r.received == 17_000
    (gap,) = r.outages
    assert gap.lost == 3000 and gap.lost_runs == (range(5000, 8000),)
    # from the last frame before (4999) to the first after (8000): 3001 intervals
    assert gap.duration_ms == pytest.approx(300.1)
    assert r.downtime_ms == pytest.approx(300.1)
    assert r.resolution_ms == pytest.approx(0.1)
    assert gap.start_s == pytest.approx(0.4999) and gap.end_s == pytest.approx(0.8)


def test_two_outages_downtime_is_the_longest_and_each_window_claims_its_own() -> None:
    seqs, times = steady(3000, 1000)
    lost = set(range(100, 110)) | set(range(2000, 2200))
    keep = [i for i in seqs if i not in lost]
    r = synthetic(keep, [times[i] for i in keep], sent=3000, pps=1000)
    assert [g.lost for g in r.outages] == [10, 200]
    assert r.downtime_ms == pytest.approx(201.0)
    late = r.account(LossWindow("late", 1.9, 2.1, slack_s=0))
    assert [w.lost for w in late.windows] == [200]
    assert list(late.lost_outside.seqs) == list(range(100, 110))
    early = r.account(LossWindow("instant", 0.105, 0.105, slack_s=0))  # inside the first
    assert early.windows[0].lost == 10 and len(early.lost_outside) == 200
    assert r.account(LossWindow("quiet", 1.0, 1.5, slack_s=0)).windows[0].outages == []
    assert r.account(LossWindow("near", 1.0, 1.95, slack_s=0.1)).windows[0].lost == 200


def test_duplicates_and_reordering_are_counted_not_lost() -> None:
    # 0 1 3 2 4 4 5: seq 2 after 3 is reordered, 4 arrives twice
    seqs = [0, 1, 3, 2, 4, 4, 5]
    times = [i * 0.001 for i in range(len(seqs))]
    r = synthetic(seqs, times, sent=6, pps=1000)
    assert (r.received, r.lost, r.duplicated, r.reordered) == (6, 0, 1, 1)
    assert r.outages == []


def test_reordered_neighbours_of_a_loss_still_give_a_positive_gap() -> None:
    # seqs 3 and 4 lost, and 6 overtakes 5: traffic is back when 6 arrives, at 50 ms
    seqs = [0, 1, 2, 6, 5, 7]
    times = [0.000, 0.001, 0.002, 0.050, 0.051, 0.052]
    r = synthetic(seqs, times, sent=8, pps=1000)
    assert r.lost == 2 and r.reordered == 1
    assert [g.lost for g in r.outages] == [2]
    gap = r.outages[0]
    assert gap.lost_runs == (range(3, 5),) and gap.duration_ms == pytest.approx(48.0)


def test_leading_and_trailing_loss() -> None:
    seqs = list(range(10, 90))
    r = synthetic(seqs, [i / 1000 for i in seqs], sent=100, pps=1000)
    first, last = r.outages
    assert first.start_s == 0.0 and first.lost_runs == (range(0, 10),)
    assert last.lost_runs == (range(90, 100),) and last.open_ended
    assert first.lost + last.lost == r.lost == 20


def test_nothing_received_is_one_open_gap() -> None:
    r = synthetic([], [], sent=50, pps=1000)
    assert r.lost == 50 and len(r.outages) == 1 and r.outages[0].open_ended
    assert r.downtime_ms == pytest.approx(49.0)  # the whole stream: 50 frames 1 ms apart


def test_a_stall_without_loss_is_a_gap_and_jitter_is_not() -> None:
    seqs, times = steady(1000, 1000)
    times = [t + (0.080 if i >= 500 else 0.0) for i, t in enumerate(times)]  # 80 ms hold
    times[200] += 0.0008  # sub-threshold jitter
    r = synthetic(seqs, times, sent=1000, pps=1000)
    assert r.lost == 0
    (gap,) = r.outages
    assert gap.lost == 0 and gap.duration_ms == pytest.approx(81.0)
    assert synthetic(seqs, times, sent=1000, pps=1000, stall_ms=100).outages == []


def test_frames_of_another_stream_are_foreign() -> None:
    r = synthetic([0, 1, 2, 70000], [0, 0.001, 0.002, 0.003], sent=3, pps=1000)
    assert (r.received, r.lost, r.duplicated, r.foreign) == (3, 0, 0, 1)


def test_timeline_maps_controller_time() -> None:
    r = synthetic([0], [0.0], sent=1, t0_wall=1000.0, clock_offset=0.5)
    assert r.started_at == 1000.5 and r.at(1002.0) == 1.5


def test_from_agent_decodes_packed_arrays() -> None:
    def pack(kind: str, values: list[int]) -> str:
        return base64.b64encode(zlib.compress(array(kind, values).tobytes())).decode()

    answer = {
        "sent": 4,
        "pps": 1000.0,
        "tx_first_ns": 0,
        "tx_last_ns": 3_000_000,
        "t0_wall_ns": 5_000_000_000,
        "byteorder": sys.byteorder,
        "ports": {
            "p": {
                "n": 3,
                "seq": pack("I", [0, 1, 3]),
                "tx": pack("q", [5_000_000_000, 5_001_000_000, 5_003_000_000]),
                "rx": pack("q", [5_000_010_000, 5_001_010_000, 5_003_010_000]),
                "own": 4,
                "other": 0,
            }
        },
    }
    r = StreamResult.from_agent(answer)
    assert list(r.seq) == [0, 1, 3] and r.lost == 1 and list(r.lost_seqs) == [2]
    assert r.latency_ms["median"] == pytest.approx(0.01)
    assert r.rate_achieved_pps == pytest.approx(1000)
    assert r.ignored_own == {"p": 4} and r.started_at == 5.0
    assert r.outages == [Outage(0.00101, 0.00301, (range(2, 3),))]


def test_large_stream_analysis_is_fast() -> None:
    n = 200_000
    rng = np.random.default_rng(1)
    keep = np.sort(rng.choice(n, size=n - 2000, replace=False))  # 1 % random loss
    start = time.perf_counter()
    r = StreamResult(sent=n, seq=keep, rx_s=keep / 50_000, pps=50_000)
    assert r.lost == 2000 and sum(g.lost for g in r.outages) == 2000
    assert time.perf_counter() - start < 2.0


def test_a_pause_of_the_sender_is_not_a_stall() -> None:
    # the TG was descheduled for 30 ms: sends and arrivals both pause, nothing is lost
    seqs, tx = steady(1000, 1000)
    tx = [t + (0.030 if i >= 500 else 0.0) for i, t in enumerate(tx)]
    rx = [t + 0.0001 for t in tx]
    assert synthetic(seqs, rx, sent=1000, pps=1000, tx_s=tx).outages == []
    # without send stamps the same arrivals look like a stall
    assert len(synthetic(seqs, rx, sent=1000, pps=1000).outages) == 1
    # the path holding frames for 30 ms while the sender kept going is one
    held = [t + (0.030 if 500 <= i < 530 else 0.0) for i, t in enumerate(steady(1000, 1000)[1])]
    r = synthetic(seqs, held, sent=1000, pps=1000, tx_s=steady(1000, 1000)[1])
    assert [g.lost for g in r.outages] == [0] and r.outages[0].duration_ms == pytest.approx(31.0)


# --- the agent's send loop, with fake senders: pacing and counting, no sockets ------------


class FakeTx:
    """A sender that hands frames over at once, like the send path on a healthy device;
    `take` limits how many of the written frames the kernel takes per push (the rest wait
    at the head of the ring, as after ENOBUFS), `break_at` makes the kernel reject one."""

    path = "ring"

    def __init__(self, start: int = 0, take: int | None = None, break_at: int | None = None):
        self.sent = self.written = start
        self.take, self.break_at = take, break_at
        self.broken: str | None = None
        self.pushes: list[int] = []  # frames asked for
        self.writes: list[int] = []  # frames written: only once none wait at the head
        self.finished = False

    def push(self, k: int) -> None:
        self.pushes.append(k)
        if self.written == self.sent:
            self.written += k
            self.writes.append(k)
        if self.break_at is not None and self.break_at < self.written:
            self.sent = self.written = self.break_at
            self.broken = "rejected"
            return
        step = self.written - self.sent if self.take is None else self.take
        self.sent = min(self.written, self.sent + step)

    def finish(self) -> None:
        self.finished = True


def _run(tx: FakeTx, pps: float | None, count: int, seconds: float = 5.0, fallback=None):
    from framework.traffic import agent

    now = time.monotonic_ns()
    return agent._send_stream(
        tx, fallback or (lambda broken: None), pps, count, now + int(seconds * 1e9), None, now
    )


def test_send_loop_unpaced_sends_exactly_count_in_batches() -> None:
    from framework.traffic import agent

    tx, ended = _run(FakeTx(), None, 1000)
    assert ended == "count" and tx.sent == tx.written == 1000 and tx.finished
    assert max(tx.writes) <= agent.STREAM_BATCH and sum(tx.writes) == 1000


def test_send_loop_paced_follows_the_schedule() -> None:
    start = time.perf_counter()
    tx, ended = _run(FakeTx(), 2000, 200)
    took = time.perf_counter() - start
    assert ended == "count" and tx.sent == 200
    # 200 frames at 2 kpps: the last one is due at 99.5 ms
    assert 0.09 < took < 0.5


def test_send_loop_writes_no_new_frames_while_some_wait_at_the_head() -> None:
    # the kernel takes one frame per push: pushes retry the waiting ones, write no more
    tx, ended = _run(FakeTx(take=1), None, 300)
    assert ended == "count" and tx.sent == tx.written == 300
    assert sum(tx.writes) == 300 and len(tx.pushes) == 300


def test_send_loop_switches_to_the_fallback_with_dense_sequence_numbers() -> None:
    swapped: list[FakeTx] = []

    def fallback(broken: FakeTx) -> FakeTx:
        assert broken.broken and broken.sent == 300
        plain = FakeTx(start=broken.sent)
        plain.path = "send"
        swapped.append(plain)
        return plain

    tx, ended = _run(FakeTx(break_at=300), None, 1000, fallback=fallback)
    assert swapped == [tx] and tx.path == "send"
    assert ended == "count" and tx.sent == 1000  # 0..299 from the ring, 300..999 after


def test_send_loop_stops_at_the_end_time_with_frames_waiting() -> None:
    tx, ended = _run(FakeTx(take=0), None, 1000, seconds=0.05)
    assert ended == "duration" and tx.sent == 0 and tx.finished


@pytest.mark.parametrize("v6", [False, True], ids=["ipv4", "ipv6"])
@pytest.mark.parametrize("size", [130, 131])  # odd: the checksum pads the segment
@pytest.mark.parametrize("shift", [0, 1])  # the stamp at an odd offset of the segment
def test_balanced_stamps_keep_the_templates_real_checksum(v6: bool, size: int, shift: int) -> None:
    from scapy.layers.inet import UDP
    from scapy.layers.l2 import Ether

    from framework.traffic import agent
    from framework.traffic.packets import udp_flow

    src, dst = ("2001:db8::1", "2001:db8::2") if v6 else ("198.18.0.1", "198.18.0.2")
    marker = b"HOWTO"[: 5 - shift] + b"Z" * shift
    pkt = udp_flow("02:00:00:00:00:01", "02:00:00:00:00:02", src, dst, 1, 2, seq=0,
                   size=size, marker=marker)  # fmt: skip
    raw = bytes(pkt)
    stamp_at = raw.find(marker) + len(marker)
    frame = agent.prepare_frame(raw, stamp_at)
    template_sum = Ether(bytes(frame))[UDP].chksum
    assert template_sum != 0, "a real checksum, not 'none'"
    for seq, rel in ((0, 0), (1, 5), (0xFFFFFFFF, 2**48 - 1), (123456, 3_600_000_000_000)):
        agent.STAMP.pack_into(frame, stamp_at, *agent.stamp_fields(seq, rel))
        sent = Ether(bytes(frame))
        again = Ether(bytes(frame))
        del again[UDP].chksum
        assert Ether(bytes(again))[UDP].chksum == sent[UDP].chksum == template_sum
        fields = agent.STAMP.unpack_from(frame, stamp_at)
        assert agent.stamp_intact(*fields) and fields[0] == seq
        assert (fields[1] << 32) + fields[2] == rel


def test_a_damaged_stamp_is_not_intact() -> None:
    from framework.traffic import agent

    good = agent.STAMP.pack(*agent.stamp_fields(77, 1_234_567_890))
    for byte in range(agent.STAMP.size):
        for flip in (0x01, 0x80, 0xFF):
            bad = bytearray(good)
            bad[byte] ^= flip
            fields = agent.STAMP.unpack(bytes(bad))
            # a single damaged byte always shows (two compensating ones could hide)
            assert not agent.stamp_intact(*fields), (byte, flip)


def _migration_shape(pps: float = 1000) -> tuple[list[int], list[float], list[float]]:
    """What a correct DUT did here during a live migration: frames 7701-7811 held in the
    paused VM and delivered 371 ms late on the destination, in a burst just before the
    first frame after the 259 frames (7812-8070) sent during the switch-over and lost."""
    seqs, tx = steady(12_000, pps)
    rx = [t + 0.0002 for t in tx]
    back = 8.0705  # when the destination delivers the held frames; 8071 arrives at 8.0712
    kept = [s for s in seqs if not 7812 <= s <= 8070]
    arrival = {s: (back + (s - 7701) * 1e-6 if 7701 <= s <= 7811 else rx[s]) for s in kept}
    return kept, [arrival[s] for s in kept], [tx[s] for s in kept]


def test_held_then_lost_frames_are_one_outage_with_its_loss() -> None:
    seqs, rx, tx = _migration_shape()
    r = synthetic(seqs, rx, sent=12_000, pps=1000, tx_s=tx)
    (outage,) = r.outages
    assert outage.lost == 259 and outage.lost_runs == (range(7812, 8071),)
    assert outage.duration_ms == pytest.approx(371.0, abs=0.1)  # 7.7002 -> 8.0712 s
    account = r.account(LossWindow("migration", 5.0, 8.2, slack_s=0.5))
    assert account.clean_outside and account.windows[0].lost_runs == (range(7812, 8071),)
    assert account.windows[0].loss_span_ms == pytest.approx(258.0)  # sent 7.812-8.070 s


def test_steady_loss_outside_the_window_is_named_with_send_times() -> None:
    seqs, rx, tx = _migration_shape()
    keep = [i for i, s in enumerate(seqs) if s % 50 or s >= 5000]  # 1 in 50 before 5 s
    r = synthetic([seqs[i] for i in keep], [rx[i] for i in keep], sent=12_000, pps=1000,
                  tx_s=[tx[i] for i in keep])  # fmt: skip
    account = r.account(LossWindow("migration", 5.5, 8.2))
    assert not account.clean_outside
    assert list(account.lost_outside.seqs[:3]) == [0, 50, 100] and len(account.lost_outside) == 100
    assert account.lost_outside.times[1] == pytest.approx(0.050)
    assert account.lost_outside.describe(limit=2) == (
        "100 lost: seq 0 (sent at 0.000 s), seq 50 (sent at 0.050 s), ... (98 more)"
    )
    assert account.windows[0].lost_runs == (range(7812, 8071),)  # the migration itself


def test_a_second_outage_after_the_window_is_outside_and_steady_loss_inside_is_many_runs() -> None:
    seqs, rx, tx = _migration_shape()
    keep = [i for i, s in enumerate(seqs) if not 9500 <= s < 9600]
    r = synthetic([seqs[i] for i in keep], [rx[i] for i in keep], sent=12_000, pps=1000,
                  tx_s=[tx[i] for i in keep])  # fmt: skip
    account = r.account(LossWindow("migration", 5.0, 8.2))
    assert [o.lost for o in account.outside_outages] == [100]
    assert account.lost_outside.seqs[0] == 9500
    lossy = [i for i, s in enumerate(seqs) if not (6000 <= s < 7000 and s % 100 == 0)]
    r = synthetic([seqs[i] for i in lossy], [rx[i] for i in lossy], sent=12_000, pps=1000,
                  tx_s=[tx[i] for i in lossy])  # fmt: skip
    (window,) = r.account(LossWindow("migration", 5.0, 8.2)).windows
    assert len(window.outages) == 11 and len(window.lost_runs) == 11
    assert window.loss_span_ms == pytest.approx(2070.0)  # 6.000 s ... the switch-over, 8.070 s
    assert "11 outage(s), longest outage 371.0 ms" in window.describe()
    assert "269 lost in 11 of them, sent over 2070.0 ms: outage 2.0 ms" in window.describe()


def test_duplicates_and_reordering_count_where_they_arrive() -> None:
    seqs, times = steady(3000, 1000)
    seqs = seqs[:1000] + [999] + seqs[1000:2500] + [2499] + seqs[2500:]
    times = times[:1000] + [0.9995] + times[1000:2500] + [2.4995] + times[2500:]
    seqs[500], seqs[501] = 501, 500
    r = synthetic(seqs, times, sent=3000, pps=1000)
    assert (r.duplicated, r.reordered, r.lost) == (2, 1, 0)
    account = r.account(LossWindow("event", 2.3, 2.6, slack_s=0))
    assert list(account.duplicated_outside.seqs) == [999]
    assert list(account.reordered_outside.seqs) == [500]
    assert "1 duplicated: seq 999 (received at 1.000 s)" in account.describe_outside()
    assert r.account(LossWindow("all", 0, 3)).clean_outside


def test_delivered_counts_the_frames_sent_in_a_span_once_each() -> None:
    # 10 frames at 10 pps (sent at 0.0 .. 0.9 s): 3 and 4 lost, 6 arrives twice
    seqs = [0, 1, 2, 5, 6, 6, 7, 8, 9]
    result = StreamResult(
        sent=10,
        seq=np.array(seqs),
        rx_s=np.array([s / 10 + 0.001 + i * 1e-6 for i, s in enumerate(seqs)]),
        tx_s=np.array([s / 10 for s in seqs], dtype=float),
        pps=10,
    )
    assert result.delivered(0.0, 0.9) == (10, 8)
    assert result.delivered(0.25, 0.45) == (2, 0)  # seq 3 and 4: both lost
    assert result.delivered(0.55, 0.65) == (1, 1)  # seq 6 once, though it came twice
    assert result.delivered(2.0, 3.0) == (0, 0)


def test_plot_caps_a_burst_of_held_frames_and_names_the_windows(tmp_path: Path) -> None:
    # 10 s at 100 pps, then 600 frames handed on at once at 5 s (a backup port's queue)
    seqs = list(range(1000)) + list(range(100, 700))
    times = [s / 100 + 0.001 for s in range(1000)] + [5.0 + i * 1e-5 for i in range(600)]
    result = synthetic(seqs, times, sent=1000, pps=100)
    png = plot_stream(
        result,
        tmp_path / "burst.png",
        windows=[LossWindow("failover", 4.9, 5.1, slack_s=0)],
        title="a burst of duplicates",
    )
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_an_outage_of_many_short_runs_is_found_in_linear_time() -> None:
    # A flat-out stream whose receiver falls behind: every other frame lost for 400,000
    # frames, one outage of 200,000 runs (once minutes of tuple copying).
    n = 400_000
    keep = np.arange(0, n, 2)
    r = synthetic(keep, keep / 1e6, sent=n)
    started = time.monotonic()
    (outage,) = r.outages
    assert len(outage.lost_runs) == n // 2 and outage.lost == n // 2
    assert time.monotonic() - started < 10.0
