"""DPDK's port-restart plans on guide 4's PVP path: ports stopped and started under traffic.

pvp_qemu_multi_paths_port_restart (each virtio path of a VM) and
pvp_virtio_user_multi_queues_port_restart (virtio_user with two queues) stop and start the
host's vhost-user ports ten times and measure the throughput after each restart. Here a
sequenced stream crosses the path through every restart: each one is a window on the
stream's timeline, with the span in which the ports were stopped inside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from framework.traffic.stream import LossWindow, StreamResult
from framework.verify import wait_for_dut

log = logging.getLogger("howto.restart")

# How much later than its commands a restart may show in traffic (the controller's clock
# against the TG's).
EVENT_SLACK_S = 0.5
# Frames already past the stopped ports (in the host's NIC queue, the TG's socket) when
# the last `port stop` returns still arrive this long after it.
IN_FLIGHT_S = 0.2


@dataclass(frozen=True)
class PortRestart:
    """One restart of one side's ports: when it was asked and when each part returned.

    Times are the controller's time.time().
    """

    what: str  # whose ports: "the host's vhost-user ports", "the guest's ports"
    round: int
    stop_at: float  # the first stop command sent
    stopped_at: float  # every port stopped
    start_at: float  # the first start command sent
    started_at: float  # every port started, forwarding again

    @property
    def name(self) -> str:
        """The restart as the report names it."""
        return f"restart {self.round} of {self.what}"

    def window(self, stream: StreamResult) -> LossWindow:
        """The restart on the stream's timeline: from its first stop to forwarding again."""
        return LossWindow(
            self.name, stream.at(self.stop_at), stream.at(self.started_at), EVENT_SLACK_S
        )

    def stopped_span(self, stream: StreamResult) -> tuple[float, float]:
        """(start, end) on the stream's timeline in which the stopped ports deliver nothing."""
        return stream.at(self.stopped_at) + IN_FLIGHT_S, stream.at(self.start_at)


def restart_ports(
    what: str, round_: int, stop: Callable[[], None], start: Callable[[], None], hold_s: float
) -> PortRestart:
    """Stop one side's ports, keep them stopped `hold_s`, start them again."""
    log.info("port restart %d: %s", round_, what)
    stop_at = time.time()
    stop()
    stopped_at = time.time()
    wait_for_dut(hold_s)
    start_at = time.time()
    start()
    return PortRestart(what, round_, stop_at, stopped_at, start_at, time.time())
