"""testpmd command lines that fit the DPDK release actually installed.

The HowTo guides were written for DPDK 17.05. Several of their options were renamed or
removed since, so a guide line cannot be pasted. Two entry points:

* ``testpmd_argv`` builds an argv from typed options (EalOptions, TestPmdOptions) for a
  given version, dropping what that version no longer has;
* ``translate_guide_command`` / ``translate_testpmd_command`` rewrite a literal guide line
  and say, change by change, what was done, so a report can show both.
"""

from __future__ import annotations

import logging
import re
import shlex
from dataclasses import dataclass, field

from framework.config.model import DEFAULT_TESTPMD
from framework.dpdk.modes import ForwardingModeLike
from framework.dpdk.version import DpdkVersion

log = logging.getLogger("howto.dpdk")


# Release boundaries the translations depend on.
V18_02 = DpdkVersion(18, 2)
V18_08 = DpdkVersion(18, 8)
V20_11 = DpdkVersion(20, 11)
V23_11 = DpdkVersion(23, 11)


@dataclass(frozen=True)
class RemovedOption:
    """A testpmd application option that a later release no longer accepts."""

    name: str
    removed_in: DpdkVersion
    takes_value: bool
    why: str


# testpmd exits with "unrecognized option" on any of these once removed (measured on
# 22.11 for --txqflags and --disable-hw-vlan). Releases: the testpmd conversion to the
# ethdev offloads API (2018) turned --disable-hw-vlan* into opt-in --enable-hw-vlan*, and
# --txqflags left with the legacy txq_flags field of ethdev.
REMOVED_APP_OPTIONS: dict[str, RemovedOption] = {
    opt.name: opt
    for opt in (
        RemovedOption("--txqflags", V18_08, True, "Tx offloads are now requested per offload"),
        RemovedOption("--disable-hw-vlan", V18_02, False, "VLAN offloads are off by default"),
        RemovedOption("--disable-hw-vlan-filter", V18_02, False, "VLAN filter is off by default"),
        RemovedOption("--disable-hw-vlan-strip", V18_02, False, "VLAN strip is off by default"),
        RemovedOption("--disable-hw-vlan-extend", V18_02, False, "VLAN extend is off by default"),
    )
}

# EAL long options renamed in 20.11 (allow/block lists, main lcore).
_EAL_RENAMES_20_11 = {
    "-w": "-a",
    "--pci-whitelist": "-a",
    "--pci-blacklist": "-b",
    "--master-lcore": "--main-lcore",
}

# EAL options that take a value (needed to split a guide line into option/value pairs).
_EAL_WITH_VALUE = {
    "-l",
    "-c",
    "-n",
    "-m",
    "-a",
    "-b",
    "-w",
    "-d",
    "-r",
    "--lcores",
    "--socket-mem",
    "--socket-limit",
    "--file-prefix",
    "--vdev",
    "--proc-type",
    "--pci-whitelist",
    "--pci-blacklist",
    "--allow",
    "--block",
    "--huge-dir",
    "--iova-mode",
    "--log-level",
    "--master-lcore",
    "--main-lcore",
    "--base-virtaddr",
    "--vfio-intr",
    "--mbuf-pool-ops-name",
    "--syslog",
    "--service-corelist",
    "-s",
    "-S",
}


@dataclass
class EalOptions:
    """EAL options (before the ``--``)."""

    lcores: str | None = "0-1"
    memory_channels: int | None = None
    socket_mem: list[int] | None = None
    memory_mb: int | None = None
    file_prefix: str | None = None
    no_pci: bool = False
    allow: list[str] = field(default_factory=list)
    vdevs: list[str] = field(default_factory=list)
    single_file_segments: bool = False
    huge_unlink: bool = False
    no_huge: bool = False
    in_memory: bool = False
    iova_mode: str | None = None
    log_level: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)


@dataclass
class TestPmdOptions:
    """testpmd application options (after the ``--``), including two removed legacy ones."""

    __test__ = False  # not a pytest class

    interactive: bool = True
    rxq: int | None = None
    txq: int | None = None
    rxd: int | None = None
    txd: int | None = None
    nb_cores: int | None = None
    total_num_mbufs: int | None = None
    forward_mode: ForwardingModeLike | None = None
    port_topology: str | None = None
    enable_lro: bool = False
    enable_rx_cksum: bool = False
    disable_rss: bool = False
    auto_start: bool = False
    stats_period: int | None = None
    # Legacy (17.05) options, kept so a guide line can be expressed; dropped when absent.
    txqflags: str | None = None
    disable_hw_vlan: bool = False
    extra: list[str] = field(default_factory=list)


def _eal_argv(eal: EalOptions, version: DpdkVersion) -> list[str]:
    argv: list[str] = []
    if eal.lcores:
        argv += ["-l", eal.lcores]
    if eal.memory_channels:
        argv += ["-n", str(eal.memory_channels)]
    if eal.socket_mem:
        argv += ["--socket-mem", ",".join(str(m) for m in eal.socket_mem)]
    if eal.memory_mb:
        argv += ["-m", str(eal.memory_mb)]
    if eal.file_prefix:
        argv += ["--file-prefix", eal.file_prefix]
    if eal.no_pci:
        argv.append("--no-pci")
    allow_flag = "-a" if version >= V20_11 else "-w"
    for address in eal.allow:
        argv += [allow_flag, address]
    for vdev in eal.vdevs:
        argv += ["--vdev", vdev]
    if eal.single_file_segments:
        argv.append("--single-file-segments")
    if eal.huge_unlink:
        argv.append("--huge-unlink")
    if eal.no_huge:
        argv.append("--no-huge")
    if eal.in_memory:
        argv.append("--in-memory")
    if eal.iova_mode:
        argv += ["--iova-mode", eal.iova_mode]
    for level in eal.log_level:
        argv += ["--log-level", level]
    return argv + list(eal.extra)


def _app_argv(app: TestPmdOptions, version: DpdkVersion, changes: list[str]) -> list[str]:
    argv: list[str] = ["-i"] if app.interactive else []
    for name, value in (
        ("--rxq", app.rxq),
        ("--txq", app.txq),
        ("--rxd", app.rxd),
        ("--txd", app.txd),
        ("--nb-cores", app.nb_cores),
        ("--total-num-mbufs", app.total_num_mbufs),
        ("--forward-mode", app.forward_mode),
        ("--port-topology", app.port_topology),
        ("--stats-period", app.stats_period),
    ):
        if value is not None:
            argv.append(f"{name}={value}")
    for name, enabled in (
        ("--enable-lro", app.enable_lro),
        ("--enable-rx-cksum", app.enable_rx_cksum),
        ("--disable-rss", app.disable_rss),
        ("--auto-start", app.auto_start),
    ):
        if enabled:
            argv.append(name)
    legacy: list[tuple[str, str | None]] = []
    if app.txqflags is not None:
        legacy.append(("--txqflags", app.txqflags))
    if app.disable_hw_vlan:
        legacy.append(("--disable-hw-vlan", None))
    for name, value in legacy:
        removed = REMOVED_APP_OPTIONS[name]
        spelled = f"{name}={value}" if value is not None else name
        if version >= removed.removed_in:
            changes.append(_dropped_note(spelled, removed))
        else:
            argv.append(spelled)
    return argv + list(app.extra)


def _dropped_note(spelled: str, removed: RemovedOption) -> str:
    release = f"{removed.removed_in.year}.{removed.removed_in.month:02d}"
    return f"{spelled} dropped (removed in {release}: {removed.why})"


def testpmd_argv(
    binary: str,
    eal: EalOptions,
    app: TestPmdOptions,
    version: DpdkVersion,
    changes: list[str] | None = None,
) -> list[str]:
    """The full argv for `version`; notes about dropped legacy options go to `changes`."""
    notes: list[str] = [] if changes is None else changes
    argv = [binary, *_eal_argv(eal, version), "--", *_app_argv(app, version, notes)]
    for note in notes:
        log.info("testpmd argv for DPDK %s: %s", version, note)
    return argv


testpmd_argv.__test__ = False  # type: ignore[attr-defined]  # not a pytest test


# ---------------------------------------------------------------------------------------
# Guide line translation


@dataclass
class Translation:
    """A guide's command line and the argv that does the same on the installed release."""

    original: str
    argv: list[str]
    changes: list[str] = field(default_factory=list)
    # Tokens that ran testpmd inside something else (e.g. `docker run ... image`), which
    # the caller must provide its own way (podman on the virtual lab).
    wrapper: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        """The translated argv as one shell-quoted line, for reports."""
        return shlex.join(self.argv)


@dataclass
class CommandTranslation:
    """An interactive testpmd command from a guide, as the installed release spells it."""

    original: str
    command: str
    changes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        """Whether the installed release spells the command differently from the guide."""
        return self.command != self.original


_BINARY_NAMES = {"testpmd", "dpdk-testpmd"}


def _is_testpmd_token(token: str) -> bool:
    # "$(testpmd)", "./x86_64-native-linuxapp-gcc/app/testpmd", "$RTE_SDK/install/bin/testpmd"
    bare = token.strip()
    if bare.startswith("$(") and bare.endswith(")"):
        bare = bare[2:-1]
    return bare.rsplit("/", 1)[-1] in _BINARY_NAMES


def _join_continuations(text: str) -> str:
    # Guides break lines with "\" and sometimes leave spaces after it ("\  ").
    return re.sub(r"\\[ \t]*\r?\n", " ", text.strip()).strip()


def _split_option(token: str) -> tuple[str, str | None]:
    if token.startswith("--") and "=" in token:
        name, value = token.split("=", 1)
        return name, value
    return token, None


def translate_guide_command(
    line: str, version: DpdkVersion, binary: str = DEFAULT_TESTPMD
) -> Translation:
    """Rewrite a guide's testpmd command line for `version`, recording every change."""
    original = line
    tokens = shlex.split(_join_continuations(line))
    start = next((i for i, tok in enumerate(tokens) if _is_testpmd_token(tok)), None)
    if start is None:
        raise ValueError(f"no testpmd binary in guide command: {original!r}")
    changes: list[str] = []
    wrapper = tokens[:start]
    if wrapper:
        changes.append(
            f"wrapper `{shlex.join(wrapper)}` kept apart: run testpmd inside it separately"
        )
    if tokens[start] != binary:
        changes.append(f"{tokens[start]} -> {binary} (the installed binary)")
    rest = tokens[start + 1 :]
    if "--" in rest:
        cut = rest.index("--")
        eal_tokens, app_tokens = rest[:cut], rest[cut + 1 :]
    else:
        eal_tokens, app_tokens = rest, []

    eal = _translate_eal(eal_tokens, version, changes)
    app, moved = _translate_app(app_tokens, version, changes)
    eal += moved
    return Translation(original, [binary, *eal, "--", *app], changes, wrapper)


def _allow_flag(version: DpdkVersion) -> str:
    return "-a" if version >= V20_11 else "-w"


def _translate_eal(tokens: list[str], version: DpdkVersion, changes: list[str]) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(tokens):
        name, value = _split_option(tokens[i])
        joined = value is not None  # keep the guide's "--opt=value" spelling
        i += 1
        if value is None and name in _EAL_WITH_VALUE and i < len(tokens):
            value = tokens[i]
            i += 1
        new_name = name
        if version >= V20_11 and name in _EAL_RENAMES_20_11:
            new_name = _EAL_RENAMES_20_11[name]
            changes.append(f"{name} {value} -> {new_name} {value} (renamed in 20.11)")
        elif version < V20_11 and name in ("-a", "--allow"):
            new_name = "-w"
            changes.append(f"{name} {value} -> -w {value} (-a only exists from 20.11)")
        if joined and new_name.startswith("--"):
            out.append(f"{new_name}={value}")
        else:
            out.append(new_name)
            if value is not None:
                out.append(value)
    return out


def _translate_app(
    tokens: list[str], version: DpdkVersion, changes: list[str]
) -> tuple[list[str], list[str]]:
    """Return (app argv, EAL tokens the guide misplaced after the ``--``)."""
    out: list[str] = []
    moved: list[str] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        name, value = _split_option(token)
        if name in ("-w", "-a"):
            # Guide 3 puts "-w 01:10.0" after "--": testpmd would reject it; it is EAL's.
            address = tokens[i] if i < len(tokens) else ""
            i += 1
            flag = _allow_flag(version)
            moved += [flag, address]
            note = f"{name} {address} moved before `--` (an EAL option, not a testpmd one)"
            if flag != name:
                note += f" and spelled {flag} (renamed in 20.11)"
            changes.append(note)
            continue
        if name == "--i":
            out.append("-i")
            changes.append("--i -> -i (abbreviation spelled out)")
            continue
        removed = REMOVED_APP_OPTIONS.get(name)
        if removed is not None:
            if removed.takes_value and value is None and i < len(tokens):
                value = tokens[i]
                i += 1
            spelled = f"{name}={value}" if value is not None else name
            if version >= removed.removed_in:
                changes.append(_dropped_note(spelled, removed))
            else:
                out.append(spelled)
            continue
        out.append(token)
    return out, moved


# ---------------------------------------------------------------------------------------
# Interactive commands

_BONDING_MEMBER = re.compile(r"^(add|remove)\s+bonding\s+(slave|member)\b")
_BONDING_CREATE = re.compile(r"^create\s+(bonded|bonding)\s+device\b")
_QUEUES_DROP = re.compile(r"^set\s+all\s+queues\s+drop\s+(on|off)\s*$")


def bonding_member_word(version: DpdkVersion) -> str:
    """The bonding word of `version`: "slave" up to 23.07, "member" from 23.11."""
    return "member" if version >= V23_11 else "slave"


def bonding_device_word(version: DpdkVersion) -> str:
    """`create bonded device` up to 23.07, `create bonding device` from 23.11."""
    return "bonding" if version >= V23_11 else "bonded"


def translate_testpmd_command(
    command: str, version: DpdkVersion, *, port: int | None = None
) -> CommandTranslation:
    """Rewrite an interactive command from a guide for `version`.

    `port` fills in a port id the guide left out (``set all queues drop on``); without it
    such a command is returned unchanged with a note saying what is missing.
    """
    original = command
    text = " ".join(command.split())
    changes: list[str] = []

    # 23.11's bonding renames: (pattern, the word's group, the release's word, its context)
    for pattern, group, word_of, context in (
        (_BONDING_MEMBER, 2, bonding_member_word, "bonding {}"),
        (_BONDING_CREATE, 1, bonding_device_word, "create {} device"),
    ):
        match = pattern.match(text)
        word = word_of(version)
        if match and match.group(group) != word:
            text = text[: match.start(group)] + word + text[match.end(group) :]
            when = "renamed in 23.11" if version >= V23_11 else f"`{word_of(V23_11)}` from 23.11"
            changes.append(
                f"{context.format(match.group(group))} -> {context.format(word)} ({when})"
            )

    match = _QUEUES_DROP.match(text)
    if match:
        if port is None:
            changes.append(
                "`set all queues drop` needs a port id: set all queues drop (port_id) (on|off);"
                " pass port="
            )
        else:
            text = f"set all queues drop {port} {match.group(1)}"
            changes.append(
                f"port id {port} added (testpmd syntax: set all queues drop (port_id) (on|off))"
            )

    if version >= V20_11 and re.match(r"^port\s+close\b", text):
        changes.append(
            "note: since 20.11 `port close` releases the port, so a following `port detach`"
            " of the same id answers `Invalid port_id`; use `port stop` + `port detach`"
        )
    return CommandTranslation(original, text, changes)
