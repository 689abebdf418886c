"""pytest plugin: every run writes its reports under <reports-dir>/<timestamp>/.

Layout of one run directory:
    report.html       self-contained pytest-html report
    junit.xml         JUnit XML
    allure-results/   allure-pytest output, plus environment.properties
    allure-report/    Allure 3 HTML (single index.html that opens from file://), with the
                      history of the runs on the same topology (<reports-dir>/history/)
    summary.html      the conformance summary: a row per guide and variant, the sign-off
    summary.json      verdict, figures compared with the previous run (same content)
    error.txt         only when the run stopped early: the one line saying why
and <reports-dir>/latest is a symlink to the newest run directory.

Options the user gives explicitly (--html, --junitxml, --alluredir, --self-contained-html)
win: the plugin only fills in what is unset. The plugin must be registered before
pytest_configure runs (via -p, `pytest_plugins` in a conftest, or an entry point), because
it has to set the other plugins' options before they read them.
"""

from __future__ import annotations

import contextlib
import fcntl
import html
import json
import os
import platform
import shutil
import subprocess
import time
from collections.abc import Generator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import pytest

from framework.errors import ConfigError
from framework.lab.cpu import take_cpus
from framework.report import attach, commands, summary
from framework.report.outcomes import NOT_SELECTED, PLANNED, skip_kind, skip_planned

PROJECT_DIR = Path(__file__).resolve().parents[2]
ALLURE_TOOL_DIR = PROJECT_DIR / "tools" / "allure"
ALLURE_CONFIG = ALLURE_TOOL_DIR / "allurerc.json"
# Lets a lab machine point at a CLI installed elsewhere (must be Allure 3: the flags differ).
ALLURE_CLI_ENV = "HOWTO_ALLURE_CLI"
ALLURE_TIMEOUT_S = 300
RUN_ERROR_FILE = "error.txt"
RUN_DIR_FILE_ENV = "HOWTO_RUN_DIR_FILE"
HISTORY_DIR = "history"  # <reports-dir>/history/<topology>/allure-history.jsonl
ALLURE_HISTORY_LIMIT = 100

_WORKER_ALLURE_DIR = "howto_report_allure_dir"
_WORKER_RUN_DIR = "howto_report_run_dir"
_WORKER_ENV = "howto_report_environment"


@dataclass
class RunReports:
    """Where this run's reports go (None for a report another plugin cannot produce)."""

    root: Path
    run_dir: Path
    html: Path | None
    junit: Path | None
    allure_results: Path | None
    allure_report: Path | None
    notes: list[str] = field(default_factory=list)
    # False until the session starts: a usage error (bad option or topology) ends the run
    # before that, and then the empty run directory is removed and `latest` left alone.
    started: bool = False
    # Whether some test ran (any outcome, a skip included): `latest` moves only then, not
    # for --collect-only, a selection that left nothing, or a run stopped at collection.
    ran_tests: bool = False
    collector: summary.Collector = field(default_factory=summary.Collector)
    started_at: float = field(default_factory=time.time)
    topology: str = ""
    sign_off: dict | None = None  # the summary's verdict, once written
    tested_a_guide: bool = False  # some guide test ran (planned ones included)
    history: bool = False  # whether the run joins the topology's Allure history: real runs only


_RUN_KEY = pytest.StashKey[RunReports]()
_ENV_KEY = pytest.StashKey[dict[str, str]]()


class _WorkerNode(Protocol):
    """What the xdist hooks use of a worker's controller (xdist ships no types)."""

    config: pytest.Config
    workerinput: dict[str, object]


class _HtmlReport(Protocol):
    """What pytest_html_report_title uses of pytest-html's report (it ships no types)."""

    title: str


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def get_run_reports(config: pytest.Config) -> RunReports | None:
    """The current run's report locations (None on xdist workers and for --collect-only)."""
    return config.stash.get(_RUN_KEY, None)


def run_directory(config: pytest.Config) -> Path | None:
    """This run's directory under reports/, on the controller and on xdist workers alike."""
    if _is_worker(config):
        worker_input = config.workerinput  # type: ignore[attr-defined]  # set by xdist
        given = worker_input.get(_WORKER_RUN_DIR)
        return Path(given) if given else None
    run = get_run_reports(config)
    return run.run_dir if run is not None else None


def set_environment(config: pytest.Config, mapping: Mapping[str, object]) -> None:
    """Record run facts (DPDK version, kernel, topology...) for both reports.

    May be called any time before the session ends, also from xdist workers (the values
    travel back to the controller when the worker shuts down). Later calls add to and
    override earlier ones.
    """
    values = {str(k): str(v) for k, v in mapping.items()}
    env = config.stash.setdefault(_ENV_KEY, {})
    env.update(values)
    if _is_worker(config):
        worker_output = config.workeroutput  # type: ignore[attr-defined]  # set by xdist
        worker_output[_WORKER_ENV] = dict(env)
    else:
        _publish_to_html(config, values)


def record_run_error(config: pytest.Config, message: str) -> Path | None:
    """Write why the run stopped into its reports.

    The line goes to <run dir>/error.txt and to the Environment tables of report.html and
    the Allure report ("Run stopped").

    Returns:
        The file written; None without a run directory (xdist worker, --collect-only).
    """
    set_environment(config, {"Run stopped": message})
    run = get_run_reports(config)
    if run is None:
        return None
    path = run.run_dir / RUN_ERROR_FILE
    try:
        path.write_text(message + "\n")
    except OSError as exc:
        run.notes.append(f"could not write {path}: {exc.strerror or exc}")
        return None
    return path


def set_topology_name(config: pytest.Config, name: str) -> None:
    """Name the topology (or pool of testbeds) the run's summary and history belong to."""
    run = get_run_reports(config)
    if run is not None:
        run.topology = name


def _publish_to_html(config: pytest.Config, values: Mapping[str, str]) -> None:
    # pytest-html renders pytest-metadata's dict as its Environment table; it keeps a
    # reference to that same dict, so updating it in place shows up in the final report.
    try:
        from pytest_metadata.plugin import metadata_key
    except ImportError:
        return
    metadata = config.stash.get(metadata_key, None)
    if metadata is not None:
        metadata.update(values)


def pytest_addoption(parser: pytest.Parser) -> None:
    """Add --reports-dir and --no-allure-html."""
    group = parser.getgroup("howto-reports", "howto-conformance reports")
    group.addoption(
        "--reports-dir",
        dest="howto_reports_dir",
        metavar="DIR",
        default=None,
        help=f"root of the per-run report directories (default: {PROJECT_DIR / 'reports'})",
    )
    group.addoption(
        "--no-allure-html",
        dest="howto_no_allure_html",
        action="store_true",
        default=False,
        help="write allure-results but do not generate the Allure HTML report",
    )


def _make_run_dir(root: Path, given: str | None) -> Path:
    """Create a fresh run directory in root, and root itself if its parent exists.

    Raises:
        ConfigError: one line naming the option (or the default directory) at fault.
    """
    # Only the last level is created: a typo in --reports-dir must not grow a tree.
    what = f"--reports-dir {given}" if given else f"reports directory {root}"
    try:
        if root.exists() and not root.is_dir():
            raise ConfigError(f"{what}: {root} is not a directory")
        if not root.exists():
            if not root.parent.is_dir():
                state = "is not a directory" if root.parent.exists() else "does not exist"
                raise ConfigError(f"{what}: {root.parent} {state}")
            root.mkdir(exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        # Two runs started within the same second (CI matrix, a quick rerun) must not share.
        for n in range(1000):
            candidate = root / (stamp if n == 0 else f"{stamp}-{n}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            return candidate
    except OSError as exc:
        raise ConfigError(
            f"{what}: cannot create a run directory in {root}: {exc.strerror or exc}"
        ) from None
    raise ConfigError(f"{what}: 1000 run directories named {stamp}* already exist in {root}")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Create the run directory and point the html, junitxml and allure options into it."""
    opt = config.option
    if _is_worker(config):
        # xdist does not forward option values set in the controller's pytest_configure,
        # so allure-pytest on a worker learns the results dir from workerinput.
        worker_input = config.workerinput  # type: ignore[attr-defined]  # set by xdist
        allure_dir = worker_input.get(_WORKER_ALLURE_DIR)
        if allure_dir and hasattr(opt, "allure_report_dir") and not opt.allure_report_dir:
            opt.allure_report_dir = allure_dir
        return
    if getattr(opt, "help", False) or getattr(opt, "collectonly", False):
        return

    root = Path(opt.howto_reports_dir or PROJECT_DIR / "reports").expanduser().resolve()
    try:
        run_dir = _make_run_dir(root, opt.howto_reports_dir)
    except ConfigError as exc:
        raise pytest.UsageError(str(exc)) from None
    notes: list[str] = []

    html: Path | None = None
    if hasattr(opt, "htmlpath"):
        if not opt.htmlpath:
            opt.htmlpath = str(run_dir / "report.html")
            opt.self_contained_html = True
        html = Path(opt.htmlpath).resolve()
    else:
        notes.append("pytest-html is not active: no report.html")

    junit: Path | None = None
    if hasattr(opt, "xmlpath"):
        if not opt.xmlpath:
            opt.xmlpath = str(run_dir / "junit.xml")
        junit = Path(opt.xmlpath).resolve()
    else:
        notes.append("the junitxml plugin is disabled: no junit.xml")

    allure_results: Path | None = None
    allure_report: Path | None = None
    if hasattr(opt, "allure_report_dir"):
        if not opt.allure_report_dir:
            opt.allure_report_dir = str(run_dir / "allure-results")
        allure_results = Path(opt.allure_report_dir).resolve()
        try:
            allure_results.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise pytest.UsageError(
                f"--alluredir {opt.allure_report_dir}: cannot create it: {exc.strerror or exc}"
            ) from None
        if not opt.howto_no_allure_html:
            allure_report = run_dir / "allure-report"
    else:
        notes.append("allure-pytest is not active: no Allure results")

    config.stash[_RUN_KEY] = RunReports(
        root, run_dir, html, junit, allure_results, allure_report, notes
    )
    # scripts/nightly learns the run directory here: `latest` does not move for a run
    # stopped before its tests (the lab unusable), whose reports it must still publish.
    announce = os.environ.get(RUN_DIR_FILE_ENV)
    if announce:
        with contextlib.suppress(OSError):
            Path(announce).write_text(f"{run_dir}\n")
    env = config.stash.setdefault(_ENV_KEY, {})
    for key, value in (
        ("Run", run_dir.name),
        ("Python", platform.python_version()),
        ("pytest", pytest.__version__),
    ):
        env.setdefault(key, value)


def pytest_sessionstart(session: pytest.Session) -> None:
    """Mark the run as started: from now on its directory is kept and `latest` moves."""
    run = get_run_reports(session.config)
    if run is not None:
        run.started = True


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: _WorkerNode) -> None:
    """Tell an xdist worker where the run directory and the allure-results are."""
    run = get_run_reports(node.config)
    if run is not None:
        node.workerinput[_WORKER_RUN_DIR] = str(run.run_dir)
    if run is not None and run.allure_results is not None:
        node.workerinput[_WORKER_ALLURE_DIR] = str(run.allure_results)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: _WorkerNode, error: object) -> None:
    """Merge the environment facts a finished xdist worker recorded."""
    # A worker that crashed never sent its workeroutput.
    values = getattr(node, "workeroutput", {}).get(_WORKER_ENV)
    if values:
        set_environment(node.config, values)


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_header(cells: list[str]) -> None:
    """A Testbed column: which testbed of the pool each test ran on."""
    cells.insert(2, "<th>Testbed</th>")


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_table_row(report: pytest.TestReport, cells: list[str]) -> None:
    """The test's testbed (its `testbed` user property) in the Testbed column."""
    # a collection error's report has no user properties
    testbed = dict(getattr(report, "user_properties", ())).get("testbed", "")
    cells.insert(2, f"<td>{html.escape(str(testbed))}</td>")


@pytest.hookimpl(optionalhook=True)
def pytest_html_report_title(report: _HtmlReport) -> None:
    """Title report.html after the run directory."""
    config = getattr(report, "_config", None)
    run = get_run_reports(config) if config is not None else None
    report.title = f"howto-conformance {run.run_dir.name}" if run else "howto-conformance"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_protocol(
    item: pytest.Item, nextitem: pytest.Item | None
) -> Generator[None, object, object]:
    """Bind the item for its whole protocol, so attach helpers know which test they serve."""
    token = attach.bind_item(item)
    guide, variant = summary.item_identity(item)
    if guide is not None and not any(k == summary.GUIDE_PROPERTY for k, _ in item.user_properties):
        item.user_properties.append((summary.GUIDE_PROPERTY, str(guide)))
        item.user_properties.append((summary.VARIANT_PROPERTY, variant))
        form, not_proven = summary.item_form(item)
        if form:
            item.user_properties.append((summary.FORM_PROPERTY, form))
            item.user_properties.append((summary.NOT_PROVEN_PROPERTY, not_proven))
    try:
        return (yield)
    finally:
        attach.unbind_item(token)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Move the pytest-html extras queued during a phase onto that phase's report.

    The lines sent to testpmds during the phase go onto the test first (the report copies
    its properties), for the summary's command table.
    """
    commands.record_sent()
    report = yield
    pending = attach.take_pending_extras(item)
    if pending:
        extras = list(getattr(report, "extras", [])) + pending
        report.extras = extras  # type: ignore[attr-defined]  # pytest-html reads it at run time
    return report


def _properties_escape(text: str, is_key: bool) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif ch in "=:#!" and (is_key or i == 0):
            out.append("\\" + ch)
        elif ch == " " and (is_key or i == 0):
            out.append("\\ ")
        elif ord(ch) > 0x7E or ord(ch) < 0x20:
            # Java properties are Latin-1; \u escapes read the same in Allure 2 and 3.
            out.extend(f"\\u{unit:04x}" for unit in _utf16_units(ch))
        else:
            out.append(ch)
    return "".join(out)


def _utf16_units(ch: str) -> list[int]:
    data = ch.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


def write_environment_properties(directory: Path, env: Mapping[str, str]) -> Path:
    """Write Allure's environment.properties (keys sorted, for diffable runs)."""
    path = directory / "environment.properties"
    lines = [
        f"{_properties_escape(k, True)}={_properties_escape(v, False)}"
        for k, v in sorted(env.items())
    ]
    tmp = path.with_suffix(".properties.tmp")
    tmp.write_text("\n".join(lines) + "\n", encoding="ascii")
    os.replace(tmp, path)
    return path


def find_allure_cli() -> Path | None:
    """The Allure 3 CLI: $HOWTO_ALLURE_CLI if set, else tools/allure's; None if absent."""
    override = os.environ.get(ALLURE_CLI_ENV)
    if override:
        return Path(override) if Path(override).exists() else None
    local = ALLURE_TOOL_DIR / "node_modules" / ".bin" / "allure"
    return local if local.exists() else None


def history_file(root: Path, topology: str) -> Path:
    """The Allure history of the runs on one topology (or pool), kept under the reports root."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in topology) or "unnamed"
    return root / HISTORY_DIR / safe / "allure-history.jsonl"


def generate_allure_html(
    results: Path,
    output: Path,
    title: str,
    history: Path | None = None,
    attachments: Sequence[Path] = (),
) -> str | None:
    """Run the Allure 3 CLI; return None on success, else a one-line reason.

    With `history`, the report shows trends over the runs recorded there and this run is
    appended to it (Allure 3's historyPath; one writer at a time, under a lock). Each of
    `attachments` becomes a global attachment of the report (the conformance summary).
    """
    cli = find_allure_cli()
    if cli is None:
        return f"Allure CLI not found ({ALLURE_TOOL_DIR}/node_modules missing; run scripts/setup)"
    if shutil.which("node") is None:
        return "Allure CLI needs node, which is not on PATH (run scripts/setup)"
    # The CLI takes the history file only from a config file: one per run, beside the report.
    config = json.loads(ALLURE_CONFIG.read_text())
    if history is not None:
        config |= {"historyPath": str(history), "historyLimit": ALLURE_HISTORY_LIMIT}
    if attachments:
        config["globalAttachments"] = [str(p) for p in attachments]
    run_config = output.parent / ".allurerc.json"
    run_config.write_text(json.dumps(config))
    cmd = [str(cli), "generate", "--config", str(run_config), "--output", str(output)]
    cmd += ["--report-name", title, str(results)]
    env = dict(os.environ, NO_COLOR="1")
    lock = None
    try:
        if history is not None:
            history.parent.mkdir(parents=True, exist_ok=True)
            # Two runs appending to one history at once would interleave their lines.
            lock = open(history.parent / ".lock", "w")  # held across the run
            fcntl.flock(lock, fcntl.LOCK_EX)
        proc = subprocess.run(
            cmd,
            check=False,
            cwd=output.parent,
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=ALLURE_TIMEOUT_S,
        )
    except subprocess.TimeoutExpired:
        return f"Allure CLI timed out after {ALLURE_TIMEOUT_S} s"
    except OSError as exc:
        return f"Allure CLI could not start: {exc}"
    finally:
        if lock is not None:
            lock.close()
        with contextlib.suppress(OSError):
            run_config.unlink()
    if proc.returncode != 0 or not (output / "index.html").exists():
        tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or ["no output"]
        return f"Allure CLI exited {proc.returncode}: {tail[0][:200]}"
    return None


def pytest_deselected(items: Sequence[pytest.Item]) -> None:
    """Deselected guide tests are 'not run' rows of the summary.

    Those the topology's declared selection left out are 'not selected', with its reason.
    """
    for item in items:
        run = get_run_reports(item.config)
        if run is None:
            return
        guide, variant = summary.item_identity(item)
        run.collector.add_not_run(item.nodeid, guide, variant, item.stash.get(NOT_SELECTED, ""))


def _planning(config: pytest.Config) -> bool:
    return bool(getattr(config.option, "plan", False))


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> Generator[None, object, object]:
    """Under --plan a test that ran through is planned, not passed: nothing was judged."""
    result = yield
    if _planning(pyfuncitem.config):
        skip_planned("its commands were recorded (plan.txt); nothing was sent, no verdict judged")
    return result


def short_verdict(sign_off: Mapping[str, object]) -> str:
    """What the run signs off, exactly, or 'cannot sign off' (the reasons are in the summary)."""
    return str(sign_off["verdict"]) if sign_off["ok"] else "cannot sign off"


def write_run_summary(config: pytest.Config, exitstatus: int) -> None:
    """Write summary.json and summary.html, compared with the previous run's."""
    run = get_run_reports(config)
    if run is None:
        return
    env = config.stash.get(_ENV_KEY, {})
    stopped = env.get("Run stopped")
    finished = time.time()
    facts = {
        "name": run.run_dir.name,
        "topology": run.topology,
        "started": run.started_at,
        "finished": finished,
        "duration_s": round(finished - run.started_at, 1),
        "exit_status": 3 if stopped else int(exitstatus),
        "stopped": stopped,
        "plan": _planning(config),
        "faults": list(getattr(config.option, "inject_fault", None) or []),
        "ran_tests": run.ran_tests,
        "command": " ".join(["pytest", *config.invocation_params.args]),
    }
    previous = summary.find_previous(run.root, run.topology, run.run_dir.name)
    data = summary.build_summary(run.collector.records.values(), facts, env, previous)
    summary.write_summary(run.run_dir, data)
    run.sign_off = data["sign_off"] | {"regressions": len(data["regressions"])}
    run.tested_a_guide = summary.tested_a_guide(data)
    # A plan judged nothing: it never enters the topology's history of real runs.
    run.history = run.tested_a_guide and not facts["plan"]
    verdict = short_verdict(run.sign_off)
    set_environment(config, {"Conformance summary": f"{summary.SUMMARY_HTML}: {verdict}"})


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Complete the Environment tables and generate the Allure HTML report."""
    # tryfirst: the Environment table must be complete before pytest-html renders its
    # final report in its own (trylast) sessionfinish.
    config = session.config
    run = get_run_reports(config)
    if run is None:
        return
    env = config.stash.get(_ENV_KEY, {})
    _publish_to_html(config, env)
    summary_files: list[Path] = []
    if run.started:
        try:
            write_run_summary(config, int(exitstatus))
            summary_files = [run.run_dir / summary.SUMMARY_HTML, run.run_dir / summary.SUMMARY_JSON]
        except Exception as exc:  # a report problem never changes the verdict
            run.notes.append(f"conformance summary not written: {type(exc).__name__}: {exc}")
    if run.allure_results is None:
        return
    # A reporting problem must never change the verdict of the run: report and go on.
    try:
        write_environment_properties(run.allure_results, env)
    except OSError as exc:
        run.notes.append(f"could not write environment.properties: {exc}")
    if run.allure_report is not None:
        try:
            # Node rendering the report keeps a core busy for seconds: not while another
            # run's timing-sensitive guide holds the CPUs (framework.lab.cpu).
            lease = take_cpus(f"{run.run_dir.name} Allure HTML", exclusive=False)
            try:
                reason = generate_allure_html(
                    run.allure_results,
                    run.allure_report,
                    f"howto-conformance {run.run_dir.name}",
                    history=(history_file(run.root, run.topology) if run.history else None),
                    attachments=summary_files,
                )
            finally:
                lease.release()
        except Exception as exc:  # any failure here is only a report note
            reason = f"{type(exc).__name__}: {exc}"
        if reason:
            run.notes.append(f"Allure HTML report not generated: {reason}")
            run.allure_report = None


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list[str], session: pytest.Session) -> None:
    """Link the conformance summary from the top of report.html."""
    run = get_run_reports(session.config)
    if run is not None and run.sign_off is not None:
        prefix.append(
            f'<p><a href="{summary.SUMMARY_HTML}"><b>Conformance summary</b></a>: this '
            f"run {html.escape(short_verdict(run.sign_off))}.</p>"
        )


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print the report notes and where the reports are."""
    run = get_run_reports(terminalreporter.config)
    if run is None:
        return
    for note in run.notes:
        terminalreporter.write_line(f"reports: {note}", yellow=True)
    terminalreporter.write_sep("-", f"reports in {run.run_dir}")
    if run.sign_off is not None and run.tested_a_guide:
        verdict = short_verdict(run.sign_off)
        regressions = run.sign_off["regressions"]
        more = f"; {regressions} figure(s) regressed since the previous run" if regressions else ""
        terminalreporter.write_line(
            f"Conformance summary ({verdict}{more}): {run.run_dir / summary.SUMMARY_HTML}"
        )
    if run.allure_report is not None:
        terminalreporter.write_line(f"Allure report: {(run.allure_report / 'index.html').as_uri()}")


def update_latest_link(root: Path, run_dir: Path) -> None:
    """Point <root>/latest at run_dir, atomically (rename over the old link)."""
    link = root / "latest"
    if link.exists() and not link.is_symlink():
        raise OSError(f"{link} exists and is not a symlink")
    try:
        target: str = str(run_dir.relative_to(root))
    except ValueError:
        target = str(run_dir)
    tmp = root / f".latest.{os.getpid()}"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    os.symlink(target, tmp)
    os.replace(tmp, link)


@pytest.hookimpl(tryfirst=True)
def pytest_report_teststatus(
    report: pytest.TestReport, config: pytest.Config
) -> tuple[str, str, str] | None:
    """Note that a test ran and fold its report into the summary.

    On an xdist controller too: its workers' reports come here.
    """
    run = get_run_reports(config)
    # a module that fails to import reports here too, as a CollectReport: not a test
    if run is not None and isinstance(report, pytest.TestReport):
        run.ran_tests = True
        run.collector.add_report(report)
    if report.skipped and _planning(config) and isinstance(report.longrepr, tuple):
        if skip_kind(str(report.longrepr[2]).removeprefix("Skipped: ")) == PLANNED:
            return ("planned", "P", "PLANNED")
    return None


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """Point <reports-dir>/latest at this run, if it ran a test."""
    # In unconfigure, so that `latest` only moves once report.html and junit.xml are final.
    run = get_run_reports(config)
    if run is None:
        return
    if not run.started:
        # Only empty directories are removed: whatever a plugin wrote there stays.
        for directory in (run.allure_results, run.run_dir):
            if directory is not None and directory.is_relative_to(run.run_dir):
                with contextlib.suppress(OSError):
                    directory.rmdir()
        return
    if not run.ran_tests:
        # Silently: a run stopped by an error keeps that error as its last line.
        return
    try:
        update_latest_link(run.root, run.run_dir)
    except OSError as exc:
        tr = config.pluginmanager.get_plugin("terminalreporter")
        message = f"reports: could not update {run.root / 'latest'}: {exc}"
        if tr is not None:
            tr.write_line(message, yellow=True)
        else:
            print(message)
