"""Verdicts on a finished stream that every guide shares, before and beside its windows.

Whether the stream is evidence at all: a stream that sent nothing has no outage and no
loss, so every window and "nothing lost outside the windows" hold for it by construction;
a sender that reported errors sent fewer frames than the timeline assumes, so the gaps it
left look like what the DUT did. Either way the stream proves nothing about the DUT, and
the guide's verdict must fail rather than pass on it.

What arrived is what was sent: a stream's loss is judged per window by the guide (a
migration may lose frames); what is judged here holds for the whole stream, windows
included: no frame arrives damaged, and none arrives before a frame of the same flow sent
earlier (a queue keeps order; every stream here is one flow).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from framework.traffic.agent import STAMP
from framework.traffic.packets import DEFAULT_MARKER
from framework.traffic.stream import AlteredFrame, StreamResult
from framework.verify import VerifyFailed, verdict


@dataclass(frozen=True)
class KnownDefect:
    """A known defect of a component the recipe uses, recognised by what it does to a frame.

    A frame it explains is reported as that defect instead of failing the frame check; any
    other damage still fails. The test then ends as an expected failure naming the defect,
    so the run cannot sign the guide off while the defect is there.
    """

    name: str
    explains: Callable[[AlteredFrame], bool]


def sender_problem(stream: StreamResult) -> str | None:
    """One line saying why the stream cannot judge the DUT, or None if its sender worked."""
    if stream.sent <= 0:
        why = f" ({stream.tx_error})" if stream.tx_error else ""
        return (
            f"the stream sent no frame{why}: with nothing sent there is no outage to "
            "measure, so this run proves nothing about the data path"
        )
    if stream.tx_errors or stream.tx_error:
        return (
            f"the stream's sender reported {stream.tx_errors} send error(s) of {stream.sent} "
            f"frames (first: {stream.tx_error or 'not given'}): frames the TG failed to send "
            "would count as the DUT's loss"
        )
    return None


@verdict
def verify_sender(stream: StreamResult, what: str) -> None:
    """Assert that the stream's sender worked, so its account judges the DUT (`what`)."""
    if problem := sender_problem(stream):
        raise VerifyFailed(f"{what}: {problem}")


@verdict
def verify_frames_intact(
    stream: StreamResult, what: str, *, in_order: bool = True, known: Sequence[KnownDefect] = ()
) -> None:
    """Assert that every frame received is whole and (in_order) in its flow's order.

    `what` says what the guide promised of the path ("traffic crosses the VM"). The message
    names the first altered frames (sequence number, port, first differing byte, expected
    and seen value, and the first one whole in hex) and the first frames out of order (with
    when they arrived). in_order=False where the path changes queues on purpose inside a
    loss window (a bond switching members: frames held in one member's ring arrive after
    newer ones of the other); order is then judged outside the windows by the stream's
    LossAccount. Altered frames a `known` defect explains are left to known_defects_seen;
    all others fail.
    """
    problems = []
    explained = sum(1 for f in stream.altered_frames if any(k.explains(f) for k in known))
    if stream.altered > explained:
        problems.append(stream.describe_altered())
    if in_order and stream.reordered:
        problems.append(stream.reordered_frames.describe())
    promise = "every frame arrives whole and in order" if in_order else "every frame arrives whole"
    example = f"\n{stream.altered_example()}" if stream.altered > explained else ""
    if problems:
        raise VerifyFailed(f"{what}: {promise}; " + "; ".join(problems) + example)


def _lost_ethertype_only(frame: AlteredFrame) -> bool:
    """The frame arrived as expected but for bytes 12-13 (its stamp aside)."""
    seen, expected = frame.seen, frame.expected
    if seen is None or expected is None or len(seen) != len(expected) - 2:
        return False
    at = expected.find(DEFAULT_MARKER) + len(DEFAULT_MARKER)  # the stamp's place
    if at < len(DEFAULT_MARKER) + 14:
        return False
    end = at + STAMP.size
    return (
        seen[:12] == expected[:12]
        and seen[12 : at - 2] == expected[14:at]
        and seen[end - 2 :] == expected[end:]
    )


# Measured here (QEMU 7.2.22, Debian 12): the destination QEMU, waiting with -incoming,
# reads the first frame flooded to its tap with the tap's default 10-byte virtio-net
# header, holds it while the VM is not running, switches the tap to 12-byte headers when
# the migrated state loads and then hands the held frame to the guest stripped of 12 bytes:
# the guest sees it 2 bytes short at its start, and mac forwarding, rewriting the 12 MAC
# bytes, leaves only the missing EtherType. The guide's switch floods every port, so a lab
# meets it too.
QEMU_INCOMING_TAP_HEADER = KnownDefect(
    "QEMU's destination, waiting with -incoming, handed the guest the first frame its tap "
    "received 2 bytes short (read with a 10-byte virtio-net header, delivered after the "
    "load with 12); mac forwarding hid all but the missing EtherType",
    _lost_ethertype_only,
)


def known_defects_seen(stream: StreamResult, *known: KnownDefect) -> list[str]:
    """The known defects that explain altered frames of the stream, each with its frames.

    Only frames whose bytes the TG kept (the first few) can be explained; verify_frames_intact
    with the same `known` fails on every other altered frame.
    """
    seen = []
    for defect in known:
        frames = [f for f in stream.altered_frames if defect.explains(f)]
        if frames:
            seqs = ", ".join(str(f.seq) for f in frames)
            seen.append(f"known defect: {defect.name} (seq {seqs})")
    return seen
