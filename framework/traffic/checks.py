"""Whether a sequenced stream is evidence at all, before its losses are judged.

A stream that sent nothing has no outage and no loss: every window and "nothing lost
outside the windows" hold for it by construction. A sender that reported errors sent
fewer frames than the timeline assumes, so the gaps it left look like what the DUT did.
Either way the stream proves nothing about the DUT, and the guide's verdict must fail
rather than pass on it.
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
