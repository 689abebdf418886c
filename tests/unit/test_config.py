"""Topology files: the shipped ones load, and every kind of mistake names file and field."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from framework.config import load_topology
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


def test_top_level_must_be_mapping(tmp_path: Path) -> None:
    assert "expected a mapping" in _error(tmp_path, "- a\n- b\n")
