"""Golden models of the HBM device model (``hdl/hbm.py``).

Three independent pieces:

* :class:`HbmChannelModel`: the controller of one pseudo-channel, cycle by cycle — the same
  command queue, lookahead and column pointers, bank timers and refresh engine as the RTL, so it
  predicts the cycle of every command and every R/B beat for any traffic it is given (driven by
  :func:`simulate` with :class:`IdealMaster`, the testbench's traffic generator). The tests
  hold it to the RTL exactly: command trace, response cycles, data, counters.
* :func:`functional`: what an AXI slave must do with the same bursts, with no notion of time —
  the bursts in order against a byte array; the expected read data and final memory.
* :func:`check_trace`: the timing rules themselves (tRCD, tRP, tRAS, tCCD_S/L, tRRD_S/L, tFAW,
  tRTP, write recovery, turnarounds, refresh), checked pairwise on a command trace. Run on the
  RTL's own trace, so the RTL cannot be merely consistent with a mirror that shares its bug.

Data words are NumPy ``uint8`` rows (one row = one beat, byte 0 first); the error map is one
``bool`` per beat. Responses: 0 OKAY, 2 SLVERR, 3 DECERR.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from hdl.hbm import MAX_POSTPONED, HbmConfig

__all__ = ["Burst", "HbmChannelModel", "IdealMaster", "SimResult", "check_trace", "functional",
           "simulate", "xorshift32", "wdata_words"]

OKAY, SLVERR, DECERR = 0, 2, 3
ROW_CMDS = {0: None, 1: "ACT", 2: "PRE", 3: "REF", 4: "REFAB"}
COL_CMDS = {0: None, 1: "RD", 2: "WR"}


def _dec(x: int) -> int:
    return x - 1 if x else 0


def xorshift32(x):
    """Marsaglia's xorshift32 on ints or uint32 NumPy arrays (the harness' random streams)."""
    if isinstance(x, np.ndarray):
        x = x.astype(np.uint32)
        x ^= (x << np.uint32(13))
        x ^= (x >> np.uint32(17))
        x ^= (x << np.uint32(5))
        return x
    x ^= (x << 13) & 0xFFFFFFFF
    x ^= x >> 17
    x ^= (x << 5) & 0xFFFFFFFF
    return x


def wdata_words(words: np.ndarray, seed: int, data_bytes: int) -> np.ndarray:
    """Write data of the traffic generator for beat addresses ``words``: (n, data_bytes) uint8.

    32-bit lane ``k`` of the beat at word address ``a`` is ``xorshift32((a << 5 | k) ^ seed)``
    (``k`` < 32 lanes), the same function as ``verif/hbm_harness.py``.
    """
    words = np.asarray(words, dtype=np.uint64)
    lanes = data_bytes // 4
    k = np.arange(lanes, dtype=np.uint64)
    x = (((words[:, None] << np.uint64(5)) | k[None, :]) ^ np.uint64(seed & 0xFFFFFFFF))
    x = xorshift32((x & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    return np.ascontiguousarray(x.astype("<u4")).view(np.uint8).reshape(len(words), data_bytes)


def wstrb_words(words: np.ndarray, seed: int, data_bytes: int, mode: int) -> np.ndarray:
    """Strobes of the traffic generator: all ones (mode 0) or random bytes (mode 1), as bools."""
    words = np.asarray(words, dtype=np.uint64)
    if mode == 0:
        return np.ones((len(words), data_bytes), dtype=bool)
    k = np.arange(max(1, data_bytes // 32), dtype=np.uint64)
    x = (((words[:, None] << np.uint64(5)) | k[None, :]) ^ np.uint64((seed ^ 0x5BD1E995)
                                                                     & 0xFFFFFFFF))
    x = xorshift32((x & np.uint64(0xFFFFFFFF)).astype(np.uint32))
    bits = np.unpackbits(np.ascontiguousarray(x.astype("<u4")).view(np.uint8), bitorder="little")
    return bits.reshape(len(words), -1)[:, :data_bytes].astype(bool)


@dataclass(frozen=True)
class Burst:
    """One AXI burst of the traffic: ``addr`` is the PC-local byte address (beat aligned)."""

    write: bool
    id: int
    addr: int
    beats: int


@dataclass
class _Entry:
    write: bool
    id: int
    addr: int
    len: int
    decerr: bool


class HbmChannelModel:
    """One pseudo-channel of ``hdl.hbm.HbmChannel``, cycle for cycle.

    Call :meth:`cycle` once per clock with the master's outputs; it returns the slave's outputs
    of that cycle and advances the state (the same register updates as the RTL).
    """

    def __init__(self, cfg: HbmConfig, mem: np.ndarray | None = None,
                 err: np.ndarray | None = None, trace: bool = False):
        self.cfg = cfg
        t = cfg.timing
        B = cfg.data_bytes
        self.mem = (np.zeros((cfg.words, B), np.uint8) if mem is None
                    else np.array(mem, dtype=np.uint8).reshape(cfg.words, B))
        self.err = (np.zeros(cfg.words, bool) if err is None
                    else np.asarray(err, dtype=bool).reshape(cfg.words))
        self.now = 0
        Q, NB, NBG = cfg.queue, cfg.n_banks, cfg.bank_groups
        self.cq: list[_Entry | None] = [None] * Q
        self.head = self.tail = self.count = 0
        self.last_ar = False
        self.lp_idx = self.lp_left = self.lp_g = self.win = self.cp_beat = 0
        self.open = [False] * NB
        self.row = [0] * NB
        self.act = [0] * NB
        self.pre = [0] * NB
        self.cas = [0] * NB
        self.pend = [0] * NB
        self.rrd_any = self.rref = self.ccd_any = self.wtr_any = self.rtw = 0
        self.rrd_bg = [0] * NBG
        self.ccd_bg = [0] * NBG
        self.wtr_bg = [0] * NBG
        self.faw = [0] * 4
        self.faw_ptr = 0
        self.rq: deque = deque()
        self.bq: deque = deque()
        self.wq: deque = deque()
        self.wacc = 0
        self.interval = t.tREFIpb if cfg.refresh == "per_bank" else t.tREFI
        self.timer = self.interval - 1
        self.owed = 0
        self.rr = self.sel = 0
        self.ref_pend = False
        self.refreshed = [False] * NB
        self.cand_bank = 0
        self.cand_mask = [False] * NBG
        self.drain = False
        self.stats = dict.fromkeys(("rd_beats", "wr_beats", "acts", "pres", "refs", "row_hits",
                                    "err_beats", "protocol_errors"), 0)
        self.trace = [] if trace else None

    # --- helpers ----------------------------------------------------------------------------
    def _decode(self, word: int):
        c = self.cfg
        bg, col, bank, row = c.decode(word)
        return bg, col, row, c.flat_bank(bg, bank)

    # --- one clock ----------------------------------------------------------------------------
    def cycle(self, ar=None, aw=None, w=None, rready=True, bready=True) -> dict:
        """One cycle. ``ar``/``aw``: ``(id, addr, len, size, burst)`` or None; ``w``:
        ``(data bytes, strobe bools, last)`` or None. Returns readies, and ``r``/``b`` (the beat
        offered this cycle, or None) with whether it was taken."""
        c = self.cfg
        t = c.timing
        Q, L = c.queue, c.lookahead
        lb, wmask = c.beat_shift, c.words - 1
        # --- combinational, from the registers and this cycle's inputs
        space = self.count != Q
        pick_ar = ar is not None and (aw is None or not self.last_ar)
        pick_aw = aw is not None and not pick_ar
        enq = space and (ar is not None or aw is not None)
        bad_req = False
        entry = None
        if enq:
            rid, addr, ln, size, burst = ar if pick_ar else aw
            word = addr >> lb
            entry = _Entry(pick_aw, rid, word & wmask, ln, (word >> c.word_bits) != 0)
            page_beats = 4096 >> lb
            bad_req = (size != lb or burst != 1
                       or ((addr >> lb) & (page_beats - 1)) + ln >= page_beats)

        lp_e = self.cq[self.lp_idx]
        lp_step = (self.lp_left != 0 and self.win < L
                   and not (self.drain and self.lp_g == 0))
        lp_act = lp_pre = lp_adv = lp_hit = lp_ok = usable = False
        lp_b = lp_bg = lp_row = lp_cnt = lp_n = 0
        if lp_step:
            lp_n = lp_e.len + 1
            lp_bg = (lp_e.addr + self.lp_g) & (c.bank_groups - 1)
            _, _, bank, lp_row = c.decode(lp_e.addr)
            lp_b = c.flat_bank(lp_bg, bank)
            lp_cnt = ((lp_n - 1 - self.lp_g) >> c.bg_bits) + 1
            last_g = self.lp_g == c.bank_groups - 1 or self.lp_g == lp_e.len
            lp_hit = self.open[lp_b] and self.row[lp_b] == lp_row
            act_timing = (self.act[lp_b] == 0 and self.rrd_any == 0 and self.rrd_bg[lp_bg] == 0
                          and self.faw[self.faw_ptr] == 0 and self.rref == 0)
            usable = not lp_e.decerr and not (self.ref_pend and self.sel == lp_b)
            lp_act = usable and not self.open[lp_b] and act_timing
            lp_pre = (usable and self.open[lp_b] and not lp_hit and self.pend[lp_b] == 0
                      and self.pre[lp_b] == 0)
            lp_ok = usable and (lp_hit or lp_act)
            lp_adv = lp_e.decerr or (lp_ok and last_g)

        cas = cas_dram = False
        cp_e = self.cq[self.head]
        cp_b = cp_bg = cp_col = 0
        cp_last = is_wr = False
        cp_word = 0
        beat_resp = OKAY
        mem_err = False
        if self.win != 0:
            cp_word = (cp_e.addr + self.cp_beat) & wmask
            cp_bg, cp_col, _, cp_b = self._decode(cp_word)
            is_wr = cp_e.write
            cp_last = self.cp_beat == cp_e.len
            timing = cp_e.decerr or (
                self.cas[cp_b] == 0 and self.ccd_any == 0 and self.ccd_bg[cp_bg] == 0
                and (self.rtw == 0 if is_wr else (self.wtr_any == 0
                                                  and self.wtr_bg[cp_bg] == 0)))
            data_ok = ((len(self.wq) > 0 and (not cp_last or len(self.bq) < Q)) if is_wr
                       else len(self.rq) < c.rdata_depth)
            cas = timing and data_ok
            cas_dram = cas and not cp_e.decerr
            mem_err = bool(self.err[cp_word])
            beat_resp = DECERR if cp_e.decerr else (SLVERR if mem_err else OKAY)

        row_free = not (lp_act or lp_pre)
        first = None            # per-bank refresh: the first eligible candidate bank
        if c.refresh == "per_bank":
            for g in range(c.bank_groups):
                fb = c.flat_bank(g, self.cand_bank)
                if self.cand_mask[g] and not self.refreshed[fb] and self.pend[fb] == 0:
                    first = fb
                    break
        ref_pre = ref_ref = ref_all = False
        ref_bank = self.sel
        if c.refresh == "per_bank" and self.ref_pend:
            s = self.sel
            if self.open[s]:
                ref_pre = row_free and self.pend[s] == 0 and self.pre[s] == 0
            else:
                ref_ref = (row_free and self.act[s] == 0 and self.rrd_any == 0
                           and self.rref == 0)
        elif c.refresh == "all_bank" and self.drain:
            closable = [b for b in range(c.n_banks)
                        if self.open[b] and self.pend[b] == 0 and self.pre[b] == 0]
            if closable:
                ref_pre, ref_bank = row_free, closable[0]
            elif not any(self.open):
                ref_all = (row_free and all(a == 0 for a in self.act) and self.rrd_any == 0
                           and self.rref == 0)

        r_out = None
        if self.rq and self.now - self.rq[0][4] >= t.tRL:
            r_out = self.rq[0]
        b_out = None
        if self.bq and self.now - self.bq[0][2] >= t.tWL:
            b_out = self.bq[0]
        wready = len(self.wq) < c.wdata_depth
        r_hs = r_out is not None and rready
        b_hs = b_out is not None and bready
        w_hs = w is not None and wready

        if self.trace is not None and (lp_act or lp_pre or ref_pre or ref_ref or ref_all
                                       or cas_dram):
            rc = ("ACT", lp_b, lp_row) if lp_act else ("PRE", lp_b, 0) if lp_pre else \
                ("PRE", ref_bank, 0) if ref_pre else ("REF", ref_bank, 0) if ref_ref else \
                ("REFAB", 0, 0) if ref_all else (None, 0, 0)
            cc = ((("WR" if is_wr else "RD"), cp_b, cp_col) if cas_dram else (None, 0, 0))
            self.trace.append((self.now, *rc, *cc))

        # --- register updates
        st = self.stats
        if enq:
            self.cq[self.tail] = entry
            self.tail = (self.tail + 1) % Q
            self.last_ar = pick_ar
        if lp_adv:
            self.lp_g = 0
            self.lp_idx = (self.lp_idx + 1) % Q
        elif lp_ok:
            self.lp_g += 1
        self.lp_left += enq - lp_adv
        wlast_bad = False
        if cas and not is_wr:
            data = (np.zeros(c.data_bytes, np.uint8) if (cp_e.decerr or mem_err)
                    else self.mem[cp_word].copy())
            self.rq.append((data, cp_e.id, beat_resp, cp_last, self.now))
        if cas and is_wr:
            wdata, wstrb, wlast = self.wq.popleft()
            wlast_bad = bool(wlast) != cp_last
            if cas_dram and not mem_err:
                self.mem[cp_word][wstrb] = wdata[wstrb]
            bresp = max(self.wacc, beat_resp)
            if cp_last:
                self.bq.append((cp_e.id, bresp, self.now))
            self.wacc = 0 if cp_last else bresp
        if cas:
            if cp_last:
                self.cp_beat = 0
                self.head = (self.head + 1) % Q
            else:
                self.cp_beat += 1
        done = cas and cp_last
        self.count += enq - done
        self.win += (lp_n if lp_adv else 0) - cas
        if r_hs:
            self.rq.popleft()
        if b_hs:
            self.bq.popleft()
        if w_hs:
            self.wq.append(w)

        rfc = t.tRFCpb if c.refresh == "per_bank" else t.tRFC
        for b in range(c.n_banks):
            ev_act = lp_act and lp_b == b
            ev_pre = (lp_pre and lp_b == b) or (ref_pre and ref_bank == b)
            ev_ref = (ref_ref and ref_bank == b) or ref_all
            ev_rd = cas_dram and not is_wr and cp_b == b
            ev_wr = cas_dram and is_wr and cp_b == b
            if ev_act:
                self.open[b] = True
                self.row[b] = lp_row
            if ev_pre:
                self.open[b] = False
            self.act[b] = t.tRP - 1 if ev_pre else rfc - 1 if ev_ref else _dec(self.act[b])
            self.cas[b] = t.tRCD - 1 if ev_act else _dec(self.cas[b])
            p = _dec(self.pre[b])
            self.pre[b] = (t.tRAS - 1 if ev_act else max(p, t.tRTP - 1) if ev_rd
                           else max(p, t.tWR - 1) if ev_wr else p)
            self.pend[b] += (lp_cnt if (lp_ok and lp_b == b) else 0) - (cas_dram and cp_b == b)

        self.rrd_any = t.tRRD_S - 1 if lp_act else _dec(self.rrd_any)
        self.rref = t.tRREFD - 1 if (ref_ref or ref_all) else _dec(self.rref)
        self.ccd_any = t.tCCD_S - 1 if cas_dram else _dec(self.ccd_any)
        self.wtr_any = t.tWTR_S - 1 if (cas_dram and is_wr) else _dec(self.wtr_any)
        self.rtw = t.tRTW - 1 if (cas_dram and not is_wr) else _dec(self.rtw)
        for g in range(c.bank_groups):
            self.rrd_bg[g] = t.tRRD_L - 1 if (lp_act and lp_bg == g) else _dec(self.rrd_bg[g])
            self.ccd_bg[g] = t.tCCD_L - 1 if (cas_dram and cp_bg == g) else _dec(self.ccd_bg[g])
            self.wtr_bg[g] = (t.tWTR_L - 1 if (cas_dram and is_wr and cp_bg == g)
                              else _dec(self.wtr_bg[g]))
        for k in range(4):
            self.faw[k] = t.tFAW - 1 if (lp_act and self.faw_ptr == k) else _dec(self.faw[k])
        if lp_act:
            self.faw_ptr = (self.faw_ptr + 1) % 4

        if c.refresh != "off":
            tick = self.timer == 0
            self.timer = self.interval - 1 if tick else self.timer - 1
            issued = ref_ref or ref_all
            owed = self.owed
            self.owed = 15 if (owed == 15 and tick and not issued) else owed + tick - issued
            if c.refresh == "per_bank":
                if not self.ref_pend and owed != 0:
                    if owed >= MAX_POSTPONED:
                        if not self.refreshed[self.rr]:
                            self.sel = self.rr
                            self.ref_pend = True
                        self.rr = (self.rr + 1) % c.n_banks
                    elif first is not None:
                        self.sel = first
                        self.ref_pend = True
                if ref_ref:
                    self.ref_pend = False
                    self.refreshed[self.sel] = True
                    if all(self.refreshed):
                        self.refreshed = [False] * c.n_banks
                if done and not cp_e.decerr:
                    _, _, self.cand_bank, _ = c.decode(cp_e.addr)
                    start = cp_e.addr & (c.bank_groups - 1)
                    self.cand_mask = [((g - start) % c.bank_groups) <= cp_e.len
                                      for g in range(c.bank_groups)]
            else:
                if not self.drain and owed != 0:
                    self.drain = True
                if ref_all:
                    self.drain = False

        st["rd_beats"] += cas and not is_wr
        st["wr_beats"] += cas and is_wr
        st["acts"] += lp_act
        st["pres"] += lp_pre or ref_pre
        st["refs"] += ref_ref or ref_all
        st["row_hits"] += usable and lp_hit
        st["err_beats"] += cas and beat_resp != OKAY
        st["protocol_errors"] += bad_req + wlast_bad
        self.now += 1
        return {"arready": enq and pick_ar, "awready": enq and pick_aw, "wready": wready,
                "r": r_out, "r_taken": r_hs, "b": b_out, "b_taken": b_hs}


# ----------------------------------------------------------------------------------------------
# The testbench's traffic generator, mirrored
# ----------------------------------------------------------------------------------------------

@dataclass
class IdealMaster:
    """``verif/hbm_harness.py``'s AXI master: bursts in order, at most ``max_out`` outstanding.

    A burst is offered (AR or AW) while fewer than ``max_out`` are outstanding; a write's data
    follows its AW (one beat per cycle as the slave takes it, data from :func:`wdata_words`);
    R and B are taken unless the xorshift32 ready stream withholds them (``stall``/256).
    """

    bursts: list
    max_out: int = 8
    seed: int = 1
    stall: int = 0
    strobes: int = 0
    data_bytes: int = 32
    nxt: int = 0
    out: int = 0
    wjobs: deque = field(default_factory=deque)
    wbeat: int = 0
    rng: int = 0

    def __post_init__(self):
        self.rng = (self.seed ^ 0x27D4EB2F) & 0xFFFFFFFF or 1

    @property
    def done(self) -> bool:
        return self.nxt == len(self.bursts) and self.out == 0 and not self.wjobs

    def outputs(self):
        ar = aw = w = None
        if self.nxt < len(self.bursts) and self.out < self.max_out:
            bu = self.bursts[self.nxt]
            req = (bu.id, bu.addr, bu.beats - 1, self.data_bytes.bit_length() - 1, 1)
            if bu.write:
                aw = req
            else:
                ar = req
        if self.wjobs:
            addr, beats = self.wjobs[0]
            word = (addr // self.data_bytes) + self.wbeat
            d = wdata_words(np.array([word]), self.seed, self.data_bytes)[0]
            s = wstrb_words(np.array([word]), self.seed, self.data_bytes, self.strobes)[0]
            w = (d, s, self.wbeat == beats - 1)
        ready = not (self.stall and (self.rng & 0xFF) < self.stall)
        return ar, aw, w, ready

    def update(self, ar, aw, w, res):
        if (ar is not None and res["arready"]) or (aw is not None and res["awready"]):
            bu = self.bursts[self.nxt]
            if bu.write:
                self.wjobs.append((bu.addr, bu.beats))
            self.nxt += 1
            self.out += 1
        if w is not None and res["wready"]:
            if w[2]:
                self.wjobs.popleft()
                self.wbeat = 0
            else:
                self.wbeat += 1
        self.out -= (res["r_taken"] and bool(res["r"][3])) + bool(res["b_taken"])
        self.rng = xorshift32(self.rng)


@dataclass
class SimResult:
    """What :func:`simulate` predicts."""

    cycles: int                 #: cycles until the last response was taken
    rbeats: list                #: (cycle, id, resp, last, data bytes) per R beat taken
    bresps: list                #: (cycle, id, resp) per B taken
    mem: np.ndarray             #: final backing store
    stats: dict
    trace: list | None


def simulate(cfg: HbmConfig, bursts: list[Burst], mem=None, err=None, max_out: int = 8,
             seed: int = 1, stall: int = 0, strobes: int = 0, trace: bool = False,
             max_cycles: int = 10_000_000) -> SimResult:
    """One channel driven by :class:`IdealMaster`: every response and its cycle."""
    ch = HbmChannelModel(cfg, mem, err, trace)
    ms = IdealMaster(list(bursts), max_out, seed, stall, strobes, cfg.data_bytes)
    rbeats, bresps = [], []
    while not ms.done:
        if ch.now >= max_cycles:
            raise RuntimeError(f"golden HBM model: not done after {max_cycles} cycles")
        ar, aw, w, ready = ms.outputs()
        now = ch.now
        res = ch.cycle(ar, aw, w, ready, ready)
        if res["r_taken"]:
            d, i, resp, last, _ = res["r"]
            rbeats.append((now, i, resp, bool(last), d))
        if res["b_taken"]:
            bi, bresp, _ = res["b"]
            bresps.append((now, bi, bresp))
        ms.update(ar, aw, w, res)
    return SimResult(ch.now, rbeats, bresps, ch.mem, ch.stats, ch.trace)


# ----------------------------------------------------------------------------------------------
# Functional model and timing-rule checker (independent of the controller's algorithm)
# ----------------------------------------------------------------------------------------------

def functional(cfg: HbmConfig, bursts: list[Burst], mem, err, seed: int = 1, strobes: int = 0):
    """The bursts in order: ``(read beats [(id, resp, last, data)], write resps [(id, resp)],
    final memory)`` — the contract of an in-order AXI slave with this error model."""
    B = cfg.data_bytes
    mem = np.array(mem, dtype=np.uint8).reshape(cfg.words, B).copy()
    err = np.asarray(err, dtype=bool).reshape(cfg.words)
    reads, writes = [], []
    for bu in bursts:
        words = bu.addr // B + np.arange(bu.beats)
        if words[0] >= cfg.words:
            if bu.write:
                writes.append((bu.id, DECERR))
            else:
                reads += [(bu.id, DECERR, k == bu.beats - 1, np.zeros(B, np.uint8))
                          for k in range(bu.beats)]
            continue
        bad = err[words]
        if bu.write:
            d = wdata_words(words, seed, B)
            s = wstrb_words(words, seed, B, strobes)
            s[bad] = False
            sub = mem[words]
            sub[s] = d[s]
            mem[words] = sub
            writes.append((bu.id, SLVERR if bad.any() else OKAY))
        else:
            for k, wd in enumerate(words):
                reads.append((bu.id, SLVERR if bad[k] else OKAY, k == bu.beats - 1,
                              np.zeros(B, np.uint8) if bad[k] else mem[wd].copy()))
    return reads, writes, mem


def check_trace(cfg: HbmConfig, trace: list) -> list[str]:
    """Every violated timing rule in a command trace (empty if none).

    ``trace``: ``(cycle, row_cmd, row_bank, row_row, col_cmd, col_bank, col_col)`` per cycle
    with a command, commands as strings (``ACT``/``PRE``/``REF``/``REFAB``, ``RD``/``WR``).
    """
    t = cfg.timing
    NB, NBG = cfg.n_banks, cfg.bank_groups
    never = -(10 ** 9)
    last = {k: [never] * NB for k in ("ACT", "PRE", "REF", "RD", "WR")}
    any_last = dict.fromkeys(("ACT", "REF", "RD", "WR"), never)
    bg_last = {k: [never] * NBG for k in ("ACT", "RD", "WR")}
    acts: list[int] = []
    open_ = [False] * NB
    refab = never
    rfc = t.tRFCpb if cfg.refresh == "per_bank" else t.tRFC
    errs: list[str] = []

    def need(ok, msg, cyc):
        if not ok:
            errs.append(f"cycle {cyc}: {msg}")

    for cyc, rc, rb, _rrow, cc, cb, _ccol in trace:
        if rc == "ACT":
            g = rb % NBG
            need(not open_[rb], f"ACT to open bank {rb}", cyc)
            need(cyc - last["PRE"][rb] >= t.tRP, f"tRP bank {rb}", cyc)
            need(cyc - last["REF"][rb] >= rfc, f"tRFCpb bank {rb}", cyc)
            need(cyc - refab >= t.tRFC, "tRFC", cyc)
            need(cyc - any_last["ACT"] >= t.tRRD_S, "tRRD_S", cyc)
            need(cyc - bg_last["ACT"][g] >= t.tRRD_L, f"tRRD_L bank group {g}", cyc)
            need(len(acts) < 4 or cyc - acts[-4] >= t.tFAW, "tFAW", cyc)
            need(cyc - any_last["REF"] >= t.tRREFD, "tRREFD", cyc)
            open_[rb] = True
            last["ACT"][rb] = any_last["ACT"] = bg_last["ACT"][g] = cyc
            acts.append(cyc)
        elif rc == "PRE":
            need(open_[rb], f"PRE to closed bank {rb}", cyc)
            need(cyc - last["ACT"][rb] >= t.tRAS, f"tRAS bank {rb}", cyc)
            need(cyc - last["RD"][rb] >= t.tRTP, f"tRTP bank {rb}", cyc)
            need(cyc - last["WR"][rb] >= t.tWR, f"write recovery bank {rb}", cyc)
            open_[rb] = False
            last["PRE"][rb] = cyc
        elif rc == "REF":
            need(not open_[rb], f"REF to open bank {rb}", cyc)
            need(cyc - last["PRE"][rb] >= t.tRP, f"tRP before REF bank {rb}", cyc)
            need(cyc - last["REF"][rb] >= rfc, f"tRFCpb before REF bank {rb}", cyc)
            need(cyc - any_last["REF"] >= t.tRREFD, "tRREFD", cyc)
            need(cyc - any_last["ACT"] >= t.tRRD_S, "ACT to REF", cyc)
            last["REF"][rb] = any_last["REF"] = cyc
        elif rc == "REFAB":
            need(not any(open_), "REFab with a bank open", cyc)
            need(all(cyc - p >= t.tRP for p in last["PRE"]), "tRP before REFab", cyc)
            need(cyc - refab >= t.tRFC, "tRFC before REFab", cyc)
            refab = any_last["REF"] = cyc
        if cc in ("RD", "WR"):
            g = cb % NBG
            need(open_[cb], f"{cc} to closed bank {cb}", cyc)
            need(cyc - last["ACT"][cb] >= t.tRCD, f"tRCD bank {cb}", cyc)
            prev = max(any_last["RD"], any_last["WR"])
            prev_g = max(bg_last["RD"][g], bg_last["WR"][g])
            need(cyc - prev >= t.tCCD_S, "tCCD_S", cyc)
            need(cyc - prev_g >= t.tCCD_L, f"tCCD_L bank group {g}", cyc)
            if cc == "RD":
                need(cyc - any_last["WR"] >= t.tWTR_S, "tWTR_S", cyc)
                need(cyc - bg_last["WR"][g] >= t.tWTR_L, f"tWTR_L bank group {g}", cyc)
            else:
                need(cyc - any_last["RD"] >= t.tRTW, "tRTW", cyc)
            last[cc][cb] = any_last[cc] = bg_last[cc][g] = cyc
    return errs
