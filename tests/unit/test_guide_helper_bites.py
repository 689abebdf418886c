"""Bites for guide checks that live in a verification helper judging captured data.

Each case takes a verify_* call of a guide module as the scanner finds it (its label: the
`what` it promises) and feeds the helper what a broken DUT produces, as the TG would have
captured it; the helper must fail with that call's own message. No traffic: the TG's
side is a capture handed back as TrafficGenerator.exchange returns it.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
from collections.abc import Iterator, Mapping, Sequence
from typing import ClassVar

import pytest
from scapy.layers.inet import ICMP, IP, UDP
from scapy.layers.l2 import ARP, Ether
from scapy.packet import Packet, Raw

from framework.config.model import Guide1Windows, WindowBounds
from framework.container.memory import ContainerMemory, parse_maps, verify_memory
from framework.dpdk.parsers import (
    PortInfo,
    PortStats,
    decisive_startup_line,
    parse_bonding_config,
    parse_forwarding_lcores,
    parse_fwd_config,
    parse_port_info,
    parse_port_macs,
    parse_port_stats,
    parse_rss_enabled,
    parse_rxtx_config,
)
from framework.dpdk.settings import GuideSettings, PmdSettings
from framework.dpdk.testpmd import StartAttempt
from framework.dpdk.verify import (
    BondState,
    verify_bond,
    verify_forwarding,
    verify_pmd_settings,
    verify_port_counts,
    verify_port_macs,
    verify_port_traffic,
    verify_ports,
    verify_refused,
)
from framework.dpdk.virtio import (
    VirtioNetFeature,
    negotiations,
    port_negotiation,
    verify_negotiated,
)
from framework.lab.netdev import KernelInterface, parse_interface, verify_tap
from framework.lab.tuning import parse_tuning, verify_tuned
from framework.scenarios.sriov_bond_migration import GUIDE_VF_MAC
from framework.traffic.checks import verify_frames_intact, verify_sender
from framework.traffic.generator import Capture, CapturedFrame
from framework.traffic.packets import swap_macs, udp_flow
from framework.traffic.stream import AlteredFrame, LossWindow, StreamResult, synthetic
from framework.traffic.trials import Trial, verify_trial
from framework.traffic.verify import (
    verify_answers,
    verify_forwarded,
    verify_not_forwarded,
    verify_packets,
)
from framework.traffic.windows import verify_clean_outside, verify_window
from framework.verify import VerifyFailed
from framework.virt.verify import verify_perm_addr_kept, verify_vcpu_pins
from tests.bites.scan import ROOT, Assertion, scan

GUIDE_CALLS = [a for s in scan().values() for a in s.assertions if a.kind == "verify"]


def _calls(helper: str) -> dict[str, dict[str, object]]:
    """Every `helper(...)` call of the guide modules: its first string argument (the
    promise it checks) -> the constant keyword arguments it passes (of its first call)."""
    calls: dict[str, dict[str, object]] = {}
    for a in GUIDE_CALLS:
        if a.key.startswith(f"{helper}("):
            calls.setdefault(a.fragments[0], dict(a.keywords))
    return dict(sorted(calls.items()))


def _labels(helper: str) -> list[str]:
    return list(_calls(helper))


class CapturedBy:
    """The TG's side of one exchange: hands back what a broken DUT sent, records the call."""

    def __init__(self, answer: dict[str, list[bytes]]) -> None:
        self.answer = answer
        self.sent: list[Packet] = []

    def exchange(self, tx_port: str, packets: Sequence[Packet], ports: list[str], **_) -> Capture:
        self.sent = list(packets)
        frames = {
            port: [CapturedFrame(raw, 0.001 * i) for i, raw in enumerate(self.answer.get(port, []))]
            for port in ports
        }
        return Capture(frames, sent=len(packets))


# -- verify_frames_intact: guides 1 and 2, every stream ---------------------------------------


def _stream_with_one_altered_and_one_reordered():
    """What a DUT that flips byte 62 of seq 3 and delivers seq 6 before seq 5 leaves."""
    expected = bytes(range(64))
    seen = bytearray(expected)
    seen[62] ^= 0x01
    return synthetic(
        [0, 1, 2, 3, 4, 6, 5, 7],
        [0.001 * i for i in range(8)],
        sent=8,
        pps=1000,
        altered=1,
        altered_frames=[AlteredFrame("eth1", 3, 62, bytes(seen), expected)],
    )


@pytest.mark.parametrize("what", _labels("verify_frames_intact"))
def test_verify_frames_intact_names_an_altered_and_a_reordered_frame(what: str) -> None:
    """Called as the guide module calls it (in_order=False: order is judged elsewhere)."""
    keywords = _calls("verify_frames_intact")[what]
    with pytest.raises(AssertionError) as failed:
        verify_frames_intact(_stream_with_one_altered_and_one_reordered(), what, **keywords)  # type: ignore[arg-type]  # the guide's keywords, read as objects
    text = str(failed.value)
    assert text.startswith(f"{what}: every frame arrives whole"), text
    assert "1 altered: seq 3 on eth1 differs at byte 62 (expected 0x3e, seen 0x3f" in text, text
    if keywords.get("in_order", True):
        assert "1 reordered: seq 5" in text, text


# -- verify_answers: guide 7, the kernel's answers through DPDK --------------------------------

TG_MAC, TAP_MAC = "02:00:00:00:07:01", "02:00:00:00:07:02"
TG_IP, TAP_IP = "198.18.7.1", "198.18.7.2"
_TO_TAP = Ether(src=TG_MAC, dst=TAP_MAC) / IP(src=TG_IP, dst=TAP_IP)
# the requests the guide-7 module sends, per `what` of its verify_answers calls
REQUESTS = {
    "ARP reply": [
        Ether(src=TG_MAC, dst="ff:ff:ff:ff:ff:ff")
        / ARP(op=1, hwsrc=TG_MAC, psrc=TG_IP, pdst=TAP_IP)
    ],
    "echo reply": [_TO_TAP / ICMP(id=7, seq=i) / Raw(b"howto-7 ping %d" % i) for i in range(4)],
    "UDP echo": [
        _TO_TAP / UDP(sport=40000 + i, dport=7) / Raw(b"howto-7 udp %d" % i) for i in range(4)
    ],
}


def _linux_answer(request: Packet) -> bytes:
    """What the kernel behind the tap sends back (its own IP id and TTL), padded to 60."""
    request = Ether(bytes(request))
    if ARP in request:
        reply = Ether(src=TAP_MAC, dst=TG_MAC) / ARP(
            op=2, hwsrc=TAP_MAC, psrc=TAP_IP, hwdst=TG_MAC, pdst=TG_IP
        )
    elif ICMP in request:
        reply = (
            Ether(src=TAP_MAC, dst=TG_MAC) / IP(src=TAP_IP, dst=TG_IP, ttl=64, id=4242)
            / ICMP(type=0, id=request[ICMP].id, seq=request[ICMP].seq) / request[Raw]
        )  # fmt: skip
    else:
        reply = (
            Ether(src=TAP_MAC, dst=TG_MAC) / IP(src=TAP_IP, dst=TG_IP, ttl=64, id=4242)
            / UDP(sport=request[UDP].dport, dport=request[UDP].sport) / request[Raw]
        )  # fmt: skip
    return bytes(reply).ljust(60, b"\0")


def test_every_guide_answer_kind_has_requests() -> None:
    assert set(_labels("verify_answers")) <= set(REQUESTS), (
        f"a guide module checks answers this file cannot bite yet: "
        f"{sorted(set(_labels('verify_answers')) - set(REQUESTS))}"
    )


@pytest.mark.parametrize("what", _labels("verify_answers"))
def test_verify_answers_names_a_lost_answer(what: str) -> None:
    """The path loses the first answer (the kernel answered; DPDK did not forward it)."""
    requests = REQUESTS[what]
    answers = [_linux_answer(r) for r in requests[1:]]
    tg = CapturedBy({"eth1": answers})
    with pytest.raises(AssertionError) as failed:
        verify_answers(tg, requests, "eth1", "eth1", what=what, responder_mac=TAP_MAC)  # type: ignore[arg-type]  # a fake TG
    text = str(failed.value)
    assert text.startswith("verify_answers eth1 -> eth1: "), text
    assert f": expected 1 {what}, seen 0" in text, text
    assert f"eth1 saw {len(answers)} frame(s)" in text, text


@pytest.mark.parametrize("what", _labels("verify_answers"))
def test_verify_answers_names_an_answer_damaged_on_the_way(what: str) -> None:
    """The path delivers the last answer with its source MAC's last bit flipped."""
    requests = REQUESTS[what]
    answers = [_linux_answer(r) for r in requests]
    damaged = bytearray(answers[-1])
    damaged[11] ^= 0x01
    answers[-1] = bytes(damaged)
    tg = CapturedBy({"eth1": answers})
    with pytest.raises(AssertionError) as failed:
        verify_answers(tg, requests, "eth1", "eth1", what=what, responder_mac=TAP_MAC)  # type: ignore[arg-type]  # a fake TG
    text = str(failed.value)
    assert f": the {what} has Ether.src 02:00:00:00:07:03 (expected {TAP_MAC})" in text, text


# -- verify_packets: guide 4's end-to-end check before measuring -------------------------------


def test_verify_packets_names_frames_not_swapped_and_frames_sent_back() -> None:
    """A guest forwarding io instead of macswap, and a host echoing frames to their port."""
    frames = [
        udp_flow("02:00:00:00:04:01", "02:00:00:00:04:02", "198.18.4.1", "198.18.5.1", 1000,
                 2000, seq=i, size=64)
        for i in range(32)
    ]  # fmt: skip
    unswapped = [bytes(f) for f in frames]
    tg = CapturedBy({"tg1": unswapped, "tg0": unswapped[:1]})
    with pytest.raises(AssertionError) as failed:
        verify_packets(tg, frames, "tg0", "tg1", swap_macs, silent_ports=["tg0"])  # type: ignore[arg-type]  # a fake TG
    text = str(failed.value)
    assert text.startswith("verify_packets tg0 -> tg1: expected 32 packets on tg1, saw 32"), text
    assert "  altered (32): seq 0-31" in text, text
    assert "verify_packets tg0 -> tg1: tg0 must see no test packets but saw 1: seq 0" in text, text


# -- verify_bond, verify_port_traffic: guide 1's bond, as testpmd shows it ---------------------

TESTPMD = ROOT / "tests" / "data" / "testpmd"
# `show bonding config 2` of real testpmds (net_null members, tests/data/testpmd/capture.py)
# in the states a broken DUT leaves: not started (none active), the first member primary, a
# member removed, mode 0, and the guide's own start (broken wherever P0 must be primary).
BOND_CAPTURES = {
    name: parse_bonding_config((TESTPMD / f"{name}.txt").read_text())
    for name in (
        "show_bonding_config_stopped",
        "show_bonding_config_primary_unset",
        "show_bonding_config_removed",
        "show_bonding_config_mode0",
        "show_bonding_config_started",
    )
}
# `show port stats all` of real testpmds: nothing forwarded; the bond forwarding through
# P1 with P0 idle; io forwarding on P0 and P1.
STATS_CAPTURES = {
    name: parse_port_stats((TESTPMD / f"{name}.txt").read_text())
    for name in (
        "show_port_stats_all_bond_idle",
        "show_port_stats_all_bond_forwarding",
        "show_port_stats_all_running",
    )
}


class _Measured(int):
    """What a test measures at run time (a count of frames sent), standing in where a call's
    argument names it: the count FREE_COUNT, and each attribute read from it (a fixture's
    port ids, `guide.nic_port`) a port id of its own, distinct from the captures' 0-2."""

    ports: ClassVar[dict[str, int]] = {}

    def __getattr__(self, name: str) -> _Measured:
        return _Measured(self.ports.setdefault(name, 10 + len(self.ports)))

    def __getitem__(self, key: object) -> _Measured:
        return _Measured(FREE_COUNT)  # an item of what the test read (a MAC by port)


FREE_COUNT = 7


class _Names(Mapping[str, object]):
    """The names of a call: the test's own (its parameters and locals) are measured
    stand-ins, the others its module's."""

    def __init__(self, module: dict[str, object], own: set[str]) -> None:
        self.module, self.own = module, own

    def __getitem__(self, name: str) -> object:
        if name in self.own or name not in self.module:
            return _Measured(FREE_COUNT)
        return self.module[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.module)

    def __len__(self) -> int:
        return len(self.module)


def _own_names(call: Assertion) -> set[str]:
    """The parameters and assigned names of the function (and its outer ones) the call
    is in: what the test has at run time, not its module."""
    tree = ast.parse((ROOT / "testsuites" / f"{call.module}.py").read_text())
    own: set[str] = set()
    scope: ast.AST = tree
    for name in call.function.split("."):
        scope = next(
            n
            for n in ast.walk(scope)
            if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) and n.name == name
        )
        own |= {a.arg for a in ast.walk(scope.args) if isinstance(a, ast.arg)}
        own |= {n.id for n in ast.walk(scope) if isinstance(n, ast.Name)
                and isinstance(n.ctx, ast.Store)}  # fmt: skip
    return own


def _arguments(call: Assertion) -> tuple[list[object], dict[str, object]]:
    """The call's arguments after the first (what testpmd showed), evaluated in its module;
    a value the test measures at run time stands in as _Measured."""
    node = ast.parse(call.call, mode="eval").body
    assert isinstance(node, ast.Call)
    module = vars(importlib.import_module(f"testsuites.{call.module}"))
    names = _Names(module, _own_names(call))

    def value(expr: ast.expr) -> object:
        code = compile(ast.Expression(expr), call.call, "eval")
        return eval(code, {"__builtins__": __builtins__}, names)

    keywords = {k.arg: value(k.value) for k in node.keywords if k.arg}
    return [value(a) for a in node.args[1:]], keywords


def _guide_calls(helper: str) -> list[Assertion]:
    return [a for a in GUIDE_CALLS if a.key.startswith(f"{helper}(")]


def _call_id(call: Assertion) -> str:
    return call.fragments[0]


@pytest.mark.parametrize("call", _guide_calls("verify_bond"), ids=_call_id)
def test_verify_bond_names_every_field_a_broken_bond_gets_wrong(call: Assertion) -> None:
    """Each field the guide step judges, against every captured bond that differs in it."""
    (what, expected), _ = _arguments(call)
    assert isinstance(what, str) and isinstance(expected, BondState)
    wrong = {
        "mode": lambda c: expected.mode is not None and c.mode != expected.mode,
        "members": lambda c: (
            expected.members is not None and sorted(c.members) != sorted(expected.members)
        ),
        "active": lambda c: (
            expected.active is not None and sorted(c.active_members) != sorted(expected.active)
        ),
        "primary": lambda c: expected.primary is not None and c.primary != expected.primary,
    }
    said = {
        "mode": lambda c: f"mode {c.mode}, expected {expected.mode}",
        "members": lambda c: f"members {c.members}, expected {sorted(expected.members or ())}",
        "active": lambda c: f"active {c.active_members}, expected {sorted(expected.active or ())}",
        "primary": lambda c: f"primary P{c.primary}, expected P{expected.primary}",
    }
    for field in ("mode", "members", "active", "primary"):
        if getattr(expected, field) is None:
            continue
        broken = [name for name, config in BOND_CAPTURES.items() if wrong[field](config)]
        assert broken, f"no captured bond gets {field} wrong for {expected}: capture one"
        for name in broken:
            config = BOND_CAPTURES[name]
            with pytest.raises(AssertionError) as failed:
                verify_bond(config, what, expected)
            text = str(failed.value)
            assert text.startswith(f"{what}; "), text
            assert said[field](config) in text, f"{name}: {text}"
            assert str(config) in text, text


def test_verify_bond_passes_the_bonds_a_correct_dut_shows() -> None:
    """The guide's start (P1 primary, both active) and failover (P0 alone)."""
    started = BOND_CAPTURES["show_bonding_config_started"]
    removed = BOND_CAPTURES["show_bonding_config_removed"]
    verify_bond(started, "started", BondState(mode=1, members=(1, 0), active=(0, 1), primary=1))
    verify_bond(removed, "failover", BondState(mode=1, members=(0,), active=(0,), primary=0))


def _ports(spec: object, stats: dict[int, PortStats]) -> list[int]:
    """The port ids a call judges in these stats ("all": every port reported)."""
    return sorted(stats) if spec == "all" else list(spec)  # type: ignore[call-overload]  # a guide's argument, read as an object


@pytest.mark.parametrize("call", _guide_calls("verify_port_traffic"), ids=_call_id)
def test_verify_port_traffic_names_idle_ports_and_ports_that_send(call: Assertion) -> None:
    """Moving ports against testpmd's counters of no traffic; silent and idle ports against
    every capture where that port sent (silent) or received or sent (idle)."""
    (what,), keywords = _arguments(call)
    assert isinstance(what, str)
    judged = {k: keywords.get(k, ()) for k in ("moving", "silent", "idle")}
    assert any(judged.values()), f"{call.id} judges no port"
    idle = STATS_CAPTURES["show_port_stats_all_bond_idle"]
    if moving := _ports(judged["moving"], idle):
        with pytest.raises(AssertionError) as failed:
            verify_port_traffic(idle, what, **judged)  # type: ignore[arg-type]  # the guide's keywords, read as objects
        text = str(failed.value)
        assert text.startswith(f"{what}; "), text
        for port in moving:
            assert f"P{port} RX 0 TX 0, expected both moving" in text, text
    for kind, broken, said in (
        ("silent", lambda s: s.tx_packets > 0, "expected to send nothing"),
        ("idle", lambda s: s.rx_packets + s.tx_packets > 0, "expected no traffic"),
    ):
        if not judged[kind]:
            continue
        caught = 0
        for name, stats in STATS_CAPTURES.items():
            for port in _ports(judged[kind], stats):
                if port not in stats or not broken(stats[port]):
                    continue
                with pytest.raises(AssertionError) as failed:
                    verify_port_traffic(stats, what, **judged)  # type: ignore[arg-type]  # the guide's keywords, read as objects
                seen = f"P{port} RX {stats[port].rx_packets} TX {stats[port].tx_packets}"
                assert f"{seen}, {said}" in str(failed.value), f"{name}: {failed.value}"
                caught += 1
        assert caught, f"no captured stats break {kind}={judged[kind]}: capture some"


def test_verify_port_traffic_passes_the_bond_forwarding_through_the_vf() -> None:
    forwarding = STATS_CAPTURES["show_port_stats_all_bond_forwarding"]
    verify_port_traffic(forwarding, "VF path", moving=(1, 2), silent=(0,))


def test_verify_port_traffic_judging_all_ports_fails_when_none_is_reported() -> None:
    with pytest.raises(AssertionError, match="vhost ports; testpmd reported no port"):
        verify_port_traffic({}, "vhost ports", moving="all")


# -- verify_clean_outside, verify_window: guides 1 and 2, the stream outside and inside -------

WINDOW = LossWindow("switch-over", 2.0, 3.0, slack_s=0.2)


def _stream_harmed_outside() -> StreamResult:
    """1000 pps for 5 s through a DUT that, away from the switch-over at 2-3 s, loses seq
    500, delivers seq 1000 twice and seq 4001 before seq 4000; and in the switch-over
    loses 400 frames (seq 2300-2699) in one outage."""
    order = [s for s in range(5000) if s != 500 and not 2300 <= s <= 2699]
    order.insert(order.index(1000), 1000)
    i = order.index(4000)
    order[i], order[i + 1] = order[i + 1], order[i]
    times = [s / 1000 + 0.0002 for s in order]
    times = sorted(times)  # received in the order listed
    return synthetic(order, times, sent=5000, pps=1000, tx_s=[s / 1000 for s in order])


@pytest.mark.parametrize("what", _labels("verify_clean_outside"))
def test_verify_clean_outside_names_loss_duplicates_and_reordering(what: str) -> None:
    """Called as the guide modules call it; the switch-over's own loss is no fault here."""
    account = _stream_harmed_outside().account(WINDOW)
    with pytest.raises(AssertionError) as failed:
        verify_clean_outside(account, what)
    text = str(failed.value)
    assert text.startswith(f"{what}; outside the windows: "), text
    for part in ("lost: seq 500 (sent at ", "duplicated: seq 1000", "reordered: seq 4000"):
        assert part in text, text
    assert "2300" not in text, f"the switch-over's loss is the window's, not outside: {text}"


def test_verify_clean_outside_names_the_window_a_fault_also_overran() -> None:
    (inside,) = (account := _stream_harmed_outside().account(WINDOW)).windows
    tight = WindowBounds(outages=1, longest_ms=1000, lost=100, loss_span_ms=1000)
    with pytest.raises(AssertionError) as failed:
        verify_clean_outside(account, "the VM", judged=[(inside, tight)])
    assert "; and in the switch-over window: 400 frames lost, bound 100" in str(failed.value)


GUIDE1_WINDOWS = [n for n, f in Guide1Windows.model_fields.items() if f.annotation is WindowBounds]


@pytest.mark.parametrize("name", GUIDE1_WINDOWS)
def test_verify_window_holds_each_guide_1_window_to_its_default_bounds(name: str) -> None:
    """Guide 1 calls verify_window once per window with the topology's bounds: each
    window's default bounds fail a switch-over that loses one frame and one outage more
    than they allow, for longer."""
    bounds = getattr(Guide1Windows(), name)
    pps = 500  # guide 1's stream
    lost = bounds.lost + 1
    gap_s = max(bounds.longest_ms, bounds.loss_span_ms, lost * 1000 / pps) / 1000 + 0.1
    first = int(2.0 * pps)
    gone = set(range(first, first + int(gap_s * pps)))
    # outages beyond the count: single frames lost, each a stall of its own
    extra = {first - 100 * (k + 1) for k in range(bounds.outages)}
    kept = [s for s in range(int(6.0 * pps)) if s not in gone | extra]
    stream = synthetic(
        kept, [s / pps + 0.0002 for s in kept], sent=int(6.0 * pps), pps=pps,
        tx_s=[s / pps for s in kept],
    )  # fmt: skip
    window = LossWindow(name, 0.5, 2.0 + gap_s, slack_s=0.2)
    (inside,) = stream.account(window).windows
    with pytest.raises(AssertionError) as failed:
        verify_window(inside, bounds, f"loss_windows.guide1.{name}")
    text = str(failed.value)
    assert text.startswith(f"{name} window (loss_windows.guide1.{name}): "), text
    assert f" outages, bound {bounds.outages} " in text, text
    assert "longest outage " in text and f" ms, bound {bounds.longest_ms:g} ms" in text, text
    assert f" frames lost, bound {bounds.lost}" in text, text


# -- verify_sender: guides 1 and 2, a stream whose sender failed judges nothing --------------


@pytest.mark.parametrize("what", _labels("verify_sender"))
def test_verify_sender_fails_a_stream_that_sent_nothing_or_failed_to_send(what: str) -> None:
    silent = synthetic([], [], sent=0, pps=500, tx_error="ENETDOWN")
    with pytest.raises(AssertionError) as failed:
        verify_sender(silent, what)
    assert str(failed.value).startswith(f"{what}: the stream sent no frame (ENETDOWN)")
    seqs = list(range(0, 1000, 2))  # every other frame never left the TG
    halved = synthetic(seqs, [s / 500 for s in seqs], sent=1000, pps=500, tx_errors=500,
                       tx_error="ENOBUFS")  # fmt: skip
    with pytest.raises(AssertionError) as failed:
        verify_sender(halved, what)
    assert f"{what}: the stream's sender reported 500 send error(s)" in str(failed.value)


# -- verify_port_counts: guides 6 and 7, every frame counted once on every port ---------------


@pytest.mark.parametrize("call", _guide_calls("verify_port_counts"), ids=_call_id)
def test_verify_port_counts_names_ports_that_counted_nothing_or_too_much(call: Assertion) -> None:
    """The call's ports and counts (a count measured at run time stands in as 7), fed
    testpmd's counters of a port that forwarded nothing and of one that forwarded a flood."""
    (what,), keywords = _arguments(call)
    assert isinstance(what, str)
    rx, tx = keywords.get("rx") or {}, keywords.get("tx") or {}
    assert isinstance(rx, dict) and isinstance(tx, dict) and (rx or tx), call.call
    idle = STATS_CAPTURES["show_port_stats_all_bond_idle"][0]
    flood = STATS_CAPTURES["show_port_stats_all_bond_forwarding"][1]
    for captured in (idle, flood):
        stats = {p: dataclasses.replace(captured, port=p) for p in {*rx, *tx}}
        with pytest.raises(AssertionError) as failed:
            verify_port_counts(stats, what, rx=rx, tx=tx)
        text = str(failed.value)
        assert text.startswith(f"{what}; "), text
        for port, count in rx.items():
            assert f"P{port} RX {captured.rx_packets}, expected {count}" in text, text
        for port, count in tx.items():
            assert f"P{port} TX {captured.tx_packets}, expected {count}" in text, text


def test_verify_port_counts_passes_exact_counts_only() -> None:
    forwarding = STATS_CAPTURES["show_port_stats_all_bond_forwarding"]
    p1 = forwarding[1]
    verify_port_counts(forwarding, "P1", rx={1: p1.rx_packets}, tx={1: p1.tx_packets})
    with pytest.raises(AssertionError, match=r"P1 TX \d+, expected \d+$"):
        verify_port_counts(forwarding, "P1", rx={1: p1.rx_packets}, tx={1: p1.tx_packets + 1})
    with pytest.raises(AssertionError, match=r"P7 not reported \(ports \[0, 1, 2\]\)"):
        verify_port_counts(forwarding, "P7", rx={7: 1})


# -- verify_ports: guides 1, 2, 6, 7, the ports testpmd shows ----------------------------------

UP = parse_port_info((TESTPMD / "show_port_info_null.txt").read_text())  # net_null0, 1/1 queues
DOWN = parse_port_info((TESTPMD / "show_port_info_null_stopped.txt").read_text())
# a net_tap port after `set promisc 1 off` (net_null cannot leave promiscuous mode)
NOT_PROMISCUOUS = parse_port_info((TESTPMD / "show_port_info_tap_not_promiscuous.txt").read_text())


@pytest.mark.parametrize("call", _guide_calls("verify_ports"), ids=_call_id)
def test_verify_ports_names_each_port_a_broken_dut_shows_wrong(call: Assertion) -> None:
    """Each thing the call expects, against real `show port info` of a port that is not
    it: a port missing, a net_null port where another driver or device is expected, a
    stopped port (link down), a port with one queue each way, a port in promiscuous mode
    (net_null) and one out of it (net_tap after `set promisc off`)."""
    (what,), keywords = _arguments(call)
    assert isinstance(what, str)
    present = list(keywords.get("present") or [])  # type: ignore[call-overload]  # a guide's argument, read as an object
    drivers = dict(keywords.get("drivers") or {})  # type: ignore[call-overload]  # a guide's argument, read as an object
    names = dict(keywords.get("names") or {})  # type: ignore[call-overload]  # a guide's argument, read as an object
    link_up, queues = keywords.get("link_up", ()), keywords.get("queues")
    link_down = keywords.get("link_down", ())
    promiscuous, not_promiscuous = (
        keywords.get("promiscuous", ()),
        keywords.get("not_promiscuous", ()),
    )
    macs = dict(keywords.get("macs") or {})  # type: ignore[call-overload]  # a guide's argument, read as an object
    listed = [
        port
        for judged_ports in (link_up, link_down, promiscuous, not_promiscuous)
        if judged_ports != "all"
        for port in judged_ports  # type: ignore[union-attr]  # a guide's list of ports
    ]
    ports = present or sorted({*drivers, *names, *macs, *listed}) or [0, 1]

    def shown(info: PortInfo, at: list[int]) -> dict[int, PortInfo]:
        return {p: dataclasses.replace(info, port=p) for p in at}

    def failure(seen: dict[int, PortInfo]) -> str:
        with pytest.raises(AssertionError) as failed:
            verify_ports(seen, what, **keywords)  # type: ignore[arg-type]  # the guide's keywords, read as objects
        text = str(failed.value)
        assert text.startswith(f"{what}; "), text
        return text

    judged = 0
    if present:
        text = failure(shown(UP, present[:-1]))
        assert f"ports {sorted(present[:-1])}, expected {sorted(present)}" in text, text
        judged += 1
    for port, driver in drivers.items():
        assert f"P{port} driver net_null, expected {driver}" in failure(shown(UP, ports)), what
        judged += 1
    for port, name in names.items():
        assert f"P{port} device net_null0, expected {name}" in failure(shown(UP, ports)), what
        judged += 1
    if link_up:
        text = failure(shown(DOWN, ports))
        for port in ports if link_up == "all" else link_up:  # type: ignore[union-attr]  # "all" or a list of ports
            assert f"P{port} link down, expected up" in text, text
        judged += 1
    if link_down:
        text = failure(shown(UP, ports))
        for port in ports if link_down == "all" else link_down:  # type: ignore[union-attr]  # "all" or a list of ports
            assert f"P{port} link up, expected down" in text, text
        judged += 1
    for judged_ports, readout, said in (
        (promiscuous, NOT_PROMISCUOUS, "not promiscuous, expected promiscuous"),
        (not_promiscuous, UP, "promiscuous, expected not promiscuous"),
    ):
        if judged_ports:
            text = failure(shown(readout, ports))
            for port in ports if judged_ports == "all" else judged_ports:  # type: ignore[union-attr]  # "all" or a list of ports
                assert f"P{port} {said}" in text, text
            judged += 1
    for port, mac in macs.items():
        said = f"P{port} MAC {UP.mac.lower()}, expected {str(mac).lower()}"
        assert said in failure(shown(UP, ports)), what
        judged += 1
    if queues:
        text = failure(shown(UP, ports))
        rx, tx = queues  # type: ignore[misc]  # the guide's (rx, tx) queue counts
        assert f"P{ports[0]} has 1/1 rx/tx queues, expected {rx}/{tx}" in text, text
        judged += 1
    assert judged, f"{call.call} expects nothing of the ports"


def test_verify_ports_passes_what_testpmd_shows_of_a_correct_port() -> None:
    verify_ports({0: UP}, "net_null0", present=(0,), drivers={0: "net_null"},
                 names={0: "net_null0"}, link_up="all", queues=(1, 1))  # fmt: skip
    with pytest.raises(AssertionError, match="testpmd reported no port"):
        verify_ports({}, "none", link_up="all")


# -- verify_forwarded, verify_not_forwarded: guide 1's probes through the bond ----------------

BOND_MAC, STRANGER = "52:54:00:00:01:02", "02:00:00:00:0b:ad"


@pytest.mark.parametrize("call", _guide_calls("verify_forwarded"), ids=_call_id)
def test_verify_forwarded_fails_when_nothing_or_the_wrong_sender_comes_back(
    call: Assertion,
) -> None:
    """A bond that forwards nothing; where the call names the sender, one that forwards
    2 of 20 frames from another MAC (a member sending with its own address)."""
    what = call.fragments[0]
    with pytest.raises(AssertionError, match="no frame came back"):
        verify_forwarded([], what)
    if "source_mac=" not in call.call:
        return
    seen = [BOND_MAC] * 18 + [STRANGER] * 2
    with pytest.raises(AssertionError) as failed:
        verify_forwarded(seen, what, source_mac=BOND_MAC)
    expected = f"{what}; 2 of 20 frames came back from ['{STRANGER}'], expected all from"
    assert str(failed.value).startswith(expected), str(failed.value)
    verify_forwarded([BOND_MAC] * 20, what, source_mac=BOND_MAC.upper())


@pytest.mark.parametrize("call", _guide_calls("verify_not_forwarded"), ids=_call_id)
def test_verify_not_forwarded_fails_when_a_frame_comes_back(call: Assertion) -> None:
    """A bond without active members that still sends one frame."""
    what = call.fragments[0]
    with pytest.raises(AssertionError) as failed:
        verify_not_forwarded([BOND_MAC], what)
    assert str(failed.value) == f"{what}; 1 frame(s) came back, from ['{BOND_MAC}']"
    verify_not_forwarded([], what)


# -- verify_tap: guide 7, the tap the kernel makes for virtio_user ----------------------------

HOST_DATA = ROOT / "tests" / "data" / "host"
# What read_interface reads of a plain tap (`ip tuntap add mode tap`: one queue, no
# virtio-net header, down, no address) and of a veth, on this machine's kernel.
PLAIN_TAP = parse_interface("hcbtap0", (HOST_DATA / "read_interface_plain_tap.txt").read_text())
VETH = parse_interface("hcbveth0", (HOST_DATA / "read_interface_veth.txt").read_text())


# The guest's tap0 as the guide leaves it (two queues, the header, offloads on, up).
GUEST_TAP = parse_interface(
    "tap0", (ROOT / "tests" / "data" / "guest" / "read_interface_tap0.txt").read_text()
)


@pytest.mark.parametrize("call", _guide_calls("verify_tap"), ids=_call_id)
def test_verify_tap_names_what_a_plain_tap_or_a_veth_gets_wrong(call: Assertion) -> None:
    """Each thing the call expects, against a real interface that gets it wrong: a tap made
    without the options the guide's testpmd asks for (one queue, no header, no offloads,
    down, no address), the guest's offloading tap where offloads must be off, a veth."""
    (what,), keywords = _arguments(call)
    assert isinstance(what, str) and keywords, call.call
    wrong: list[tuple[KernelInterface, str]] = []
    for keyword, value in keywords.items():
        if keyword == "offloads":
            assert isinstance(value, dict)
            for offload, on in value.items():
                tap = PLAIN_TAP if on else GUEST_TAP
                seen, want = ("off", "on") if on else ("on", "off")
                wrong.append((tap, f"{tap.name} {offload} {seen}, expected {want}"))
            continue
        said = {
            "queues": f"hcbtap0 has 1 rx / 1 tx queues, expected {value}",
            "vnet_hdr": "hcbtap0 lacks the virtio-net header, expected True",
            "up": "hcbtap0 is down, expected up",
            "address": f"hcbtap0 has addresses [], expected {value}",
        }
        wrong.append((PLAIN_TAP, said[keyword]))
    for interface, said in wrong:
        with pytest.raises(AssertionError) as failed:
            verify_tap(interface, what, **keywords)  # type: ignore[arg-type]  # the guide's keywords, read as objects
        text = str(failed.value)
        assert text.startswith(f"{what}; ") and said in text, text
    with pytest.raises(AssertionError, match="hcbveth0 is not a tap \\(tun_flags none\\)"):
        verify_tap(VETH, what, **keywords)  # type: ignore[arg-type]  # the guide's keywords, read as objects


def test_verify_tap_passes_the_guests_tap_after_ifconfig() -> None:
    verify_tap(GUEST_TAP, "tap0", queues=2, vnet_hdr=True, up=True, address="198.18.7.1/24",
               offloads={"tx-checksumming": True, "tcp-segmentation-offload": True})  # fmt: skip


# -- verify_forwarding: guide 4's testpmds, as `show config fwd` shows them -------------------

FWD_CAPTURES = {
    name: parse_fwd_config((TESTPMD / f"{name}.txt").read_text())
    for name in ("show_config_fwd_io", "show_config_fwd_mac_retry")
}
# (RX, TX) pairs no capture has: where a call's chaining is measured at run time (the
# switch's NIC and vhost-user ports), it stands in for it.
CHAINED_ELSEWHERE = [(0, 2), (2, 0), (1, 3), (3, 1)]


@pytest.mark.parametrize("call", _guide_calls("verify_forwarding"), ids=_call_id)
def test_verify_forwarding_names_another_mode_and_other_streams(call: Assertion) -> None:
    """Real `show config fwd` of testpmds forwarding io and mac over ports 0 and 1."""
    (what,), keywords = _arguments(call)
    assert isinstance(what, str)
    mode, paths = keywords.get("mode"), keywords.get("paths")
    if paths is not None and not isinstance(paths, list | set | tuple):
        paths = CHAINED_ELSEWHERE
    judged = 0
    for name, config in FWD_CAPTURES.items():
        wrong_mode = mode is not None and config.mode != mode
        seen = sorted({(s.rx_port, s.tx_port) for s in config.streams})
        wrong_paths = paths is not None and seen != sorted(set(paths))
        if not (wrong_mode or wrong_paths):
            continue
        with pytest.raises(AssertionError) as failed:
            verify_forwarding(config, what, mode=mode, paths=paths)  # type: ignore[arg-type]  # the guide's paths, read as an object
        text = str(failed.value)
        assert text.startswith(f"{what}; "), text
        if wrong_mode:
            assert f"mode {config.mode}, expected {mode}" in text, f"{name}: {text}"
        if wrong_paths:
            assert f"streams (rx, tx) {seen}, expected " in text, f"{name}: {text}"
        judged += 1
    assert judged, f"no captured forwarding differs from what {call.call} expects"


def test_verify_forwarding_passes_testpmds_own_io_chaining() -> None:
    io = FWD_CAPTURES["show_config_fwd_io"]
    verify_forwarding(io, "io", mode="io", paths={(0, 1), (1, 0)})


# -- verify_negotiated: guide 7, what virtio_user0 agreed with vhost-net ----------------------

# The features virtio_user0 negotiated with vhost-net, from real PMD logs (guide 7's
# guest): when probed, before testpmd configured it (what it agrees without
# --enable-lro/--enable-rx-cksum), and after the Rx checksum reconfiguration (with them).
_STARTUP = (TESTPMD / "virtio_user_vhost_net_startup.txt").read_text()
WITHOUT_OPTIONS = negotiations(_STARTUP)[1]
WITH_OPTIONS = port_negotiation(
    _STARTUP, 1, (TESTPMD / "virtio_user_rx_cksum_reconfig.txt").read_text()
)


def test_the_captured_negotiations_are_the_two_states() -> None:
    offloads = (VirtioNetFeature.GUEST_TSO4, VirtioNetFeature.GUEST_TSO6,
                VirtioNetFeature.GUEST_CSUM)  # fmt: skip
    assert WITH_OPTIONS is not None and all(WITH_OPTIONS.has(f) for f in offloads)
    assert not any(WITHOUT_OPTIONS.has(f) for f in offloads), WITHOUT_OPTIONS.names


@pytest.mark.parametrize("call", _guide_calls("verify_negotiated"), ids=_call_id)
def test_verify_negotiated_names_features_missing_or_unwanted(call: Assertion) -> None:
    """A port that negotiated without the options where they must be, with them where they
    must not be, and a PMD that logged no negotiation."""
    (what,), keywords = _arguments(call)
    present = list(keywords.get("present", ()))  # type: ignore[call-overload]  # a guide's argument, read as an object
    absent = list(keywords.get("absent", ()))  # type: ignore[call-overload]  # a guide's argument, read as an object
    assert present or absent, call.call
    with pytest.raises(AssertionError) as failed:
        verify_negotiated(None, what, present=present, absent=absent)
    assert str(failed.value) == f"{what}; testpmd logged no virtio feature negotiation"
    for negotiation, features, said in (
        (WITHOUT_OPTIONS, present, "not negotiated"),
        (WITH_OPTIONS, absent, "negotiated"),
    ):
        if not features:
            continue
        with pytest.raises(AssertionError) as failed:
            verify_negotiated(negotiation, what, present=present, absent=absent)
        text = str(failed.value)
        assert text.startswith(f"{what}; "), text
        for feature in features:
            assert f"VIRTIO_NET_F_{feature.name} {said}" in text, text


# -- verify_trial: guides 4, 6, 7, one trial at the lowest rate -------------------------------


def _trial(sent: int, received: int, altered: int = 0, achieved: float = 1000.0) -> Trial:
    return Trial(
        offered_pps=1000.0, duration_s=1.0, frame_bytes=64, sent=sent, received=received,
        achieved_pps=achieved, intended=1000, altered=altered,
    )  # fmt: skip


@pytest.mark.parametrize("call", _guide_calls("verify_trial"), ids=_call_id)
def test_verify_trial_fails_loss_damage_and_a_generator_that_fell_short(call: Assertion) -> None:
    """What the TG counts of a DUT that lost 3 frames, of one that altered 2, of a trial the
    TG delivered at half the rate, and of one it never sent."""
    what = call.fragments[0]
    for trial, said in (
        (_trial(1000, 997), "3 of 1,000 frames lost; offered 1,000 pps for 1 s: sent 1,000"),
        (_trial(1000, 1000, altered=2), "2 of 1,000 frames arrived altered"),
        (_trial(500, 500, achieved=500.0), "the TG could not offer the rate: no measurement"),
        (_trial(0, 0, achieved=0.0), "the TG sent nothing: no measurement"),
    ):
        with pytest.raises(AssertionError) as failed:
            verify_trial(trial, what)
        text = str(failed.value)
        assert text.startswith(f"{what}; ") and said in text, text
    verify_trial(_trial(1000, 1000), what)


# Real `show config cores` / `show config rxtx` of testpmds on a virtio_user port: one in
# guide 4.3.3's form (one queue, 256 descriptors, --disable-rss, forwarding on lcore 1) and
# one on two queues with 512 descriptors; the machine isolates no CPU.
RUNNING_LCORE_1 = tuple(parse_forwarding_lcores((TESTPMD / "show_config_cores_1.txt").read_text()))
GUIDE_FORM = parse_rxtx_config((TESTPMD / "show_config_rxtx_virtio_user.txt").read_text())
TWO_QUEUES_512 = parse_rxtx_config(
    (TESTPMD / "show_config_rxtx_virtio_user_2q_512.txt").read_text()
)
NO_RSS = parse_rss_enabled((TESTPMD / "error_rss_hash_virtio_user.txt").read_text())


@pytest.mark.parametrize("call", _guide_calls("verify_pmd_settings"), ids=_call_id)
def test_verify_pmd_settings_names_each_setting_a_broken_testpmd_runs_with(
    call: Assertion,
) -> None:
    """A testpmd forwarding on another lcore, off isolated CPUs, on two queues of 512
    descriptors, hashing with RSS: each shows in the guide step's failure."""
    what = call.fragments[0]  # what the guide expects is the scenario's, built at run time
    expected = GuideSettings(lcores=(1, 2), queues=1, descriptors=256, rss_off=True,
                             isolated=True)  # fmt: skip
    # RSS on: no virtual PMD of 22.11 hashes (`show port N rss-hash` answers "RSS
    # functions:" only on NICs or virtio with VIRTIO_NET_F_RSS), so that state is given.
    broken = PmdSettings(RUNNING_LCORE_1, TWO_QUEUES_512, {0: True}, frozenset())
    with pytest.raises(VerifyFailed) as failed:
        verify_pmd_settings(broken, what, expected)
    text = str(failed.value)
    assert text.startswith(f"{what}; "), text
    for part in (
        "1 forwarding lcores [1], expected 2 [1, 2]",
        "forwarding lcores [1] not on isolated CPUs (isolated: none)",
        "P0 2/2 rx/tx queues, expected 1/1",
        "P0 512/512 rx/tx descriptors, expected 256/256",
        "P0 RSS on, expected off",
    ):
        assert part in text, f"{part!r} not in {text!r}"


def test_verify_pmd_settings_passes_the_guides_guest_form() -> None:
    running = PmdSettings(RUNNING_LCORE_1, GUIDE_FORM, {0: NO_RSS}, frozenset({1}))
    expected = GuideSettings(lcores=(1,), queues=1, descriptors=256, rss_off=True, isolated=True)
    verify_pmd_settings(running, "4.3.3", expected)
    assert NO_RSS is None, "a virtio_user port without VIRTIO_NET_F_RSS has no RSS"


# What this machine's kernel reports for the threads of a TCG guest's two vCPUs left
# unpinned: each may run on both CPUs.
FLOATING_VCPUS = {0: frozenset({0, 1}), 1: frozenset({0, 1})}


@pytest.mark.parametrize("call", _guide_calls("verify_vcpu_pins"), ids=_call_id)
def test_verify_vcpu_pins_names_a_vcpu_left_floating(call: Assertion) -> None:
    """A QEMU whose vCPU threads were not pinned (or whose pin did not hold)."""
    what = call.fragments[0]
    with pytest.raises(VerifyFailed) as failed:
        verify_vcpu_pins(FLOATING_VCPUS, what, [1, 0])
    text = str(failed.value)
    assert text.startswith(f"{what}; "), text
    assert "vCPU 0 on host CPUs [0, 1], expected 1" in text, text
    assert "vCPU 1 on host CPUs [0, 1], expected 0" in text, text


# The built-in guest booted with isolcpus=1 and not tuned further (captured): its
# writeback workqueue and IRQs may still run on the isolated CPU.
GUEST_ISOLATED_ONLY = parse_tuning(
    (ROOT / "tests" / "data" / "guest" / "tuning_builtin_guest_isolcpus_1.txt").read_text()
)


@pytest.mark.parametrize("call", _guide_calls("verify_tuned"), ids=_call_id)
def test_verify_tuned_names_each_step_not_in_effect(call: Assertion) -> None:
    """A guest whose runtime tuning (4.3.1 steps 2-4) was not applied, or did not hold."""
    what = call.fragments[0]
    with pytest.raises(VerifyFailed) as failed:
        verify_tuned(GUEST_ISOLATED_ONLY, what)
    text = str(failed.value)
    assert text.startswith(f"{what}; not in effect: "), text
    assert "the writeback cpumask includes isolated CPUs; 16 IRQs may run on isolated" in text


# A VF port that lost the guide's address: the real listing of a port with its own MAC only.
OWN_MAC_ONLY = parse_port_macs((TESTPMD / "show_port_macs_null.txt").read_text())


@pytest.mark.parametrize("call", _guide_calls("verify_port_macs"), ids=_call_id)
def test_verify_port_macs_names_the_address_the_port_lost(call: Assertion) -> None:
    """A VF whose added MAC went with its removal from the bond."""
    what = call.fragments[0]
    with pytest.raises(VerifyFailed) as failed:
        verify_port_macs(OWN_MAC_ONLY, what, present=["AA:BB:CC:DD:EE:FF"])
    text = str(failed.value)
    assert text.startswith(f"{what}; AA:BB:CC:DD:EE:FF not among the port's addresses"), text
    assert "seen: BA:21:E2:56:DD:45" in text, text


# -- verify_refused: guide 6's limitations that 22.11 still has, a container start refused ----

# Start-up output of real container testpmds 22.11 refused, as the guide-6 module captured
# them (tests/data/testpmd/README.md), and of step 5's own container testpmd that started.
REFUSALS = {
    name: (TESTPMD / f"{name}.txt").read_text()
    for name in (
        "startup_refused_huge_unlink_single_file",
        "startup_refused_non_root",
        "startup_refused_too_many_regions",
    )
}
CONTAINER_STARTED = (TESTPMD / "startup_virtio_user_container.txt").read_text()
# A refusal for another reason: virtio_user on a socket nobody serves.
PROBE_FAILED = (TESTPMD / "startup_probe_failed_virtio_user.txt").read_text()


def _refused(output: str) -> StartAttempt:
    return StartAttempt("dpdk-testpmd", decisive_startup_line(output), output)


@pytest.mark.parametrize("call", _guide_calls("verify_refused"), ids=_call_id)
def test_verify_refused_fails_a_testpmd_that_started_or_was_refused_otherwise(
    call: Assertion,
) -> None:
    """The call's causes, against DUTs that do not show the limitation: step 5's container
    testpmd that started (a DPDK that lifted it), and one refused for another reason."""
    (what,), keywords = _arguments(call)
    naming = keywords["naming"]
    assert isinstance(what, str) and isinstance(naming, tuple), call.call
    with pytest.raises(AssertionError) as failed:
        verify_refused(StartAttempt("dpdk-testpmd", None, CONTAINER_STARTED), what, naming=naming)
    text = str(failed.value)
    assert text.startswith(f"{what}; testpmd started, expected it refused naming "), text
    with pytest.raises(AssertionError) as failed:
        verify_refused(_refused(PROBE_FAILED), what, naming=naming)
    text = str(failed.value)
    assert text.startswith(f"{what}; refused for another reason: "), text
    assert "failed to initialize virtio_user0 device" in text, text


@pytest.mark.parametrize("call", _guide_calls("verify_refused"), ids=_call_id)
def test_verify_refused_passes_a_refusal_22_11_printed(call: Assertion) -> None:
    """Each call's causes are named by a refusal a real 22.11 printed: the check can pass."""
    (what,), keywords = _arguments(call)
    naming = keywords["naming"]
    assert isinstance(what, str) and isinstance(naming, tuple), call.call
    passed = []
    for name, output in REFUSALS.items():
        try:
            verify_refused(_refused(output), what, naming=naming)
        except AssertionError:
            continue
        passed.append(name)
    assert passed, f"no captured refusal names {naming}"


# -- verify_memory: guide 6's limitations 22.11 lifted, where a container's memory lives ------

# /proc/<pid>/maps of real container testpmds (excerpts, tests/data/host/README.md), each
# with what hugetlbfs listed of its prefix "g6lim-cont" meanwhile.
CONTAINER_MEMORY = {
    form: ContainerMemory(
        "/dev/hugepages",
        "g6lim-cont",
        named,
        tuple(parse_maps((HOST_DATA / f"proc_maps_container_{form}.txt").read_text())),
    )
    for form, named in (
        ("single_file", ("/dev/hugepages/g6lim-contmap_0",)),
        ("huge_unlink", ()),
        ("no_huge", ()),
        ("lookalike", ("/dev/hugepages/g6lim-contmap_0",)),
    )
}
SHOWN_BY = {
    "unlinked hugepage files": "huge_unlink",
    "a memfd": "no_huge",
    "a HUGEFILE_FMT lookalike": "lookalike",
}


@pytest.mark.parametrize("call", _guide_calls("verify_memory"), ids=_call_id)
def test_verify_memory_fails_memory_that_does_not_show_it(call: Assertion) -> None:
    """The call's `shows`, against step 5's own container (one hugepage file, by name) and
    every other form's container: a DUT that ignored the option shows one of those."""
    (what,), keywords = _arguments(call)
    shows = keywords["shows"]
    assert isinstance(what, str) and shows in SHOWN_BY, call.call
    # what step 5's own container makes each check say
    said = {
        "unlinked hugepage files": "hugetlbfs still names 1 file(s) of its prefix",
        "a memfd": "it maps hugepage file(s): /dev/hugepages/g6lim-contmap_0",
        "a HUGEFILE_FMT lookalike": "it maps no file named like HUGEFILE_FMT",
    }
    for form, memory in CONTAINER_MEMORY.items():
        if form == SHOWN_BY[shows]:
            continue
        with pytest.raises(AssertionError) as failed:
            verify_memory(memory, what, shows=shows)  # type: ignore[arg-type]  # a guide's argument, read as an object
        text = str(failed.value)
        assert text.startswith(f"{what}; "), text
        if form == "single_file":
            assert said[str(shows)] in text, text


def test_verify_memory_passes_what_each_22_11_form_shows() -> None:
    for shows, form in SHOWN_BY.items():
        verify_memory(CONTAINER_MEMORY[form], form, shows=shows)  # type: ignore[arg-type]  # the table's keys are MemoryShows
    unlinked = CONTAINER_MEMORY["huge_unlink"].hugepage_files
    assert len(unlinked) == 8 and all(f.deleted and f.shared for f in unlinked), unlinked
    (memfd,) = CONTAINER_MEMORY["no_huge"].memfds
    assert memfd.path == "/memfd:nohuge" and memfd.deleted, memfd
    (lookalike,) = CONTAINER_MEMORY["lookalike"].lookalikes
    assert lookalike.path == "/usr/local/bin/rtemap_0" and not lookalike.shared, lookalike


# -- verify_perm_addr_kept: guide 1.3.3's "port close ... does not remove perm_addr" --------

VF_PERM_ADDR = "3A:9C:41:07:5E:12"  # a VF's address as its ixgbe PF hands it out


@pytest.mark.parametrize("call", _guide_calls("verify_perm_addr_kept"), ids=_call_id)
def test_verify_perm_addr_kept_names_a_pf_that_dropped_it_or_kept_the_added_one(
    call: Assertion,
) -> None:
    """A PF that zeroed its record of the VF at `port close`, and one that kept the
    address `mac_addr add` gave the VF: each fails the guide's step with what it keeps."""
    what = call.fragments[0]
    kept = dict(perm_addr=VF_PERM_ADDR, removed=GUIDE_VF_MAC)
    with pytest.raises(VerifyFailed) as dropped:
        verify_perm_addr_kept("00:00:00:00:00:00", what, **kept)
    assert str(dropped.value) == (
        f"{what}; the PF keeps 00:00:00:00:00:00, not the VF's perm_addr {VF_PERM_ADDR}"
    )
    with pytest.raises(VerifyFailed) as added:
        verify_perm_addr_kept(GUIDE_VF_MAC.lower(), what, **kept)
    assert f"; the PF keeps {GUIDE_VF_MAC}, the address port close removes" in str(added.value)
    verify_perm_addr_kept(VF_PERM_ADDR.lower(), what, **kept)
