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

from framework.traffic.stream import StreamResult


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
