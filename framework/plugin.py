"""The pytest plugin: topology selection, capability gating, host fixtures, one-line errors.

Loaded by the project's conftest.py. Data flows one way: --topology -> validated model ->
host handles (virtual lab built here) -> fixtures of the test modules.
"""

from __future__ import annotations

import platform
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import allure
import pytest

from framework import faults, plan
from framework.config import DEFAULT_TOPOLOGY, Topology
from framework.config.model import DpdkBuild, wanted_builds
from framework.errors import ConfigError, FrameworkError, LabError
from framework.lab.cpu import CpuLease, take_cpus
from framework.lab.hosts import HostHandle, provision
from framework.lab.testbeds import Lease, lease_testbed, load_pool
from framework.report.outcomes import NOT_SELECTED, skip_lacking, skip_missing_capabilities

if TYPE_CHECKING:
    from framework.dpdk.version import DpdkVersion

pytest_plugins = ["framework.report.plugin", "framework.lab.watch"]

# The exit status of a run that stopped because the lab could not be used (a host
# unreachable, the DPDK under test missing); 4 stays pytest's usage error (a bad option or
# topology file), 1 a failed test.
EXIT_LAB_UNUSABLE = 3

# Markers that stand for a capability the topology must declare. A test may also ask for
# any capability directly with @pytest.mark.requires("vhost_net", ...).
MARKER_NEEDS: dict[str, tuple[str, ...]] = {
    "niantic": ("niantic",),
    "fortville": ("fortville",),
    "sriov": ("sriov",),
    "vhost": ("hugepages",),
    "virtio": ("hugepages",),
    "container": ("container",),
    "migration": ("qemu",),
}

CAPABILITY_MEANS = {
    "niantic": "an Intel 82599 (ixgbe) NIC on a DUT host",
    "fortville": "an Intel X710/XL710 (i40e) NIC on a DUT host",
    "sriov": "a NIC port with SR-IOV virtual functions",
    "kvm": "usable KVM acceleration",
    "vhost_net": "the vhost-net kernel module (/dev/vhost-net)",
    "hugepages": "hugepages for DPDK",
    "container": "a container engine",
    "qemu": "QEMU on the DUT hosts",
    "vf_daemon.niantic": "a DPDK PF on an 82599 port with VFs, and the TG port it faces",
    "vf_daemon.fortville": "a DPDK PF on an X710 port with VFs, and the TG port it faces",
    "flow_bifurcation.niantic": "an 82599 port under the kernel's ixgbe with VFs, and its TG port",
    "flow_bifurcation.fortville": "an X710 port under the kernel's i40e with VFs, and its TG port",
}


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --topology, --inject-fault, --update-baseline and --plan."""
    group = parser.getgroup("howto", "howto-conformance")
    group.addoption(
        "--plan",
        action="store_true",
        default=False,
        help="print, for each selected test that supports it (marker plannable), the exact "
        "commands it would run on each host, in order, without connecting to any host",
    )
    group.addoption(
        "--topology",
        action="append",
        default=None,
        metavar="PATH",
        help="topology YAML, or a directory of them; repeat it for a pool of testbeds, one "
        "leased by each xdist worker (default: topologies/virtual.yaml, the virtual lab)",
    )
    group.addoption(
        "--inject-fault",
        action="append",
        default=[],
        metavar="NAME",
        help="make the DUT misbehave on purpose (self-tests prove checks bite); "
        f"one of: {', '.join(faults.names())}",
    )
    group.addoption(
        "--preflight",
        action="store_true",
        default=False,
        help="before the first test uses the lab, check every host of the topology (SSH, "
        "DPDK, hugepages, NIC drivers, SR-IOV, QEMU/KVM, container engine) and stop the run "
        "with one line per missing thing (scripts/nightly sets it)",
    )
    group.addoption(
        "--dpdk-build",
        action="append",
        default=[],
        metavar="NAME",
        help="test only this DPDK build of the topology (dpdk.name, a name in dpdk.builds, or a "
        "mix of dpdk.mixes: host-A-guest-B); repeat for several (default: $HOWTO_DPDK_BUILD, "
        "comma-separated, or every build and mix)",
    )
    group.addoption(
        "--update-baseline",
        action="store_true",
        default=False,
        help="guide 4: write this run's NDR results into the topology's pvp.baseline file "
        "(the regression gate's reference) instead of checking them against it",
    )


# Markers pytest and its plugins register when they are configured, after the selection
# is checked (pytest_cmdline_main): a -m naming one of them is not a typo.
PLUGIN_MARKERS = frozenset({
    "skip", "skipif", "xfail", "parametrize", "usefixtures", "filterwarnings", "tryfirst",
    "trylast", "timeout", "xdist_group", "allure_label", "allure_link", "allure_description",
    "allure_description_html",
})  # fmt: skip


def _selection_error(config: pytest.Config) -> str | None:
    """The one line that says what is wrong with -m or -k; None when both parse."""
    from _pytest.mark.expression import Expression  # pytest's own parser of -m and -k

    for option, given in (("-m", config.option.markexpr), ("-k", config.option.keyword)):
        if not given:
            continue
        try:
            expression = Expression.compile(given)
        except SyntaxError as exc:
            return f"{option} {given!r}: at column {exc.offset}: {exc.msg}"
        if option != "-m" or not (config.getini("strict_markers") or config.getini("strict")):
            continue
        declared = {line.split(":")[0].split("(")[0].strip() for line in config.getini("markers")}
        unknown = sorted(expression.idents() - declared - PLUGIN_MARKERS)
        if unknown:
            return (
                f"-m {given!r}: unknown marker(s) {', '.join(unknown)}; "
                f"pytest.ini declares {', '.join(sorted(declared))}"
            )
    return None


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """End a run whose -m or -k does not parse at once, with one line, leaving nothing.

    pytest itself reads the expressions only when it selects the collected tests, after
    the run directory is made and the guide modules are imported.
    """
    error = _selection_error(config)
    if error is not None:
        raise pytest.UsageError(error)


def _topology_paths(config: pytest.Config) -> list[Path]:
    paths = []
    for given in config.getoption("--topology") or [str(DEFAULT_TOPOLOGY)]:
        path = Path(given)
        if not path.is_absolute() and not path.exists():
            path = Path(config.rootpath) / path
        paths.append(path)
    return paths


def _xdist_controller(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "numprocesses", None)) and not hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    """Load the testbeds, lease one, activate faults; bad input is a usage error.

    An xdist controller runs no test: its workers lease testbeds, each its own.
    """
    try:
        from framework.report.plugin import set_topology_name

        pool = load_pool(_topology_paths(config))
        config.stash[POOL_KEY] = pool
        set_topology_name(config, "+".join(sorted(t.name for t in pool)))
        if _xdist_controller(config) or config.getoption("--plan"):
            # a plan touches no testbed, so it leases none
            config.stash[TOPOLOGY_KEY] = pool[0]
            if config.getoption("--plan"):
                plan.start(plan.Plan())
        else:
            worker = getattr(config, "workerinput", {}).get("workerid", "")
            index = int(worker[2:]) if worker.startswith("gw") else 0
            command = " ".join(["pytest", *config.invocation_params.args])
            lease = lease_testbed(pool, index=index, worker=worker, command=command)
            config.stash[LEASE_KEY] = lease
            config.stash[TOPOLOGY_KEY] = lease.topology
        _check_builds(config)
        config.stash[UNINSTALL_FAULTS_KEY] = faults.install(config.getoption("--inject-fault"))
    except FrameworkError as exc:
        raise pytest.UsageError(str(exc)) from None


def _check_builds(config: pytest.Config) -> None:
    """--dpdk-build names builds of every testbed (workers of a pool collect the same ids)."""
    pool = config.stash[POOL_KEY]
    names = pool[0].dpdk.run_keys
    for other in pool[1:]:
        if other.dpdk.run_keys != names:
            raise ConfigError(
                f"testbeds {pool[0].name} and {other.name} name different DPDK builds "
                "(a pool's testbeds must test the same builds)"
            )
    unknown = [n for n in _wanted_builds(config) if n not in names]
    if unknown:
        where = "--dpdk-build" if config.getoption("--dpdk-build") else "HOWTO_DPDK_BUILD:"
        raise ConfigError(
            f"{where} {unknown[0]}: topology '{pool[0].name}' has {pool[0].dpdk.run_keys_text}"
        )


def pytest_unconfigure(config: pytest.Config) -> None:
    """Remove the injected faults and give the testbed back."""
    uninstall = config.stash.get(UNINSTALL_FAULTS_KEY, None)
    if uninstall is not None:
        uninstall()
    lease = config.stash.get(LEASE_KEY, None)
    if lease is not None:
        lease.release()


TOPOLOGY_KEY = pytest.StashKey[Topology]()
POOL_KEY = pytest.StashKey[list[Topology]]()
LEASE_KEY = pytest.StashKey[Lease]()
CPU_KEY = pytest.StashKey[CpuLease]()
CPU_ERROR_KEY = pytest.StashKey[LabError]()  # the CPUs stayed taken: the test's error
UNINSTALL_FAULTS_KEY = pytest.StashKey[Callable[[], None]]()
STOPPED_KEY = pytest.StashKey[str]()
# The DPDK release the dpdk_version fixture found, by build name.
DPDK_FOUND_KEY = pytest.StashKey[dict[str, str]]()


# The class's public name is pytest.exit.Exception, an attribute of the exit function that
# mypy cannot take as a base; its own name, _pytest.outcomes.Exit, is private.
class StopRun(pytest.exit.Exception):  # type: ignore[name-defined]  # documented, set at run time
    """Ends the session at once: the lab cannot be used. Its message is one line."""

    def __init__(self, message: str) -> None:
        super().__init__(message, returncode=EXIT_LAB_UNUSABLE)


def stop_run(request: pytest.FixtureRequest, message: str) -> NoReturn:
    """Stop the whole run with one line, written into the run's reports first.

    The line goes to <run dir>/error.txt, the Environment tables of report.html and Allure,
    and a `run_stopped` property of the JUnit test suite; the terminal shows it last.
    """
    from framework.report.plugin import record_run_error

    record_run_error(request.config, message)
    try:
        request.getfixturevalue("record_testsuite_property")("run_stopped", message)
    except pytest.FixtureLookupError:  # the junitxml plugin is disabled
        pass
    raise StopRun(message)


@pytest.hookimpl(wrapper=True)
def pytest_runtestloop(session: pytest.Session) -> Generator[None, object, object]:
    """End the test loop quietly on StopRun; pytest_sessionfinish prints its line."""
    try:
        return (yield)
    except StopRun as stop:
        if hasattr(session.config, "workerinput"):
            raise  # an xdist worker: the controller reports how it ended
        session.config.stash[STOPPED_KEY] = stop.msg
        return True


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session: pytest.Session) -> Generator[None, None, None]:
    """After every summary, print why the run stopped as the last line, and exit with 3."""
    # A run stopped early (-x, --maxfail) never tore down the last test of its guide
    # module: give its CPUs back now, or writing the reports waits on this run's own lock.
    lease = session.config.stash.get(CPU_KEY, None)
    if lease is not None:
        lease.release()
        del session.config.stash[CPU_KEY]
    yield
    message = session.config.stash.get(STOPPED_KEY, None)
    if message is not None:
        terminal = session.config.pluginmanager.get_plugin("terminalreporter")
        if terminal is not None:
            terminal.write_line(f"ERROR: {message}", red=True, bold=True)
        session.exitstatus = EXIT_LAB_UNUSABLE


def missing_capabilities(topology: Topology, item: pytest.Item) -> list[str]:
    """Capabilities the item's markers need that the topology lacks, in marker order."""
    needed: list[str] = []
    for marker in item.iter_markers():
        if marker.name == "requires":
            needed.extend(marker.args)
        if marker.name == "vms":
            needed.extend(f"vms.{name}" for name in marker.args)
        needed.extend(MARKER_NEEDS.get(marker.name, ()))
    have = topology.capabilities() | {f"vms.{name}" for name in topology.vms}
    return [cap for cap in dict.fromkeys(needed) if cap not in have]


def _is_guide(item: pytest.Item) -> bool:
    return Path(item.path).is_relative_to(Path(item.config.rootpath) / "testsuites")


def pytest_runtest_setup(item: pytest.Item) -> None:
    """Name the test's testbed in every report; skip it if the testbed lacks a capability.

    A test whose CPU lease (pytest_runtest_protocol) timed out errors here, with the line
    naming the holders.
    """
    topology = item.config.stash[TOPOLOGY_KEY]
    item.user_properties.append(("testbed", topology.name))
    allure.dynamic.tag(f"testbed {topology.name}")
    allure.dynamic.label("testbed", topology.name)
    _skip_if_missing(item, topology)
    error = item.stash.get(CPU_ERROR_KEY, None)
    if error is not None:
        raise error


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None):
    """A guide test takes the machine's CPUs, shared or (`cpu_exclusive`) exclusively.

    Held for the whole guide module: a module-scoped set-up keeps testpmds polling
    between its tests. Taken here, outside pytest-timeout's window (its wrapper is
    inside this one), so a wait for the CPUs is not counted as the test's own time.
    Under --plan the test takes no CPUs: its commands and the promises its verdicts would
    check are recorded under its name instead (Plan.recording_test).
    """
    topology = item.config.stash[TOPOLOGY_KEY]
    recording = plan.current()
    if recording is not None:
        # a plan runs nothing on the lab's CPUs, and judges no verdict
        with recording.recording_test(item.nodeid):
            yield
        return
    if (
        _is_guide(item)
        and item.config.stash.get(CPU_KEY, None) is None
        and not missing_capabilities(topology, item)
        and item.get_closest_marker("skip") is None
    ):
        exclusive = item.get_closest_marker("cpu_exclusive") is not None
        try:
            item.config.stash[CPU_KEY] = take_cpus(item.nodeid, exclusive=exclusive)
        except LabError as exc:
            item.stash[CPU_ERROR_KEY] = exc
    yield


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, None, None]:
    """Give the CPUs back once the last test of a guide module is torn down."""
    try:
        return (yield)
    finally:
        lease = item.config.stash.get(CPU_KEY, None)
        if lease is not None and (nextitem is None or nextitem.path != item.path):
            lease.release()
            del item.config.stash[CPU_KEY]


def _skip_if_missing(item: pytest.Item, topology: Topology) -> None:
    missing = missing_capabilities(topology, item)
    if missing:
        # @pytest.mark.vms(name, why=...) says what the VM is for
        why = {
            f"vms.{name}": marker.kwargs["why"]
            for marker in item.iter_markers("vms")
            if "why" in marker.kwargs
            for name in marker.args
        }
        skip_missing_capabilities(topology.name, {
            cap: why.get(cap, "a VM the guide runs") if cap.startswith("vms.")
            else CAPABILITY_MEANS.get(cap, cap)
            for cap in missing
        })  # fmt: skip


def build_of(item: pytest.Item) -> str:
    """The name of the DPDK build `item` tests (the first selected one if not parametrized)."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "dpdk_build" in callspec.params:
        return str(callspec.params["dpdk_build"])
    return selected_builds(item.config)[0]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """Report a FrameworkError by its one line, without the traceback.

    Also names, on each report of a test that ran against the DUT, the DPDK release found
    there (the summary's rows say which DPDK each guide variant ran on).
    """
    build = build_of(item)
    found = item.config.stash.get(DPDK_FOUND_KEY, {}).get(build)
    if found is not None and not any(k == "dpdk" for k, _ in item.user_properties):
        item.user_properties += [("dpdk", found), ("dpdk_build", build)]
    report = yield
    # A framework error is a statement about the set-up or the DUT; its one line is the
    # whole story, the traceback through the framework is noise.
    if call.excinfo is not None and call.excinfo.errisinstance(FrameworkError):
        report.longrepr = f"{call.excinfo.typename}: {call.excinfo.value}"
    return report


@pytest.fixture(scope="session")
def lab_topology(pytestconfig: pytest.Config) -> Topology:
    """The validated topology chosen with --topology, with every DPDK build it names."""
    return pytestconfig.stash[TOPOLOGY_KEY]


def selected_builds(config: pytest.Config) -> list[str]:
    """The DPDK builds and mixes the run tests, by name (the topology's, or --dpdk-build's)."""
    names = config.stash[TOPOLOGY_KEY].dpdk.run_keys
    wanted = _wanted_builds(config)
    return [name for name in names if name in wanted] if wanted else names


def _wanted_builds(config: pytest.Config) -> list[str]:
    """--dpdk-build's names, else $HOWTO_DPDK_BUILD's; [] for every build."""
    return wanted_builds(config.getoption("--dpdk-build"))


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that uses the topology runs once per DPDK build, when there are several.

    With one build the test ids stay as they are.
    """
    if "dpdk_build" not in metafunc.fixturenames:
        return
    builds = selected_builds(metafunc.config)
    if len(builds) > 1:
        metafunc.parametrize("dpdk_build", builds, indirect=True, scope="session")


@pytest.fixture(scope="session")
def dpdk_build(request: pytest.FixtureRequest, lab_topology: Topology) -> str:
    """The name of the DPDK build under test."""
    return str(getattr(request, "param", selected_builds(request.config)[0]))


@pytest.fixture(scope="session")
def topology(lab_topology: Topology, dpdk_build: str) -> Topology:
    """The topology a test sees: its `dpdk` is the one build under test."""
    return lab_topology.for_build(dpdk_build)


@pytest.fixture(scope="session")
def hosts(
    lab_topology: Topology, pytestconfig: pytest.Config, request: pytest.FixtureRequest
) -> Iterator[dict[str, HostHandle]]:
    """Every host of the topology, reachable over SSH (the virtual lab is built here)."""
    recording = plan.current()
    if recording is not None:
        yield plan.plan_topology_hosts(lab_topology, recording)
        return
    try:
        context = provision(lab_topology)
        handles = context.__enter__()
    except FrameworkError as exc:
        stop_run(request, f"cannot bring up topology '{lab_topology.name}': {exc}")
    try:
        _record_environment(pytestconfig, lab_topology, handles)
        if pytestconfig.getoption("--preflight"):
            # the builds this run tests
            _preflight(request, lab_topology.for_builds(selected_builds(pytestconfig)), handles)
        yield handles
    finally:
        context.__exit__(None, None, None)


def _preflight(
    request: pytest.FixtureRequest, topology: Topology, handles: dict[str, HostHandle]
) -> None:
    """Check every host before any test uses it; stop the run naming each missing thing."""
    from framework.lab.preflight import run_preflight
    from framework.report.plugin import run_directory, set_environment

    checks = run_preflight(topology, handles)
    failed = [c for c in checks if not c.ok]
    run_dir = run_directory(request.config)
    if run_dir is not None:
        lines = [f"{'ok  ' if c.ok else 'FAIL'} {c.line()}" for c in checks]
        (run_dir / f"preflight-{topology.name}.txt").write_text("\n".join(lines) + "\n")
    verdict = f"{len(checks)} checks, {len(failed)} failed"
    set_environment(request.config, {f"Pre-flight {topology.name}": verdict})
    if failed:
        stop_run(
            request,
            f"pre-flight of topology '{topology.name}': {verdict}:\n"
            + "\n".join(f"  {c.line()}" for c in failed),
        )


def _host(hosts: dict[str, HostHandle], name: str) -> HostHandle:
    if name not in hosts:
        skip_lacking(f"topology has no host named {name!r}")
    return hosts[name]


@pytest.fixture(scope="session")
def host_server_1(hosts: dict[str, HostHandle]) -> HostHandle:
    """The guides' first server; skips the test if the topology has none."""
    return _host(hosts, "host_server_1")


@pytest.fixture(scope="session")
def host_server_2(hosts: dict[str, HostHandle]) -> HostHandle:
    """The guides' second server (a migration's destination); skips if absent."""
    return _host(hosts, "host_server_2")


@pytest.fixture(scope="session")
def tg_host(hosts: dict[str, HostHandle], lab_topology: Topology) -> HostHandle:
    """The traffic generator host."""
    return hosts[lab_topology.tg_name]


@pytest.fixture(scope="session")
def tg_port(tg_host: HostHandle) -> str:
    """The TG's first data port (its interface name), the one the guides send from."""
    return tg_host.data_port(0).interface


@pytest.fixture(scope="session")
def dpdk_version(
    topology: Topology,
    dpdk_build: str,
    hosts: dict[str, HostHandle],
    pytestconfig: pytest.Config,
    request: pytest.FixtureRequest,
):
    """The DPDK release of the DUT hosts' testpmd (asked of the first DUT host).

    For a mix, the guest side's build is asked too: the report names both.
    """
    from framework.dpdk.version import DpdkVersion
    from framework.report.plugin import set_environment

    dut = next(h for h in hosts.values() if h.spec.role == "dut")
    if plan.current() is not None:
        if topology.dpdk.version == "auto":
            stop_run(request, "--plan needs dpdk.version in the topology: it asks no host")
        return DpdkVersion.parse(topology.dpdk.version)
    build, guest = topology.dpdk, topology.dpdk.guest_side
    found = _found_version(request, dut, build)
    founds = pytestconfig.stash.setdefault(DPDK_FOUND_KEY, {})
    founds[build.name] = str(found)
    if guest is not build:
        founds[guest.name] = str(_found_version(request, dut, guest))
        founds[dpdk_build] = f"{found} host, {founds[guest.name]} guest"
    facts: dict[str, str] = {}
    if len(selected_builds(pytestconfig)) > 1:
        for each in {build.name: build, guest.name: guest}.values():
            facts[f"DPDK build {each.name}"] = f"{founds[each.name]}: {each.host_testpmd}"
        facts["DPDK version"] = ", ".join(f"{v} ({n})" for n, v in founds.items())
    else:
        facts.update({"DPDK version": str(found), "testpmd": build.host_testpmd})
    for host in hosts.values():
        if host.spec.role == "dut":
            facts.update(_host_facts(host, topology))
    set_environment(pytestconfig, facts)
    return found


def _found_version(
    request: pytest.FixtureRequest, dut: HostHandle, build: DpdkBuild
) -> DpdkVersion:
    """What `build`'s testpmd on `dut` says its release is.

    The run stops if it cannot say, or says other than the topology's `version`.
    """
    from framework.dpdk.version import DpdkVersion, detect_dpdk_version, same_release

    testpmd = build.host_testpmd
    try:
        found = detect_dpdk_version(dut.session, testpmd)
    except FrameworkError as exc:
        made_by = f" ({build.made_by})" if build.made_by else ""
        stop_run(
            request,
            f"cannot tell the DPDK version of build {build.name} on {dut.name}: {exc}{made_by}",
        )
    declared = build.version
    if declared != "auto" and not same_release(DpdkVersion.parse(declared), found, declared):
        stop_run(
            request,
            f"dpdk.version of build {build.name}: topology says {declared}, "
            f"{dut.name}'s {testpmd} is {found}",
        )
    return found


def _host_facts(host: HostHandle, topology: Topology) -> dict[str, str]:
    """What a sign-off names about a DUT host: kernel, QEMU, NICs, tuning (read only)."""
    from framework.lab.tuning import read_tuning

    def first_line(argv: list[str]) -> str:
        out = host.session.run(argv, check=False).stdout.strip()
        return out.splitlines()[0] if out else "not found"

    qemus = sorted({vm.qemu for vm in topology.vms.values() if vm.host == host.name})
    facts = {f"{host.name} kernel": first_line(["uname", "-r"])}
    for qemu in qemus or ["qemu-system-x86_64"]:
        facts[f"{host.name} QEMU"] = first_line([qemu, "--version"])
    nics = [
        " ".join(filter(None, [f"{p.name}: {p.nic.value}", p.pci, p.driver and f"({p.driver})"]))
        for p in host.spec.ports
    ]
    facts[f"{host.name} NICs"] = "; ".join(nics) or "none"
    try:
        tuning = read_tuning(lambda script: host.session.run(["sh", "-c", script]).stdout)
    except FrameworkError as exc:
        facts[f"{host.name} tuning"] = f"not read: {exc}"
    else:
        pages = ", ".join(f"{n} x {size}" for size, n in sorted(tuning.hugepages.items()) if n)
        facts[f"{host.name} tuning"] = (
            f"{tuning.cpu_model or 'CPU unknown'}; {len(tuning.online)} CPUs online, isolated: "
            f"{sorted(tuning.isolated) or 'none'}; hugepages: {pages or 'none'}; "
            f"untuned: {'; '.join(tuning.untuned()) or 'nothing'}"
        )
    return facts


@pytest.fixture(scope="session")
def traffic_generator(tg_host: HostHandle):
    """The TG's packet agent: scapy-built frames out of, and captures from, its ports."""
    from framework.traffic.generator import TrafficGenerator

    if plan.current() is not None:
        session = tg_host.session
        if not isinstance(session, plan.PlanSession):
            raise FrameworkError(f"a plan run's {tg_host.name} is not a plan session: {session!r}")
        return plan.PlanTrafficGenerator(session)
    return TrafficGenerator(tg_host.session, agent_dir=tg_host.work_dir)


def _record_environment(
    config: pytest.Config, topology: Topology, handles: dict[str, HostHandle]
) -> None:
    from framework.report.plugin import set_environment

    # One key per testbed: the workers of a pool each add theirs to the controller's table.
    pool = config.stash.get(POOL_KEY, [topology])
    set_environment(
        config,
        {
            "Topology" if len(pool) == 1 else f"Testbed {topology.name}": (
                f"{topology.name} ({topology.kind}); hosts: {', '.join(handles)}"
            ),
            "Controller kernel": platform.release(),
        },
    )


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave out what the topology's selection leaves out; --plan keeps plannable tests only.

    A guide module declares its selection with `topology_selection(item, topology)`, which
    says why the topology leaves a test out (e.g. guide 4's rate searches of the paths
    other than the guide's at some frame sizes only). Those tests are deselected, never
    skipped: the summary lists them as not selected, with that reason. trylast: after -k
    and -m, so that only tests the user selected are counted as left out by the topology.
    """
    pool = config.stash.get(POOL_KEY, [])
    if pool:
        # Every xdist worker collects the same items: the pool's first testbed decides.
        selected, left_out = [], []
        for item in items:
            declared = getattr(getattr(item, "module", None), "topology_selection", None)
            why = declared(item, pool[0]) if declared is not None else None
            why = why or _build_selection(item, pool[0])
            if why:
                item.stash[NOT_SELECTED] = why
                left_out.append(item)
            else:
                selected.append(item)
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = selected
    if not config.getoption("--plan"):
        return
    kept = [item for item in items if _plannable(item)]
    dropped = [item for item in items if not _plannable(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def variant_id(item: pytest.Item) -> str | None:
    """The test's parameter id as under one DPDK build (its build's part left out).

    With several builds a test's id also names its build ("vm-split-mergeable-24.11"); a
    selection that names set-ups ("vm-split-mergeable") must hold under every build alike.
    None: the test has no parameters.
    """
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return None
    full: str = callspec.id
    build = callspec.params.get("dpdk_build")
    if build is None:
        return full
    if full == build:
        return ""
    if full.endswith(f"-{build}"):
        return full[: -len(build) - 1]
    if full.startswith(f"{build}-"):
        return full[len(build) + 1 :]
    return full.replace(f"-{build}-", "-", 1)


def _build_selection(item: pytest.Item, topology: Topology) -> str | None:
    """Why the item's DPDK build leaves it out (its declared `guides`), or None."""
    callspec = getattr(item, "callspec", None)
    if callspec is not None and "dpdk_build" in callspec.params:
        name = callspec.params["dpdk_build"]
    elif len(names := selected_builds(item.config)) == 1:
        name = names[0]  # one build, so no parameter: its selection holds all the same
    else:
        return None
    marker = item.get_closest_marker("guide")
    guide = int(marker.args[0]) if marker is not None and marker.args else None
    mix = topology.dpdk.mix(name)
    if mix is not None:
        if mix.runs_guide(guide):
            return None
        runs = ", ".join(str(g) for g in mix.guides)
        return f"DPDK mix {name} runs guides {runs} on this topology (dpdk mixes: guides)"
    build = next(b for b in topology.dpdk.all_builds if b.name == name)
    if build.runs_guide(guide):
        return None
    runs = ", ".join(str(g) for g in build.guides or [])
    return f"DPDK build {name} runs guides {runs} on this topology (dpdk builds: guides)"


def _plannable(item: pytest.Item) -> bool:
    """Marked plannable (by its test, module or variant), and not plannable(False).

    plannable(False) on a test leaves it out where its variant is plannable: its code
    does not run through in a plan (it expects a refusal a plan cannot give).
    """
    marks = list(item.iter_markers("plannable"))
    return bool(marks) and all(m.args[:1] != (False,) for m in marks)


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """With --plan, print the plan and write it to the run's directory (plan.txt)."""
    recording = plan.current()
    if recording is None:
        return
    from framework.report.plugin import run_directory

    topology = config.stash[TOPOLOGY_KEY]
    text = recording.render(
        f"# Plan for topology '{topology.name}', DPDK {topology.dpdk.version} "
        f"(testpmd {topology.dpdk.testpmd}). Values a run reads back from the hosts are "
        "shown as <what they are>; counters read 0 and links up. A module's set-up appears "
        "under its first test.\n"
    )
    terminalreporter.section("plan: the commands each test would run, per host, in order")
    terminalreporter.write(text)
    run_dir = run_directory(config)
    if run_dir is not None:
        (run_dir / "plan.txt").write_text(text)
        terminalreporter.write_line(f"plan written to {run_dir / 'plan.txt'}")
