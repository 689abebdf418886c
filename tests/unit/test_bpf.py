"""framework.dpdk.bpf: instruction encodings, the ELF container, and the filters' verdicts
on a small emulator of the instructions they use, run against mbufs built here (the
emulator refuses any read of packet bytes past data_len, as the filters promise)."""

from __future__ import annotations

import shutil
import struct
import subprocess
from pathlib import Path

import pytest
from scapy.layers.inet import IP, TCP
from scapy.layers.l2 import Ether

from framework.dpdk import bpf
from framework.traffic.packets import l4_checksum_ok, udp_flow

# ----------------------------------------------------------------------------- encodings


@pytest.mark.parametrize(
    ("insn", "hexbytes"),
    [
        (bpf.exit_(), "9500000000000000"),
        (bpf.alu64(bpf.MOV, 0, 1), "b700000001000000"),
        (bpf.alu64(bpf.MOV, 0, 0), "b700000000000000"),
        (bpf.ldx(2, 2, 1, 40), "6912280000000000"),
        (bpf.ldx(8, 3, 1, 0), "7913000000000000"),
        (bpf.ldx(4, 0, 3, 47), "61302f0000000000"),
        (bpf.ldx(1, 5, 10, -8), "71a5f8ff00000000"),
        (bpf.alu64_reg(bpf.ADD, 3, 4), "0f43000000000000"),
        (bpf.alu32(bpf.MOD, 0, 50), "9400000032000000"),
        (bpf.to_be(0, 32), "dc00000020000000"),
        (bpf.to_be(0, 16), "dc00000010000000"),
    ],
)
def test_instructions_encode_like_llvm(insn: bpf.Insn, hexbytes: str) -> None:
    assert insn.encode().hex() == hexbytes


def test_jumps_resolve_labels_forward() -> None:
    code = bpf.assemble(
        [
            bpf.jmp(bpf.JLT, 2, 51, "out"),
            bpf.jmp(bpf.JEQ, 0, 7, "out"),
            bpf.jmp(bpf.JNE, 0, 0xBEEF, "out"),
            "out",
            bpf.exit_(),
        ]
    )
    assert [code[i : i + 8].hex() for i in range(0, len(code), 8)] == [
        "a502020033000000",  # JLT|K, r2, off +2, imm 51
        "1500010007000000",  # JEQ|K
        "55000000efbe0000",  # JNE|K, off 0: falls into the target
        "9500000000000000",
    ]


def test_assembler_refuses_what_the_verifier_would() -> None:
    with pytest.raises(ValueError, match="undefined label"):
        bpf.assemble([bpf.jmp(bpf.JEQ, 0, 0, "nowhere"), bpf.exit_()])
    with pytest.raises(ValueError, match="loops"):
        bpf.assemble(["top", bpf.jmp(bpf.JEQ, 0, 0, "top"), bpf.exit_()])
    with pytest.raises(ValueError, match="twice"):
        bpf.assemble(["a", "a", bpf.exit_()])
    with pytest.raises(ValueError, match="r11"):
        bpf.ldx(4, 11, 1, 0).encode()
    with pytest.raises(ValueError, match="16 bits"):
        bpf.ldx(4, 0, 1, 40000).encode()
    with pytest.raises(ValueError, match="32-bit"):
        bpf.alu64(bpf.MOV, 0, 2**31).encode()
    with pytest.raises(ValueError, match="16, 32 or 64"):
        bpf.to_be(0, 8)


# ----------------------------------------------------------------------------- ELF

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")


def _sections(elf: bytes) -> dict[str, tuple[int, int, bytes, int, int]]:
    """{name: (type, flags, data, link, entsize)} read the way libelf does."""
    (ident, e_type, machine, version, _entry, phoff, shoff, _flags, ehsize, _phentsize,
     phnum, shentsize, shnum, shstrndx) = _EHDR.unpack_from(elf)  # fmt: skip
    assert ident[:4] == b"\x7fELF" and ident[4:8] == bytes([2, 1, 1, 0])
    assert (e_type, machine, version, phoff, phnum) == (1, 247, 1, 0, 0)
    assert (ehsize, shentsize) == (64, 64) and shoff % 8 == 0
    assert shoff + shnum * shentsize == len(elf)
    headers = [_SHDR.unpack_from(elf, shoff + i * shentsize) for i in range(shnum)]
    assert headers[0] == (0,) * 10
    names = headers[shstrndx]
    strtab = elf[names[4] : names[4] + names[5]]
    out = {}
    for name, sh_type, flags, _addr, offset, size, link, _info, _align, entsize in headers[1:]:
        label = strtab[name : strtab.index(b"\0", name)].decode()
        out[label] = (sh_type, flags, elf[offset : offset + size], link, entsize)
    return out


def test_elf_holds_the_code_where_dpdk_looks_for_it() -> None:
    code = bpf.drop_every_nth_code(47, 50)
    sections = _sections(bpf.drop_every_nth(47, 50))
    assert list(sections) == [".text", ".symtab", ".strtab", ".shstrtab"]
    sh_type, flags, data, _, _ = sections[".text"]
    # find_elf_code: the named section, SHT_PROGBITS, flags exactly ALLOC|EXECINSTR
    assert (sh_type, flags, data) == (1, 0x6, code) and len(code) % 8 == 0
    sym_type, _, symtab, link, entsize = sections[".symtab"]
    assert (sym_type, entsize, list(sections)[link - 1]) == (2, 24, ".strtab")
    name, info, _, shndx, value, size = struct.unpack_from("<IBBHQQ", symtab, 24)
    strtab = sections[".strtab"][2]
    assert strtab[name : strtab.index(b"\0", name)] == b"drop_every_nth"
    assert (info, shndx, value, size) == (0x12, 1, 0, len(code))  # GLOBAL FUNC in .text


def test_elf_refuses_code_that_is_not_whole_instructions() -> None:
    with pytest.raises(ValueError, match="multiple of 8"):
        bpf.elf_object(b"\x95" * 7)
    with pytest.raises(ValueError, match="multiple of 8"):
        bpf.elf_object(b"")


@pytest.mark.skipif(shutil.which("readelf") is None, reason="binutils' readelf is not installed")
def test_readelf_reads_the_object(tmp_path: Path) -> None:
    path = tmp_path / "f.o"
    path.write_bytes(bpf.keep_only_from("02:00:00:00:00:01"))
    done = subprocess.run(
        ["readelf", "-W", "-h", "-S", "-s", str(path)], capture_output=True, text=True
    )
    assert done.returncode == 0 and not done.stderr, done.stderr
    out = done.stdout
    assert "REL (Relocatable file)" in out and "Linux BPF" in out
    text = next(line for line in out.splitlines() if " .text " in line).split()
    assert text[text.index(".text") + 1] == "PROGBITS" and "AX" in text
    assert "FUNC    GLOBAL DEFAULT    1 keep_only_from" in out


# ----------------------------------------------------------------------------- emulation

MBUF, BUF = 0x1000, 0x100000
BUF_SIZE, HEADROOM = 2176, 128


class ReadPastData(AssertionError):
    pass


def run(code: bytes, frame: bytes) -> int:
    """Run `code` on an mbuf holding `frame` (the M form) and return r0."""
    return run_on(code, frame)[0]


def run_on(code: bytes, frame: bytes) -> tuple[int, bytes]:
    """Run `code` on an mbuf holding `frame`: r0, and the frame as the program left it."""
    mbuf = bytearray(128)
    struct.pack_into("<Q", mbuf, 0, BUF)
    struct.pack_into("<H", mbuf, 16, HEADROOM)
    struct.pack_into("<IH", mbuf, 36, len(frame), len(frame))
    # stale bytes after the frame, as a reused mbuf has: a filter must not read them
    buf = bytearray(b"\xa5" * BUF_SIZE)
    buf[HEADROOM : HEADROOM + len(frame)] = frame

    def load(addr: int, size: int) -> int:
        if MBUF <= addr and addr + size <= MBUF + len(mbuf):
            return int.from_bytes(mbuf[addr - MBUF : addr - MBUF + size], "little")
        at = addr - BUF
        if HEADROOM <= at and at + size <= HEADROOM + len(frame):
            return int.from_bytes(buf[at : at + size], "little")
        raise ReadPastData(f"read of {size} bytes at {addr:#x} outside mbuf and packet data")

    def store(addr: int, size: int, value: int) -> None:
        at = addr - BUF
        if not (HEADROOM <= at and at + size <= HEADROOM + len(frame)):
            raise ReadPastData(f"write of {size} bytes at {addr:#x} outside the packet data")
        buf[at : at + size] = (value & 2 ** (8 * size) - 1).to_bytes(size, "little")

    regs = [0] * 11
    regs[1] = MBUF
    sizes = {bpf.SIZE_B: 1, bpf.SIZE_H: 2, bpf.SIZE_W: 4, bpf.SIZE_DW: 8}
    pc = 0
    for _steps in range(len(code) // 8 + 1):  # no loops: each instruction at most once
        op, regbyte, off, imm = struct.unpack_from("<BBhi", code, pc * 8)
        dst, src = regbyte & 0xF, regbyte >> 4
        pc += 1
        klass = op & 0x07
        if klass == bpf.LDX:
            regs[dst] = load(regs[src] + off, sizes[op & 0x18])
        elif klass == bpf.STX:
            store(regs[dst] + off, sizes[op & 0x18], regs[src])
        elif klass in (bpf.ALU, bpf.ALU64):
            regs[dst] = alu(op, regs[dst], regs[src], imm)
        elif klass == bpf.JMP and op & 0xF0 == bpf.EXIT:
            return regs[0], bytes(buf[HEADROOM : HEADROOM + len(frame)])
        elif klass == bpf.JMP:
            value, other = regs[dst], imm & 2**64 - 1
            taken = {bpf.JEQ: value == other, bpf.JNE: value != other, bpf.JLT: value < other,
                     bpf.JGE: value >= other}  # fmt: skip
            if taken[op & 0xF0]:
                pc += off
        else:
            raise AssertionError(f"instruction {op:#04x} not emulated")
    raise AssertionError("ran off the end of the program")


def alu(op: int, value: int, source: int, imm: int) -> int:
    """What an emulated ALU instruction makes of `value` (dst), given src and imm."""
    if op == bpf.ALU64 | bpf.MOV | bpf.SRC_K:
        return imm & 2**64 - 1
    if op == bpf.ALU64 | bpf.ADD | bpf.SRC_X:
        return (value + source) & 2**64 - 1
    if op == bpf.ALU | bpf.MOD | bpf.SRC_K:
        return (value & 0xFFFFFFFF) % (imm & 0xFFFFFFFF)
    if op == bpf.ALU | bpf.END | bpf.TO_BE:
        return int.from_bytes((value & 2**imm - 1).to_bytes(imm // 8, "little"), "big")
    raise AssertionError(f"instruction {op:#04x} not emulated")


def frame(seq: int, size: int = 128, src: str = "02:00:00:00:00:01") -> bytes:
    return bytes(
        udp_flow(src, "02:00:00:00:00:02", "198.18.0.1", "198.18.0.2", 1, 2, seq=seq, size=size)
    )


def test_seq_sits_at_offset_47_of_a_stream_frame() -> None:
    assert frame(0x01020304)[47:51] == bytes([1, 2, 3, 4])


def test_drop_every_nth_drops_exactly_the_multiples() -> None:
    code = bpf.drop_every_nth_code(47, 50)
    kept = [seq for seq in range(200) if run(code, frame(seq))]
    assert len(kept) == 196 and set(range(200)) - set(kept) == {0, 50, 100, 150}


def test_drop_every_nth_phase_and_big_sequence_numbers() -> None:
    code = bpf.drop_every_nth_code(47, 7, phase=3)
    # at and above 2**31 the remainder must be taken unsigned
    for seq in (3, 10, *(x - x % 7 + 3 for x in (0x80000000, 0xFFFFFFF0))):
        assert seq % 7 == 3 and seq < 2**32 and run(code, frame(seq)) == 0, seq
    for seq in (0, 4, 2**32 - 2, 0x80000000):
        assert seq % 7 != 3 and run(code, frame(seq)) == 1, seq


def test_drop_every_nth_keeps_frames_too_short_for_the_field() -> None:
    code = bpf.drop_every_nth_code(47, 1)  # n=1 drops every frame that holds the field
    whole = frame(0)
    assert run(code, whole[:51]) == 0
    for length in (14, 47, 50):
        assert run(code, whole[:length]) == 1, length


def test_drop_from_keeps_the_first_frames_of_a_stream() -> None:
    code = bpf.drop_from_code(47, 1000)
    kept = [seq for seq in (*range(990, 1010), 0x7FFFFFFF, 0x80000000, 2**32 - 1)
            if run(code, frame(seq))]  # fmt: skip
    assert kept == list(range(990, 1000)), "below 1000 kept; 1000 and above (unsigned) dropped"
    assert run(code, frame(5000)[:50]) == 1, "too short for the field: kept"
    with pytest.raises(ValueError, match="first must be"):
        bpf.drop_from(47, 2**31)


def test_keep_only_from_compares_all_six_bytes() -> None:
    code = bpf.keep_only_from_code("02:00:5E:10:00:01")
    assert run(code, frame(1, src="02:00:5e:10:00:01")) == 1
    for other in ("03:00:5e:10:00:01", "02:00:5e:11:00:01", "02:00:5e:10:00:00", "ff" + ":ff" * 5):
        assert run(code, frame(1, src=other)) == 0, other
    assert run(code, frame(1, src="02:00:5e:10:00:01")[:12]) == 1
    assert run(code, frame(1, src="02:00:5e:10:00:01")[:11]) == 0  # no whole source MAC


def test_keep_only_from_high_bytes_stay_positive_immediates() -> None:
    code = bpf.keep_only_from_code("fe-dc-ba-98-76-54")
    assert run(code, frame(1, src="fe:dc:ba:98:76:54")) == 1
    assert run(code, frame(1, src="fe:dc:ba:98:76:55")) == 0


def test_filter_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="n must be"):
        bpf.drop_every_nth(47, 0)
    with pytest.raises(ValueError, match="phase"):
        bpf.drop_every_nth(47, 5, phase=5)
    with pytest.raises(ValueError, match="outside"):
        bpf.drop_every_nth(2045, 5)
    with pytest.raises(ValueError, match="outside"):
        bpf.drop_every_nth(-1, 5)
    for bad in ("02:00:00:00:00", "02:00:00:00:00:0g", "0200.0000.0001", "2:0:0:0:0:1"):
        with pytest.raises(ValueError, match="not a MAC"):
            bpf.keep_only_from(bad)


def test_swap_words_reorders_payload_bytes_under_a_right_tcp_checksum() -> None:
    segment = Ether() / IP(src="198.18.80.2", dst="198.18.80.1") / TCP(
        sport=40000, dport=5300, flags="PA", options=[("Timestamp", (1, 2))]
    ) / bytes(range(64))  # fmt: skip
    sent = bytes(segment)
    at = 14 + 20 + 32 + 34
    kept, changed = run_on(bpf.swap_words_code(at), sent)
    assert kept == 1
    assert changed[at : at + 4] == sent[at + 2 : at + 4] + sent[at : at + 2]
    assert changed[:at] == sent[:at] and changed[at + 4 :] == sent[at + 4 :]
    assert l4_checksum_ok(Ether(changed)) is True, "the checksum cannot see the swap"
    pure_ack = sent[:66]
    assert run_on(bpf.swap_words_code(at), pure_ack) == (1, pure_ack), "too short: untouched"
    with pytest.raises(ValueError, match="even"):
        bpf.swap_words(at + 1)
