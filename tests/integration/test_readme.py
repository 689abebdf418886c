"""The README's examples do what it says: files it names exist, exit codes match the
script, quoted skip lines are the ones the suite prints, counts it gives are collected."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# files a run writes (reports, a lab's baseline) rather than files of the checkout
WRITTEN = ("reports/", "baselines/")


def pytest_in_checkout(
    reports: Path, *args: str, every_build: bool = False
) -> subprocess.CompletedProcess[str]:
    """pytest as scripts/suite runs it; on the first DPDK build only unless `every_build`
    (tests/conftest.py's HOWTO_DPDK_BUILD dropped, as a user's shell has it)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    if every_build:
        env.pop("HOWTO_DPDK_BUILD", None)
    return subprocess.run(
        # as scripts/suite runs it: a --reports-dir outside the checkout is not a test path
        [sys.executable, "-m", "pytest", "-c", "pytest.ini", "--rootdir", ".", "-p",
         "framework.plugin", "-p", "no:cacheprovider", "--no-allure-html",
         "--reports-dir", str(reports), *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip


def test_readme_names_only_files_of_the_checkout() -> None:
    assert "../" not in README and "seed" not in README, "cites files a clone does not have"
    named = set(re.findall(r"`((?:scripts|topologies|testsuites|tests|framework|benchmarks|"
                           r"examples|tools|baselines|reports)/[\w./-]*)`", README))  # fmt: skip
    assert len(named) > 40, named
    missing = [p for p in sorted(named) if not p.startswith(WRITTEN) and not (ROOT / p).exists()]
    assert not missing, f"README names files that do not exist: {missing}"


def test_exit_code_table_matches_scripts_nightly() -> None:
    script = (ROOT / "scripts" / "nightly").read_text()
    in_script = [int(n) for n in re.findall(r"^#\s+(\d)\s{2}\S", script, re.MULTILINE)]
    in_readme = [int(n) for n in re.findall(r"^\| (\d) \| ", README, re.MULTILINE)]
    assert in_script == in_readme == list(range(8))
    handled = {int(n) for n in re.findall(r"^\s+(\d)\) say ", script, re.MULTILINE)}
    assert handled == set(range(8)), "each code has its final line in the script"


def test_quoted_skip_lines_are_what_the_suite_prints(tmp_path: Path) -> None:
    quoted = re.findall(r"`(topology 'virtual' lacks [^.`][^`]+)`", README)
    assert len(quoted) == 2, quoted
    done = pytest_in_checkout(
        tmp_path,
        "-rs",
        "testsuites/test_sriov_bond_migration.py::test_bond_membership_rules[niantic-vf]",
        "testsuites/test_vfd_ixgbe.py::TestVfdIxgbe::test_vf_mac_addr",
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for line in quoted:
        assert f": {line}\n" in done.stdout, (line, done.stdout)


def test_counts_the_readme_gives_are_collected(tmp_path: Path) -> None:
    done = pytest_in_checkout(tmp_path, "--collect-only", "-q", "-m", "niantic", "--topology",
                              "topologies/lab.yaml")  # fmt: skip
    niantic = re.search(r"the (\d+) Niantic tests of the sample lab", README)
    assert niantic, "the README gives the count of the sample lab's Niantic tests"
    assert re.search(rf"^{niantic.group(1)}/\d+ tests collected", done.stdout, re.MULTILINE), (
        done.stdout[-500:]
    )
    done = pytest_in_checkout(tmp_path, "--collect-only", "-q", every_build=True)
    found = re.search(
        r"`(\d+) passed, (\d+) skipped, (\d+) deselected(?:, (\d+) xfailed)?`", README
    )
    assert found, "the README gives the full run's passed, skipped and deselected tests"
    passed, skipped, deselected, xfailed = (int(n or 0) for n in found.groups())
    # deselected: what the topology's declared selection leaves out (never a skip);
    # xfailed: a known defect's expected failure (guide 1 on the virtual lab)
    ran = passed + skipped + xfailed
    collected = ran + deselected
    assert f"{ran}/{collected} tests collected ({deselected} deselected)" in done.stdout, (
        done.stdout[-300:]
    )


def test_the_plan_count_the_readme_gives_is_collected(tmp_path: Path) -> None:
    # --plan keeps the plannable tests at collection: the count needs no plan run
    found = re.search(r"The plan of `lab.yaml` has [\d,]+\s+lines for (\d+) tests", README)
    assert found, "the README gives the lab plan's count of tests"
    select = ["-m", "niantic or fortville", "--topology", "topologies/lab.yaml"]
    done = pytest_in_checkout(tmp_path, "--collect-only", "-q", "--plan", *select)
    assert re.search(rf"^{found.group(1)}/\d+ tests collected", done.stdout, re.MULTILINE), (
        done.stdout[-500:]
    )
