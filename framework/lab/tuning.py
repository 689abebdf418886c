"""A machine's tuning for packet processing, as guide 4 (4.2.1 host, 4.3.1 guest) sets it.

Read: the kernel command line (isolcpus, intel_pstate=disable, hugepages), turbo and
hyper-threading where the kernel shows them, the NMI watchdog, the writeback workqueue's
cpumask and the IRQs' affinities. A benchmark records it with its result, and calls the
result "untuned" when any of the guide's steps is not in effect. A lab host's tuning is
never changed (it is the lab's); the runtime steps are applied only to a guest the suite
boots (runtime_tuning_script).

Works through any `run(command) -> output` (a lab host's session, a guest's console),
with busybox's tools as much as with full ones.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from framework.remote.readout import Run, read_marked
from framework.verify import VerifyFailed

_MARK = "__howto_tuning__"
_REFUSED = "__howto_irq_refused__"  # an IRQ runtime_tuning_script could not move

# One round trip; every value on a line of its own after the mark and its name.
SCRIPT = (
    f'm={_MARK}; r() {{ printf "%s %s " "$m" "$1"; cat "$2" 2>/dev/null | tr "\\n" " "; echo; }}; '
    "r cmdline /proc/cmdline; "
    "r isolated /sys/devices/system/cpu/isolated; "
    "r online /sys/devices/system/cpu/online; "
    "r smt /sys/devices/system/cpu/smt/active; "
    "r no_turbo /sys/devices/system/cpu/intel_pstate/no_turbo; "
    "r boost /sys/devices/system/cpu/cpufreq/boost; "
    "r nmi_watchdog /proc/sys/kernel/nmi_watchdog; "
    "r writeback /sys/bus/workqueue/devices/writeback/cpumask; "
    "r default_affinity /proc/irq/default_smp_affinity; "
    "for d in /sys/kernel/mm/hugepages/hugepages-*; do "
    'r "hugepages ${d##*-}" "$d/nr_hugepages"; done; '
    'for f in /proc/irq/*/smp_affinity; do i=${f#/proc/irq/}; r "irq ${i%%/*}" "$f"; done; '
    'printf "%s model " "$m"; grep -m1 "^model name" /proc/cpuinfo | sed "s/.*: //"; '
    'printf "%s mhz " "$m"; grep -m1 "^cpu MHz" /proc/cpuinfo | sed "s/.*: //"; true'
)


@dataclass(frozen=True)
class Tuning:
    """What a machine's kernel says of the guide's tuning steps (None: not readable)."""

    cmdline: str
    isolated: frozenset[int]
    online: frozenset[int]
    smt_active: bool | None
    turbo: bool | None
    nmi_watchdog: int | None
    writeback_mask: int | None
    irq_masks: dict[int, int] = field(default_factory=dict)
    hugepages: dict[str, int] = field(default_factory=dict)  # "2048kB" -> pages
    cpu_model: str = ""
    cpu_mhz: float | None = None
    # IRQs whose affinity the kernel refused to change (the timer and the PIC cascade on
    # x86): the guide's loop cannot move them either, so they do not count as untuned.
    unmovable_irqs: frozenset[int] = frozenset()

    @property
    def isolated_mask(self) -> int:
        """The isolated CPUs as a bit mask."""
        return sum(1 << cpu for cpu in self.isolated)

    @property
    def irqs_on_isolated(self) -> list[int]:
        """IRQs whose affinity allows an isolated CPU (the guide clears them)."""
        return sorted(irq for irq, mask in self.irq_masks.items() if mask & self.isolated_mask)

    def untuned(self) -> list[str]:
        """Each of the guide's tuning steps not in effect, in the guide's words; [] if tuned."""
        found = []
        if self.turbo:
            found.append("turbo boost is on (4.2.1: disable turbo-boost)")
        if self.smt_active:
            found.append("hyper-threading is on (4.2.1: disable hyper-threads)")
        if not self.isolated:
            found.append("no isolated CPUs (kernel command line: isolcpus=)")
        if self.nmi_watchdog:
            found.append("the NMI watchdog is on (echo 0 > /proc/sys/kernel/nmi_watchdog)")
        if self.writeback_mask is not None and self.writeback_mask & self.isolated_mask:
            found.append("the writeback cpumask includes isolated CPUs")
        movable = [irq for irq in self.irqs_on_isolated if irq not in self.unmovable_irqs]
        if self.isolated and movable:
            found.append(f"{len(movable)} IRQs may run on isolated CPUs")
        if not any(self.hugepages.values()):
            found.append("no hugepages reserved")
        return found


def read_tuning(run: Run) -> Tuning:
    """Read a machine's tuning through `run` in one round trip."""
    return parse_tuning(run(SCRIPT))


def parse_tuning(text: str) -> Tuning:
    """Tuning from the output of SCRIPT."""
    values: dict[str, str] = {}
    for marked in read_marked(text, _MARK):
        name, value = marked.name, marked.value
        if name in ("hugepages", "irq"):  # one per page size / IRQ: "irq 24 fc"
            sub, _, value = value.partition(" ")
            name = f"{name} {sub}"
        values[name] = value.strip()
    no_turbo, boost = _int(values.get("no_turbo")), _int(values.get("boost"))
    turbo = (no_turbo == 0) if no_turbo is not None else (boost == 1 if boost is not None else None)
    smt = _int(values.get("smt"))
    return Tuning(
        cmdline=values.get("cmdline", ""),
        isolated=frozenset(cpu_list(values.get("isolated", ""))),
        online=frozenset(cpu_list(values.get("online", ""))),
        smt_active=None if smt is None else bool(smt),
        turbo=turbo,
        nmi_watchdog=_int(values.get("nmi_watchdog")),
        writeback_mask=_mask(values.get("writeback")),
        irq_masks={
            int(k.split()[1]): mask
            for k, v in values.items()
            if k.startswith("irq ") and (mask := _mask(v)) is not None
        },
        hugepages={
            k.split()[1]: n
            for k, v in values.items()
            if k.startswith("hugepages ") and (n := _int(v)) is not None
        },
        cpu_model=values.get("model", ""),
        cpu_mhz=float(values["mhz"]) if re.fullmatch(r"[\d.]+", values.get("mhz", "")) else None,
    )


def cpu_list(text: str) -> set[int]:
    """The CPUs of a kernel CPU list ("2-7,9"); empty for "" (none)."""
    cpus: set[int] = set()
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        low, _, high = part.partition("-")
        cpus.update(range(int(low), int(high or low) + 1))
    return cpus


def _int(text: str | None) -> int | None:
    return int(text) if text is not None and re.fullmatch(r"-?\d+", text.strip()) else None


def _mask(text: str | None) -> int | None:
    # "ffffffff,ffffffff" as the kernel prints wide masks
    cleaned = (text or "").replace(",", "").strip()
    return int(cleaned, 16) if re.fullmatch(r"[0-9a-fA-F]+", cleaned) else None


def runtime_tuning_script(isolated: set[int], online: set[int]) -> str:
    """4.3.1 steps 2-4 (4.2.1 steps 4-6) as one shell line, for a machine the suite owns.

    The NMI watchdog off; the writeback workqueue and every IRQ kept off the isolated
    CPUs (what the guide's `clear_mask` loop leaves). Each IRQ the kernel refuses to move
    (the timer, the PIC cascade) is printed for refused_irqs.
    """
    keep = sum(1 << cpu for cpu in online - isolated)
    if not isolated or not keep:
        raise ValueError(f"isolated CPUs {sorted(isolated)} must be some of {sorted(online)}")
    mask = f"{keep:x}"
    return (
        "echo 0 > /proc/sys/kernel/nmi_watchdog 2>/dev/null; "
        f"echo {mask} > /sys/bus/workqueue/devices/writeback/cpumask 2>/dev/null; "
        f"for f in /proc/irq/*/smp_affinity; do echo {mask} > $f 2>/dev/null || "
        f'{{ i=${{f#/proc/irq/}}; echo "{_REFUSED} ${{i%%/*}}"; }}; done; true'
    )


def refused_irqs(output: str) -> frozenset[int]:
    """The IRQs whose affinity the kernel refused to change (runtime_tuning_script's output)."""
    return frozenset(int(m) for m in re.findall(rf"{_REFUSED} (\d+)", output))


def verify_tuned(tuning: Tuning, what: str) -> None:
    """Each of the guide's tuning steps is in effect on the machine (Tuning.untuned)."""
    untuned = tuning.untuned()
    if untuned:
        raise VerifyFailed(f"{what}; not in effect: {'; '.join(untuned)}")
