"""The run's drift table: each guide command, what ran on each DPDK build, and why."""

from __future__ import annotations

from framework.report import summary as report_summary
from framework.report.drift import Drift, differing, drift_table, drifts_of
from framework.report.summary import build_summary, render_html

GUIDE = "create bonded device 1 0; add bonding slave 0 2; add bonding slave 1 2"
OLD = "create bonded device 1 0; add bonding slave 0 2; add bonding slave 1 2"
NEW = "create bonding device 1 0; add bonding member 0 2; add bonding member 1 2"
WHY = "create bonded device -> create bonding device (renamed in 23.11)"


def test_a_command_spelt_otherwise_on_one_build_differs() -> None:
    table = drift_table(
        [
            (1, "installed", Drift(GUIDE, OLD)),
            (1, "24.11", Drift(GUIDE, NEW, WHY)),
            (1, "24.11", Drift(GUIDE, NEW, WHY)),  # a second test of the same build
            (1, "installed", Drift("telnet 0 3333", "QMP at 198.18.0.11:41234")),
            (1, "24.11", Drift("telnet 0 3333", "QMP at 198.18.0.11:56201")),
        ],
        ["installed", "24.11"],
    )
    bond, qmp = table
    assert bond["ran"] == {"installed": [OLD], "24.11": [NEW]}
    assert bond["why"] == {"24.11": WHY} and bond["differs"]
    # the port each run picks for QMP is not a difference between builds
    assert not qmp["differs"]
    assert differing(table) == [bond]


def test_a_command_one_build_never_ran_is_no_difference() -> None:
    (row,) = drift_table([(7, "installed", Drift("ifconfig tap0 up", "ip link set tap0 up"))],
                         ["installed", "24.11"])  # fmt: skip
    assert row["ran"] == {"installed": ["ip link set tap0 up"], "24.11": []}
    assert not row["differs"]


def test_the_properties_a_test_recorded_are_read_back_once_each() -> None:
    import json

    drift = Drift(GUIDE, NEW, WHY)
    props = [("dpdk", "24.11.8"), ("drift", json.dumps(drift.__dict__))] * 2
    assert drifts_of(props) == [drift]


def test_the_summary_shows_the_builds_side_by_side() -> None:
    node = "testsuites/test_sriov_bond_migration.py::test_bond_membership_rules"
    record = report_summary.TestRecord
    records = [
        record(f"{node}[emulated-vf-installed]", 1, "emulated-vf-installed", "passed",
               build="installed", drift=[Drift(GUIDE, OLD)]),
        record(f"{node}[emulated-vf-24.11]", 1, "emulated-vf-24.11", "passed",
               build="24.11", drift=[Drift(GUIDE, NEW, WHY)]),
    ]  # fmt: skip
    run = {"name": "r", "topology": "virtual", "started": 0, "duration_s": 1, "faults": []}
    summary = build_summary(records, run, {}, None)
    assert summary["builds"] == ["installed", "24.11"]
    assert [row["command"] for row in differing(summary["drift"])] == [GUIDE]
    page = render_html(summary)
    assert "<th>ran on installed</th><th>ran on 24.11</th>" in page
    assert "differs between builds" in page and "24.11: create bonded device -&gt;" in page


def test_a_launch_line_says_how_the_release_respells_it_and_what_the_lab_fits() -> None:
    from framework.dpdk.version import DpdkVersion
    from framework.report.drift import launch_drift

    guide = "testpmd -l 0,2 -n 4 -- --i --disable-hw-vlan-filter; set portlist 0,2,1,3; start"
    ran = ["/usr/bin/dpdk-testpmd", "-l", "0-1", "--", "-i", "--total-num-mbufs", "4096"]
    row = launch_drift(guide, ran, DpdkVersion(22, 11), "the guest's 2 vCPUs")
    assert (
        row.guide == guide
        and row.ran == "/usr/bin/dpdk-testpmd -l 0-1 -- -i --total-num-mbufs 4096"
    )
    assert row.why.split("; ") == [
        "testpmd -> /usr/bin/dpdk-testpmd (the installed binary)",
        "--i -> -i (abbreviation spelled out)",
        "--disable-hw-vlan-filter dropped (removed in 18.02: VLAN filter is off by default)",
        "the guest's 2 vCPUs",
    ], "the line is translated without the interactive commands after it"
    # a 17.05 testpmd keeps the VLAN option: only the binary and the spelt-out -i are left
    assert "disable-hw-vlan" not in launch_drift(guide, ran, DpdkVersion(17, 5), "").why


def test_a_builds_own_testpmd_and_guest_image_are_no_difference() -> None:
    line = "$(testpmd) -l 0-1 -- -i"
    one = "/usr/bin/dpdk-testpmd -l 0-1 -- -i; -initrd /c/guest/6.1.0-57-amd64-5ce6da12f737/x"
    two = (
        "/root/.cache/howto-conformance/dpdk/src-debian/dpdk-testpmd -l 0-1 -- -i; "
        "-initrd /c/guest/6.1.0-57-amd64-7ef2e2576c91/x"
    )
    (row,) = drift_table([(6, "installed", Drift(line, one)), (6, "source", Drift(line, two))],
                         ["installed", "source"])  # fmt: skip
    assert not row["differs"], row
    (row,) = drift_table([(6, "installed", Drift(line, one)),
                          (6, "source", Drift(line, two.replace("-i;", "-i --rxq=2;")))],
                         ["installed", "source"])  # fmt: skip
    assert row["differs"], "an option that differs still does"
