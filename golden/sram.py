"""Golden models of :class:`hdl.sram.Sram`: functional (data and flags) and cycle (throughput).

* :class:`Secded` — the Hsiao code of ``hdl.sram.hsiao_code`` encoded and decoded from its
  parity-check matrix (an implementation independent of the RTL's XOR trees).
* :class:`SramModel` — given the order in which the arbiter served requests, predicts every
  read's data and flags and the ECC counters: stored codewords, read-modify-write for byte
  masks (poisoned merge over an uncorrectable word), raw bit flips for injections. Requests
  served in the same cycle go to different banks, hence different words, so their order within
  a cycle does not matter.
* :func:`simulate_traffic` — a cycle model of the controller (per-bank arbitration, response
  credits, read-modify-write busy cycles, response backpressure) driven by the traffic
  generators of the fast harness (``verif/sram_harness.py``), mirrored here bit for bit:
  predicts accesses per cycle, stall and conflict cycles per client. Tests hold the RTL to it
  exactly. :func:`estimate` gives the closed-form expectations the patterns are designed for.

Traffic patterns (the harness's generators; per client, one request per offered cycle):

* ``stream`` — every client walks the address space sequentially from its own start row
  ``c * region`` (``region`` = depth / P rounded down to a multiple of the bank count, so all
  clients start on bank 0), wrapping at the end; DMA-write and drain clients write full words,
  the others read (after one pass they read what the writers wrote).
* ``random`` — uniform random addresses, half reads, half writes, a quarter of the writes
  byte-masked (read-modify-write).
* ``same-bank`` — like ``random`` but every address maps to bank 0 (the worst case).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hdl.sram import POISON, SramConfig, hsiao_code

__all__ = ["PATTERNS", "Secded", "SramModel", "TrafficResult", "estimate", "gen_request",
           "simulate_traffic", "xorshift32"]

M32 = 0xFFFFFFFF
PATTERNS = ("stream", "random", "same-bank")
#: Clients that write in the ``stream`` pattern (by role name).
STREAM_WRITERS = ("dma_wr", "drain")
#: Per-client seed salts of the request and gap/ready generators.
SALT_REQ = tuple((0x9E3779B9 * (c + 1)) & M32 for c in range(16))
SALT_GAP = tuple((0x85EBCA6B * (c + 1) + 0x632BE5AB) & M32 for c in range(16))
#: Keys of the derived words: data chunks 0..31, then control, mask chunks 0..3.
KEYS = tuple(((0x9E3779B9 * (j + 1)) ^ 0x7F4A7C15) & M32 for j in range(37))
KEY_CTL, KEY_MASK = 32, 33


def xorshift32(x: int) -> int:
    """One xorshift32 step (Marsaglia 2003), as the harness's generators compute it."""
    x ^= (x << 13) & M32
    x ^= x >> 17
    x ^= (x << 5) & M32
    return x


# --------------------------------------------------------------------------------------------
# ECC
# --------------------------------------------------------------------------------------------

class Secded:
    """Hsiao SECDED of ``data_bits``, from the parity-check matrix ``H`` (r x n over GF(2))."""

    def __init__(self, data_bits: int):
        cols = hsiao_code(data_bits)
        self.k = data_bits
        self.n = len(cols)
        self.r = self.n - data_bits
        #: H as a 0/1 matrix: H[j, i] = bit j of column i.
        self.H = np.array([[c >> j & 1 for c in cols] for j in range(self.r)], dtype=np.uint8)
        self._row_masks = [sum(1 << i for i in range(self.n) if self.H[j, i])
                           for j in range(self.r)]
        self._col_of = {c: i for i, c in enumerate(cols)}

    def syndrome(self, cw: int) -> int:
        return sum(((cw & rm).bit_count() & 1) << j for j, rm in enumerate(self._row_masks))

    def encode(self, data: int) -> int:
        """Codeword of ``data``: data bits, then the check bits that zero the syndrome."""
        data &= (1 << self.k) - 1
        # The check part of H is the identity: check bit j = parity of row j over the data.
        return data | self.syndrome(data) << self.k

    def decode(self, cw: int) -> tuple[int, bool, bool]:
        """(data, corrected, uncorrectable); the data is uncorrected when uncorrectable."""
        s = self.syndrome(cw)
        data = cw & ((1 << self.k) - 1)
        if s == 0:
            return data, False, False
        i = self._col_of.get(s)
        if i is None:
            return data, False, True
        if i < self.k:
            data ^= 1 << i
        return data, True, False

    def syndromes(self, cws: np.ndarray) -> np.ndarray:
        """Vectorized syndromes of codewords given as bit arrays (..., n) -> (...) ints."""
        bits = (cws.astype(np.int64) @ self.H.T.astype(np.int64)) & 1
        return (bits << np.arange(self.r)).sum(axis=-1)


# --------------------------------------------------------------------------------------------
# Functional model
# --------------------------------------------------------------------------------------------

@dataclass
class Response:
    """A predicted (or observed) read response."""

    data: int
    corrected: bool = False
    uncorrectable: bool = False

    def as_tuple(self):
        return (self.data, bool(self.corrected), bool(self.uncorrectable))


class SramModel:
    """Storage of every word as the RTL holds it (codewords), updated in served order.

    Parameters
    ----------
    cfg : SramConfig
    """

    def __init__(self, cfg: SramConfig):
        if not isinstance(cfg, SramConfig):
            raise TypeError(f"cfg must be an SramConfig, not {cfg!r}")
        self.cfg = cfg
        self.ecc = Secded(cfg.word_bits)
        self.mem: dict[int, int] = {}          # address -> stored codeword (absent: zero)
        self.corrected = 0
        self.uncorrectable = 0
        self.full_mask = (1 << cfg.mask_bits) - 1

    def _check_addr(self, addr: int):
        if not 0 <= addr < self.cfg.depth:
            raise ValueError(f"address {addr} outside [0, {self.cfg.depth})")

    def codeword(self, addr: int) -> int:
        return self.mem.get(addr, 0)

    def read(self, addr: int) -> Response:
        """A client read: corrected data and flags (data zero when uncorrectable); counts."""
        self._check_addr(addr)
        data, corr, unc = self.ecc.decode(self.codeword(addr))
        self.corrected += corr
        self.uncorrectable += unc
        return Response(0 if unc else data, corr, unc)

    def write(self, addr: int, data: int, mask: int):
        """A client write; a mask that is not all ones is a read-modify-write."""
        self._check_addr(addr)
        data &= (1 << self.cfg.word_bits) - 1
        mask &= self.full_mask
        if mask == self.full_mask:
            self.mem[addr] = self.ecc.encode(data)
            return
        old, corr, unc = self.ecc.decode(self.codeword(addr))
        self.corrected += corr
        self.uncorrectable += unc
        bytemask = sum(0xFF << (8 * i) for i in range(self.cfg.mask_bits) if mask >> i & 1)
        merged = (data & bytemask) | (old & ~bytemask)
        cw = self.ecc.encode(merged)
        if unc:
            cw ^= POISON << self.cfg.word_bits
        self.mem[addr] = cw

    def inject(self, addr: int, flip: int):
        """XOR ``flip`` into the stored codeword (data bits, then check bits)."""
        self._check_addr(addr)
        self.mem[addr] = self.codeword(addr) ^ (flip & ((1 << self.cfg.code_bits) - 1))

    def apply(self, op: str, addr: int, data: int = 0, mask: int = 0,
              flip: int = 0) -> Response | None:
        """One served request (``op`` read/write/inject); returns the response of a read."""
        if op == "read":
            return self.read(addr)
        if op == "write":
            self.write(addr, data, mask)
            return None
        if op == "inject":
            self.inject(addr, flip)
            return None
        raise ValueError(f"op must be read, write or inject, not {op!r}")


# --------------------------------------------------------------------------------------------
# Traffic generators (mirrored by the harness) and the cycle model
# --------------------------------------------------------------------------------------------

def region(cfg: SramConfig) -> int:
    """Distance between the clients' start rows in the ``stream`` pattern."""
    return (cfg.depth // cfg.clients) // cfg.banks * cfg.banks


def stream_writer(cfg: SramConfig, c: int) -> bool:
    return cfg.client_names[c] in STREAM_WRITERS


def _fold(cfg: SramConfig, row: int) -> int:
    out = 0
    bb = cfg.bank_bits
    while row and bb:
        out ^= row & (cfg.banks - 1)
        row >>= bb
    return out


def gen_request(cfg: SramConfig, pattern: str, c: int, la: int, off: int) -> tuple:
    """The request (op, addr, mask, data) client ``c`` generates from its state (la, off).

    ``la`` is the client's xorshift32 state (one step per request): the random address is its
    low bits, the data its 32-bit chunks XOR per-chunk keys; one more xorshift step of
    ``la ^ key`` gives the control bits and the byte mask.
    """
    W, MB = cfg.word_bits, cfg.mask_bits
    dat = sum((la ^ KEYS[j]) << (32 * j) for j in range((W + 31) // 32)) & ((1 << W) - 1)
    ctl = xorshift32(la ^ KEYS[KEY_CTL])
    adr = la
    rmask = sum((ctl ^ KEYS[KEY_MASK + j]) << (32 * j)
                for j in range((MB + 31) // 32)) & ((1 << MB) - 1)
    full = (1 << MB) - 1
    if pattern == "stream":
        addr = (c * region(cfg) + off) & (cfg.depth - 1)
        return (1 if stream_writer(cfg, c) else 0), addr, full, dat
    if pattern == "random":
        addr = adr & (cfg.depth - 1)
    elif pattern == "same-bank":
        row = adr & (cfg.bank_depth - 1)
        addr = row << cfg.bank_bits | (_fold(cfg, row) if cfg.xor_hash else 0)
    else:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}")
    op = ctl & 1
    mask = full if (ctl >> 1) & 3 else rmask
    return op, addr, mask, dat


@dataclass
class TrafficResult:
    """What the cycle model predicts for one run (the harness reports the same fields)."""

    cycles: int                                        #: cycles until done (window + drain)
    accesses: list = field(default_factory=list)       #: served requests per client
    reads: list = field(default_factory=list)          #: served reads per client
    stall_cycles: list = field(default_factory=list)
    conflict_cycles: list = field(default_factory=list)
    valid_cycles: list = field(default_factory=list)   #: cycles with a request offered
    rmw_busy: int = 0                                  #: bank cycles spent on RMW write-back

    @property
    def accesses_per_cycle(self) -> float:
        return sum(self.accesses) / max(1, self.cycles)

    @property
    def conflict_rate(self) -> float:
        """Request-cycles that lost their bank to another client / request-cycles offered."""
        return sum(self.conflict_cycles) / max(1, sum(self.valid_cycles))

    def as_dict(self) -> dict:
        return {"cycles": self.cycles, "accesses": self.accesses, "reads": self.reads,
                "stall_cycles": self.stall_cycles, "conflict_cycles": self.conflict_cycles,
                "valid_cycles": self.valid_cycles,
                "accesses_per_cycle": round(self.accesses_per_cycle, 4),
                "conflict_rate": round(self.conflict_rate, 4)}


def simulate_traffic(cfg: SramConfig, pattern: str, cycles: int, seed: int, gap: int = 0,
                     stall: int = 0, stall_mask: int | None = None,
                     max_cycles: int | None = None) -> TrafficResult:
    """Cycle model of the harness run: generators offer requests for ``cycles`` cycles, then
    the run drains until every held request was served and every read answered.

    ``gap``/``stall``: probability in 1/256 that a generator withholds ``valid`` / a client's
    response ``ready`` in a cycle (``stall_mask``: the clients that stall, default all).
    """
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}")
    if pattern == "stream" and region(cfg) == 0:
        raise ValueError(f"the stream pattern needs depth >= clients x banks (each client its "
                         f"own rows), not depth {cfg.depth} for {cfg.clients} x {cfg.banks}")
    P, N, D = cfg.clients, cfg.banks, cfg.resp_depth
    stall_mask = (1 << P) - 1 if stall_mask is None else stall_mask
    full = (1 << cfg.mask_bits) - 1
    la = [((seed ^ SALT_REQ[c]) & M32) | 1 for c in range(P)]
    lg = [((seed ^ SALT_GAP[c]) & M32) | 1 for c in range(P)]
    off = [0] * P
    v = [False] * P
    pay = [None] * P
    bank = [0] * P
    level = [0] * P
    s1 = [False] * P
    outstanding = [0] * P
    busy = [False] * N
    above = [0] * N
    res = TrafficResult(0, [0] * P, [0] * P, [0] * P, [0] * P, [0] * P)
    limit = max_cycles if max_cycles is not None else cycles * 64 + 10_000
    t = 0
    while True:
        if t >= cycles and not any(v) and not any(outstanding):
            break
        if t >= limit:
            raise RuntimeError(f"cycle model: no end after {t} cycles")
        elig = [v[c] and (pay[c][0] == 1 or level[c] + s1[c] < D) for c in range(P)]
        ready = [False] * P
        nbusy = [False] * N
        for b in range(N):
            if busy[b]:
                continue
            req = sum(1 << c for c in range(P) if elig[c] and bank[c] == b)
            if not req:
                continue
            if cfg.arbitration == "round_robin":
                masked = req & above[b]
                pick = masked if masked else req
                g = pick & -pick
                above[b] = ~(g | (g - 1)) & ((1 << P) - 1)
            else:
                g = req & -req
            c = g.bit_length() - 1
            ready[c] = True
            op, _, mask, _ = pay[c]
            if op == 1 and mask != full:
                nbusy[b] = True
                res.rmw_busy += 1
        for c in range(P):
            if v[c]:
                res.valid_cycles[c] += 1
                if not ready[c]:
                    res.stall_cycles[c] += 1
                    if elig[c] and not busy[bank[c]]:
                        res.conflict_cycles[c] += 1
            stall_now = bool(stall_mask >> c & 1) and ((lg[c] >> 8) & 0xFF) < stall
            pop = level[c] > 0 and not stall_now
            level[c] += s1[c] - pop
            outstanding[c] -= pop
            is_read = ready[c] and pay[c][0] == 0
            s1[c] = is_read
            if ready[c]:
                res.accesses[c] += 1
                res.reads[c] += is_read
                outstanding[c] += is_read
            if not v[c] or ready[c]:
                ok = t < cycles and not (lg[c] & 0xFF) < gap
                v[c] = ok
                if ok:
                    pay[c] = gen_request(cfg, pattern, c, la[c], off[c])
                    bank[c] = cfg.bank_of(pay[c][1])
                    la[c] = xorshift32(la[c])
                    off[c] = (off[c] + 1) & (cfg.depth - 1)
            lg[c] = xorshift32(lg[c])
        busy = nbusy
        t += 1
    res.cycles = t
    return res


def estimate(cfg: SramConfig, pattern: str) -> dict:
    """Closed-form expectations (no gaps, no backpressure) the cycle model should approach.

    * ``stream``: every client sequential at one row per cycle, clients on different banks
      after the start-up staggering: ``min(P, N)`` accesses per cycle, no conflicts.
    * ``same-bank``: one bank serves everything: 1 access per bank cycle; a masked write takes
      two (``random``/``same-bank`` issue 1/8 masked writes): 1 / (1 + 1/8) per cycle.
    * ``random``: ``N * (1 - (1 - 1/N) ** P)`` distinct banks are asked for per cycle when the
      P requests are independent (an upper bound: a refused request is held, so its client
      asks again for the same bank, which correlates the requests), times the RMW factor.
    """
    P, N = cfg.clients, cfg.banks
    rmw = 1 / (1 + 1 / 8)
    if pattern == "stream":
        apc = float(min(P, N))
    elif pattern == "same-bank":
        apc = rmw
    elif pattern == "random":
        apc = N * (1 - (1 - 1 / N) ** P) * rmw
    else:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}")
    return {"accesses_per_cycle": round(apc, 4), "per_client": round(apc / P, 4)}


def replay_log(cfg: SramConfig, events) -> tuple[list[deque], SramModel]:
    """Predicted responses per client for served events in order (see :class:`SramModel`).

    ``events``: ``(client, op, addr, data, mask, flip)`` tuples, served order.
    """
    model = SramModel(cfg)
    want = [deque() for _ in range(cfg.clients)]
    for c, op, addr, dat, mask, flip in events:
        r = model.apply(op, addr, dat, mask, flip)
        if r is not None:
            want[c].append(r)
    return want, model
