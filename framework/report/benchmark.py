"""Guide 4's results: the 4.4 template, results.json, the regression gate and a plot.

Every PVP measurement of a run (variant, virtio path, queues, frame size) is one
`PvpResult`. Each is added to `<run dir>/pvp/results.json` as it finishes (a lock keeps
xdist workers from overwriting each other), and the plot of the run's results is drawn
again from that file, so the last one shows them all.

The regression gate compares a result's NDR with the one a baseline file (a results.json
of an accepted run, or one written by --update-baseline) holds for the same key.

A result bounded by the traffic generator (every trial above it missed only for frames the
generator never sent) is reported as such, `generator-bound: >= X pps`, never as the DUT's
rate: in the tables, the 4.4 template's `Result:` line and results.json (`ndr_limit`).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # reports are drawn headless; select before pyplot is imported

import matplotlib.pyplot as plt

from framework.lab.tuning import Tuning
from framework.report.attach import attach_table
from framework.traffic.trials import (
    GENERATOR_BOUND,
    SEARCH_CEILING,
    RateSearch,
    rate_text,
)

# Bytes a frame occupies on the wire beyond its own: preamble, SFD and inter-frame gap.
WIRE_OVERHEAD = 20
RESULTS_FILE = "results.json"


def attach_tuning(tuning: dict[str, Tuning]) -> None:
    """Guide 4's host and guest tuning (4.2.1/4.3.1) as read, one row per machine."""
    attach_table(
        "tuning (guide 4.2.1/4.3.1, as each kernel reports it)",
        ["machine", "CPU", "isolated CPUs", "hugepages", "not in effect"],
        [
            [where, t.cpu_model, sorted(t.isolated) or "none", t.hugepages,
             "; ".join(t.untuned()) or "tuned"]
            for where, t in tuning.items()
        ],
    )  # fmt: skip


def line_rate_pps(gbps: float, frame_bytes: int) -> float:
    """Frames per second at line rate (14.88 Mpps for 64-byte frames at 10 Gbit/s)."""
    return gbps * 1e9 / ((frame_bytes + WIRE_OVERHEAD) * 8)


@dataclass
class PvpResult:
    """One NDR/PDR search of guide 4, with what it ran on."""

    variant: str  # vm | container
    path: str  # the virtio path, e.g. split-mergeable
    queues: int
    frame_bytes: int
    ndr_pps: float  # the highest rate without loss found; 0 if even the lowest lost frames
    pdr_pps: float
    pdr_loss_ratio: float
    line_rate_gbps: float | None
    untuned: list[str] = field(default_factory=list)
    trials: list[dict[str, Any]] = field(default_factory=list)
    # What bounds NDR/PDR if not the DUT: "generator" (the rate is a lower bound of the
    # DUT's), "max_pps" (the search's ceiling); None: the DUT's loss.
    ndr_limit: str | None = None
    pdr_limit: str | None = None

    @property
    def key(self) -> str:
        """What a baseline is looked up by: variant/path/queues/frame size."""
        return f"{self.variant}/{self.path}/q{self.queues}/{self.frame_bytes}B"

    @property
    def ndr_mpps(self) -> float:
        """NDR in Mpps, the unit of the guide's `Result:`."""
        return self.ndr_pps / 1e6

    @property
    def ndr_mbit_s(self) -> float:
        """NDR in Mbit/s of frames (FCS included)."""
        return self.ndr_pps * self.frame_bytes * 8 / 1e6

    @property
    def ndr_text(self) -> str:
        """NDR as reported: `23,700 pps` or `generator-bound: >= 14,900 pps`."""
        return rate_text(self.ndr_pps, self.ndr_limit)

    @property
    def pdr_text(self) -> str:
        """PDR as reported, like ndr_text."""
        return rate_text(self.pdr_pps, self.pdr_limit)

    def line_rate_share(self, pps: float) -> float | None:
        """A rate as a share of line rate, None where the ports have no line rate."""
        if self.line_rate_gbps is None:
            return None
        return pps / line_rate_pps(self.line_rate_gbps, self.frame_bytes)

    @classmethod
    def from_search(
        cls,
        found: RateSearch,
        *,
        variant: str,
        path: str,
        queues: int,
        frame_bytes: int,
        pdr_loss_ratio: float,
        line_rate_gbps: float | None,
        untuned: list[str],
    ) -> PvpResult:
        """A result from an MLRsearch run: its goals' lower bounds, and every trial."""
        return cls(
            variant=variant,
            path=path,
            queues=queues,
            frame_bytes=frame_bytes,
            ndr_pps=found.ndr.lower_pps or 0.0,
            pdr_pps=found.pdr.lower_pps or 0.0,
            ndr_limit=found.ndr.limit,
            pdr_limit=found.pdr.limit,
            pdr_loss_ratio=pdr_loss_ratio,
            line_rate_gbps=line_rate_gbps,
            untuned=untuned,
            trials=[
                {
                    "offered_pps": round(t.offered_pps, 1),
                    "duration_s": round(t.duration_s, 3),
                    "intended": t.intended,
                    "sent": t.sent,
                    "unsent": t.unsent,
                    "received": t.received,
                    "lost": t.lost,
                    "loss_ratio": round(t.loss_ratio, 6),
                    "generator_limited": t.generator_limited,
                }
                for t in found.trials
            ],
        )


@dataclass(frozen=True)
class ResultsTemplate:
    """The fields of guide 4.4's results template."""

    traffic_generator: str
    acceptable_loss_pct: float
    validation_run_time_min: float
    host_dpdk: str
    guest_dpdk: str
    patches: str
    qemu: str
    virtio_features: str
    cpu: str
    nic: str

    def render(self, result_mpps: float, untuned: list[str], limit: str | None = None) -> str:
        """The template as the guide prints it, `Result: N Mpps` last.

        A result bounded by the generator is `Result: >= N Mpps (generator-bound: ...)`:
        the DUT forwarded that rate without loss; its own rate was not reached.
        """
        mark = f" (untuned: {'; '.join(untuned)})" if untuned else ""
        if limit == GENERATOR_BOUND:
            mark = (
                " (generator-bound: the traffic generator could not offer more; not the DUT's "
                "rate)" + mark
            )
        elif limit == SEARCH_CEILING:
            mark = " (the search's max_pps; the DUT's rate is higher)" + mark
        bound = ">= " if limit in (GENERATOR_BOUND, SEARCH_CEILING) else ""
        return "\n".join([
            f"Traffic Generator: {self.traffic_generator}",
            f"Acceptable Loss: {self.acceptable_loss_pct:g}%",
            f"Validation run time: {self.validation_run_time_min:.1f}min",
            f"Host DPDK version/commit: {self.host_dpdk}",
            f"Guest DPDK version/commit: {self.guest_dpdk}",
            f"Patches applied: {self.patches}",
            f"QEMU version/commit: {self.qemu}",
            f"Virtio features: {self.virtio_features}",
            f"CPU: {self.cpu}",
            f"NIC: {self.nic}",
            f"Result: {bound}{result_mpps:.4f} Mpps{mark}",
        ])  # fmt: skip


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.parent / f".{path.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _read(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {"results": {}}
    return json.loads(path.read_text())


def record_result(
    directory: Path, result: PvpResult, template: ResultsTemplate, meta: dict[str, str]
) -> Path:
    """Add (or replace) a result in `directory`/results.json; return the file."""
    path = directory / RESULTS_FILE
    with _locked(path):
        data = _read(path)
        data.update(meta)
        entry = asdict(result) | {
            "ndr_mpps": result.ndr_mpps,
            "template": asdict(template)
            | {"result_mpps": result.ndr_mpps, "result_limit": result.ndr_limit},
        }
        data["results"][result.key] = entry
        path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    return path


def recorded_results(directory: Path) -> list[PvpResult]:
    """Every result in `directory`/results.json."""
    data = _read(directory / RESULTS_FILE)
    names = set(PvpResult.__dataclass_fields__)
    return [
        PvpResult(**{k: v for k, v in entry.items() if k in names})
        for entry in data["results"].values()
    ]


def plot_results(results: list[PvpResult], path: Path, title: str) -> Path:
    """The run's PVP results as a PNG: per frame size, and every set-up side by side.

    Left: NDR and PDR (kpps) against frame size, for the set-ups measured at several
    sizes; right: NDR and PDR of every set-up at the smallest frame size, as bars.
    """
    series: dict[str, list[PvpResult]] = {}
    for r in results:
        series.setdefault(f"{r.variant} {r.path} q{r.queues}", []).append(r)
    smallest = min((r.frame_bytes for r in results), default=64)
    bars = sorted((label, r) for label, rs in series.items() for r in rs
                  if r.frame_bytes == smallest)  # fmt: skip
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(13, max(4.5, 0.32 * len(bars) + 1.5)), dpi=100,
        gridspec_kw={"width_ratios": [1, 1.2]},
    )  # fmt: skip
    try:
        sizes = sorted({r.frame_bytes for r in results})
        for label, points in sorted(series.items()):
            if len(points) < 2:
                continue
            points.sort(key=lambda r: r.frame_bytes)
            x = [r.frame_bytes for r in points]
            (line,) = left.plot(x, [r.ndr_pps / 1e3 for r in points], "o-", label=f"{label} NDR")
            left.plot(x, [r.pdr_pps / 1e3 for r in points], "x--", color=line.get_color(),
                      label=f"{label} PDR")  # fmt: skip
        left.set_xscale("log", base=2)
        left.set_xticks(sizes, [str(s) for s in sizes])
        left.minorticks_off()
        left.set_xlabel("frame size (bytes)")
        left.set_ylabel("kpps")
        left.set_title("per frame size")
        left.grid(True, alpha=0.3)
        if left.lines:
            left.legend(fontsize=7, loc="best")
        y = range(len(bars))
        right.barh(y, [r.pdr_pps / 1e3 for _, r in bars], color="#c6dbef", label="PDR")
        right.barh(y, [r.ndr_pps / 1e3 for _, r in bars], color="#3182bd", height=0.5,
                   label="NDR")  # fmt: skip
        right.set_yticks(list(y), [label for label, _ in bars], fontsize=8)
        right.invert_yaxis()
        right.set_xlabel("kpps")
        right.set_title(f"every set-up at {smallest} B")
        right.grid(True, axis="x", alpha=0.3)
        right.legend(fontsize=8, loc="lower right")
        fig.suptitle(title)
        fig.tight_layout()
        fig.savefig(path)
    finally:
        plt.close(fig)
    return path


def baseline_ndr(baseline: Path, key: str) -> float | None:
    """The baseline's NDR (pps) for a result key; None if it has none."""
    if not baseline.exists():
        return None
    entry = _read(baseline)["results"].get(key)
    return float(entry["ndr_pps"]) if entry else None


def gate(result: PvpResult, baseline: Path, tolerance: float) -> str | None:
    """Why the result fails the regression gate, or None if it passes (or has no baseline)."""
    base = baseline_ndr(baseline, result.key)
    if base is None or base <= 0:
        return None
    floor = base * (1 - tolerance)
    if result.ndr_pps >= floor:
        return None
    drop = 1 - result.ndr_pps / base
    bound = (
        " (generator-bound: the traffic generator, not the DUT, stopped the search)"
        if result.ndr_limit == GENERATOR_BOUND
        else ""
    )
    return (
        f"regression: {result.key} NDR {result.ndr_pps:,.0f} pps is {drop:.0%} below the "
        f"baseline {base:,.0f} pps of {baseline} (tolerance {tolerance:.0%}){bound}"
    )


def update_baseline(baseline: Path, result: PvpResult) -> None:
    """Write the result into the baseline file as the new reference for its key."""
    with _locked(baseline):
        data = _read(baseline)
        data["results"][result.key] = asdict(result)
        baseline.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
