"""Topology files: the shipped ones load, and every kind of mistake names file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framework.config import load_topology
from framework.config.model import Guide1Windows, WindowBounds
from framework.errors import ConfigError

TOPOLOGIES = Path(__file__).resolve().parents[2] / "topologies"


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "topo.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _virtual() -> dict:
    return yaml.safe_load((TOPOLOGIES / "virtual.yaml").read_text())


@pytest.mark.parametrize("name", ["virtual.yaml", "lab.yaml"])
def test_shipped_topologies_load(name: str) -> None:
    topology = load_topology(TOPOLOGIES / name)
    assert topology.tg_name == "tg"
    assert {"host_server_1", "host_server_2"} <= set(topology.hosts)


def test_lab_sample_declares_the_guides_nics() -> None:
    caps = load_topology(TOPOLOGIES / "lab.yaml").capabilities()
    assert {"niantic", "fortville", "sriov", "kvm", "vhost_net"} <= caps


def test_virtual_lab_lacks_lab_only_hardware() -> None:
    caps = load_topology(TOPOLOGIES / "virtual.yaml").capabilities()
    assert not caps & {"niantic", "fortville", "sriov"}
    assert "hugepages" in caps


def _error(tmp_path: Path, data: object) -> str:
    with pytest.raises(ConfigError) as info:
        load_topology(_write(tmp_path, data))
    message = str(info.value)
    assert "\n" not in message, "config errors are one line"
    assert str(tmp_path / "topo.yaml") in message, "the message names the file"
    return message


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"nope\.yaml: cannot read topology"):
        load_topology(tmp_path / "nope.yaml")


def test_yaml_syntax_error_names_line(tmp_path: Path) -> None:
    assert "line 3:" in _error(tmp_path, "name: x\nkind: virtual\n\tbad: tab\n")


def test_unknown_field_names_its_path(tmp_path: Path) -> None:
    data = _virtual()
    data["hosts"]["host_server_1"]["ports"][0]["speed"] = 10
    assert "hosts.host_server_1.ports[0].speed: Extra inputs are not permitted" in _error(
        tmp_path, data
    )


def test_wrong_type_names_field_and_value(tmp_path: Path) -> None:
    data = _virtual()
    data["hosts"]["tg"]["ssh_port"] = "twenty-two"
    message = _error(tmp_path, data)
    assert "hosts.tg.ssh_port" in message and "'twenty-two'" in message


def test_bad_nic_family(tmp_path: Path) -> None:
    data = _virtual()
    data["hosts"]["host_server_1"]["ports"][0]["nic"] = "columbiaville"
    message = _error(tmp_path, data)
    assert "hosts.host_server_1.ports[0].nic" in message and "niantic" in message


def test_hardware_nic_needs_pci(tmp_path: Path) -> None:
    data = _virtual()
    data["hosts"]["host_server_1"]["ports"][0]["nic"] = "niantic"
    assert "needs its 'pci' address" in _error(tmp_path, data)


def test_bad_pci_address(tmp_path: Path) -> None:
    data = yaml.safe_load((TOPOLOGIES / "lab.yaml").read_text())
    data["hosts"]["host_server_1"]["ports"][0]["pci"] = "09:00.0"
    assert "hosts.host_server_1.ports[0].pci" in _error(tmp_path, data)


def test_management_subnet_outside_benchmark_range(tmp_path: Path) -> None:
    data = _virtual()
    data["virtual_lab"]["management_subnet"] = "192.0.2.0/24"
    assert "198.18.0.0/15" in _error(tmp_path, data)


def test_management_subnet_ipv6_is_refused_in_one_line(tmp_path: Path) -> None:
    # IPv4Network.subnet_of raises TypeError for an IPv6 network: it must not escape.
    data = _virtual()
    data["virtual_lab"]["management_subnet"] = "2001:2::/48"
    assert "198.18.0.0/15" in _error(tmp_path, data)


def test_lab_host_needs_address(tmp_path: Path) -> None:
    data = yaml.safe_load((TOPOLOGIES / "lab.yaml").read_text())
    del data["hosts"]["tg"]["address"]
    assert "hosts.tg.address" in _error(tmp_path, data)


def test_topology_needs_a_traffic_generator(tmp_path: Path) -> None:
    data = _virtual()
    data["hosts"]["tg"]["role"] = "dut"
    assert "role 'tg'" in _error(tmp_path, data)


def test_bad_dpdk_version(tmp_path: Path) -> None:
    data = _virtual()
    data["dpdk"]["version"] = "latest"
    assert "dpdk.version" in _error(tmp_path, data)


def _with_builds(builds: list[dict], mixes: list[dict] | None = None) -> dict:
    data = _virtual()
    data["dpdk"] = {**data["dpdk"], "builds": builds, "mixes": mixes or []}
    return data


def test_dpdk_builds_each_seen_alone(tmp_path: Path) -> None:
    root = "/root/.cache/howto-conformance/dpdk/24.11"
    path = _write(tmp_path, _with_builds([{"name": "24.11", "root": root, "guides": [1, 2]}]))
    topology = load_topology(path)
    first, second = topology.dpdk.all_builds
    assert (first.name, first.host_testpmd, first.enter) == (
        "installed",
        "/usr/bin/dpdk-testpmd",
        [],
    )
    assert (second.host_testpmd, second.enter) == (f"{root}/dpdk-testpmd", [f"{root}/enter"])
    assert second.testpmd == "/usr/bin/dpdk-testpmd"  # the path in the root and its guests
    assert second.on_host("/usr/bin/dpdk-testpmd") == f"{root}/root/usr/bin/dpdk-testpmd"
    seen = topology.for_build("24.11")
    assert seen.dpdk.all_builds == [second.model_copy(update={})], "one build, that one"
    assert topology.for_build("installed").dpdk.host_testpmd == "/usr/bin/dpdk-testpmd"
    assert [second.runs_guide(g) for g in (1, 2, 4, None)] == [True, True, False, True]


def test_a_source_build_runs_the_testpmd_it_built(tmp_path: Path) -> None:
    made = "/root/.cache/howto-conformance/dpdk/src-debian"
    path = _write(tmp_path, _with_builds([{"name": "source", "source": made + "/"}]))
    build = load_topology(path).for_build("source").dpdk
    assert (build.testpmd, build.host_testpmd, build.enter) == (
        f"{made}/dpdk-testpmd",
        f"{made}/dpdk-testpmd",
        [],
    ), "the host runs it as it is, and guest and container images carry it at that path"
    assert build.on_host(build.testpmd) == build.testpmd
    assert "scripts/setup --dpdk-source" in build.made_by and made in build.made_by


def test_a_mix_puts_one_build_on_the_host_and_another_on_the_guest_side(tmp_path: Path) -> None:
    root = "/root/.cache/howto-conformance/dpdk/24.11"
    data = _with_builds(
        [{"name": "24.11", "root": root}], [{"host": "installed", "guest": "24.11"}]
    )
    topology = load_topology(_write(tmp_path, data))
    assert topology.dpdk.run_keys == ["installed", "24.11", "host-installed-guest-24.11"]
    mixed = topology.for_build("host-installed-guest-24.11").dpdk
    assert (mixed.name, mixed.host_testpmd) == ("installed", "/usr/bin/dpdk-testpmd")
    assert (mixed.guest_side.name, mixed.guest_side.enter) == ("24.11", [f"{root}/enter"])
    alone = topology.for_build("installed").dpdk
    assert alone.guest_side is alone, "a build alone is its own guest side"
    mix = topology.dpdk.mix("host-installed-guest-24.11")
    assert mix is not None and [mix.runs_guide(g) for g in (1, 2, 4, 6, 7, None)] == [
        False, True, True, True, False, False,
    ]  # fmt: skip
    # a run of the mix alone checks both its builds
    kept = topology.for_builds(["host-installed-guest-24.11"]).dpdk
    assert [b.name for b in kept.all_builds] == ["installed", "24.11"]
    assert kept.run_keys[-1] == "host-installed-guest-24.11"


@pytest.mark.parametrize(
    "mixes, field, says",
    [
        ([{"host": "installed", "guest": "23.11"}], "dpdk", "mixes[0].guest: no build '23.11'"),
        ([{"host": "installed", "guest": "installed"}], "dpdk", "host and guest are both"),
        ([{"host": "installed", "guest": "24.11", "guides": [1]}], "guides[0]", "2, 4 or 6"),
        ([{"host": "installed", "guest": "24.11"}] * 2, "dpdk", "guest-24.11 is given twice"),
    ],
)  # fmt: skip
def test_bad_dpdk_mixes_name_the_field(
    tmp_path: Path, mixes: list[dict], field: str, says: str
) -> None:
    data = _with_builds([{"name": "24.11", "root": "/r"}], mixes)
    error = _error(tmp_path, data)
    assert field in error and says in error, error


@pytest.mark.parametrize(
    "builds, field, says",
    [
        ([{"name": "installed"}], "dpdk", "two builds share the name 'installed'"),
        (
            [{"name": "s", "source": "src"}],
            "dpdk.builds[0].source",
            "a scripts/dpdk-build directory",
        ),
        (
            [{"name": "s", "source": "/s", "root": "/r"}],
            "dpdk.builds[0]",
            "a root or a source build",
        ),
        (
            [{"name": "s", "source": "/s", "testpmd": "/opt/testpmd"}],
            "dpdk.builds[0]",
            "a source build's testpmd is the one it built, /s/dpdk-testpmd",
        ),
        ([{"name": "24.11", "root": "relative/dir"}], "dpdk.builds[0].root", "absolute path"),
        (
            [{"name": "24.11", "root": "/r", "testpmd": "/opt/testpmd"}],
            "dpdk.builds[0]",
            "a root build's testpmd is the root's /usr/bin/dpdk-testpmd",
        ),
        ([{"name": "24 11"}], "dpdk.builds[0].name", "a name of up to 24 letters"),
        ([{"name": "x", "guides": [8]}], "dpdk.builds[0].guides[0]", "less than or equal to 7"),
    ],
)
def test_bad_dpdk_builds_name_the_field(
    tmp_path: Path, builds: list[dict], field: str, says: str
) -> None:
    error = _error(tmp_path, _with_builds(builds))
    assert field in error and says in error, error


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    assert "expected a mapping" in _error(tmp_path, "- a\n- b\n")


def test_non_utf8_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "topo.yaml"
    path.write_bytes(b"name: x\nkind: virtual\ndescription: caf\xe9\n")
    with pytest.raises(ConfigError, match=r"topo\.yaml: line 3: not UTF-8 text \(byte 0xe9"):
        load_topology(path)


def test_control_character_names_its_line(tmp_path: Path) -> None:
    message = _error(tmp_path, "name: x\nkind: virtual\ndescription: a\x00b\n")
    assert "line 3: not valid YAML: unacceptable character #x0000" in message


def test_endless_input_is_cut_at_the_size_limit() -> None:
    with pytest.raises(ConfigError, match=r"^/dev/zero: over the 256 KiB limit"):
        load_topology("/dev/zero")


def test_empty_file(tmp_path: Path) -> None:
    assert "no topology in it" in _error(tmp_path, "# nothing yet\n")


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    text = "name: x\nkind: virtual\nhosts:\n  tg: {role: tg}\n  tg: {role: dut}\n"
    assert "hosts.tg: defined twice, at lines 4 and 5" in _error(tmp_path, text)


def test_duplicate_key_in_a_list_item(tmp_path: Path) -> None:
    data = _virtual()
    text = yaml.safe_dump(data, sort_keys=False).replace(
        "    - name: p1\n", "    - name: p1\n      name: p2\n"
    )
    assert "hosts.tg.ports[1].name: defined twice" in _error(tmp_path, text)


def test_merge_keys_may_override(tmp_path: Path) -> None:
    text = (
        "name: x\nkind: virtual\nhosts:\n"
        "  host_server_1: &dut {role: dut, user: root}\n"
        "  tg: {<<: *dut, role: tg}\n"
    )
    topology = load_topology(_write(tmp_path, text))
    assert topology.tg_name == "tg"


def test_alias_bomb_is_refused(tmp_path: Path) -> None:
    lines = ['a0: &a0 ["x", "x", "x", "x", "x", "x", "x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    assert "expand to over 100,000 values" in _error(tmp_path, "\n".join(lines) + "\n")


@pytest.mark.parametrize("value", ["22.10", "22.11", "17"])
def test_unquoted_version_says_to_quote_it(tmp_path: Path, value: str) -> None:
    text = (TOPOLOGIES / "virtual.yaml").read_text().replace("version: auto", f"version: {value}")
    message = _error(tmp_path, text)
    assert f"dpdk.version: expected text, but YAML reads the unquoted {value} as" in message
    assert f'put it in quotes: "{value}"' in message


def test_bad_mac_address_is_explained_in_words(tmp_path: Path) -> None:
    data = _virtual()
    data["vms"]["vm1"]["nics"][0]["mac"] = "52-54-00-00-00-01"
    message = _error(tmp_path, data)
    assert "vms.vm1.nics[0].mac: expected a MAC address" in message
    assert "e.g. '52:54:00:00:00:01'" in message and "pattern" not in message.split(": ", 1)[1]


# Guide 1: the VM with a virtio NIC on a bridged tap and a VF (or its e1000 stand-in).


def _bond_nics(data: dict) -> list[dict]:
    return data["vms"]["bond_vm"]["nics"]


def test_vf_nic_needs_its_pf(tmp_path: Path) -> None:
    data = _virtual()
    _bond_nics(data)[1] = {"id": "vf1", "kind": "vf", "slot": 4}
    message = _error(tmp_path, data)
    assert "vms.bond_vm.nics[1]: a vf NIC needs its 'pf'" in message


def test_vf_nic_gets_the_vf_role_by_itself(tmp_path: Path) -> None:
    data = _virtual()
    _bond_nics(data)[1] = {"id": "vf1", "kind": "vf", "pf": "vf0", "slot": 4}
    nic = load_topology(_write(tmp_path, data)).vms["bond_vm"].nics[1]
    assert (nic.kind, nic.role, nic.pf) == ("vf", "vf", "vf0")


@pytest.mark.parametrize(
    ("nic", "expected"),
    [
        ({"id": "vf1", "kind": "tap", "pf": "vf0"}, "'pf' is for kind vf, not tap"),
        (
            {"id": "vf1", "kind": "vhost-user", "socket": "s.sock", "bridge": "vf0"},
            "'bridge' is for kind tap, not vhost-user",
        ),
        (
            {"id": "vf1", "kind": "vf", "pf": "vf0", "bridge": "vf0"},
            "'bridge' is for kind tap, not vf",
        ),
    ],
)
def test_pf_and_bridge_belong_to_their_kinds(tmp_path: Path, nic: dict, expected: str) -> None:
    data = _virtual()
    _bond_nics(data)[1] = nic
    assert f"vms.bond_vm.nics[1]: {expected}" in _error(tmp_path, data)


def test_duplicate_nic_ids_are_named(tmp_path: Path) -> None:
    data = _virtual()
    _bond_nics(data)[1]["id"] = "net1"
    assert "vms.bond_vm: duplicate NIC ids: net1" in _error(tmp_path, data)


@pytest.mark.parametrize(
    ("nic", "field"),
    [
        (
            {
                "id": "vf1",
                "kind": "tap",
                "model": "e1000",
                "role": "vf",
                "bridge": "vf0",
                "slot": 4,
            },
            "bridge",
        ),
        ({"id": "vf1", "kind": "vf", "pf": "vf0", "slot": 4}, "pf"),
    ],
)
def test_nic_port_must_be_on_every_dut_host(tmp_path: Path, nic: dict, field: str) -> None:
    data = _virtual()
    _bond_nics(data)[1] = nic
    ports = data["hosts"]["host_server_2"]["ports"]
    ports[:] = [port for port in ports if port["name"] != "vf0"]
    message = _error(tmp_path, data)
    assert f"vms.bond_vm.nics.1.{field}: host host_server_2 has no port named 'vf0'" in message


def test_loss_window_bounds_by_guide_and_window(tmp_path: Path) -> None:
    data = _virtual()
    data["loss_windows"] = {
        "guide1": {"failover": {"outages": 1, "longest_ms": 5, "lost": 3, "loss_span_ms": 6}},
        "guide2": {"jitter_ms": None,
                   "migration": {"outages": 2, "longest_ms": 75, "lost": 80, "loss_span_ms": 9}},
    }  # fmt: skip
    topology = load_topology(_write(tmp_path, data))
    assert topology.window_bounds(1, "failover") == WindowBounds(
        outages=1, longest_ms=5, lost=3, loss_span_ms=6
    )
    assert topology.window_bounds(2, "migration").longest_ms == 75.0
    assert topology.loss_windows.guide2.jitter_ms is None
    # windows the file does not name keep their defaults
    assert topology.window_bounds(1, "vf_attach") == Guide1Windows().vf_attach
    assert str(topology.window_bounds(1, "failover")) == (
        "at most 1 outage(s), none longer than 5 ms, at most 3 frames lost, sent within 6 ms"
    )
    with pytest.raises(KeyError, match="guide 2 has no loss window 'failover'"):
        topology.window_bounds(2, "failover")
    with pytest.raises(KeyError, match="guide 1 has no loss window 'jitter_ms'"):
        topology.window_bounds(1, "jitter_ms")


def test_loss_window_bounds_reject_unknown_windows_partial_bounds_and_old_keys(
    tmp_path: Path,
) -> None:
    data = _virtual()
    data["loss_windows"] = {"guide2": {"failover": {"outages": 1}}}
    assert "loss_windows.guide2.failover: Extra inputs are not permitted" in _error(tmp_path, data)
    data["loss_windows"] = {"guide1": {"failover": {"outages": 1, "longest_ms": 5}}}
    assert "loss_windows.guide1.failover.lost: Field required" in _error(tmp_path, data)
    data["loss_windows"] = {"guide1": {"failover": {"outages": -1, "longest_ms": 5, "lost": 1,
                                                    "loss_span_ms": 1}}}  # fmt: skip
    assert "loss_windows.guide1.failover.outages" in _error(tmp_path, data)
    for old in ("migration_downtime_bound_ms", "outage_bounds_ms"):
        data = _virtual()
        data[old] = 50
        assert f"{old}: replaced by loss_windows" in _error(tmp_path, data)


@pytest.mark.parametrize(
    ("name", "vms"),
    [("virtual.yaml", ["bond_vm"]), ("lab.yaml", ["bond_vm_niantic", "bond_vm_fortville"])],
)
def test_shipped_guide1_vms_have_one_vf_nic(name: str, vms: list[str]) -> None:
    topology = load_topology(TOPOLOGIES / name)
    for vm_name in vms:
        vm = topology.vms[vm_name]
        assert [nic.id for nic in vm.nics if nic.role == "vf"] == ["vf1"], vm_name
        assert vm.vf_nic is not None and vm.vf_nic.id == "vf1"
    assert topology.vms["vm1"].vf_nic is None


def test_vm_without_drops_only_that_nic() -> None:
    vm = load_topology(TOPOLOGIES / "virtual.yaml").vms["bond_vm"]
    rest = vm.without("vf1")
    assert [nic.id for nic in rest.nics] == ["net1"]
    assert rest.nics[0] == vm.nics[0] and rest.vf_nic is None
    kept = {"nics", "spare_slots"}
    assert rest.model_dump(exclude=kept) == vm.model_dump(exclude=kept)
    assert [nic.id for nic in vm.nics] == ["net1", "vf1"], "the original is unchanged"
    assert vm.without("nope") == vm


def test_a_viommu_vm_without_a_nic_keeps_its_root_port_and_addresses() -> None:
    vm = (
        load_topology(TOPOLOGIES / "virtual.yaml")
        .vms["bond_vm"]
        .model_copy(update={"viommu": True})
    )
    rest = vm.without("vf1")
    assert rest.spare_slots == [4] and rest.port_slots == vm.port_slots == [3, 4]
    assert [rest.guest_pci(nic) for nic in vm.nics] == ["0000:01:00.0", "0000:02:00.0"]
    plain = vm.model_copy(update={"viommu": False})
    assert plain.without("vf1").spare_slots == []
    assert [plain.guest_pci(nic) for nic in vm.nics] == ["0000:00:03.0", "0000:00:04.0"]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"slot": None}, "viommu: NIC vf1 needs a fixed 'slot' (its root port)"),
        ({"slot": 31}, "viommu: NIC vf1: slot 31 is q35's own (ICH9)"),
        ({"slot": 3}, "viommu: two NICs share a slot (one root port each)"),
        ({"kind": "vhost-user", "socket": "s.sock", "model": "virtio-net-pci", "bridge": None},
         "viommu: NIC vf1 is vhost-user"),
    ],
)  # fmt: skip
def test_a_viommu_vm_needs_one_root_port_per_nic(
    tmp_path: Path, change: dict, expected: str
) -> None:
    data = _virtual()
    data["vms"]["bond_vm"]["viommu"] = True
    nic = _bond_nics(data)[1]
    nic.update(change)
    for key in [k for k, v in nic.items() if v is None]:
        del nic[key]
    assert f"vms.bond_vm: {expected}" in _error(tmp_path, data)


def test_hot_plug_viommu_needs_the_same_layout(tmp_path: Path) -> None:
    data = _virtual()
    assert data["vms"]["bond_vm"]["hot_plug_viommu"] is True
    assert load_topology(_write(tmp_path, data)).vms["bond_vm"].viommu is False
    del _bond_nics(data)[1]["slot"]
    expected = "vms.bond_vm: viommu: NIC vf1 needs a fixed 'slot' (its root port)"
    assert expected in _error(tmp_path, data)


def test_spare_slots_need_a_viommu(tmp_path: Path) -> None:
    data = _virtual()
    data["vms"]["vm1"]["spare_slots"] = [9]
    assert "vms.vm1: 'spare_slots' are root ports of a 'viommu' VM only" in _error(tmp_path, data)


def _lab() -> dict:
    return yaml.safe_load((TOPOLOGIES / "lab.yaml").read_text())


def test_lab_sample_has_guides_3_and_5_on_both_nic_families() -> None:
    caps = load_topology(TOPOLOGIES / "lab.yaml").capabilities()
    assert {f"{g}.{f}" for g in ("vf_daemon", "flow_bifurcation")
            for f in ("niantic", "fortville")} <= caps  # fmt: skip


@pytest.mark.parametrize(
    ("section", "change", "expected"),
    [
        ("vf_daemon", {"pf": "fortville0"}, "vf_daemon.niantic.pf: host_server_1.fortville0 is a fortville port"),  # noqa: E501 - a table row, one case a line
        ("vf_daemon", {"host": "tg"}, "vf_daemon.niantic.host: no DUT host named 'tg'"),
        ("vf_daemon", {"pf": "nope0"}, "vf_daemon.niantic.pf: host host_server_1 has no port 'nope0'"),  # noqa: E501 - a table row, one case a line
        ("vf_daemon", {"tg_port": "p9"}, "vf_daemon.niantic.tg_port: the TG has no port 'p9'"),
        ("vf_daemon", {"vf_app": "vm9"}, "vf_daemon.niantic.vf_app: 'host' or a VM's name, got 'vm9'"),  # noqa: E501 - a table row, one case a line
        ("vf_daemon", {"vf_app": "vm1"}, "VM vm1 must run on host_server_1 with VFs 0 and 1 of niantic0"),  # noqa: E501 - a table row, one case a line
        ("flow_bifurcation", {"vfs": 1}, "flow_bifurcation.niantic.vfs: Input should be greater than or equal to 2"),  # noqa: E501 - a table row, one case a line
    ],
)  # fmt: skip
def test_a_wrong_guide_3_or_5_entry_is_one_line(
    tmp_path: Path, section: str, change: dict, expected: str
) -> None:
    data = _lab()
    data[section]["niantic"].update(change)
    assert expected in _error(tmp_path, data)


def test_the_vfd_vm_named_by_the_sample_is_a_valid_vf_app(tmp_path: Path) -> None:
    data = _lab()
    data["vf_daemon"]["niantic"]["vf_app"] = "vfd_vm_niantic"
    topology = load_topology(_write(tmp_path, data))
    assert topology.vf_daemon["niantic"].vf_app == "vfd_vm_niantic"


def test_a_selection_outside_the_frame_sizes_names_both(tmp_path: Path) -> None:
    data = _virtual()
    data["pvp"]["other_paths_frame_sizes"] = [128]
    message = _error(tmp_path, data)
    assert "other_paths_frame_sizes [128] are not in frame_sizes [64, 1518]" in message


def test_guide4_cpu_lists_and_vcpu_pins_are_checked(tmp_path: Path) -> None:
    data = _virtual()
    data["pvp"]["host_lcores"] = "1"
    assert "pvp.host_lcores" in (message := _error(tmp_path, data))
    assert "testpmd needs a main lcore and at least one to forward" in message
    data = _virtual()
    data["pvp"]["isolated_cpus"] = "2-x"
    assert "a CPU list in the kernel's syntax" in _error(tmp_path, data)
    data = _virtual()
    data["vms"]["pvp_vm"]["vcpu_pins"] = [1]
    assert "one host CPU per vCPU" in _error(tmp_path, data)
