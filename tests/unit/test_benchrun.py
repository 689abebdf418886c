"""A benchmark's stop on SIGTERM/SIGINT: cleanup runs, one line, 128 + signal number."""

from __future__ import annotations

import os
import signal

import pytest

from framework.report import benchrun


def test_sigterm_unwinds_the_benchmarks_blocks_and_says_so(
    capsys: pytest.CaptureFixture[str],
) -> None:
    cleaned: list[str] = []
    # whatever was there before (a virtual lab of an earlier test in this process installs
    # its own): run() must put that back
    before = signal.getsignal(signal.SIGTERM)

    def main() -> int:
        try:
            os.kill(os.getpid(), signal.SIGTERM)
            cleaned.append("not reached")
        finally:
            cleaned.append("teardown")
        return 0

    assert benchrun.run(main, "bench") == 128 + signal.SIGTERM
    assert cleaned == ["teardown"]
    assert capsys.readouterr().err.splitlines()[-1].startswith("bench: stopped by SIGTERM after")
    assert signal.getsignal(signal.SIGTERM) is before, "the handler is put back"


def test_a_signal_in_a_deferred_teardown_stops_after_it_and_a_second_is_only_noted(
    capsys: pytest.CaptureFixture[str],
) -> None:
    steps: list[str] = []

    def main() -> int:
        with benchrun.deferred():
            os.kill(os.getpid(), signal.SIGINT)
            steps.append("teardown goes on")
            os.kill(os.getpid(), signal.SIGTERM)
            steps.append("and on")
        steps.append("not reached")
        return 0

    assert benchrun.run(main, "bench") == 128 + signal.SIGINT
    assert steps == ["teardown goes on", "and on"]
    err = capsys.readouterr().err
    assert "bench: SIGTERM again: still cleaning up" in err
    assert err.splitlines()[-1].startswith("bench: stopped by SIGINT")


def test_progress_numbers_its_steps(capsys: pytest.CaptureFixture[str]) -> None:
    progress = benchrun.Progress(2)
    progress.step("one")
    progress.step("two")
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("] ")[1] for line in lines] == ["one", "two"]
    assert lines[0].startswith("[1/2 0 s]") and lines[1].startswith("[2/2 ")
    assert benchrun.run(lambda: None, "bench") == 0 and not benchrun.stopping()
