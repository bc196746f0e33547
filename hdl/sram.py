"""SRAM subsystem: banked, SECDED-protected on-chip memory shared by several clients.

Structure (``N`` banks, ``P`` clients, ``W``-bit words)::

    req[0..P-1] ─► bank select (low-order bits, optional XOR fold) ─► per-bank arbiter
                   (round-robin or fixed priority; the inject port wins over clients)
                   ─► bank b: one access per cycle on a W + r bit codeword (Hsiao SECDED)
                   ─► decode (correct 1 bit / flag 2) ─► response FIFO of the client ─► resp[c]

* **Addresses** are word addresses. Bank = the low ``log2 N`` address bits (``xor_hash``: those
  bits XOR every higher ``log2 N``-bit chunk of the address); row in the bank = the remaining
  high bits. Both maps together are a bijection.
* **Arbitration**, per bank and per cycle: each client asks for the one bank its request maps
  to; a bank grants one requester; a loser keeps its request on its stream (the stream rules)
  and is asked again next cycle — nothing is dropped. Round-robin: the requester after the last
  granted one, in index order (every waiting client is served within ``P - 1`` grants of its
  bank); ``priority``: the lowest client index.
* **Order and latency**: every read has the same latency (``READ_LATENCY`` = 2 cycles from
  the request transfer to the response being offered), and a client is granted at most one
  request per cycle, so its responses come back in its request order. A read is granted only
  when its client's response FIFO has room for it (credit), so backpressure on one response
  stream stalls that client's reads and nothing else.
* **ECC**: Hsiao SECDED over the whole word (``hsiao_code``): (72,64), (137,128), (523,512).
  A single flipped bit (data or check) is corrected and counted; a double error is counted and
  flagged as ``uncorrectable`` with the data field zeroed — never returned as good data.
* **Byte-masked writes** use read-modify-write: a write whose mask is not all ones reads the
  word (cycle t), corrects it, merges the new bytes and writes the re-encoded word (t + 1); the
  bank is busy for both cycles, so the check word always covers the merged word. If the old word
  is uncorrectable, the merged word is written *poisoned* (check bits 0 and 1 inverted): it keeps
  reading as uncorrectable until a full-word write replaces it. A full-mask write is one access.
* **Error injection** (``inject`` stream, for tests): XORs ``flip`` into the stored codeword at
  ``addr`` (a raw read-modify-write: two bank cycles, no ECC).
* **Reset** clears the controller (arbiters, FIFOs, counters), not the memory. While reset is
  high no request is accepted and no response offered; an access granted before the reset
  completes (a write lands), responses not yet transferred are discarded.

Counters (``counter_bits`` wide, saturating): corrected and uncorrectable ECC events (client
reads and read-modify-write reads), and per client the cycles its request waited
(``stall_cycles``) and, of those, the cycles it lost its bank to another requester
(``conflict_cycles``; the rest waited for a bank busy with a read-modify-write, or for credit).
"""

from __future__ import annotations

import functools
import operator
from dataclasses import dataclass
from itertools import combinations

from amaranth.hdl import Cat, Const, Module, Mux, ResetSignal, Signal
from amaranth.lib import data, enum, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["ARBITRATION", "DEFAULT_CLIENTS", "READ_LATENCY", "Op", "SecdedDecoder",
           "SecdedEncoder", "Sram", "SramBank", "SramConfig", "hsiao_code", "inject_layout",
           "request_layout", "response_layout"]

#: Client roles of the default 6-port configuration, in port order (port 0 first).
DEFAULT_CLIENTS = ("dma_wr", "dma_rd", "weight", "act0", "act1", "drain")
ARBITRATION = ("round_robin", "priority")
#: Cycles from a read request's transfer to its response being offered (no backpressure).
READ_LATENCY = 2
#: Check bits inverted in a poisoned word (an even-weight syndrome: always "uncorrectable").
POISON = 0b11


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


@dataclass(frozen=True, kw_only=True)
class SramConfig:
    """Parameters of one SRAM subsystem (pure Python: shared by RTL, golden model and tests).

    Keyword arguments only, checked when the object is made.

    Parameters
    ----------
    banks : int
        Number of banks ``N``, a power of two in [1, 64].
    word_bits : int
        Data bits per word (one array-edge row, e.g. 16 x int8 = 128), a multiple of 8 in
        [8, 1024]. Each stored word also holds ``check_bits`` Hsiao check bits.
    depth : int
        Words in the whole memory, a power of two in [banks, 2**24].
    clients : int
        Number of client ports ``P`` in [1, 16]; the first six are named
        :data:`DEFAULT_CLIENTS`.
    arbitration : str
        ``"round_robin"`` (default) or ``"priority"`` (lower client index wins).
    xor_hash : bool
        Bank = low address bits XOR the higher chunks, instead of the low bits alone.
    resp_depth : int
        Response FIFO entries per client, in [1, 64]; 3 or more sustain one read per cycle.
    counter_bits : int
        Width of the statistics counters, in [8, 64].

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range.
    """

    banks: int = 8
    word_bits: int = 128
    depth: int = 4096
    clients: int = 6
    arbitration: str = "round_robin"
    xor_hash: bool = False
    resp_depth: int = 4
    counter_bits: int = 32

    def __post_init__(self):
        for name in ("banks", "word_bits", "depth", "clients", "resp_depth", "counter_bits"):
            v = getattr(self, name)
            if not _is_int(v):
                raise TypeError(f"{name} must be an integer, not {v!r}")
        if not 1 <= self.banks <= 64 or self.banks & (self.banks - 1):
            raise ValueError(f"banks must be a power of two in [1, 64], not {self.banks}")
        if not 8 <= self.word_bits <= 1024 or self.word_bits % 8:
            raise ValueError(f"word_bits must be a multiple of 8 in [8, 1024], not "
                             f"{self.word_bits}")
        if (not self.banks <= self.depth <= 1 << 24) or self.depth & (self.depth - 1):
            raise ValueError(f"depth must be a power of two in [banks, 2**24] (banks = "
                             f"{self.banks}), not {self.depth}")
        if not 1 <= self.clients <= 16:
            raise ValueError(f"clients must be in [1, 16], not {self.clients}")
        if not isinstance(self.arbitration, str):
            raise TypeError(f"arbitration must be a string, not {self.arbitration!r}")
        if self.arbitration not in ARBITRATION:
            raise ValueError(f"arbitration must be one of {', '.join(ARBITRATION)}, not "
                             f"{self.arbitration!r}")
        if not isinstance(self.xor_hash, bool):
            raise TypeError(f"xor_hash must be a bool, not {self.xor_hash!r}")
        if not 1 <= self.resp_depth <= 64:
            raise ValueError(f"resp_depth must be in [1, 64], not {self.resp_depth}")
        if not 8 <= self.counter_bits <= 64:
            raise ValueError(f"counter_bits must be in [8, 64], not {self.counter_bits}")

    # --- geometry ----------------------------------------------------------------------------
    @property
    def bank_bits(self) -> int:
        return (self.banks - 1).bit_length()

    @property
    def addr_bits(self) -> int:
        return (self.depth - 1).bit_length()

    @property
    def bank_depth(self) -> int:
        """Words per bank."""
        return self.depth // self.banks

    @property
    def row_bits(self) -> int:
        return self.addr_bits - self.bank_bits

    @property
    def mask_bits(self) -> int:
        """Byte-mask bits of a write (one per data byte)."""
        return self.word_bits // 8

    @property
    def check_bits(self) -> int:
        return len(hsiao_code(self.word_bits)) - self.word_bits

    @property
    def code_bits(self) -> int:
        """Stored bits per word: data, then check bits."""
        return self.word_bits + self.check_bits

    @property
    def client_names(self) -> tuple[str, ...]:
        extra = tuple(f"client{c}" for c in range(len(DEFAULT_CLIENTS), self.clients))
        return (DEFAULT_CLIENTS + extra)[: self.clients]

    def bank_of(self, addr: int) -> int:
        """The bank of word address ``addr`` (the RTL's map, in Python)."""
        bb = self.bank_bits
        if bb == 0:
            return 0
        low = addr & (self.banks - 1)
        if self.xor_hash:
            rest = addr >> bb
            while rest:
                low ^= rest & (self.banks - 1)
                rest >>= bb
        return low

    def row_of(self, addr: int) -> int:
        """The row (word index inside its bank) of ``addr``."""
        return addr >> self.bank_bits

    @property
    def name(self) -> str:
        arb = "rr" if self.arbitration == "round_robin" else "pri"
        return (f"sram_b{self.banks}_w{self.word_bits}_d{self.depth}_p{self.clients}_{arb}"
                f"{'_xor' if self.xor_hash else ''}_q{self.resp_depth}_c{self.counter_bits}")

    def as_dict(self) -> dict:
        return {"banks": self.banks, "word_bits": self.word_bits, "depth": self.depth,
                "clients": self.clients, "arbitration": self.arbitration,
                "xor_hash": self.xor_hash, "resp_depth": self.resp_depth,
                "counter_bits": self.counter_bits}


# --------------------------------------------------------------------------------------------
# Hsiao SECDED code
# --------------------------------------------------------------------------------------------

@functools.cache
def hsiao_code(data_bits: int) -> tuple[int, ...]:
    """Columns of the parity-check matrix ``H`` of the Hsiao SECDED code for ``data_bits``.

    Returns ``data_bits + r`` column masks of ``r`` bits: codeword bit ``i`` (data bits first,
    then check bits) contributes to syndrome bit ``j`` when bit ``j`` of column ``i`` is set.
    ``r`` is the least with ``2**(r-1) - r >= data_bits`` (8 for 64, 9 for 128, 11 for 512).

    Construction (M. Y. Hsiao, "A class of optimal minimum odd-weight-column SEC-DED codes",
    IBM J. Res. Dev. 14(4), 1970): check columns are the unit vectors; data columns are
    distinct odd-weight vectors of weight 3, then 5, …, each weight class taken whole while it
    fits and the last one chosen greedily to keep the rows' weights (XOR-tree sizes) even.
    Every column has odd weight, so a single error's syndrome is its column (odd weight) and a
    double error's is the XOR of two distinct columns (even weight, non-zero): never a column.
    """
    if not _is_int(data_bits):
        raise TypeError(f"data_bits must be an integer, not {data_bits!r}")
    if data_bits < 1:
        raise ValueError(f"data_bits must be a positive integer, not {data_bits!r}")
    r = 3
    while (1 << (r - 1)) - r < data_bits:
        r += 1
    cols: list[int] = []
    load = [0] * r
    w = 3
    while len(cols) < data_bits:
        cands = [tuple(c) for c in combinations(range(r), w)]
        need = data_bits - len(cols)
        if len(cands) > need:
            picked = []
            left = list(cands)
            for _ in range(need):
                best = min(range(len(left)), key=lambda i: (sum(load[j] for j in left[i]), i))
                cand = left.pop(best)
                picked.append(cand)
                for j in cand:
                    load[j] += 1
            cands = picked
        else:
            for cand in cands:
                for j in cand:
                    load[j] += 1
        cols += [sum(1 << j for j in cand) for cand in cands]
        w += 2
    return tuple(cols + [1 << j for j in range(r)])


def _rows(data_bits: int) -> list[list[int]]:
    """For each syndrome bit, the data bit indices in its XOR tree."""
    cols = hsiao_code(data_bits)
    r = len(cols) - data_bits
    return [[i for i in range(data_bits) if cols[i] >> j & 1] for j in range(r)]


class SecdedEncoder(wiring.Component):
    """Hsiao check bits of a data word (combinational).

    Parameters
    ----------
    data_bits : int

    Members
    -------
    data : In(data_bits)
    check : Out(r)
        Check bits; the stored codeword is ``Cat(data, check)``.

    Raises
    ------
    TypeError
        If ``data_bits`` is not an integer.
    ValueError
        If ``data_bits`` is not positive.
    """

    def __init__(self, data_bits: int):
        r = len(hsiao_code(data_bits)) - data_bits
        self._k = data_bits
        super().__init__({"data": In(data_bits), "check": Out(r)})

    def elaborate(self, platform):
        m = Module()
        m.d.comb += self.check.eq(Cat(*(Cat(*(self.data[i] for i in row)).xor()
                                        for row in _rows(self._k))))
        return m


class SecdedDecoder(wiring.Component):
    """Hsiao decode of a stored codeword (combinational).

    Parameters
    ----------
    data_bits : int

    Members
    -------
    codeword : In(data_bits + r)
        Data bits, then check bits.
    data : Out(data_bits)
        The data, with a single flipped data bit corrected. Uncorrected when
        ``uncorrectable``.
    syndrome : Out(r)
    corrected : Out(1)
        Exactly one bit (data or check) was flipped and is corrected.
    uncorrectable : Out(1)
        Non-zero syndrome that matches no column: two (or an odd number ≥ 3) flipped bits.

    Raises
    ------
    TypeError
        If ``data_bits`` is not an integer.
    ValueError
        If ``data_bits`` is not positive.
    """

    def __init__(self, data_bits: int):
        n = len(hsiao_code(data_bits))
        self._k = data_bits
        super().__init__({"codeword": In(n), "data": Out(data_bits), "syndrome": Out(n - data_bits),
                          "corrected": Out(1), "uncorrectable": Out(1)})

    def elaborate(self, platform):
        m = Module()
        k = self._k
        cols = hsiao_code(k)
        cw = self.codeword
        rows = _rows(k)
        m.d.comb += self.syndrome.eq(Cat(*(Cat(*(cw[i] for i in row), cw[k + j]).xor()
                                           for j, row in enumerate(rows))))
        hit = [self.syndrome == c for c in cols]
        m.d.comb += [
            self.data.eq(cw[:k] ^ Cat(*hit[:k])),
            self.corrected.eq(Cat(*hit).any()),
            self.uncorrectable.eq(self.syndrome.any() & ~Cat(*hit).any()),
        ]
        return m


# --------------------------------------------------------------------------------------------
# Ports
# --------------------------------------------------------------------------------------------

class Op(enum.Enum, shape=1):
    """Request kind."""

    READ = 0
    WRITE = 1


def request_layout(cfg: SramConfig) -> data.StructLayout:
    """One request: ``op``, word ``addr``, write ``data`` and byte ``mask`` (bit i: byte i).

    A write with a mask that is not all ones is a read-modify-write (two bank cycles); reads
    ignore ``data`` and ``mask``.
    """
    return data.StructLayout({"op": Op, "addr": cfg.addr_bits, "mask": cfg.mask_bits,
                              "data": cfg.word_bits})


def response_layout(cfg: SramConfig) -> data.StructLayout:
    """One read response: the corrected ``data`` (zero when ``uncorrectable``) and flags."""
    return data.StructLayout({"data": cfg.word_bits, "corrected": 1, "uncorrectable": 1})


def inject_layout(cfg: SramConfig) -> data.StructLayout:
    """An error injection: XOR ``flip`` (codeword bits: data, then check) into word ``addr``."""
    return data.StructLayout({"addr": cfg.addr_bits, "flip": cfg.code_bits})


# --------------------------------------------------------------------------------------------
# Bank and controller
# --------------------------------------------------------------------------------------------

class SramBank(wiring.Component):
    """One bank: an :class:`amaranth.lib.memory.Memory` of ``bank_depth`` codewords.

    A separate module so that synthesis can treat it as the memory macro (a black box). The
    controller uses at most one of the two ports per cycle (a single-port macro's behaviour),
    so read-during-write transparency never matters; the read port is declared
    non-transparent. Contents start at zero, which is a valid codeword (zero data).

    Members
    -------
    raddr, ren : In
        Read row and enable; ``rdata`` holds the row's codeword the next cycle (and keeps it
        while ``ren`` is low).
    rdata : Out(code_bits)
    waddr, wdata, wen : In
        Write row, codeword and enable (written at the clock edge).
    """

    def __init__(self, cfg: SramConfig):
        if not isinstance(cfg, SramConfig):
            raise TypeError(f"cfg must be an SramConfig, not {cfg!r}")
        self._cfg = cfg
        super().__init__({
            "raddr": In(cfg.row_bits), "ren": In(1), "rdata": Out(cfg.code_bits),
            "waddr": In(cfg.row_bits), "wen": In(1), "wdata": In(cfg.code_bits),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.mem = mem = memory.Memory(shape=cfg.code_bits, depth=cfg.bank_depth,
                                               init=[])
        rd = mem.read_port(transparent_for=())
        wr = mem.write_port()
        m.d.comb += [rd.addr.eq(self.raddr), rd.en.eq(self.ren), self.rdata.eq(rd.data),
                     wr.addr.eq(self.waddr), wr.data.eq(self.wdata), wr.en.eq(self.wen)]
        return m


def _onehot_mux(sel, values, width):
    """``values[i]`` where one-hot ``sel`` has bit ``i`` (zero when ``sel`` is zero)."""
    return functools.reduce(operator.or_, [Mux(sel[i], v, 0) for i, v in enumerate(values)],
                            Const(0, width))


def _lsb(x, width):
    """The lowest set bit of ``x`` as a one-hot value (``x & -x``)."""
    return (x & (~x + 1))[:width]


class Sram(wiring.Component):
    """Banked SRAM with ECC, shared by ``clients`` request/response stream pairs.

    Parameters
    ----------
    cfg : SramConfig

    Members
    -------
    req : In(stream.Signature(request_layout(cfg))).array(clients)
        Requests of each client, served in order per client.
    resp : Out(stream.Signature(response_layout(cfg))).array(clients)
        Read responses of each client, in its request order.
    inject : In(stream.Signature(inject_layout(cfg)))
        Error injection (tests): flips stored bits; wins its bank over the clients.
    ecc_corrected, ecc_uncorrectable : Out(counter_bits)
        ECC events counted on client reads and read-modify-write reads.
    stall_cycles, conflict_cycles : Out(data.ArrayLayout(counter_bits, clients))
        Per client: cycles its valid request was not accepted; of those, cycles another
        requester won its bank.

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`SramConfig`.
    """

    READ_LATENCY = READ_LATENCY

    def __init__(self, cfg: SramConfig):
        if not isinstance(cfg, SramConfig):
            raise TypeError(f"cfg must be an SramConfig, not {cfg!r}")
        self._cfg = cfg
        P, cb = cfg.clients, cfg.counter_bits
        super().__init__({
            "req": In(stream.Signature(request_layout(cfg))).array(P),
            "resp": Out(stream.Signature(response_layout(cfg))).array(P),
            "inject": In(stream.Signature(inject_layout(cfg))),
            "ecc_corrected": Out(cb),
            "ecc_uncorrectable": Out(cb),
            "stall_cycles": Out(data.ArrayLayout(cb, P)),
            "conflict_cycles": Out(data.ArrayLayout(cb, P)),
        })

    @property
    def cfg(self) -> SramConfig:
        return self._cfg

    def _bank_row(self, m, addr, name):
        cfg = self._cfg
        bb = cfg.bank_bits
        bank = Signal(range(cfg.banks), name=f"{name}_bank")
        row = Signal(cfg.row_bits, name=f"{name}_row")
        if bb:
            low = addr[:bb]
            if cfg.xor_hash:
                for lo in range(bb, cfg.addr_bits, bb):
                    low = low ^ addr[lo:lo + bb]
            m.d.comb += bank.eq(low)
        m.d.comb += row.eq(addr[bb:])
        return bank, row

    def elaborate(self, platform):  # noqa: C901 - one datapath, written out in order
        m = Module()
        cfg = self._cfg
        P, N, D = cfg.clients, cfg.banks, cfg.resp_depth
        W, K, MB = cfg.word_bits, cfg.code_bits, cfg.mask_bits
        rst = ResetSignal()

        # --- client side: bank of each request, credit, response FIFO ------------------------
        bank_of, row_of, is_wr, elig, fifos, s1_read, s1_bank = [], [], [], [], [], [], []
        for c in range(P):
            rq = self.req[c]
            b, r = self._bank_row(m, rq.payload.addr, f"c{c}")
            bank_of.append(b)
            row_of.append(r)
            wr = Signal(name=f"c{c}_write")
            m.d.comb += wr.eq(rq.payload.op == Op.WRITE)
            is_wr.append(wr)
            f = fifo.SyncFIFO(width=W + 2, depth=D)
            m.submodules[f"resp_fifo{c}"] = f
            fifos.append(f)
            s1r, s1b = Signal(name=f"c{c}_s1_read"), Signal(range(N), name=f"c{c}_s1_bank")
            s1_read.append(s1r)
            s1_bank.append(s1b)
            e = Signal(name=f"c{c}_eligible")
            # Credit: the FIFO entries plus the read in the pipeline leave room for this one.
            m.d.comb += e.eq(rq.valid & ~rst & (wr | (f.level + s1r < D)))
            elig.append(e)

        ib, irow = self._bank_row(m, self.inject.payload.addr, "inj")

        # --- banks -----------------------------------------------------------------------------
        grants, inj_grants, busy, dec_out = [], [], [], []
        ecc_corr, ecc_unc = [], []
        for b in range(N):
            bank = SramBank(cfg)
            enc, dec = SecdedEncoder(W), SecdedDecoder(W)
            m.submodules[f"bank{b}"] = bank
            m.submodules[f"enc{b}"] = enc
            m.submodules[f"dec{b}"] = dec
            rmw_v = Signal(name=f"b{b}_rmw")         # cycle 2 of a read-modify-write
            inj_v = Signal(name=f"b{b}_inj")         # cycle 2 of an injection
            ecc_rd = Signal(name=f"b{b}_ecc_rd")     # rdata is a client or RMW read
            wb_row = Signal(cfg.row_bits, name=f"b{b}_wb_row", reset_less=True)
            # Cycle-2 operand: the new data and mask of a read-modify-write, or the bits an
            # injection flips (one register: a bank does one or the other).
            wb = Signal(max(W + MB, K), name=f"b{b}_wb", reset_less=True)
            wb_data, wb_mask, wb_flip = wb[:W], wb[W:W + MB], wb[:K]
            bsy = Signal(name=f"b{b}_busy")
            m.d.comb += bsy.eq(rmw_v | inj_v)
            busy.append(bsy)

            want = Cat(*(elig[c] & (bank_of[c] == b) for c in range(P)))
            ig = Signal(name=f"b{b}_inj_grant")
            m.d.comb += ig.eq(self.inject.valid & ~rst & (ib == b) & ~bsy)
            inj_grants.append(ig)
            r = Signal(P, name=f"b{b}_req")
            m.d.comb += r.eq(Mux(ig | bsy, 0, want))
            g = Signal(P, name=f"b{b}_grant")
            if cfg.arbitration == "round_robin":
                above = Signal(P, name=f"b{b}_rr_above")   # clients after the last granted
                masked = r & above
                m.d.comb += g.eq(Mux(masked.any(), _lsb(masked, P), _lsb(r, P)))
                with m.If(g.any()):
                    m.d.sync += above.eq(~(g | (g - 1)[:P]))
            else:
                m.d.comb += g.eq(_lsb(r, P))
            grants.append(g)

            sel_row = _onehot_mux(g, row_of, cfg.row_bits)
            sel_wr = (g & Cat(*is_wr)).any()
            sel_data = _onehot_mux(g, [self.req[c].payload.data for c in range(P)], W)
            sel_mask = _onehot_mux(g, [self.req[c].payload.mask for c in range(P)], MB)
            full = sel_mask.all()
            new_write = g.any() & sel_wr & full
            rmw_start = g.any() & sel_wr & ~full
            rd = g.any() & ~sel_wr
            m.d.comb += [
                bank.raddr.eq(Mux(ig, irow, sel_row)),
                bank.ren.eq(ig | rd | rmw_start),
            ]
            m.d.sync += [rmw_v.eq(rmw_start), inj_v.eq(ig), ecc_rd.eq(rd | rmw_start),
                         wb_row.eq(Mux(ig, irow, sel_row)),
                         wb.eq(Mux(ig, self.inject.payload.flip, Cat(sel_data, sel_mask)))]

            # Cycle 2: decode; merge for a read-modify-write, re-encode (poison if the old
            # word was uncorrectable); raw XOR for an injection.
            m.d.comb += dec.codeword.eq(bank.rdata)
            merged = Cat(*(Mux(wb_mask[i], wb_data[8 * i:8 * i + 8], dec.data[8 * i:8 * i + 8])
                           for i in range(MB)))
            m.d.comb += enc.data.eq(Mux(rmw_v, merged, sel_data))
            poison = Mux(rmw_v & dec.uncorrectable, POISON, 0)
            encoded = Cat(enc.data, enc.check ^ poison)
            m.d.comb += [
                bank.waddr.eq(Mux(bsy, wb_row, sel_row)),
                bank.wdata.eq(Mux(inj_v, bank.rdata ^ wb_flip, encoded)),
                bank.wen.eq(bsy | new_write),
            ]
            dec_out.append(Cat(Mux(dec.uncorrectable, 0, dec.data), dec.corrected,
                               dec.uncorrectable))
            ecc_corr.append(ecc_rd & dec.corrected)
            ecc_unc.append(ecc_rd & dec.uncorrectable)

        # --- grants back to the clients, responses ------------------------------------------
        m.d.comb += self.inject.ready.eq(Cat(*inj_grants).any())

        def sat_add(cnt, inc):
            s = cnt + inc
            m.d.sync += cnt.eq(Mux(s >> cfg.counter_bits != 0, (1 << cfg.counter_bits) - 1, s))

        for c in range(P):
            rq, rs, f = self.req[c], self.resp[c], fifos[c]
            ready = Signal(name=f"c{c}_ready")
            m.d.comb += ready.eq(Cat(*(g[c] for g in grants)).any())
            m.d.comb += rq.ready.eq(ready)
            m.d.sync += [s1_read[c].eq(ready & ~is_wr[c]), s1_bank[c].eq(bank_of[c])]
            sel = Cat(*(s1_bank[c] == b for b in range(N)))
            m.d.comb += [
                f.w_en.eq(s1_read[c]),
                f.w_data.eq(_onehot_mux(sel, dec_out, W + 2)),
                rs.valid.eq(f.r_rdy & ~rst),
                rs.payload.as_value().eq(f.r_data),
                f.r_en.eq(rs.ready & ~rst),
            ]
            bank_busy = Cat(*((bank_of[c] == b) & busy[b] for b in range(N))).any()
            sat_add(self.stall_cycles[c], rq.valid & ~ready & ~rst)
            sat_add(self.conflict_cycles[c], elig[c] & ~ready & ~bank_busy)
        sat_add(self.ecc_corrected, sum(ecc_corr))
        sat_add(self.ecc_uncorrectable, sum(ecc_unc))
        return m
