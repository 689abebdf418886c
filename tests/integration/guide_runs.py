"""Run a guide module in a child pytest, as a user would, for the bite self-tests."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from framework.lab.leftovers import snapshot

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class GuideRun:
    """What a child pytest run of a guide module did."""

    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        """stdout and stderr together."""
        return self.stdout + self.stderr

    @property
    def why(self) -> str:
        """What the run said of its failure: pytest's E lines and the failed guide steps."""
        lines = [
            line[:600]
            for line in self.output.splitlines()
            if line.startswith("E ") or "STEP FAILED" in line
        ]
        return "\n".join(lines) or self.output[-3000:]


def run_guide(
    reports: Path, *select: str, fault: str | None = None, timeout: float = 900
) -> GuideRun:
    """pytest <select...> in the project, with --inject-fault `fault` if given.

    Reports go to `reports`; Allure's HTML is not generated (it takes the CPU lock).
    """
    argv = [sys.executable, "-m", "pytest", *select, "-p", "no:cacheprovider"]
    if fault is not None:
        argv += ["--inject-fault", fault]
    argv += ["--reports-dir", str(reports), "--no-allure-html", "-q"]
    done = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    return GuideRun(done.returncode, done.stdout, done.stderr)


def on_builds(*names: str) -> list[str]:
    """The --dpdk-build options that select these DPDK builds or mixes."""
    return [word for name in names for word in ("--dpdk-build", name)]


def verify_fault_fails(reports: Path, test: str, fault: str, messages: list[str]) -> GuideRun:
    """Run the one test `test` ("module::name[id]") with `fault`: it fails, saying each of
    `messages`, and leaves nothing behind."""
    before = snapshot()
    run = run_guide(reports, test, fault=fault)
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges, testpmds, sockets are gone"
    assert run.returncode == 1, f"with fault {fault} {test} must fail:\n{run.why}"
    assert f"FAILED {test}" in run.output, run.why
    for message in messages:
        assert message in run.output, f"the failure says why ({message!r}):\n{run.why}"
    return run
