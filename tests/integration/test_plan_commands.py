"""Guides 3 and 5, checked here as far as this machine allows, from their own `--plan`.

(The plan also holds guide 1's lab variants: tests/integration/test_plan_guide1.py checks
those; their guest testpmd and bridge lines need a VM and a lab port, so the checks of
lines below read guides 3 and 5's sections only.)

The plan of `topologies/lab.yaml` is what those tests would send on a lab: its testpmd
lines go to this machine's real dpdk-testpmd (two net_null ports), its ethtool and `ip
link` lines to a veth. Each must be accepted by the parser: the answer may be the
driver's refusal ("function not implemented", "not supported"), never testpmd's "Bad
arguments" or "Command not found", nor an ethtool parse error; the `ip link` lines must
run. A misspelt command in a guide module fails here, not on a lab's NIC.

The testpmd lines are checked once per DPDK build of topologies/virtual.yaml: the plan
made for that build's release (lab.yaml with its dpdk.version) goes to that build's
testpmd, so the words the suite would speak to 24.11 are 24.11's parser's to judge.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from framework.config import load_topology
from framework.config.model import DpdkBuild
from framework.dpdk import TestPmd
from framework.dpdk.version import detect_dpdk_version
from framework.lab.flow_filters import parsed_by_ethtool
from framework.remote.session import LocalSession
from framework.report.summary import SUMMARY_JSON
from tests.integration.guide_runs import ROOT, run_guide
from tests.integration.netns import veth_in_namespace

BINARY = "/usr/bin/dpdk-testpmd"
SELECT = "niantic or fortville"
NS = f"hcp-{os.getpid()}"
DEV = "hcp0"
A_MAC = "02:00:00:00:5a:01"

pytestmark = [
    pytest.mark.skipif(not os.path.exists(BINARY), reason=f"{BINARY} is not installed"),
    pytest.mark.skipif(os.geteuid() != 0, reason="testpmd needs root for hugepages"),
]


# The builds the virtual lab tests (scripts/selftest makes each): every one parses the plan
# made for its release.
BUILDS = {b.name: b for b in load_topology(ROOT / "topologies/virtual.yaml").dpdk.all_builds}
LAB_RELEASE = "22.11"  # lab.yaml's dpdk.version
_PLANS: dict[str, Path] = {}


def _plan_for(factory: pytest.TempPathFactory, release: str) -> Path:
    """`pytest --plan -m 'niantic or fortville' --topology <lab.yaml for release> testsuites`.

    Returns its run directory; made once per release.
    """
    if release in _PLANS:
        return _PLANS[release]
    reports = factory.mktemp(f"plan-reports-{release}")
    topology = ROOT / "topologies/lab.yaml"
    if release != LAB_RELEASE:
        text = topology.read_text()
        assert f'  version: "{LAB_RELEASE}"\n' in text, "lab.yaml names its release"
        topology = reports / "lab.yaml"
        topology.write_text(
            text.replace(f'  version: "{LAB_RELEASE}"\n', f'  version: "{release}"\n')
        )
    run = run_guide(
        reports, "testsuites", "--plan", "-m", SELECT, "--topology", str(topology), timeout=600
    )
    # lab.yaml's hosts are not here: a plan that tried to reach one would fail
    assert run.returncode == 0, f"the plan for {release} did not complete:\n{run.why}"
    assert " passed" not in run.stdout.splitlines()[-1], "a plan judges nothing"
    (found,) = [p for p in reports.glob("*/plan.txt") if not p.parent.is_symlink()]
    _PLANS[release] = found.parent
    return found.parent


@pytest.fixture(scope="module")
def plan_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The plan of topologies/lab.yaml as it is (its run directory)."""
    return _plan_for(tmp_path_factory, LAB_RELEASE)


@pytest.fixture(scope="module", params=list(BUILDS))
def build(request: pytest.FixtureRequest) -> DpdkBuild:
    """A DPDK build of the virtual lab, its testpmd there."""
    build = BUILDS[request.param]
    if not os.access(build.host_testpmd, os.X_OK):
        pytest.fail(f"build {build.name}: no {build.host_testpmd} ({build.made_by})")
    return build


@pytest.fixture(scope="module")
def build_plan(tmp_path_factory: pytest.TempPathFactory, build: DpdkBuild) -> str:
    """Guides 3 and 5's sections of the plan made for `build`'s release."""
    found = detect_dpdk_version(LocalSession(), build.host_testpmd)
    release = f"{found.year:02d}.{found.month:02d}"
    return _sections((_plan_for(tmp_path_factory, release) / "plan.txt").read_text())


GUIDES_3_AND_5 = r"test_(vfd_|flow_bifurcation|i40e_cloud)"


@pytest.fixture(scope="module")
def whole_plan(plan_run: Path) -> str:
    """The plan's text (plan.txt)."""
    return (plan_run / "plan.txt").read_text()


def _sections(whole_plan: str) -> str:
    sections = re.split(r"(?m)^(?=== )", whole_plan)
    return "".join(s for s in sections if re.match(rf"== \S*{GUIDES_3_AND_5}", s))


@pytest.fixture(scope="module")
def plan(whole_plan: str) -> str:
    """Guides 3 and 5's sections of the plan (their module's set-up included)."""
    return _sections(whole_plan)


def test_a_plan_is_planned_never_passed(plan_run: Path) -> None:
    summary = json.loads((plan_run / SUMMARY_JSON).read_text())
    ran = [r for r in summary["rows"] if r["tests"].get("planned")]
    assert ran, "the plan's tests are rows of the summary"
    assert all(r["tests"].get("passed", 0) == 0 for r in summary["rows"]), summary["rows"]
    assert {r["status"] for r in ran} <= {"planned", "skipped"}, [r["status"] for r in ran]
    sign = summary["sign_off"]
    assert not sign["ok"] and sign["verdict"].startswith("cannot sign off: a --plan run")
    assert sign["guides_passed"] == [] and set(sign["guides_planned"]) == {1, 3, 5}, sign


def _planned(plan: str) -> set[str]:
    return set(re.findall(r"^== (\S+)", plan, re.M))


def _lines(plan: str, pattern: str) -> list[str]:
    seen: dict[str, None] = {}
    for m in re.finditer(pattern, plan, re.M):
        seen[re.sub(r"<MAC of [^>]*>", A_MAC, m.group(1)).strip()] = None
    return list(seen)


def test_the_plan_covers_every_guide_3_and_5_test(plan: str) -> None:
    listed = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--collect-only", "-q",
         "-m", SELECT, "--topology", "topologies/lab.yaml", "testsuites"],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    wanted = {
        line
        for line in listed.stdout.splitlines()
        if "::" in line and re.search(GUIDES_3_AND_5, line)
    }
    assert len(wanted) >= 50, f"the four guide 3/5 modules collect: {listed.stdout[-2000:]}"
    assert wanted == _planned(plan), (
        f"not planned: {sorted(wanted - _planned(plan))}; "
        f"planned but not collected: {sorted(_planned(plan) - wanted)}"
    )
    for test in wanted:
        section = plan.split(f"== {test}\n", 1)[1].split("\n== ", 1)[0]
        assert "[verify]" in section, f"{test}: the plan shows no verdict"


def _null_testpmd(binary: str) -> TestPmd:
    argv = [binary, "-l", "0-1", "--in-memory", "--file-prefix", f"hcplan{os.getpid()}",
            "--no-pci", "-m", "256", "--vdev", "net_null0", "--vdev", "net_null1",
            "--", "-i", "--total-num-mbufs", "8192"]  # fmt: skip
    return TestPmd.launch(LocalSession(), argv)


@pytest.fixture(scope="module")
def null_testpmd() -> Iterator[TestPmd]:
    pmd = _null_testpmd(BINARY)
    yield pmd
    pmd.close()


@pytest.fixture(scope="module")
def build_testpmd(build: DpdkBuild) -> Iterator[TestPmd]:
    pmd = _null_testpmd(build.host_testpmd)
    yield pmd
    pmd.close()


def test_every_testpmd_line_of_the_plan_is_accepted_by_each_builds_testpmd(
    build_plan: str, build_testpmd: TestPmd
) -> None:
    # net_null ports receive without end: forwarding is never started here, or `set
    # verbose 1` would flood the console (`start` is accepted by every guide test anyway).
    plan = build_plan
    commands = [c for c in _lines(plan, r"testpmd> (.+)$") if c not in ("quit", "start")]
    assert len(commands) >= 40, f"the plan's testpmd lines: {commands}"
    refused: list[str] = []
    for command in commands:
        said = build_testpmd.send_command(command, may_be_unparsed=True)
        if "Bad arguments" in said or "Command not found" in said:
            refused.append(f"{command!r}: {said.strip()[:200]}")
    assert not refused, f"{build_testpmd.version}'s testpmd could not parse:\n" + "\n".join(refused)


def test_a_misspelt_command_would_be_caught(null_testpmd: TestPmd) -> None:
    # The check above bites: the old one-call spelling of several rx modes is refused.
    said = null_testpmd.send_command("set port 0 vf 0 rxmode AUPE|ROPE on", may_be_unparsed=True)
    assert "Bad arguments" in said


@pytest.fixture
def veth() -> Iterator[str]:
    with veth_in_namespace(NS, DEV, "hcp1") as dev:
        yield dev


def test_every_ethtool_line_of_the_plan_parses(plan: str, veth: str) -> None:
    lines = _lines(plan, r"\$ (ethtool .+)$")
    assert any(" -N " in line for line in lines) and any(" -K " in line for line in lines)
    unparsed = []
    for line in lines:
        argv = line.split()
        argv[2] = veth  # ethtool -N|-K|-n|-S <dev> ...
        done = subprocess.run(["ip", "netns", "exec", NS, *argv], capture_output=True, text=True)
        said = done.stdout + done.stderr
        if not parsed_by_ethtool(said):
            unparsed.append(f"{line}: {said.strip()[:200]}")
    assert not unparsed, "ethtool could not parse:\n" + "\n".join(unparsed)


def test_every_ip_line_of_the_plan_runs_on_a_veth(plan: str, veth: str) -> None:
    # In the plan's order (a VXLAN device is added, set up, deleted), with each lab
    # interface (the word after `dev`) swapped for the veth: the guide's vxlan0 on 8472,
    # the PF made promiscuous and back, the TG's MTU raised and put back. Each must run,
    # as this iproute2 and kernel take it (a misspelt option is iproute2's "garbage").
    lines = re.findall(r"\$ (ip link .+)$", plan, re.M)
    assert any("type vxlan" in line for line in lines), lines
    assert any(line.endswith("promisc on") for line in lines), lines
    failed = []
    for line in lines:
        words = line.split()
        argv = [veth if i and words[i - 1] == "dev" else w for i, w in enumerate(words)]
        done = subprocess.run(["ip", "netns", "exec", NS, *argv], capture_output=True, text=True)
        if done.returncode != 0:
            failed.append(f"{line}: {(done.stderr or done.stdout).strip()[:200]}")
    assert not failed, "ip could not run:\n" + "\n".join(failed)


def test_every_testpmd_start_line_of_the_plan_starts_each_builds_testpmd(
    build_plan: str, build: DpdkBuild
) -> None:
    # The same EAL and application options with the lab's PCI devices swapped for two
    # net_null ports and its cores for this machine's two: an option this release does
    # not know (or spells otherwise) fails.
    starts = _lines(build_plan, r"\$ (\S*dpdk-testpmd .+)$")
    assert starts, "the plan starts testpmd"
    for line in starts:
        argv, words = [build.host_testpmd], re.sub(r"<[^>]*>", "PLACEHOLDER", line).split()[1:]
        while words:
            word = words.pop(0)
            if word in ("-a", "-w"):
                words.pop(0)
            elif word == "-l":
                argv += [word, "0-1"]
                words.pop(0)
            elif word == "--file-prefix":
                argv += [word, f"hcplanstart{os.getpid()}"]
                words.pop(0)
            elif word == "--":
                argv += ["--no-pci", "--in-memory", "--vdev", "net_null0", "--vdev", "net_null1",
                         "--", *words]  # fmt: skip
                break
            else:
                argv.append(word)
        try:
            done = subprocess.run(argv, input="quit\n", capture_output=True, text=True, timeout=60)
        finally:
            # EAL leaves its runtime directory behind, even --in-memory
            shutil.rmtree(f"/var/run/dpdk/hcplanstart{os.getpid()}", ignore_errors=True)
        assert done.returncode == 0 and "Bye" in done.stdout, (
            f"{line}\n  as {' '.join(argv)}\n  exit {done.returncode}: {done.stderr[-500:]}"
        )
