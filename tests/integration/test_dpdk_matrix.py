"""The DPDK matrix on the virtual lab: guides once per build and mix of topologies/virtual.yaml.

The installed DPDK (22.11 on Debian 12), 24.11 (scripts/dpdk-root's Debian 13 root) and
Debian 12's source package built by scripts/dpdk-build, in one run of guide 1: each build's
row in the summary with the version found, each guest speaking its release's bonding
commands, and nothing left behind (the root's mounts included). Guide 2 in both mixes: the
hosts on one release and the VM's testpmd from the other, asked in the guest. Guide 4's
set-up checks with the host on one build and the container or the VM on the other, both
ways round. Guides 6 and 7 on 24.11. In each, the summary's ledger of every line sent to
each build's testpmds, with the parser's answer. And the bites: a suite that speaks 22.11's
words to 24.11's testpmd fails the step, on that build, and the ledger shows the refusal; a
mix whose VM boots the host build's image fails, naming it; a testpmd that segfaults as
24.11.8's does in a bond left without members ends as that known defect, never a pass.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from framework.lab.leftovers import snapshot
from tests.integration.guide_runs import on_builds, run_guide

pytestmark = pytest.mark.slow

MODULE = "testsuites/test_sriov_bond_migration.py"
TEST = f"{MODULE}::test_live_migration_with_sriov_vf_and_bonding"
# A bond made and checked, no migration: the bonding commands on each build, quickly.
BOND_MAC = f"{MODULE}::test_bond_mac_is_the_primarys_and_stays_on_failover"
BOTH = on_builds("installed", "24.11")
ALL_THREE = on_builds("installed", "24.11", "source")
MIX = "host-installed-guest-24.11"
# Each mix and the release of its host's testpmd and its guest's.
MIXES = {MIX: ("22.11.", "24.11."), "host-24.11-guest-installed": ("24.11.", "22.11.")}
GUIDE2 = "testsuites/test_vhost_user_migration.py::test_live_migration_with_vhost_user"
ROOT_MOUNTS = "/.cache/howto-conformance/dpdk/"


def summary_of(reports: Path) -> dict:
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()]
    return json.loads((run_dir / "summary.json").read_text())


def attachments_by_test(reports: Path) -> dict[str, str]:
    """Every text attachment of each test's Allure result and of its fixtures, by test name."""
    (run_dir,) = [p for p in reports.iterdir() if p.is_dir() and not p.is_symlink()]
    results = run_dir / "allure-results"

    def texts(node: dict) -> list[str]:
        own = [
            (results / a["source"]).read_text(errors="replace")
            for a in node.get("attachments", [])
            if (results / a["source"]).suffix in (".txt", ".csv")
        ]
        return own + [t for step in node.get("steps", []) for t in texts(step)]

    names, found = {}, {}
    for path in results.glob("*-result.json"):
        result = json.loads(path.read_text())
        names[result["uuid"]] = result["name"]
        found[result["name"]] = texts(result)
    for path in results.glob("*-container.json"):
        container = json.loads(path.read_text())
        fixtures = [t for f in container.get("befores", []) for t in texts(f)]
        for child in container.get("children", []):
            if child in names:
                found[names[child]] += fixtures
    return {name: "\n".join(parts) for name, parts in found.items()}


def assert_mixed(row: dict, host: str, guest: str) -> None:
    """A mix's summary row names its host's release and its guest's ("22.11.11 host, ...")."""
    found_host, found_guest = row["dpdk"][0].split(", ")
    assert found_host.startswith(host) and found_host.endswith(" host"), row
    assert found_guest.startswith(guest) and found_guest.endswith(" guest"), row


def mounts_of_roots() -> list[str]:
    return [line for line in Path("/proc/mounts").read_text().splitlines() if ROOT_MOUNTS in line]


def test_guide_1_runs_once_per_build_in_each_builds_words(tmp_path: Path) -> None:
    before = snapshot()
    run = run_guide(
        tmp_path,
        *(f"{BOND_MAC}[emulated-vf-{build}]" for build in ("installed", "24.11", "source")),
        *ALL_THREE,
    )
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges, testpmds, sockets are gone"
    assert mounts_of_roots() == [], "the root's mounts end with its testpmds"
    assert run.returncode == 0, run.why
    summary = summary_of(tmp_path)
    rows = {r["variant"]: r for r in summary["rows"] if r["guide"] == 1 and r["dpdk"]}
    assert sorted(rows) == ["emulated-vf-24.11", "emulated-vf-installed", "emulated-vf-source"]
    assert rows["emulated-vf-installed"]["dpdk"][0].startswith("22.11."), rows
    assert rows["emulated-vf-24.11"]["dpdk"][0].startswith("24.11."), rows
    assert rows["emulated-vf-source"]["dpdk"][0].startswith("22.11."), rows
    environment = summary["environment"]
    assert environment["DPDK build 24.11"].endswith("/dpdk/24.11/dpdk-testpmd"), environment
    assert environment["DPDK build source"].endswith("/dpdk/src-debian/dpdk-testpmd")
    # the drift table: the guide's bonding line, what ran on each build, and why
    (bonding,) = [r for r in summary["drift"] if r["command"].startswith("create bonded")]
    assert bonding["differs"], bonding
    assert bonding["ran"]["installed"] == [
        "create bonded device 1 0; add bonding slave 0 2; add bonding slave 1 2"
    ]
    assert bonding["ran"]["24.11"] == [
        "create bonding device 1 0; add bonding member 0 2; add bonding member 1 2"
    ]
    assert "renamed in 23.11" in bonding["why"]["24.11"] and "installed" not in bonding["why"]
    texts = attachments_by_test(tmp_path)
    name = BOND_MAC.rpartition("::")[2]
    installed, newer = texts[f"{name}[emulated-vf-installed]"], texts[f"{name}[emulated-vf-24.11]"]
    built = texts[f"{name}[emulated-vf-source]"]
    # each guest testpmd took its own release's words (its transcript shows no refusal)
    for older in (installed, built):
        assert "testpmd> create bonded device 1 0" in older
        assert "testpmd> add bonding slave 0 2" in older
    assert "testpmd> create bonding device 1 0" in newer
    assert "testpmd> add bonding member 0 2" in newer
    assert "Bad arguments" not in installed + newer + built
    # the ledger: every line the suite sent, per build, each parser's answer
    commands = {r["command"]: r for r in summary["commands"]}
    assert not [r for r in commands.values() if r["refused"]], "no build's parser refused a line"
    releases = {b: rows[f"emulated-vf-{b}"]["dpdk"][0] for b in ("installed", "24.11", "source")}
    assert commands["create bonded device 1 0"]["taken"] == {
        "installed": [releases["installed"]],
        "source": [releases["source"]],
    }
    assert commands["create bonding device 1 0"]["taken"] == {"24.11": [releases["24.11"]]}
    everywhere = [r for r in commands.values() if len(r["taken"]) == 3]
    assert len(everywhere) >= 6, f"the lines every build took: {everywhere}"


def test_a_mix_runs_the_vms_testpmd_of_one_build_beside_the_hosts_of_another(
    tmp_path: Path,
) -> None:
    # Both ways round: guide 2's guest lines and its hosts' lines each reach 24.11's parser.
    before = snapshot()
    tests = {mix: f"{GUIDE2}[split-virtqueue-{mix}]" for mix in MIXES}
    run = run_guide(tmp_path, *tests.values(), *on_builds(*MIXES))
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges, testpmds, sockets are gone"
    assert mounts_of_roots() == [], "the root's mounts end with its testpmds"
    assert run.returncode == 0, run.why
    summary = summary_of(tmp_path)
    texts = attachments_by_test(tmp_path)
    for mix, (host, guest) in MIXES.items():
        (row,) = [r for r in summary["rows"] if r["variant"] == f"split-virtqueue-{mix}"]
        assert_mixed(row, host, guest)
        text = texts[tests[mix].rpartition("::")[2]]
        # asked of the VM's own testpmd, in the guest, on both sides of the migration
        asked = f"/usr/bin/dpdk-testpmd -v in the guest: DPDK {guest}"
        assert text.count(asked) >= 1, text[-2000:]
        assert f"-v in the guest: DPDK {host}" not in text
    rows = [r for r in summary["commands"] if r["guide"] == 2]
    assert [r for r in rows if r["refused"]] == [], "no build's parser refused a line"
    for mix in MIXES:
        releases = {t[:6] for r in rows for t in r["taken"].get(mix, [])}
        assert releases == {"22.11.", "24.11."}, f"{mix}: {releases}"


def test_a_mix_whose_vm_boots_the_host_builds_image_fails_naming_it(tmp_path: Path) -> None:
    before = snapshot()
    test = f"{GUIDE2}[split-virtqueue]"
    run = run_guide(tmp_path, test, *on_builds(MIX), fault="guest-image-of-the-host-build")
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges, testpmds, sockets are gone"
    assert run.returncode == 1, run.why
    assert f"FAILED {test}" in run.output, run.why
    assert "the guest's testpmd is DPDK 22.11." in run.output, run.why
    assert "not build 24.11's 24.11 (its guest image carries another build)" in run.output


def test_22_11s_words_to_24_11s_testpmd_fail_the_step_on_that_build(tmp_path: Path) -> None:
    before = snapshot()
    test = f"{TEST}[emulated-vf-24.11]"
    run = run_guide(tmp_path, test, *BOTH, fault="guest-testpmd-spoken-to-as-22.11")
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges, testpmds, sockets are gone"
    assert run.returncode == 1, run.why
    assert f"FAILED {test}" in run.output, run.why
    assert "STEP FAILED 1.3.3" in run.output, run.why
    assert "DPDK 24.11." in run.output and "testpmd cannot parse it: Bad arguments" in run.output
    assert "create bonded device 1 0" in run.output, run.why
    commands = {r["command"]: r for r in summary_of(tmp_path)["commands"]}
    (refusal,) = commands["create bonded device 1 0"]["refused"]["24.11"]
    assert refusal.startswith("24.11.") and refusal.endswith(": Bad arguments"), refusal


GUIDE6 = (
    "testsuites/test_virtio_user_container.py::"
    "test_traffic_crosses_vhost_user_into_the_container_and_back"
)
GUIDE7 = "testsuites/test_virtio_user_exceptional_path.py::test_the_kernel_answers_through_dpdk"


def test_guides_6_and_7_send_24_11_only_lines_its_parser_takes(tmp_path: Path) -> None:
    # Guide 1's and 2's lines reach 24.11's parser above; here guide 6's host and container
    # testpmds and guide 7's guest testpmd: each line is noted with the parser's answer,
    # and a refused one would have failed its step.
    before = snapshot()
    run = run_guide(tmp_path, GUIDE6, GUIDE7, *on_builds("24.11"))
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges, testpmds, sockets are gone"
    assert mounts_of_roots() == [], "the root's mounts end with its testpmds"
    assert run.returncode == 0, run.why
    summary = summary_of(tmp_path)
    for guide in (6, 7):
        rows = [r for r in summary["commands"] if r["guide"] == guide]
        assert len(rows) >= 5, f"guide {guide}'s lines: {rows}"
        assert [r for r in rows if r["refused"]] == [], "24.11's parser refused none"
        releases = {t for r in rows for t in r["taken"]["24.11"]}
        assert len(releases) == 1 and releases.pop().startswith("24.11."), rows
    guide6_to = {to for r in summary["commands"] if r["guide"] == 6 for to in r["to"]}
    assert len(guide6_to) >= 2, f"the host's and the container's testpmd: {guide6_to}"


GUIDE4 = "testsuites/test_pvp_benchmark.py"
# Guide 4's set-up checks on the guide's path with a container and with a VM as the guest:
# each testpmd's commands, no measurement.
GUIDE4_SETUPS = ("container-split-mergeable", "vm-split-mergeable")
GUIDE4_CHECKS = f"({' or '.join(GUIDE4_SETUPS)}) and not 2q and (chain or settings or frames_cross)"


def test_guide_4_across_two_builds_both_ways_each_testpmd_in_its_releases_words(
    tmp_path: Path,
) -> None:
    # 24.11 runs guide 4 only where it meets another build: with the host's testpmd on one
    # build and the container's or the VM's on the other, each way round, every line guide
    # 4 sends reaches 24.11's parser (the host's in one mix, the guest's in the other).
    before = snapshot()
    run = run_guide(tmp_path, GUIDE4, "-k", GUIDE4_CHECKS, *on_builds(*MIXES))
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges, testpmds, sockets are gone"
    assert mounts_of_roots() == [], "the root's mounts end with its testpmds"
    assert run.returncode == 0, run.why
    summary = summary_of(tmp_path)
    rows = [r for r in summary["commands"] if r["guide"] == 4]
    assert [r for r in rows if r["refused"]] == [], "no build's parser refused a line"
    to = {t for r in rows for t in r["to"]}
    assert len(to) == 3, f"the host's, the container's and the VM's testpmd: {to}"
    for mix, (host, guest) in MIXES.items():
        for setup in GUIDE4_SETUPS:
            variant = f"{setup}-{mix}"
            (row,) = [r for r in summary["rows"] if r["guide"] == 4 and r["variant"] == variant]
            assert row["status"] == "passed" and row["tests"]["passed"] == 3, row
            assert_mixed(row, host, guest)
        per_testpmd: dict[str, set[str]] = {}
        for r in rows:
            for release in r["taken"].get(mix, []):
                per_testpmd.setdefault(release[:6], set()).add(r["command"])
        assert sorted(per_testpmd) == sorted((host, guest)), per_testpmd
        assert all(len(lines) >= 5 for lines in per_testpmd.values()), per_testpmd


RULES = f"{MODULE}::test_bond_membership_rules"


def test_a_testpmd_segfault_in_the_memberless_bond_is_the_known_defect_and_no_pass(
    tmp_path: Path,
) -> None:
    # 24.11.8's crash made certain on the installed build: the test ends as the known
    # defect (XFAIL, so the run exits 0) and the summary counts it a failure of guide 1;
    # testpmd's last words are the test's observation (a finding beside other builds').
    before = snapshot()
    test = f"{RULES}[emulated-vf]"
    run = run_guide(tmp_path, test, fault="guest-testpmd-segfaults-in-a-memberless-bond")
    assert snapshot().new_since(before) == {}, "VMs, taps, bridges, testpmds, sockets are gone"
    assert run.returncode == 0 and f"XFAIL {test}" in run.output, run.why
    assert "known defect: DPDK 22.11." in run.output, run.output[-2000:]
    assert "crashed (segmentation fault) adding port 0 back to the forwarding bond P2" in run.output
    summary = summary_of(tmp_path)
    (row,) = [r for r in summary["rows"] if r["guide"] == 1 and r["tests"].get("failed")]
    assert row["status"] == "failed", row
    assert not summary["sign_off"]["ok"], summary["sign_off"]
    text = attachments_by_test(tmp_path)[test.rpartition("::")[2]]
    assert "add bonding slave 0 2; stop\n" in text and "Segmentation fault" in text, text[-2000:]
