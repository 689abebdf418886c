"""Verdicts on a finished stream that every guide shares: what arrived is what was sent.

A stream's loss is judged per window by the guide (a migration may lose frames); what is
judged here holds for the whole stream, windows included: no frame arrives damaged, and
none arrives before a frame of the same flow sent earlier (a queue keeps order; every
stream here is one flow).
"""

from __future__ import annotations

from framework.traffic.stream import StreamResult


def verify_frames_intact(stream: StreamResult, what: str, *, in_order: bool = True) -> None:
    """Assert that every frame received is whole and (in_order) in its flow's order.

    `what` says what the guide promised of the path ("traffic crosses the VM"). The message
    names the first altered frames (sequence number, port, first differing byte, expected
    and seen value, and the first one whole in hex) and the first frames out of order (with
    when they arrived). in_order=False where the path changes queues on purpose inside a
    loss window (a bond switching members: frames held in one member's ring arrive after
    newer ones of the other); order is then judged outside the windows by the stream's
    LossAccount.
    """
    problems = []
    if not stream.intact:
        problems.append(stream.describe_altered())
    if in_order and stream.reordered:
        problems.append(stream.reordered_frames.describe())
    promise = "every frame arrives whole and in order" if in_order else "every frame arrives whole"
    example = f"\n{stream.altered_example()}" if not stream.intact else ""
    assert not problems, f"{what}: {promise}; " + "; ".join(problems) + example
