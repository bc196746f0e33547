"""Fast harness of the DMA against the HBM model: everything per beat in HDL, Python off the path.

``DmaHarness`` (Amaranth, simulation only) holds:

* a descriptor source reading a ROM (random valid gaps) and a status sink writing a log
  (random ready stalls);
* the :class:`hdl.dma.Dma` under test;
* per channel, optionally, :class:`AxiThrottle` (random valid *and* ready on all five AXI
  channels, both directions) and always an :class:`AxiMonitor` (protocol rules, counted);
* per channel an :class:`hdl.hbm.HbmChannel` (its backing store and error map in the top);
* per lane an SRAM port model: writes with byte enables into the top's SRAM memory (random
  ready stalls), reads with two cycles of latency and random request gaps.

The generated Verilog top (``tb_top``) loads the ROM, the SRAM, the HBM stores and error maps
with ``$readmemh`` and dumps SRAM, HBM and the status log with ``$writememh`` when ``done``
rises; cocotb (``verif/hbm_harness_tb.py``) only waits for ``done``. Python then compares every
byte and every status with ``golden.dma`` (vectorized) and the counters with expectations.
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import fifo, wiring
from amaranth.lib.wiring import In, Out

from golden.dma import Descriptor, Status, pack_desc, unpack_status
from hdl.axi import AxiSignature
from hdl.dma import Dma, DmaConfig, desc_layout, status_layout
from hdl.hbm import STATS, HbmChannel, HbmConfig

from . import hexio, sim
from .hbm_harness import JOB_ENV, _words, xorshift32

__all__ = ["AxiMonitor", "AxiThrottle", "DmaHarness", "DmaRun", "Gaps", "RandomSlice",
           "hbm_config", "run_dma", "run_dma_axiram"]

#: Protocol-rule codes of :class:`AxiMonitor` (the first one seen is reported).
RULES = {
    1: "AR: not a full-width INCR burst, or crosses 4 KiB",
    2: "AW: not a full-width INCR burst, or crosses 4 KiB",
    3: "AR: valid dropped or payload changed before ready",
    4: "AW: valid dropped or payload changed before ready",
    5: "W: valid dropped or payload changed before ready",
    6: "R: valid dropped or payload changed before ready",
    7: "B: valid dropped or payload changed before ready",
    8: "W: burst length (WLAST) differs from its AW",
    9: "AR: ID reused while a burst with that ID is outstanding",
    10: "R: ID with no outstanding read",
    11: "R: RLAST not on the burst's last beat",
    12: "B: response with no outstanding write",
    13: "W: more than 256 beats without WLAST",
}

_CHANNELS = {   # name: (signals, master to slave)
    "ar": (("arid", "araddr", "arlen", "arsize", "arburst"), True),
    "aw": (("awid", "awaddr", "awlen", "awsize", "awburst"), True),
    "w": (("wdata", "wstrb", "wlast"), True),
    "r": (("rid", "rdata", "rresp", "rlast"), False),
    "b": (("bid", "bresp"), False),
}


def _rng(m: Module, seed, salt: int, name: str):
    """A xorshift32 stream seeded from ``seed ^ salt``: the value of this cycle."""
    rng = Signal(32, name=f"{name}_rng")
    started = Signal(name=f"{name}_started")
    s0 = seed ^ salt
    cur = Signal(32, name=f"{name}_cur")
    m.d.comb += cur.eq(Mux(started, rng, Mux(s0 == 0, 1, s0)))
    m.d.sync += [rng.eq(xorshift32(cur)), started.eq(1)]
    return cur


class RandomSlice(wiring.Component):
    """A 2-entry buffer withholding ``o_valid`` (``gap``/256 of the cycles it could start
    offering) and ``i_ready`` (``gap``/256), with AXI/stream rules kept on its output."""

    def __init__(self, width: int, salt: int):
        self._salt = salt
        super().__init__({
            "i_valid": In(1), "i_ready": Out(1), "i_data": In(width),
            "o_valid": Out(1), "o_ready": In(1), "o_data": Out(width),
            "seed": In(32), "gap": In(8),
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.q = q = fifo.SyncFIFO(width=len(self.i_data), depth=2)
        cur = _rng(m, self.seed, self._salt, "slice")
        go = ~((self.gap != 0) & (cur[:8] < self.gap))
        take = ~((self.gap != 0) & (cur[8:16] < self.gap))
        presenting = Signal()
        m.d.comb += [
            self.o_valid.eq(q.r_rdy & (presenting | go)), self.o_data.eq(q.r_data),
            q.r_en.eq(self.o_valid & self.o_ready),
            self.i_ready.eq(q.w_rdy & take), q.w_en.eq(self.i_valid & self.i_ready),
            q.w_data.eq(self.i_data),
        ]
        m.d.sync += presenting.eq(self.o_valid & ~self.o_ready)
        return m


class AxiThrottle(wiring.Component):
    """An AXI link through five :class:`RandomSlice`: random valid and ready everywhere."""

    def __init__(self, sig: AxiSignature, salt: int):
        self._sig = sig
        self._salt = salt
        super().__init__({"s": In(sig), "m": Out(sig), "seed": In(32), "gap": In(8)})

    def elaborate(self, platform):
        m = Module()
        for k, (ch, (names, downstream)) in enumerate(_CHANNELS.items()):
            src, dst = (self.s, self.m) if downstream else (self.m, self.s)
            width = sum(len(getattr(src, n)) for n in names)
            sl = RandomSlice(width, self._salt * 31 + k * 0x9E3779B1 & 0xFFFFFFFF)
            m.submodules[ch] = sl
            m.d.comb += [
                sl.seed.eq(self.seed), sl.gap.eq(self.gap),
                sl.i_valid.eq(getattr(src, f"{ch}valid")),
                getattr(src, f"{ch}ready").eq(sl.i_ready),
                sl.i_data.eq(Cat(getattr(src, n) for n in names)),
                getattr(dst, f"{ch}valid").eq(sl.o_valid),
                sl.o_ready.eq(getattr(dst, f"{ch}ready")),
                Cat(getattr(dst, n) for n in names).eq(sl.o_data),
            ]
        return m


class RShuffle(wiring.Component):
    """Returns read data out of order, as an AXI4 slave may: the slave's R beats are queued per
    ID and handed to the master from a randomly chosen non-empty queue, beat by beat (beats of
    different IDs interleave; within an ID the order stays). The output is withheld ``gap``/256
    of the cycles so that several queues fill. ``interleaves`` counts beats whose ID differs
    from the previous beat's while that burst was not finished.
    """

    def __init__(self, sig: AxiSignature, depth: int, salt: int):
        self._sig, self._depth, self._salt = sig, depth, salt
        r = {"rid": sig.id_width, "rdata": sig.data_width, "rresp": 2, "rlast": 1}
        members = {f"s_{n}": In(w) for n, w in r.items()}
        members.update({f"m_{n}": Out(w) for n, w in r.items()})
        members.update({"s_rvalid": In(1), "s_rready": Out(1), "m_rvalid": Out(1),
                        "m_rready": In(1), "seed": In(32), "gap": In(8),
                        "interleaves": Out(32)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        n_ids = 1 << self._sig.id_width
        names = ("rid", "rdata", "rresp", "rlast")
        payload_in = Cat(getattr(self, f"s_{n}") for n in names)
        fifos = []
        for i in range(n_ids):
            f = fifo.SyncFIFO(width=len(payload_in), depth=self._depth)
            m.submodules[f"q{i}"] = f
            fifos.append(f)
            m.d.comb += [f.w_data.eq(payload_in),
                         f.w_en.eq(self.s_rvalid & self.s_rready & (self.s_rid == i))]
        m.d.comb += self.s_rready.eq(Array(f.w_rdy for f in fifos)[self.s_rid])
        cur = _rng(m, self.seed, self._salt, "rshuffle")
        ib = max(1, (n_ids - 1).bit_length())
        start = cur[8:8 + ib]
        nonempty = Cat(f.r_rdy for f in fifos)
        pick = Signal(range(n_ids))
        # The first non-empty queue at or after a random start (round the ring).
        for k in reversed(range(n_ids)):
            idx = (start + k)[:ib] if n_ids > 1 else Const(0, 1)
            with m.If(nonempty.bit_select(idx, 1)):
                m.d.comb += pick.eq(idx)
        holding = Signal()
        sel = Signal(range(n_ids))
        chosen = Signal(range(n_ids))
        go = ~((self.gap != 0) & (cur[:8] < self.gap))
        m.d.comb += [chosen.eq(Mux(holding, sel, pick)),
                     self.m_rvalid.eq(holding | (nonempty.any() & go))]
        hs = self.m_rvalid & self.m_rready
        with m.If(self.m_rvalid & ~self.m_rready):
            m.d.sync += [holding.eq(1), sel.eq(chosen)]
        with m.Elif(hs):
            m.d.sync += holding.eq(0)
        out = Array(f.r_data for f in fifos)[chosen]
        m.d.comb += Cat(getattr(self, f"m_{n}") for n in names).eq(out)
        for i, f in enumerate(fifos):
            m.d.comb += f.r_en.eq(hs & (chosen == i))
        last_id = Signal(range(n_ids))
        open_burst = Signal()
        with m.If(hs):
            m.d.sync += [last_id.eq(self.m_rid), open_burst.eq(~self.m_rlast)]
            with m.If(open_burst & (self.m_rid != last_id)):
                m.d.sync += self.interleaves.eq(self.interleaves + 1)
        return m


class AxiMonitor(wiring.Component):
    """Watches one AXI link and counts protocol-rule violations (codes in :data:`RULES`)."""

    def __init__(self, sig: AxiSignature, beat_shift: int):
        self._sig = sig
        self._lb = beat_shift
        members = {name: In(mem.shape) for name, mem in sig.members.items()}
        members.update({"violations": Out(32), "first": Out(8), "max_rd_out": Out(16)})
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        sig, lb = self._sig, self._lb
        bad = []                                  # (condition, code)

        def hs(ch):
            return getattr(self, f"{ch}valid") & getattr(self, f"{ch}ready")

        for code, (ch, (names, _)) in zip((3, 4, 5, 6, 7), _CHANNELS.items(), strict=True):
            payload = Cat(getattr(self, n) for n in names)
            waiting = Signal(name=f"{ch}_waiting")
            held = Signal(len(payload), name=f"{ch}_held")
            valid = getattr(self, f"{ch}valid")
            m.d.sync += [waiting.eq(valid & ~getattr(self, f"{ch}ready")), held.eq(payload)]
            bad.append((waiting & (~valid | (payload != held)), code))
        for ch, code in (("ar", 1), ("aw", 2)):
            addr = getattr(self, f"{ch}addr")
            ln = getattr(self, f"{ch}len")
            illegal = ((getattr(self, f"{ch}size") != lb) | (getattr(self, f"{ch}burst") != 1)
                       | (addr[lb:12] + ln >= (4096 >> lb)))
            bad.append((hs(ch) & illegal, code))

        # W bursts against AW lengths, in order, whichever comes first.
        m.submodules.awl = awl = fifo.SyncFIFO(width=9, depth=64)
        m.submodules.wl = wl = fifo.SyncFIFO(width=9, depth=64)
        wcnt = Signal(9)
        m.d.comb += [awl.w_en.eq(hs("aw")), awl.w_data.eq(self.awlen + 1),
                     wl.w_en.eq(hs("w") & self.wlast), wl.w_data.eq(wcnt + 1)]
        with m.If(hs("w")):
            m.d.sync += wcnt.eq(Mux(self.wlast, 0, wcnt + 1))
        both = awl.r_rdy & wl.r_rdy
        m.d.comb += [awl.r_en.eq(both), wl.r_en.eq(both)]
        bad.append((both & (awl.r_data != wl.r_data), 8))
        bad.append((hs("w") & ~self.wlast & (wcnt == 255), 13))

        # Read IDs: one burst per ID at a time (the DMA's rule), RLAST on the last beat.
        n_ids = 1 << sig.id_width
        out = Signal(n_ids)
        lens = [Signal(8, name=f"len{i}") for i in range(n_ids)]
        cnts = [Signal(8, name=f"cnt{i}") for i in range(n_ids)]
        A_len, A_cnt = Array(lens), Array(cnts)
        bad.append((hs("ar") & out.bit_select(self.arid, 1), 9))
        bad.append((hs("r") & ~out.bit_select(self.rid, 1), 10))
        bad.append((hs("r") & out.bit_select(self.rid, 1)
                    & (self.rlast != (A_cnt[self.rid] == A_len[self.rid])), 11))
        for i in range(n_ids):
            with m.If(hs("ar") & (self.arid == i)):
                m.d.sync += [out[i].eq(1), lens[i].eq(self.arlen), cnts[i].eq(0)]
            with m.Elif(hs("r") & (self.rid == i)):
                m.d.sync += cnts[i].eq(cnts[i] + 1)
                with m.If(self.rlast):
                    m.d.sync += out[i].eq(0)
        # Most read bursts seen in flight at once (the DMA's read IDs at work).
        n_out = Signal(16)
        m.d.comb += n_out.eq(sum(out[i] for i in range(n_ids)))
        with m.If(n_out > self.max_rd_out):
            m.d.sync += self.max_rd_out.eq(n_out)
        aw_out = Signal(16)
        m.d.sync += aw_out.eq(aw_out + hs("aw") - hs("b"))
        bad.append((hs("b") & (aw_out == 0), 12))

        any_bad = Cat(c for c, _ in bad).any()
        code = Signal(8)
        for c, k in reversed(bad):
            with m.If(c):
                m.d.comb += code.eq(k)
        m.d.sync += self.violations.eq(self.violations + any_bad)
        with m.If(any_bad & (self.first == 0)):
            m.d.sync += self.first.eq(code)
        return m


@dataclass(frozen=True)
class Gaps:
    """Random behaviour of the harness, each a probability in 1/256 per cycle (0 = none)."""

    desc: int = 0          #: descriptor source withholds valid
    status: int = 0        #: status sink withholds ready
    sram_wr: int = 0       #: SRAM write port withholds ready
    sram_rd: int = 0       #: SRAM read port withholds ready
    axi: int = 0           #: every AXI channel: valid and ready withheld (needs throttle)

    def __post_init__(self):
        for k, v in self.__dict__.items():
            if not isinstance(v, int) or not 0 <= v <= 255:
                raise ValueError(f"gap probability {k} must be an integer in [0, 255], not {v!r}")


def hbm_config(cfg: DmaConfig, rows: int = 8, **kw) -> HbmConfig:
    """The HBM model matching a DMA: same channels, data width, ID and address widths."""
    return HbmConfig(channels=cfg.channels, data_bits=cfg.data_bits, id_bits=cfg.id_bits,
                     addr_bits=cfg.chan_addr_bits, rows=rows, **kw)


#: Counters the harness exposes, per lane/channel ``c``: name -> width.
def _stat_names(cfg: DmaConfig, external: bool = False) -> list[str]:
    names = ["cycles", "n_status", "first_status", "sram_wr_beats", "sram_wr_bytes",
             "sram_rd_reqs"]
    for c in range(cfg.channels):
        names += [f"{k}_{c}" for k in ("rd_beats", "wr_beats", "ar", "aw", "segments",
                                       "violations", "first_rule", "max_rd_out")]
        if not external:
            names.append(f"interleaves_{c}")
            names += [f"hbm_{k}_{c}" for k, _ in STATS]
    return names


def _axi_ports(cfg: DmaConfig) -> list[tuple[str, int, bool]]:
    """``(name, width, driven by the master)`` of each AXI signal of a lane."""
    sig = AxiSignature(addr_width=cfg.chan_addr_bits, data_width=cfg.data_bits,
                       id_width=cfg.id_bits)
    return [(n, mem.shape.width if hasattr(mem.shape, "width") else mem.shape,
             mem.flow == Out) for n, mem in sig.members.items()]


class DmaHarness(wiring.Component):
    """See the module docstring."""

    def __init__(self, cfg: DmaConfig, hcfg: HbmConfig, desc_bits: int, throttle: bool,
                 external: bool = False):
        self._cfg, self._hcfg = cfg, hcfg
        self._db, self._throttle, self._ext = desc_bits, throttle, external
        C, D, B = cfg.channels, cfg.data_bits, cfg.data_bytes
        sw = cfg.sram_word_bits
        members = {
            "desc_addr": Out(desc_bits), "desc_data": In(desc_layout(cfg)),
            "n_desc": In(32), "seed": In(32),
            "gap_desc": In(8), "stall_status": In(8), "stall_sram_wr": In(8),
            "gap_sram_rd": In(8), "gap_axi": In(8),
            "slog_we": Out(1), "slog_addr": Out(desc_bits),
            "slog_data": Out(status_layout(cfg)),
            "done": Out(1), "stats": Out(32 * len(_stat_names(cfg, external))),
        }
        for c in range(C):
            members.update({
                f"sw_we_{c}": Out(1), f"sw_addr_{c}": Out(sw), f"sw_data_{c}": Out(D),
                f"sw_be_{c}": Out(B), f"sr_addr_{c}": Out(sw), f"sr_data_{c}": In(D),
            })
            if external:       # the AXI master leaves the harness (cocotbext-axi's AxiRam)
                members.update({f"m{c}_{n}": Out(w) if out else In(w)
                                for n, w, out in _axi_ports(cfg)})
            else:
                members.update({
                    f"mem_addr_{c}": Out(hcfg.word_bits), f"mem_rdata_{c}": In(D),
                    f"mem_err_{c}": In(1), f"mem_we_{c}": Out(1), f"mem_wdata_{c}": Out(D),
                    f"mem_wstrb_{c}": Out(B),
                })
        super().__init__(members)

    def elaborate(self, platform):  # noqa: C901
        m = Module()
        cfg, hcfg = self._cfg, self._hcfg
        C, B = cfg.channels, cfg.data_bytes
        m.submodules.dma = dma = Dma(cfg)
        stats = {}

        # Descriptors in, statuses out.
        didx = Signal(32)
        cur = _rng(m, self.seed, 0x1B873593, "desc")
        go = ~((self.gap_desc != 0) & (cur[:8] < self.gap_desc))
        presenting = Signal()
        m.d.comb += [self.desc_addr.eq(didx), dma.desc.payload.eq(self.desc_data),
                     dma.desc.valid.eq((didx < self.n_desc) & (presenting | go))]
        m.d.sync += presenting.eq(dma.desc.valid & ~dma.desc.ready)
        with m.If(dma.desc.valid & dma.desc.ready):
            m.d.sync += didx.eq(didx + 1)
        sidx = Signal(32)
        cur = _rng(m, self.seed, 0xCC9E2D51, "status")
        m.d.comb += dma.status.ready.eq(~((self.stall_status != 0)
                                          & (cur[:8] < self.stall_status)))
        s_hs = dma.status.valid & dma.status.ready
        m.d.comb += [self.slog_we.eq(s_hs), self.slog_addr.eq(sidx),
                     self.slog_data.eq(dma.status.payload)]
        m.d.sync += sidx.eq(sidx + s_hs)
        cycles = Signal(32)
        first_status = Signal(32)
        done = (sidx == self.n_desc) & (didx == self.n_desc)
        m.d.comb += self.done.eq(done)
        with m.If(~done):
            m.d.sync += cycles.eq(cycles + 1)
        with m.If(s_hs & (sidx == 0)):
            m.d.sync += first_status.eq(cycles)
        stats.update(cycles=cycles, n_status=sidx, first_status=first_status)

        # SRAM port models.
        wr_beats = Signal(32)
        wr_bytes = Signal(32)
        rd_reqs = Signal(32)
        wr_inc, byte_inc, rd_inc = [], [], []
        for c in range(C):
            wr = dma.sram_wr[c]
            cur = _rng(m, self.seed, 0x85EBCA6B + 17 * c, f"sw{c}")
            m.d.comb += wr.ready.eq(~((self.stall_sram_wr != 0)
                                      & (cur[:8] < self.stall_sram_wr)))
            w_hs = wr.valid & wr.ready
            m.d.comb += [getattr(self, f"sw_we_{c}").eq(w_hs),
                         getattr(self, f"sw_addr_{c}").eq(wr.payload.addr),
                         getattr(self, f"sw_data_{c}").eq(wr.payload.data),
                         getattr(self, f"sw_be_{c}").eq(wr.payload.be)]
            wr_inc.append(w_hs)
            byte_inc.append(Mux(w_hs, sum(wr.payload.be[i] for i in range(B)), 0))

            rd, rdata = dma.sram_rd[c], dma.sram_rdata[c]
            m.submodules[f"srq{c}"] = q = fifo.SyncFIFO(width=cfg.data_bits, depth=4)
            pipe_v = Signal(name=f"sr_pipe_valid{c}")
            pipe_d = Signal(cfg.data_bits, name=f"sr_pipe_data{c}")
            cur = _rng(m, self.seed, 0xE6546B64 + 29 * c, f"sr{c}")
            room = (q.level + pipe_v) < 3
            m.d.comb += [rd.ready.eq(room & ~((self.gap_sram_rd != 0)
                                              & (cur[:8] < self.gap_sram_rd))),
                         getattr(self, f"sr_addr_{c}").eq(rd.payload.addr)]
            r_hs = rd.valid & rd.ready
            m.d.sync += [pipe_v.eq(r_hs), pipe_d.eq(getattr(self, f"sr_data_{c}"))]
            m.d.comb += [q.w_en.eq(pipe_v), q.w_data.eq(pipe_d),
                         rdata.valid.eq(q.r_rdy), rdata.payload.data.eq(q.r_data),
                         q.r_en.eq(rdata.valid & rdata.ready)]
            rd_inc.append(r_hs)
        m.d.sync += [wr_beats.eq(wr_beats + sum(wr_inc)), wr_bytes.eq(wr_bytes + sum(byte_inc)),
                     rd_reqs.eq(rd_reqs + sum(rd_inc))]
        stats.update(sram_wr_beats=wr_beats, sram_wr_bytes=wr_bytes, sram_rd_reqs=rd_reqs)

        # AXI: (throttle) -> monitor -> HBM channel.
        sig = AxiSignature(addr_width=cfg.chan_addr_bits, data_width=cfg.data_bits,
                           id_width=cfg.id_bits)
        for c in range(C):
            link = dma.m[c]
            if self._throttle:
                th = AxiThrottle(sig, 1 + c)
                m.submodules[f"throttle{c}"] = th
                wiring.connect(m, link, th.s)
                m.d.comb += [th.seed.eq(self.seed), th.gap.eq(self.gap_axi)]
                link = th.m
            mon = AxiMonitor(sig, cfg.beat_shift)
            m.submodules[f"monitor{c}"] = mon
            for name in sig.members:
                m.d.comb += getattr(mon, name).eq(getattr(link, name))
            st = dma.stats[c]
            stats.update({f"rd_beats_{c}": st.rd_beats, f"wr_beats_{c}": st.wr_beats,
                          f"ar_{c}": st.ar, f"aw_{c}": st.aw, f"segments_{c}": st.segments,
                          f"violations_{c}": mon.violations, f"first_rule_{c}": mon.first,
                          f"max_rd_out_{c}": mon.max_rd_out})
            if self._ext:
                for n, _, out in _axi_ports(cfg):
                    port = getattr(self, f"m{c}_{n}")
                    if out:
                        m.d.comb += port.eq(getattr(link, n))
                    else:
                        m.d.comb += getattr(link, n).eq(port)
                continue
            hbm = HbmChannel(hcfg)
            m.submodules[f"hbm{c}"] = hbm
            if self._throttle:
                # Out-of-order read data (per-ID queues, random pick) on the throttled links.
                sh = RShuffle(sig, cfg.max_burst, 0x68E31DA4 + 7 * c)
                m.submodules[f"rshuffle{c}"] = sh
                for n in sig.members:
                    if n in ("rid", "rdata", "rresp", "rlast", "rvalid"):
                        m.d.comb += [getattr(sh, f"s_{n}").eq(getattr(hbm.axi, n)),
                                     getattr(link, n).eq(getattr(sh, f"m_{n}"))]
                    elif n == "rready":
                        m.d.comb += [sh.m_rready.eq(link.rready),
                                     hbm.axi.rready.eq(sh.s_rready)]
                    elif sig.members[n].flow == Out:
                        m.d.comb += getattr(hbm.axi, n).eq(getattr(link, n))
                    else:
                        m.d.comb += getattr(link, n).eq(getattr(hbm.axi, n))
                m.d.comb += [sh.seed.eq(self.seed), sh.gap.eq(self.gap_axi)]
                stats[f"interleaves_{c}"] = sh.interleaves
            else:
                wiring.connect(m, link, hbm.axi)
                stats[f"interleaves_{c}"] = Const(0, 32)
            m.d.comb += [
                getattr(self, f"mem_addr_{c}").eq(hbm.mem_addr),
                hbm.mem_rdata.eq(getattr(self, f"mem_rdata_{c}")),
                hbm.mem_err.eq(getattr(self, f"mem_err_{c}")),
                getattr(self, f"mem_we_{c}").eq(hbm.mem_we),
                getattr(self, f"mem_wdata_{c}").eq(hbm.mem_wdata),
                getattr(self, f"mem_wstrb_{c}").eq(hbm.mem_wstrb),
            ]
            for k, _ in STATS:
                stats[f"hbm_{k}_{c}"] = getattr(hbm.stats, k)
        m.d.comb += self.stats.eq(Cat(Cat(stats[n], Const(0, 32))[:32]
                                      for n in _stat_names(cfg, self._ext)))
        return m


def top_verilog(cfg: DmaConfig, hcfg: HbmConfig, desc_bits: int, external: bool = False) -> str:
    """``tb_top``: clock, reset, descriptor ROM, status log, SRAM, HBM stores, error maps.

    ``external``: no HBM model; each lane's AXI master is a set of top-level signals
    ``m<c>_<name>`` (slave inputs are ``reg`` written by cocotb).
    """
    C, D, B = cfg.channels, cfg.data_bits, cfg.data_bytes
    sw, hw = cfg.sram_word_bits, hcfg.word_bits
    dl, sl = desc_layout(cfg).size, status_layout(cfg).size
    names = _stat_names(cfg, external)
    plus = ["n_desc", "hseed", "gap_desc", "stall_status", "stall_sram_wr", "gap_sram_rd",
            "gap_axi"]
    lines = [
        "`timescale 1ns/1ps",
        "// Generated by verif/dma_harness.py: simulation top of the DMA and the HBM model.",
        "module tb_top;",
        "  reg clk = 1'b0;",
        "  reg rst = 1'b1;",
        # External slave: cocotb drives the clock, so that cocotbext-axi samples the handshakes
        # before the edge's register updates (with a Verilog clock its RisingEdge callbacks would
        # see the values after them, and miss transfers).
        ("  // clk is driven by cocotb" if external else "  always #5 clk = ~clk;"),
        "  reg [31:0] " + ", ".join(f"{p} = 0" for p in plus) + ";",
        "  integer tmp, i;",
        "  reg [8*1024-1:0] fname;",
        f"  reg [{dl - 1}:0] drom [0:{(1 << desc_bits) - 1}];",
        f"  reg [{sl - 1}:0] slog [0:{(1 << desc_bits) - 1}];",
        f"  reg [{D - 1}:0] sram [0:{(1 << sw) - 1}];",
        f"  wire [{desc_bits - 1}:0] desc_addr, slog_addr;",
        f"  wire [{sl - 1}:0] slog_data;",
        "  wire slog_we, done;",
        f"  wire [{32 * len(names) - 1}:0] stats;",
        *(f"  wire [31:0] stat_{n} = stats[{32 * k + 31}:{32 * k}];"
          for k, n in enumerate(names)),
    ]
    conns = ["    .clk(clk), .rst(rst), .desc_addr(desc_addr), .desc_data(drom[desc_addr]),",
             "    .n_desc(n_desc), .seed(hseed), .gap_desc(gap_desc[7:0]),",
             "    .stall_status(stall_status[7:0]), .stall_sram_wr(stall_sram_wr[7:0]),",
             "    .gap_sram_rd(gap_sram_rd[7:0]), .gap_axi(gap_axi[7:0]),",
             "    .slog_we(slog_we), .slog_addr(slog_addr), .slog_data(slog_data),",
             "    .done(done), .stats(stats)"]
    writes = []
    for c in range(C):
        lines += [
            f"  wire sw_we_{c};",
            f"  wire [{sw - 1}:0] sw_addr_{c}, sr_addr_{c};",
            f"  wire [{D - 1}:0] sw_data_{c};",
            f"  wire [{B - 1}:0] sw_be_{c};",
        ]
        conns[-1] += ","
        conns += [
            f"    .sw_we_{c}(sw_we_{c}), .sw_addr_{c}(sw_addr_{c}), .sw_data_{c}(sw_data_{c}),",
            f"    .sw_be_{c}(sw_be_{c}), .sr_addr_{c}(sr_addr_{c}), "
            f".sr_data_{c}(sram[sr_addr_{c}])",
        ]
        writes += [
            f"    if (sw_we_{c})",
            f"      for (i = 0; i < {B}; i = i + 1)",
            f"        if (sw_be_{c}[i]) sram[sw_addr_{c}][8*i +: 8] <= sw_data_{c}[8*i +: 8];",
        ]
        if external:
            ports = _axi_ports(cfg)
            lines += [(f"  wire [{w - 1}:0] m{c}_{n};" if out else
                       f"  reg [{w - 1}:0] m{c}_{n} = 0;") for n, w, out in ports]
            conns[-1] += ","
            conns += ["    " + ", ".join(f".m{c}_{n}(m{c}_{n})" for n, _, _ in ports[k:k + 4])
                      + "," for k in range(0, len(ports), 4)]
            conns[-1] = conns[-1][:-1]
            continue
        lines += [
            f"  reg [{D - 1}:0] hbm{c} [0:{hcfg.words - 1}];",
            f"  reg errm{c} [0:{hcfg.words - 1}];",
            f"  wire mem_we_{c};",
            f"  wire [{D - 1}:0] mem_wdata_{c};",
            f"  wire [{B - 1}:0] mem_wstrb_{c};",
            f"  wire [{hw - 1}:0] mem_addr_{c};",
        ]
        conns[-1] += ","
        conns += [
            f"    .mem_addr_{c}(mem_addr_{c}), .mem_rdata_{c}(hbm{c}[mem_addr_{c}]),",
            f"    .mem_err_{c}(errm{c}[mem_addr_{c}]), .mem_we_{c}(mem_we_{c}),",
            f"    .mem_wdata_{c}(mem_wdata_{c}), .mem_wstrb_{c}(mem_wstrb_{c})",
        ]
        writes += [
            f"    if (mem_we_{c})",
            f"      for (i = 0; i < {B}; i = i + 1)",
            f"        if (mem_wstrb_{c}[i]) hbm{c}[mem_addr_{c}][8*i +: 8] <= "
            f"mem_wdata_{c}[8*i +: 8];",
        ]
    lines += ["  dma_harness u (", *conns, "  );",
              "  always @(posedge clk) if (!rst) begin", *writes,
              "    if (slog_we) slog[slog_addr] <= slog_data;", "  end",
              "  initial begin",
              *(f'    if ($value$plusargs("{p}=%d", tmp)) {p} = tmp;' for p in plus),
              '    if ($value$plusargs("drom=%s", fname)) $readmemh(fname, drom);',
              '    if ($value$plusargs("sram=%s", fname)) $readmemh(fname, sram);']
    for c in range(0 if external else C):
        lines += [f'    if ($value$plusargs("hbm{c}=%s", fname)) $readmemh(fname, hbm{c});',
                  f'    if ($value$plusargs("errm{c}=%s", fname)) $readmemh(fname, errm{c});']
    lines += ["    repeat (2) @(posedge clk);", "    rst <= 1'b0;", "  end",
              "  reg dumped = 1'b0;",
              "  reg dump_now = 1'b0;   // set by cocotb once done is seen (outside the timing)",
              "  always @(posedge clk) if (!rst && dump_now && !dumped) begin",
              "    dumped <= 1'b1;",
              '    if ($value$plusargs("sram_out=%s", fname)) $writememh(fname, sram);',
              '    if ($value$plusargs("slog_out=%s", fname)) $writememh(fname, slog);']
    lines += [f'    if ($value$plusargs("hbm{c}_out=%s", fname)) $writememh(fname, hbm{c});'
              for c in range(0 if external else C)]
    lines += ["  end", "endmodule", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------

def _sources(cfg, hcfg, desc_bits, throttle, external=False):
    ext = "_x" if external else ""
    key = f"dma_{cfg.name}_{hcfg.name}_d{desc_bits}{'_t' if throttle else ''}{ext}"
    v = sim.generated_verilog(key, "dma_harness",
                              lambda: DmaHarness(cfg, hcfg, desc_bits, throttle, external),
                              files=["verif/dma_harness.py", "verif/hbm_harness.py"])
    top = v.parent / "tb_top.sv"
    text = top_verilog(cfg, hcfg, desc_bits, external)
    with sim.locked(top):
        if not top.exists() or top.read_text() != text:
            top.write_text(text)
    tag = (f"{cfg.name}_x" if external else f"{cfg.name}_r{hcfg.rows}_{hcfg.refresh}") + \
        ("_t" if throttle else "")
    return sim.BUILD / "sim" / "dma" / tag, [v, top]


def _public(cfg: DmaConfig, external: bool) -> list[str]:
    out = ["clk", "rst", "done", "dump_now", *(f"stat_{n}" for n in _stat_names(cfg, external))]
    if external:
        out += [f"m{c}_{n}" for c in range(cfg.channels) for n, _, _ in _axi_ports(cfg)]
    return out


def build_model(cfg: DmaConfig, hcfg: HbmConfig, sim_name: str = "verilator",
                desc_bits: int = 10, throttle: bool = False, external: bool = False) -> Path:
    base, srcs = _sources(cfg, hcfg, desc_bits, throttle, external)
    return sim.build(srcs, "tb_top", sim_name, base, public=_public(cfg, external))


def model_ready(cfg, hcfg, sim_name="verilator", desc_bits=10, throttle=False,
                external=False) -> bool:
    base, srcs = _sources(cfg, hcfg, desc_bits, throttle, external)
    return (sim.model_dir(srcs, sim_name, base) / "splitsys.stamp").exists()


@dataclass
class DmaRun:
    """What one harness run produced."""

    statuses: list[Status]
    sram: np.ndarray            #: bytes
    hbm: list[np.ndarray]       #: per channel, (words, B)
    stats: dict
    sim_seconds: float
    run_dir: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def cycles(self) -> int:
        return self.stats["cycles"]

    def violations(self, cfg: DmaConfig) -> list[str]:
        out = []
        for c in range(cfg.channels):
            n = self.stats[f"violations_{c}"]
            if n:
                out.append(f"channel {c}: {n} protocol violations, first: "
                           f"{RULES.get(self.stats[f'first_rule_{c}'], '?')}")
            if self.stats.get(f"hbm_protocol_errors_{c}"):
                out.append(f"channel {c}: the HBM model saw "
                           f"{self.stats[f'hbm_protocol_errors_{c}']} protocol errors")
        return out


def _prepare_run(cfg: DmaConfig, descs, sram, seed: int, gaps, run_dir, prefix: str):
    """The run directory (a fresh one under ``build/runs`` if ``None``) with the descriptor ROM
    and the SRAM image written, and the plusargs every DMA harness run takes."""
    if run_dir is None:
        (sim.BUILD / "runs").mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix=prefix, dir=sim.BUILD / "runs"))
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    B = cfg.data_bytes
    hexio.write_words(run_dir / "drom.hex", [pack_desc(cfg, d) for d in descs] or [0])
    hexio.write_raw(run_dir / "sram.hex", np.asarray(sram, np.uint8).reshape(-1, B))
    plus = [f"+n_desc={len(descs)}", f"+hseed={seed & 0xFFFFFFFF}",
            f"+gap_desc={gaps.desc}", f"+stall_status={gaps.status}",
            f"+stall_sram_wr={gaps.sram_wr}", f"+gap_sram_rd={gaps.sram_rd}",
            f"+gap_axi={gaps.axi}", f"+drom={run_dir / 'drom.hex'}",
            f"+sram={run_dir / 'sram.hex'}", f"+sram_out={run_dir / 'sram_out.hex'}",
            f"+slog_out={run_dir / 'slog_out.hex'}"]
    return run_dir, plus


def run_dma(cfg: DmaConfig, hcfg: HbmConfig, descs: list[Descriptor], hbm: list[np.ndarray],
            err: list[np.ndarray], sram: np.ndarray, seed: int = 1, gaps: Gaps = Gaps(),
            throttle: bool | None = None, sim_name: str = "verilator",
            run_dir: Path | None = None, timeout_cycles: int | None = None) -> DmaRun:
    """Run ``descs`` on the RTL DMA against the HBM model; return what it left."""
    throttle = bool(gaps.axi) if throttle is None else throttle
    if gaps.axi and not throttle:
        raise ValueError("AXI gaps need the throttled harness (throttle=True)")
    desc_bits = max(10, (len(descs) - 1).bit_length())
    sim.check_sim(sim_name)
    bdir = build_model(cfg, hcfg, sim_name, desc_bits, throttle)
    run_dir, plus = _prepare_run(cfg, descs, sram, seed, gaps, run_dir, "dma_")
    B = cfg.data_bytes
    for c in range(cfg.channels):
        hexio.write_raw(run_dir / f"hbm{c}.hex", np.asarray(hbm[c], np.uint8).reshape(-1, B))
        hexio.write_words(run_dir / f"errm{c}.hex", np.asarray(err[c], bool).astype(int))
        plus += [f"+hbm{c}={run_dir / f'hbm{c}.hex'}", f"+errm{c}={run_dir / f'errm{c}.hex'}",
                 f"+hbm{c}_out={run_dir / f'hbm{c}_out.hex'}"]
    if timeout_cycles is None:
        beats = sum(d.nbytes for d in descs) // B + 4 * sum(d.rows for d in descs)
        worst = max(gaps.desc, gaps.status, gaps.sram_wr, gaps.sram_rd, gaps.axi)
        timeout_cycles = int(40 * beats * 256 / (256 - worst)) + 200_000
    names = _stat_names(cfg)
    job = {"timeout_cycles": timeout_cycles, "result": str(run_dir / "result.json"),
           "report": [f"stat_{n}" for n in names], "what": f"{len(descs)} DMA descriptors"}
    (run_dir / "job.json").write_text(json.dumps(job))
    sim.run(bdir, "tb_top", sim_name, "verif.hbm_harness_tb", run_dir, plusargs=plus,
            env={JOB_ENV: str(run_dir / "job.json")})
    res = json.loads((run_dir / "result.json").read_text())
    stats = {n: res[f"stat_{n}"] for n in names}
    statuses = [unpack_status(cfg, w)
                for w in _words(run_dir / "slog_out.hex", stats["n_status"])]
    sram_out = hexio.read_rows(run_dir / "sram_out.hex", 1 << cfg.sram_word_bits, B, 8,
                               signed=False).reshape(-1)
    hbm_out = [hexio.read_rows(run_dir / f"hbm{c}_out.hex", hcfg.words, B, 8, signed=False)
               for c in range(cfg.channels)]
    return DmaRun(statuses, sram_out, hbm_out, stats, res["sim_seconds"], run_dir,
                  extra={"sim_cpu_seconds": res.get("sim_cpu_seconds")})


# --------------------------------------------------------------------------------------------
# Random jobs
# --------------------------------------------------------------------------------------------

@dataclass
class Job:
    """Descriptors and the memories they run on."""

    descs: list
    hbm: list                 #: per channel (words, B) uint8
    err: list                 #: per channel bool per beat
    sram: np.ndarray          #: bytes


def random_job(cfg: DmaConfig, hcfg: HbmConfig, rng: np.random.Generator, n_desc: int,
               max_bytes: int = 65536, err_rate: float = 0.0, decerr: float = 0.0,
               writes: float = 0.4) -> Job:
    """Random descriptors with no hazard between them, by construction.

    1 byte to ``max_bytes`` each, any alignment, 1..8 rows with strides (sometimes rows that
    overlap in HBM, which the hardware orders), crossing 4 KiB and interleave boundaries.
    Reads take HBM bytes from the lower half of the modelled capacity (or, with probability
    ``decerr``, from beyond it) into disjoint SRAM ranges of the SRAM's lower half; writes
    take bytes from the SRAM's upper half to the HBM's upper half (or beyond the capacity).
    ``err_rate``: fraction of HBM beats marked SLVERR.
    """
    B = cfg.data_bytes
    C = cfg.channels
    cap = hcfg.capacity * C                       # global bytes backed by the model
    amask = (1 << cfg.addr_bits) - 1
    S = 1 << cfg.sram_addr_bits
    hbm = [rng.integers(0, 256, (hcfg.words, B), dtype=np.uint8) for _ in range(C)]
    err = [rng.random(hcfg.words) < err_rate for _ in range(C)]
    sram = rng.integers(0, 256, S, dtype=np.uint8)
    bump = int(rng.integers(0, 64))
    descs = []
    for i in range(n_desc):
        total = int(min(max_bytes, 2 ** rng.uniform(0, np.log2(max_bytes) + 0.01)))
        total = max(1, total)
        rows = int(rng.integers(1, min(8, total) + 1))
        row_bytes = max(1, total // rows)
        write = bool(rng.random() < writes)
        # HBM stride: tight, with a gap, or (writes) overlapping rows.
        kind = rng.random()
        if kind < 0.4:
            hs = row_bytes
        elif kind < 0.9 or not write:
            hs = row_bytes + int(rng.integers(1, 5000))
        else:
            hs = max(1, row_bytes - int(rng.integers(1, row_bytes + 1)))
        span = (rows - 1) * hs + row_bytes
        half = cap // 2
        if rng.random() < decerr:
            base = cap + int(rng.integers(0, cap))
        elif write:
            base = half + int(rng.integers(0, max(1, half - span)))
        else:
            base = int(rng.integers(0, max(1, half - span)))
        ss = row_bytes + int(rng.integers(0, 300)) if rng.random() < 0.6 else row_bytes
        sspan = (rows - 1) * ss + row_bytes
        if write:
            s = S // 2 + int(rng.integers(0, max(1, S // 2 - sspan)))
        else:
            if bump + sspan > S // 2:
                raise ValueError("SRAM too small for the destinations of this job")
            s = bump
            bump += sspan + int(rng.integers(0, 100))
        descs.append(Descriptor(write, base & amask, s, rows, row_bytes, hs & amask, ss,
                                tag=i & 0xFF))
    return Job(descs, hbm, err, sram)


# --------------------------------------------------------------------------------------------
# The DMA against cocotbext-axi's AxiRam (an independent slave), for the protocol check
# --------------------------------------------------------------------------------------------

AXIRAM_ENV = "SPLITSYS_AXIRAM_JOB"


def run_dma_axiram(cfg: DmaConfig, descs: list[Descriptor], hbm: list[np.ndarray],
                   err: list[np.ndarray], sram: np.ndarray, cap_bytes: int, seed: int = 1,
                   gaps: Gaps = Gaps(), pause: float = 0.0, sim_name: str = "verilator",
                   run_dir: Path | None = None, timeout_cycles: int | None = None) -> DmaRun:
    """Run ``descs`` on the RTL DMA with one cocotbext-axi ``AxiRam`` per channel as the slave.

    The harness is the throttled one (``gaps.axi``: random valid and ready on all five channels,
    both directions, in HDL); on top of it every AxiRam channel pauses ``pause`` of the cycles
    (``set_pause_generator``: ready of AR/AW/W, valid of R/B). ``hbm[c]``: bytes of channel
    ``c`` (PC-local addresses, at least ``cap_bytes``); a beat whose word is set in ``err[c]``
    answers SLVERR, any address at or beyond ``cap_bytes`` DECERR (``verif/dma_axiram_tb.py``).
    Python runs per beat here (cocotbext-axi): keep the jobs small.
    """
    hcfg = hbm_config(cfg, rows=8)
    desc_bits = max(10, (len(descs) - 1).bit_length())
    sim.check_sim(sim_name)
    bdir = build_model(cfg, hcfg, sim_name, desc_bits, throttle=True, external=True)
    run_dir, plus = _prepare_run(cfg, descs, sram, seed, gaps, run_dir, "dma_axiram_")
    B = cfg.data_bytes
    chans = []
    for c in range(cfg.channels):
        raw = np.asarray(hbm[c], np.uint8).reshape(-1)
        np.save(run_dir / f"hbm{c}.npy", raw)
        np.save(run_dir / f"errm{c}.npy", np.flatnonzero(np.asarray(err[c], bool)))
        chans.append({"mem": str(run_dir / f"hbm{c}.npy"), "err": str(run_dir / f"errm{c}.npy"),
                      "out": str(run_dir / f"hbm{c}_out.npy"), "size": int(len(raw))})
    if timeout_cycles is None:
        beats = sum(d.nbytes for d in descs) // B + 4 * sum(d.rows for d in descs)
        timeout_cycles = 200 * beats + 20_000
    names = _stat_names(cfg, external=True)
    job = {"timeout_cycles": timeout_cycles, "result": str(run_dir / "result.json"),
           "report": [f"stat_{n}" for n in names], "what": f"{len(descs)} DMA descriptors",
           "channels": chans, "cap_bytes": cap_bytes, "data_bytes": B, "seed": seed,
           "pause": pause}
    (run_dir / "job.json").write_text(json.dumps(job))
    sim.run(bdir, "tb_top", sim_name, "verif.dma_axiram_tb", run_dir, plusargs=plus,
            env={AXIRAM_ENV: str(run_dir / "job.json")})
    res = json.loads((run_dir / "result.json").read_text())
    stats = {n: res[f"stat_{n}"] for n in names}
    statuses = [unpack_status(cfg, w)
                for w in _words(run_dir / "slog_out.hex", stats["n_status"])]
    sram_out = hexio.read_rows(run_dir / "sram_out.hex", 1 << cfg.sram_word_bits, B, 8,
                               signed=False).reshape(-1)
    hbm_out = [np.load(ch["out"]).reshape(-1, B) for ch in chans]
    return DmaRun(statuses, sram_out, hbm_out, stats, res["sim_seconds"], run_dir,
                  extra={"responses": res.get("responses", {})})
