"""eBPF filters for testpmd's `bpf-load`, assembled and wrapped in ELF here (no clang).

testpmd (22.11) loads a program from the ".text" section of an ELF64 relocatable object
(`bpf-load rx|tx PORT QUEUE FLAGS FILE`) and runs it on every packet of that queue; a
return value of 0 drops the packet on RX (on TX it is handed back unsent), anything else
keeps it. This module holds a tiny assembler for the few eBPF instructions the filters
need, a minimal ELF writer, and the filters a self-test uses to make a DUT misbehave on
purpose, deterministically.

Load flags (testpmd's FLAGS word): "J" asks for the x86-64 JIT (the load fails with
"Operation not supported" if none is generated), "M" passes the program a pointer to the
rte_mbuf instead of a pointer to the first segment's data, "-" is a placeholder for none.
22.11's help text also names "B", which testpmd ignores ("unknown flag"). Without "M" the
verifier treats the data pointer as a buffer of --mbuf-size bytes (2176 by default) and
accepts loads anywhere in it, past the packet's end too: such a program reads stale bytes
of a short packet and cannot know, since it never sees the length. The filters here
therefore take the mbuf ("M"): they read data_len from it and keep (or drop) packets too
short for the field before touching packet bytes. Load them with LOAD_FLAGS.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass

# testpmd flags the filters of this module are written for: JIT, argument is the mbuf.
LOAD_FLAGS = "JM"
# the section testpmd's bpf-load reads (app/test-pmd/bpf_cmd.c hard-codes it)
SECTION = ".text"

# struct rte_mbuf offsets on x86-64 (DPDK 22.11; the verifier knows the same fields)
MBUF_BUF_ADDR = 0
MBUF_DATA_OFF = 16
MBUF_DATA_LEN = 40
# The verifier takes buf_addr as a buffer of --mbuf-size bytes and data_off as the 128-byte
# headroom: a field must end within mbuf-size - 128 bytes of packet data (testpmd's default
# --mbuf-size, 2176, is assumed; a smaller one rejects fields near that end).
_HEADROOM = 128
_MIN_MBUF_SIZE = 2176

# --------------------------------------------------------------------------- encoding

# instruction classes
LD, LDX, ST, STX, ALU, JMP, ALU64 = 0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x07
# load/store sizes and the memory mode
SIZE_W, SIZE_H, SIZE_B, SIZE_DW = 0x00, 0x08, 0x10, 0x18
MODE_MEM = 0x60
# operand source: immediate (K) or register (X)
SRC_K, SRC_X = 0x00, 0x08
# ALU operations
ADD, SUB, MUL, DIV, OR, AND, LSH, RSH = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70
NEG, MOD, XOR, MOV, ARSH, END = 0x80, 0x90, 0xA0, 0xB0, 0xC0, 0xD0
TO_LE, TO_BE = 0x00, 0x08
# jump operations
JA, JEQ, JGT, JGE, JSET, JNE = 0x00, 0x10, 0x20, 0x30, 0x40, 0x50
JSGT, JSGE, CALL, EXIT, JLT, JLE = 0x60, 0x70, 0x80, 0x90, 0xA0, 0xB0

_SIZES = {1: SIZE_B, 2: SIZE_H, 4: SIZE_W, 8: SIZE_DW}
_INSN = struct.Struct("<BBhi")  # code, dst | src << 4, off, imm


@dataclass(frozen=True)
class Insn:
    """One 8-byte eBPF instruction; `target` names a label a jump's offset is taken from."""

    code: int
    dst: int = 0
    src: int = 0
    off: int = 0
    imm: int = 0
    target: str | None = None

    def encode(self, off: int | None = None) -> bytes:
        """The instruction's bytes (little endian), with `off` replacing the offset."""
        for name, value in (("dst", self.dst), ("src", self.src)):
            if not 0 <= value <= 10:
                raise ValueError(f"register r{value} ({name}) does not exist: r0-r10")
        off = self.off if off is None else off
        if not -(2**15) <= off < 2**15:
            raise ValueError(f"offset {off} does not fit in 16 bits")
        if not -(2**31) <= self.imm < 2**31:
            raise ValueError(f"immediate {self.imm} does not fit in a signed 32-bit field")
        return _INSN.pack(self.code, self.dst | self.src << 4, off, self.imm)


def ldx(size: int, dst: int, src: int, off: int) -> Insn:
    """`dst = *(uN *)(src + off)`, size in bytes (1, 2, 4, 8), zero-extended."""
    return Insn(LDX | MODE_MEM | _SIZES[size], dst, src, off)


def stx(size: int, dst: int, src: int, off: int) -> Insn:
    """`*(uN *)(dst + off) = src`, size in bytes (1, 2, 4, 8)."""
    return Insn(STX | MODE_MEM | _SIZES[size], dst, src, off)


def alu64(op: int, dst: int, imm: int) -> Insn:
    """`dst op= imm` on 64 bits (imm sign-extended)."""
    return Insn(ALU64 | op | SRC_K, dst, imm=imm)


def alu64_reg(op: int, dst: int, src: int) -> Insn:
    """`dst op= src` on 64 bits."""
    return Insn(ALU64 | op | SRC_X, dst, src)


def alu32(op: int, dst: int, imm: int) -> Insn:
    """`dst = (u32)dst op (u32)imm`, the upper half zeroed."""
    return Insn(ALU | op | SRC_K, dst, imm=imm)


def to_be(dst: int, bits: int) -> Insn:
    """Convert the low `bits` (16, 32, 64) of dst between host and big-endian order."""
    if bits not in (16, 32, 64):
        raise ValueError(f"byte swap width must be 16, 32 or 64, not {bits}")
    return Insn(ALU | END | TO_BE, dst, imm=bits)


def jmp(op: int, dst: int, imm: int, target: str) -> Insn:
    """`if dst op imm goto target` (64-bit, unsigned for JLT/JGT..., imm sign-extended)."""
    return Insn(JMP | op | SRC_K, dst, imm=imm, target=target)


def exit_() -> Insn:
    """Return r0."""
    return Insn(JMP | EXIT)


def assemble(program: Sequence[Insn | str]) -> bytes:
    """Encode instructions; a str in the sequence is a label for the next instruction."""
    labels: dict[str, int] = {}
    insns: list[Insn] = []
    for item in program:
        if isinstance(item, str):
            if item in labels:
                raise ValueError(f"label {item!r} defined twice")
            labels[item] = len(insns)
        else:
            insns.append(item)
    out = bytearray()
    for pc, insn in enumerate(insns):
        off = None
        if insn.target is not None:
            if insn.target not in labels:
                raise ValueError(f"jump to undefined label {insn.target!r}")
            off = labels[insn.target] - pc - 1
            if off < 0:
                raise ValueError(f"backward jump to {insn.target!r}: the verifier rejects loops")
        out += insn.encode(off)
    return bytes(out)


# --------------------------------------------------------------------------- ELF

EM_BPF = 247
_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
_AX = SHF_ALLOC | SHF_EXECINSTR  # exactly these flags, or the loader skips the section
STB_GLOBAL, STT_FUNC = 1, 2


def _strtab(names: Sequence[str]) -> tuple[bytes, dict[str, int]]:
    table, where = bytearray(b"\0"), {"": 0}
    for name in names:
        where[name] = len(table)
        table += name.encode() + b"\0"
    return bytes(table), where


def _align(data: bytearray, to: int) -> None:
    data += b"\0" * (-len(data) % to)


def elf_object(code: bytes, name: str = "filter", section: str = SECTION) -> bytes:
    """Wrap eBPF code in an ELF64 little-endian relocatable object (EM_BPF).

    The code goes in an AX PROGBITS section (what DPDK's loader looks for), with a global
    function symbol `name` at its start: what clang -target bpf -c makes of a one-function
    file, minus relocations (these programs call nothing).

    Returns:
        The object file's bytes.
    """
    if not code or len(code) % 8:
        raise ValueError(f"code must be a non-empty multiple of 8 bytes, not {len(code)}")
    shstrtab, sh_names = _strtab([section, ".symtab", ".strtab", ".shstrtab"])
    strtab, str_names = _strtab([name])
    symtab = bytes(_SYM.size) + _SYM.pack(
        str_names[name], STB_GLOBAL << 4 | STT_FUNC, 0, 1, 0, len(code)
    )
    out = bytearray(_EHDR.size)
    placed = []  # (offset, size) of the sections 1..4, in order
    for blob, align in ((code, 8), (symtab, 8), (strtab, 1), (shstrtab, 1)):
        _align(out, align)
        placed.append((len(out), len(blob)))
        out += blob
    _align(out, 8)
    shoff = len(out)
    headers = [
        bytes(_SHDR.size),  # the null section
        # name, type, flags, addr, offset, size, link, info, align, entsize
        _SHDR.pack(sh_names[section], SHT_PROGBITS, _AX, 0, *placed[0], 0, 0, 8, 0),
        _SHDR.pack(sh_names[".symtab"], SHT_SYMTAB, 0, 0, *placed[1], 3, 1, 8, _SYM.size),
        _SHDR.pack(sh_names[".strtab"], SHT_STRTAB, 0, 0, *placed[2], 0, 0, 1, 0),
        _SHDR.pack(sh_names[".shstrtab"], SHT_STRTAB, 0, 0, *placed[3], 0, 0, 1, 0),
    ]
    for header in headers:
        out += header
    ident = b"\x7fELF" + bytes([2, 1, 1, 0])  # 64-bit, little endian, version 1, SysV ABI
    _EHDR.pack_into(
        out, 0, ident, 1, EM_BPF, 1, 0, 0, shoff, 0, _EHDR.size, 0, 0, _SHDR.size, 5, 4
    )  # ET_REL, no entry, no program headers, 5 sections, .shstrtab is section 4
    return bytes(out)


# --------------------------------------------------------------------------- filters

R0, R1, R2, R3, R4 = 0, 1, 2, 3, 4


def _packet_data(min_len: int, too_short: str) -> list[Insn | str]:
    """r1 = mbuf -> r3 = packet data; jump to `too_short` if data_len < min_len."""
    return [
        ldx(2, R2, R1, MBUF_DATA_LEN),
        jmp(JLT, R2, min_len, too_short),
        ldx(8, R3, R1, MBUF_BUF_ADDR),
        ldx(2, R4, R1, MBUF_DATA_OFF),
        alu64_reg(ADD, R3, R4),
    ]


def _check_field(offset: int, size: int) -> None:
    if offset < 0 or offset + size > _MIN_MBUF_SIZE - _HEADROOM:
        raise ValueError(
            f"a {size}-byte field at offset {offset} lies outside the "
            f"{_MIN_MBUF_SIZE - _HEADROOM} bytes the verifier allows after the headroom"
        )


def _verdicts() -> list[Insn | str]:
    return ["keep", alu64(MOV, R0, 1), exit_(), "drop", alu64(MOV, R0, 0), exit_()]


def _unless_nth(offset: int, n: int, phase: int, otherwise: str) -> list[Insn | str]:
    """Jump to `otherwise` unless the big-endian u32 at `offset` (r3 + offset) is phase mod n."""
    if not 1 <= n < 2**31:
        raise ValueError(f"n must be in [1, 2**31), not {n}")
    if not 0 <= phase < n:
        raise ValueError(f"phase must be in [0, n={n}), not {phase}")
    _check_field(offset, 4)
    return [
        ldx(4, R0, R3, offset),
        to_be(R0, 32),
        alu32(MOD, R0, n),
        jmp(JNE, R0, phase, otherwise),
    ]


def drop_every_nth_code(offset: int, n: int, phase: int = 0) -> bytes:
    """The instructions of drop_every_nth."""
    return assemble(
        [
            *_packet_data(offset + 4, "keep"),
            *_unless_nth(offset, n, phase, "keep"),
            "drop",
            alu64(MOV, R0, 0),
            exit_(),
            "keep",
            alu64(MOV, R0, 1),
            exit_(),
        ]
    )


def drop_every_nth(offset: int, n: int, phase: int = 0) -> bytes:
    """A filter dropping the packets whose big-endian u32 at `offset` is phase modulo n.

    It keeps every other packet, and those too short to hold the field. For the suite's
    stream frames (untagged IPv4/UDP, the u32 sequence right after the 5-byte marker)
    offset is 14 + 20 + 8 + 5 = 47. Load it with LOAD_FLAGS.

    Args:
        offset: Byte offset of the field in the packet data.
        n: Modulus, at least 1 (1 with phase 0 drops every packet that holds the field).
        phase: The remainder that drops, in [0, n).

    Returns:
        The ELF object's bytes.
    """
    return elf_object(drop_every_nth_code(offset, n, phase), "drop_every_nth")


def alter_every_nth_code(seq_offset: int, n: int, phase: int, at: int, xor: int) -> bytes:
    """The instructions of alter_every_nth."""
    if not 1 <= xor <= 0xFF:
        raise ValueError(f"xor must be a nonzero byte, not {xor}")
    _check_field(at, 1)
    return assemble(
        [
            *_packet_data(max(seq_offset + 4, at + 1), "keep"),
            *_unless_nth(seq_offset, n, phase, "keep"),
            ldx(1, R2, R3, at),
            alu64(XOR, R2, xor),
            stx(1, R3, R2, at),
            "keep",  # every packet: the verifier refuses a program with unreachable code
            alu64(MOV, R0, 1),
            exit_(),
        ]
    )


def alter_every_nth(seq_offset: int, n: int, phase: int, at: int, xor: int = 0xFF) -> bytes:
    """A filter that damages packets: it flips bits of one byte and keeps every packet.

    The packets whose big-endian u32 at `seq_offset` is phase modulo n get their byte at
    `at` XORed with `xor`; the rest pass untouched. A DUT that corrupts what it forwards,
    deterministically. Load it with LOAD_FLAGS.

    Returns:
        The ELF object's bytes.
    """
    return elf_object(alter_every_nth_code(seq_offset, n, phase, at, xor), "alter_every_nth")


def swap_words_code(at: int) -> bytes:
    """The instructions of swap_words."""
    if at % 2:
        raise ValueError(f"at must be even (16-bit aligned in the frame), not {at}")
    _check_field(at, 4)
    return assemble(
        [
            *_packet_data(at + 4, "keep"),
            ldx(2, R2, R3, at),
            ldx(2, R4, R3, at + 2),
            stx(2, R3, R4, at),
            stx(2, R3, R2, at + 2),
            "keep",  # every packet: the verifier refuses a program with unreachable code
            alu64(MOV, R0, 1),
            exit_(),
        ]
    )


def swap_words(at: int) -> bytes:
    """A filter that reorders bytes: the 16-bit words at `at` and `at + 2` swapped.

    Every packet long enough is changed, and kept. A one's-complement sum does not see the
    order of the words it adds, so where both words lie under a TCP or UDP checksum at
    even offsets from its header (an IPv4 frame: even `at`) the checksum stays right: a
    DUT damaging what it forwards in a way only the payload itself shows. Load it with
    LOAD_FLAGS.

    Returns:
        The ELF object's bytes.
    """
    return elf_object(swap_words_code(at), "swap_words")


def drop_from_code(offset: int, first: int) -> bytes:
    """The instructions of drop_from."""
    if not 0 <= first < 2**31:
        raise ValueError(f"first must be in [0, 2**31), not {first}")
    _check_field(offset, 4)
    return assemble(
        [
            *_packet_data(offset + 4, "keep"),
            ldx(4, R0, R3, offset),
            to_be(R0, 32),
            jmp(JGE, R0, first, "drop"),
            *_verdicts(),
        ]
    )


def drop_from(offset: int, first: int) -> bytes:
    """A filter dropping the packets whose big-endian u32 at `offset` is `first` or more.

    On the suite's stream frames (offset 47, as for drop_every_nth) it keeps the first
    `first` frames of every stream and drops the rest: with trials of D seconds, a DUT
    that loses every frame beyond first / D pps in that stream. It keeps packets too short
    to hold the field. Load it with LOAD_FLAGS.

    Returns:
        The ELF object's bytes.
    """
    return elf_object(drop_from_code(offset, first), "drop_from")


def _mac_bytes(mac: str) -> bytes:
    parts = mac.replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    try:
        return bytes(int(p, 16) for p in parts)
    except ValueError:
        raise ValueError(f"not a MAC address: {mac!r}") from None


def _keep_only_mac_code(mac: str, at: int) -> bytes:
    """Keep packets whose 6 bytes at `at` (0: destination, 6: source MAC) are `mac`."""
    raw = _mac_bytes(mac)
    program: list[Insn | str] = _packet_data(12, "drop")
    for half in (0, 2, 4):  # three big-endian halves: every immediate stays positive
        program += [
            ldx(2, R0, R3, at + half),
            to_be(R0, 16),
            jmp(JNE, R0, int.from_bytes(raw[half : half + 2], "big"), "drop"),
        ]
    return assemble([*program, *_verdicts()])


def keep_only_from_code(mac: str) -> bytes:
    """The instructions of keep_only_from."""
    return _keep_only_mac_code(mac, 6)


def keep_only_from(mac: str) -> bytes:
    """A filter keeping only packets whose Ethernet source MAC is `mac`.

    Frames shorter than 12 bytes are dropped too. Load it with LOAD_FLAGS.

    Returns:
        The ELF object's bytes.
    """
    return elf_object(keep_only_from_code(mac), "keep_only_from")


def keep_only_to(mac: str) -> bytes:
    """A filter keeping only packets whose Ethernet destination MAC is `mac`.

    Frames shorter than 12 bytes are dropped too. Load it with LOAD_FLAGS.

    Returns:
        The ELF object's bytes.
    """
    return elf_object(_keep_only_mac_code(mac, 0), "keep_only_to")
