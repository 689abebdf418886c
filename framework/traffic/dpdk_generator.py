"""Rate trials with testpmd on the TG host: the generator for labs that need line rate.

testpmd's `flowgen` engine sends generated UDP frames (`set txpkts` sets their size) and
receives and counts whatever arrives on the same ports, so one testpmd on the TG's two
DPDK ports runs a bidirectional trial: it sends on both, and what the DUT returns on
either is counted. The offered rate is the NIC's per-queue Tx rate limiter (`set port P
queue 0 rate MBPS`, ixgbe and i40e have one); a port without one (the virtual lab's
af_packet ports) can only send flat out, and a rated trial there fails with one line
saying so. Counts are the ports' own counters: received = packets received plus those
the NIC missed (an unpolled or full ring still counts what arrived on the wire).

Same call as the stream engine's StreamTrials: `generator(rate_pps, seconds) -> Trial`.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from framework.dpdk.args import EalOptions, TestPmdOptions
from framework.dpdk.launch import LaunchRecord, launch_testpmd
from framework.dpdk.modes import ForwardingMode
from framework.dpdk.testpmd import TestPmd
from framework.dpdk.version import DpdkVersion
from framework.errors import FrameworkError, TestPmdError
from framework.lab.hosts import HostHandle
from framework.traffic.trials import Trial

FCS = 4  # testpmd's txpkts lengths exclude the Ethernet FCS


class GeneratorError(FrameworkError):
    """The DPDK generator cannot run a trial as asked."""


@dataclass
class DpdkGenerator:
    """testpmd (flowgen) on the TG host's ports; `generator(rate_pps, seconds) -> Trial`."""

    pmd: TestPmd
    ports: list[int]
    frame_bytes: int
    launch: LaunchRecord | None = None
    _rate_mbps: dict[int, int] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        tg: HostHandle,
        port_names: list[str],
        *,
        testpmd: str,
        version: DpdkVersion,
        frame_bytes: int = 64,
    ) -> DpdkGenerator:
        """Start testpmd on the TG host owning the named ports (PCI NICs, or af_packet)."""
        eal = EalOptions(lcores="0-1", memory_mb=256)
        ports = [tg.port(name) for name in port_names]
        for index, port in enumerate(ports):
            if port.spec.pci and port.spec.nic.value != "virtual":
                eal.allow.append(port.spec.pci)
            else:
                eal.no_pci, eal.no_huge = True, True
                eal.vdevs.append(f"net_af_packet{index},iface={port.interface},qdisc_bypass=1")
        app = TestPmdOptions(nb_cores=1, forward_mode=ForwardingMode.FLOWGEN, total_num_mbufs=8192)
        pmd, launch = launch_testpmd(
            tg, "dpdk-generator", eal, app, binary=testpmd, version=version
        )
        generator = cls(pmd, pmd.port_ids(), frame_bytes, launch)
        generator.set_frame_bytes(frame_bytes)
        return generator

    def set_frame_bytes(self, frame_bytes: int) -> None:
        """The size of the frames sent (FCS included)."""
        self.pmd.command(f"set txpkts {frame_bytes - FCS}")
        self.frame_bytes = frame_bytes

    def set_rate(self, rate_pps: float) -> None:
        """Limit each port's Tx queue to its share of rate_pps (the NIC's rate limiter).

        Raises:
            GeneratorError: the port has no Tx rate limiter.
        """
        share = rate_pps / len(self.ports)
        mbps = max(1, math.ceil(share * self.frame_bytes * 8 / 1e6))
        for port in self.ports:
            if self._rate_mbps.get(port) == mbps:
                continue
            try:
                self.pmd.command(f"set port {port} queue 0 rate {mbps}")
            except TestPmdError as exc:
                raise GeneratorError(
                    f"{self.pmd.shell.name}: port {port} cannot limit its Tx rate to {mbps} "
                    f"Mbit/s, so it cannot offer {rate_pps:,.0f} pps ({exc.message}); use a "
                    "NIC with a Tx rate limiter, or the stream engine"
                ) from None
            self._rate_mbps[port] = mbps

    def flat_out(self, seconds: float) -> Trial:
        """A trial at whatever rate the ports reach without a limit."""
        return self._run(None, seconds)

    def __call__(self, rate_pps: float, seconds: float) -> Trial:
        """One trial: rate_pps in total, shared between the ports, for `seconds`."""
        self.set_rate(rate_pps)
        return self._run(rate_pps, seconds)

    def _run(self, rate_pps: float | None, seconds: float) -> Trial:
        self.pmd.clear_port_stats()
        self.pmd.start()
        started = time.monotonic()
        time.sleep(seconds)
        self.pmd.stop()
        elapsed = time.monotonic() - started
        # Frames still on their way back when sending stopped arrive meanwhile.
        time.sleep(0.2)
        stats = [self.pmd.show_port_stats(port) for port in self.ports]
        sent = sum(s.tx_packets for s in stats)
        received = sum(s.rx_packets + s.rx_missed for s in stats)
        achieved = sent / elapsed if elapsed else 0.0
        # The rate limiter paces the ports for at least `seconds` (elapsed adds the command
        # round trips, when they may not send): a trial intends rate * seconds frames.
        intended = sent if rate_pps is None else math.floor(rate_pps * seconds)
        return Trial(
            offered_pps=rate_pps if rate_pps is not None else achieved,
            duration_s=elapsed,
            frame_bytes=self.frame_bytes,
            sent=sent,
            received=received,
            achieved_pps=achieved,
            intended=intended,
        )

    def close(self) -> None:
        """Quit testpmd."""
        self.pmd.close()
