"""Fast simulation harness: the array fed from memories, with Python off the per-cycle path.

``Harness`` (Amaranth, simulation only) wraps :class:`hdl.array.SystolicArray` with four stream
endpoints that walk a :class:`golden.matmul.Plan`:

* weight source: weight rows in order;
* activation source: per pass, ``rows`` rows from ``act_base`` with the ``acc``/``last`` flags;
* partial-sum source: per accumulating pass, result-memory rows, each offered only once the
  result row it depends on has been written back (the tile controller's dependency check);
* result sink: writes every result row to the result memory at its pass's ``c_base``.

Each source can insert random valid gaps and the sink random not-ready cycles (xorshift32 per
stream, seeded from ``seed``; probability in 1/256 units), all in hardware.

The memories live in a small generated Verilog top (``tb_top``) that loads them with
``$readmemh`` from files named by plusargs, generates the clock, and dumps the result memory with
``$writememh`` when ``done`` rises; cocotb only waits for ``done`` (``verif/harness_tb.py``).
"""

from __future__ import annotations

import functools

from amaranth.hdl import Const, Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hdl.array import SystolicArray
from hdl.config import ArrayConfig

__all__ = ["ADESC", "ODESC", "PDESC", "SLOT", "Harness", "xorshift32"]

ADESC = data.StructLayout({"base": 32, "rows": 32, "acc": 1})
PDESC = data.StructLayout({"base": 32, "rows": 32, "dep": 32})
ODESC = data.StructLayout({"base": 32, "rows": 32})

#: Seed offsets of the four random streams (weight, act, psum, out).
_SEED_SALT = (0x9E3779B9, 0x85EBCA6B, 0xC2B2AE35, 0x27D4EB2F)


def xorshift32(x):
    """One xorshift32 step (Marsaglia 2003); works on ints and Amaranth values alike."""
    x = (x ^ (x << 13)) & 0xFFFFFFFF if isinstance(x, int) else (x ^ (x << 13))[:32]
    x = x ^ (x >> 17)
    x = (x ^ (x << 5)) & 0xFFFFFFFF if isinstance(x, int) else (x ^ (x << 5))[:32]
    return x


SLOT = data.StructLayout({"w_lo": 32, "w_hi": 32, "a_lo": 32, "a_hi": 32, "p_lo": 32,
                          "p_hi": 32, "o_lo": 32, "n_out": 32})
#: Per-slot counters the harness exposes (name: width).
SLOT_COUNTERS = {"out_rows": 32, "w_beats": 32, "a_rows": 32, "p_rows": 32, "stall_cycles": 32,
                 "done_cycle": 48}


class Harness(wiring.Component):
    """The array between memory-fed stream sources and memory-writing sinks, one set per slot.

    After reset the harness offers the split mode (``mode_rows`` x ``mode_cols``); once the
    array took it, every slot walks its ranges of the shared memories (``slot_<s>``: weight rows
    ``[w_lo, w_hi)``, activation passes ``[a_lo, a_hi)``, partial-sum passes ``[p_lo, p_hi)``,
    result passes from ``o_lo``, ``n_out`` result rows). ``done`` rises when every slot has all
    its result rows, or when the array refused the mode (``mode_error``).

    Parameters
    ----------
    cfg : ArrayConfig
    addr_bits : int
        Address width of every memory port (the Verilog top sizes its memories from it).

    Raises
    ------
    ValueError
        If ``addr_bits`` is not in [4, 30].
    """

    def __init__(self, cfg: ArrayConfig, addr_bits: int = 20):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        if not isinstance(addr_bits, int) or not 4 <= addr_bits <= 30:
            raise ValueError(f"addr_bits must be an integer in [4, 30], not {addr_bits!r}")
        self._cfg = cfg
        self._aw = addr_bits
        R, C = cfg.rows, cfg.cols
        aw = addr_bits
        members = {
            "mode_rows": In(8), "mode_cols": In(8),
            "seed": In(32), "gap_w": In(8), "gap_a": In(8), "gap_p": In(8), "stall_o": In(8),
            "done": Out(1), "cycles": Out(48), "mode_error": Out(1),
        }
        for s in range(cfg.n_slots):
            members.update({
                f"slot_{s}": In(SLOT),
                f"wrom_addr_{s}": Out(aw), f"wrom_data_{s}": In(C * cfg.w_bits),
                f"arom_addr_{s}": Out(aw), f"arom_data_{s}": In(R * cfg.a_bits),
                f"aprog_addr_{s}": Out(aw), f"aprog_data_{s}": In(ADESC),
                f"pprog_addr_{s}": Out(aw), f"pprog_data_{s}": In(PDESC),
                f"oprog_addr_{s}": Out(aw), f"oprog_data_{s}": In(ODESC),
                f"cram_raddr_{s}": Out(aw), f"cram_rdata_{s}": In(C * cfg.acc_bits),
                f"cram_we_{s}": Out(1), f"cram_waddr_{s}": Out(aw),
                f"cram_wdata_{s}": Out(C * cfg.acc_bits),
            })
            for name, width in SLOT_COUNTERS.items():
                members[f"{name}_{s}"] = Out(width)
        super().__init__(members)

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def addr_bits(self) -> int:
        return self._aw

    def port(self, name: str, s: int):
        return getattr(self, f"{name}_{s}")

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.array = arr = SystolicArray(cfg)

        # Offer the mode once after reset; the walkers start when the array took it.
        run = Signal()
        offered = Signal()
        m.d.comb += [arr.mode.valid.eq(~offered), arr.mode.payload.rows.eq(self.mode_rows),
                     arr.mode.payload.cols.eq(self.mode_cols)]
        mode_fire = arr.mode.valid & arr.mode.ready
        with m.If(mode_fire):
            m.d.sync += [offered.eq(1), run.eq(1)]
        go = run & ~arr.mode_error

        def lfsr(name, salt):
            st = Signal(32, name=name)
            with m.If(st == 0):                       # first cycle after reset: load the seed
                m.d.sync += st.eq((self.seed ^ salt) | 1)
            with m.Else():
                m.d.sync += st.eq(xorshift32(st))
            return st

        cyc = Signal(48)
        all_done = Const(1)
        for s in range(cfg.n_slots):
            P = functools.partial(self.port, s=s)
            tab = P("slot")
            gap_w, gap_a, gap_p, stall_o = (
                (lfsr(f"s{s}_lfsr{k}", (salt + 0x632BE5AB * s) & 0xFFFFFFFF)[:8] < prob)
                for k, (salt, prob) in enumerate(zip(
                    _SEED_SALT, (self.gap_w, self.gap_a, self.gap_p, self.stall_o),
                    strict=True)))
            ws, as_, ps, os_ = arr.weight[s], arr.act[s], arr.psum[s], arr.out[s]

            # weight source: rows [w_lo, w_hi)
            widx = Signal(32, name=f"s{s}_widx")
            wv = Signal(name=f"s{s}_wv")
            m.d.comb += [P("wrom_addr").eq(widx), ws.valid.eq(wv)]
            with m.If(mode_fire):
                m.d.sync += widx.eq(tab.w_lo)
            with m.Elif(~wv | ws.ready):
                w_ok = go & (widx < tab.w_hi) & ~gap_w
                m.d.sync += wv.eq(w_ok)
                with m.If(w_ok):
                    m.d.sync += [ws.payload.eq(P("wrom_data")), widx.eq(widx + 1)]

            # activation source: passes [a_lo, a_hi) of aprog, rows from arom
            a_pidx, a_row = Signal(32, name=f"s{s}_apidx"), Signal(32, name=f"s{s}_arow")
            av = Signal(name=f"s{s}_av")
            adesc = P("aprog_data")
            a_last = a_row == adesc.rows - 1
            m.d.comb += [P("aprog_addr").eq(a_pidx), P("arom_addr").eq(adesc.base + a_row),
                         as_.valid.eq(av)]
            with m.If(mode_fire):
                m.d.sync += a_pidx.eq(tab.a_lo)
            with m.Elif(~av | as_.ready):
                a_ok = go & (a_pidx < tab.a_hi) & ~gap_a
                m.d.sync += av.eq(a_ok)
                with m.If(a_ok):
                    m.d.sync += [as_.payload.data.eq(P("arom_data")),
                                 as_.payload.acc.eq(adesc.acc), as_.payload.last.eq(a_last)]
                    with m.If(a_last):
                        m.d.sync += [a_pidx.eq(a_pidx + 1), a_row.eq(0)]
                    with m.Else():
                        m.d.sync += a_row.eq(a_row + 1)

            # result sink: rows into cram at oprog's base
            o_pidx, o_row = Signal(32, name=f"s{s}_opidx"), Signal(32, name=f"s{s}_orow")
            o_fire = Signal(name=f"s{s}_ofire")
            out_cnt = Signal(32, name=f"s{s}_ocnt")
            odesc = P("oprog_data")
            m.d.comb += [
                P("oprog_addr").eq(o_pidx),
                os_.ready.eq(~stall_o),
                o_fire.eq(os_.valid & os_.ready),
                P("cram_we").eq(o_fire),
                P("cram_waddr").eq(odesc.base + o_row),
                P("cram_wdata").eq(os_.payload.data),
            ]
            with m.If(mode_fire):
                m.d.sync += o_pidx.eq(tab.o_lo)
            with m.Elif(o_fire):
                m.d.sync += out_cnt.eq(out_cnt + 1)
                with m.If(o_row == odesc.rows - 1):
                    m.d.sync += [o_pidx.eq(o_pidx + 1), o_row.eq(0)]
                with m.Else():
                    m.d.sync += o_row.eq(o_row + 1)

            # partial-sum source: rows read back from cram once written
            p_pidx, p_row = Signal(32, name=f"s{s}_ppidx"), Signal(32, name=f"s{s}_prow")
            pv = Signal(name=f"s{s}_pv")
            pdesc = P("pprog_data")
            m.d.comb += [P("pprog_addr").eq(p_pidx), P("cram_raddr").eq(pdesc.base + p_row),
                         ps.valid.eq(pv)]
            with m.If(mode_fire):
                m.d.sync += p_pidx.eq(tab.p_lo)
            with m.Elif(~pv | ps.ready):
                written = out_cnt > pdesc.dep + p_row
                p_ok = go & (p_pidx < tab.p_hi) & ~gap_p & written
                m.d.sync += pv.eq(p_ok)
                with m.If(p_ok):
                    m.d.sync += ps.payload.eq(P("cram_rdata"))
                    with m.If(p_row == pdesc.rows - 1):
                        m.d.sync += [p_pidx.eq(p_pidx + 1), p_row.eq(0)]
                    with m.Else():
                        m.d.sync += p_row.eq(p_row + 1)

            # status
            sdone = Signal(name=f"s{s}_done")
            m.d.comb += sdone.eq(run & (out_cnt == tab.n_out))
            done_cyc = Signal(48, name=f"s{s}_done_cycle")
            seen = Signal(name=f"s{s}_seen")
            with m.If(sdone & ~seen):
                m.d.sync += [seen.eq(1), done_cyc.eq(cyc)]
            all_done = all_done & sdone

            def count(name, cond, s=s):
                c = Signal(32, name=f"s{s}_{name}")
                with m.If(cond):
                    m.d.sync += c.eq(c + 1)
                return c

            m.d.comb += [
                P("out_rows").eq(out_cnt),
                P("w_beats").eq(count("wcnt", ws.valid & ws.ready)),
                P("a_rows").eq(count("acnt", as_.valid & as_.ready)),
                P("p_rows").eq(count("pcnt", ps.valid & ps.ready)),
                P("stall_cycles").eq(count("scnt", os_.valid & ~os_.ready)),
                P("done_cycle").eq(Mux(sdone & ~seen, cyc, done_cyc)),
            ]

        done = Signal()
        m.d.comb += [done.eq(run & (arr.mode_error | all_done)), self.done.eq(done),
                     self.mode_error.eq(arr.mode_error), self.cycles.eq(cyc)]
        with m.If(~done):
            m.d.sync += cyc.eq(cyc + 1)
        return m


# --------------------------------------------------------------------------------------------
# Verilog top, build and run
# --------------------------------------------------------------------------------------------

def top_verilog(cfg: ArrayConfig, addr_bits: int) -> str:
    """The simulation top ``tb_top``: clock, reset, memories, ``$readmemh``/``$writememh``."""
    R, C = cfg.rows, cfg.cols
    ns = cfg.n_slots
    mems = {  # name: (width, count plusarg)
        "wrom": (C * cfg.w_bits, "n_wrows"),
        "arom": (R * cfg.a_bits, "n_arows"),
        "aprog": (ADESC.size, "n_apass"),
        "pprog": (PDESC.size, "n_ppass"),
        "oprog": (ODESC.size, "n_opass"),
        "cram": (C * cfg.acc_bits, "n_crows"),
    }
    counts = sorted({v[1] for v in mems.values()} | {"seed", "mode_rows", "mode_cols"})
    lines = [
        "`timescale 1ns/1ps",
        "// Generated by verif/harness.py: simulation top of the splitsys array harness.",
        "module tb_top;",
        f"  localparam AW = {addr_bits};",
        "  reg clk = 1'b0;",
        "  reg rst = 1'b1;",
        "  always #5 clk = ~clk;",
        *(f"  reg [31:0] {c} = 32'd0;" for c in counts),
        "  reg [7:0] gap_w = 8'd0, gap_a = 8'd0, gap_p = 8'd0, stall_o = 8'd0;",
        "  reg [8*1024-1:0] fname;",
        "  integer tmp;",
        f"  reg [{SLOT.size - 1}:0] slots [0:{ns - 1}];",
    ]
    for name, (width, _) in mems.items():
        lines.append(f"  reg [{width - 1}:0] {name} [0:(1<<AW)-1];")
    lines += [
        "  wire done, mode_error;",
        "  wire [47:0] cycles;",
    ]
    conns = ["    .clk(clk), .rst(rst), .mode_rows(mode_rows[7:0]), .mode_cols(mode_cols[7:0]),",
             "    .seed(seed), .gap_w(gap_w), .gap_a(gap_a), .gap_p(gap_p), .stall_o(stall_o),",
             "    .done(done), .cycles(cycles), .mode_error(mode_error)"]
    for s in range(ns):
        lines += [
            f"  wire [AW-1:0] wrom_addr_{s}, arom_addr_{s}, aprog_addr_{s}, pprog_addr_{s}, "
            f"oprog_addr_{s}, cram_raddr_{s}, cram_waddr_{s};",
            f"  wire [{C * cfg.acc_bits - 1}:0] cram_wdata_{s};",
            f"  wire cram_we_{s};",
            *(f"  wire [{w - 1}:0] {n}_{s};" for n, w in SLOT_COUNTERS.items()),
        ]
        conns[-1] += ","
        conns += [
            f"    .slot_{s}(slots[{s}]),",
            *(f"    .{mem}_addr_{s}({mem}_addr_{s}), .{mem}_data_{s}({mem}[{mem}_addr_{s}]),"
              for mem in ("wrom", "arom", "aprog", "pprog", "oprog")),
            f"    .cram_raddr_{s}(cram_raddr_{s}), .cram_rdata_{s}(cram[cram_raddr_{s}]),",
            f"    .cram_we_{s}(cram_we_{s}), .cram_waddr_{s}(cram_waddr_{s}), "
            f".cram_wdata_{s}(cram_wdata_{s}),",
            "    " + ", ".join(f".{n}_{s}({n}_{s})" for n in SLOT_COUNTERS),
        ]
    lines += ["  harness u (", *conns, "  );"]
    lines.append("  always @(posedge clk) begin")
    lines += [f"    if (cram_we_{s}) cram[cram_waddr_{s}] <= cram_wdata_{s};" for s in range(ns)]
    lines.append("  end")
    lines += [
        "  initial begin",
        *(f'    if ($value$plusargs("{c}=%d", tmp)) {c} = tmp;' for c in counts),
        '    if ($value$plusargs("gap_w=%d", tmp)) gap_w = tmp;',
        '    if ($value$plusargs("gap_a=%d", tmp)) gap_a = tmp;',
        '    if ($value$plusargs("gap_p=%d", tmp)) gap_p = tmp;',
        '    if ($value$plusargs("stall_o=%d", tmp)) stall_o = tmp;',
        '    if ($value$plusargs("slots=%s", fname)) $readmemh(fname, slots);',
    ]
    for name, (_, cnt) in mems.items():
        if name == "cram":
            continue
        lines.append(f'    if ({cnt} != 0 && $value$plusargs("{name}=%s", fname)) '
                     f'$readmemh(fname, {name}, 0, {cnt} - 1);')
    lines += [
        "    repeat (2) @(posedge clk);",
        "    rst <= 1'b0;",
        "  end",
        "  reg dumped = 1'b0;",
        "  always @(posedge clk) if (done && !dumped) begin",
        "    dumped <= 1'b1;",
        '    if (n_crows != 0 && $value$plusargs("cram_out=%s", fname))',
        "      $writememh(fname, cram, 0, n_crows - 1);",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------

from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from . import hexio, sim  # noqa: E402


@dataclass(frozen=True)
class Gaps:
    """Random stream behaviour, each a probability in 1/256 per cycle (0 = none)."""

    weight: int = 0     #: weight source withholds valid
    act: int = 0        #: activation source withholds valid
    psum: int = 0       #: partial-sum source withholds valid
    out: int = 0        #: result sink withholds ready

    def __post_init__(self):
        for k, v in self.__dict__.items():
            if not isinstance(v, int) or not 0 <= v <= 255:
                raise ValueError(f"gap probability {k} must be an integer in [0, 255], not {v!r}")

    @property
    def any(self) -> bool:
        return any(self.__dict__.values())

    @classmethod
    def uniform(cls, p: int) -> Gaps:
        return cls(p, p, p, p)


@dataclass
class RtlRun:
    """What one harness simulation measured."""

    cmem: np.ndarray                 #: result memory after the run (n_crows, C) int32
    cycles: int                      #: reset release .. last result row transferred
    counters: dict = field(default_factory=dict)   #: beats per stream, output stall cycles
    wall_seconds: float = 0.0        #: simulator process wall time (build excluded)
    run_dir: Path | None = None
    slots: list = field(default_factory=list)      #: per-slot counters (done_cycle etc.)

    def group_counters(self, plan) -> list[dict]:
        """The counters of each group of ``plan`` (its slot's)."""
        return [self.slots[gp.group.slot] for gp in plan.groups]


def addr_bits_for(plan) -> int:
    """Memory address width for ``plan``: at least 16 (one shared build for everyday jobs)."""
    need = max(sum(len(g.weights) for g in plan.groups), sum(len(g.act) for g in plan.groups),
               plan.n_passes, plan.n_crows, 2)
    return max(16, int(need - 1).bit_length())


def _sources(cfg: ArrayConfig, addr_bits: int) -> tuple[Path, list[Path]]:
    key = f"harness_{cfg.name}_a{addr_bits}"
    hv = sim.generated_verilog(key, "harness", lambda: Harness(cfg, addr_bits),
                               files=["verif/harness.py"])
    top = hv.parent / "tb_top.sv"
    text = top_verilog(cfg, addr_bits)
    if not top.exists() or top.read_text() != text:
        with sim.locked(top):
            top.write_text(text)
    return sim.BUILD / "sim" / key, [hv, top]


def model_ready(cfg: ArrayConfig, sim_name: str, addr_bits: int, waves: bool = False) -> bool:
    """Whether :func:`build_model` would reuse a compiled model."""
    base, srcs = _sources(cfg, addr_bits)
    return (sim.model_dir(srcs, sim_name, base, waves) / "splitsys.stamp").exists()


def build_model(cfg: ArrayConfig, sim_name: str = "verilator", addr_bits: int = 16,
                waves: bool = False) -> Path:
    """Generate the harness Verilog and the top, and compile them (cached)."""
    base, (hv, top) = _sources(cfg, addr_bits)
    public = ["clk", "rst", "done", "cycles", "mode_error"] + [
        f"{n}_{s}" for s in range(cfg.n_slots) for n in SLOT_COUNTERS]
    return sim.build([hv, top], "tb_top", sim_name, base, public=public, waves=waves)


def write_images(plan, run_dir: Path) -> dict:
    """The plan as memory images and per-slot ranges; returns the plusargs' values."""
    cfg = plan.cfg
    R, C = cfg.rows, cfg.cols
    w_all, a_all, ap, pp, op, slots = [], [], [], [], [], {}
    nw = na = 0
    for gp in plan.groups:
        g = gp.group
        w = np.zeros((len(gp.weights), C), dtype=gp.weights.dtype)
        w[:, :g.cols] = gp.weights
        a = np.zeros((len(gp.act), R), dtype=gp.act.dtype)
        a[:, :g.rows] = gp.act
        passes = gp.passes
        acc = passes[:, 2].astype(bool)
        tab = {"w_lo": nw, "w_hi": nw + len(w), "a_lo": len(ap), "p_lo": len(pp),
               "o_lo": len(op), "n_out": gp.out_rows}
        ap += [int(b + na) | int(r) << 32 | int(f) << 64 for b, r, f in passes[:, 0:3]]
        pp += [int(c) | int(r) << 32 | int(d) << 64 for r, c, d in passes[acc][:, [1, 3, 4]]]
        op += [int(c) | int(r) << 32 for r, c in passes[:, [1, 3]]]
        tab.update(a_hi=len(ap), p_hi=len(pp))
        slots[g.slot] = tab
        w_all.append(w)
        a_all.append(a)
        nw += len(w)
        na += len(a)
    words = []
    for s in range(cfg.n_slots):
        t = slots.get(s, {})
        word = 0
        for name, f in SLOT:
            word |= int(t.get(name, 0)) << f.offset
        words.append(word)
    n = {
        "n_wrows": hexio.write_rows(run_dir / "wrom.hex", np.concatenate(w_all), cfg.w_bits),
        "n_arows": hexio.write_rows(run_dir / "arom.hex", np.concatenate(a_all), cfg.a_bits),
        "n_apass": hexio.write_words(run_dir / "aprog.hex", ap),
        "n_ppass": hexio.write_words(run_dir / "pprog.hex", pp),
        "n_opass": hexio.write_words(run_dir / "oprog.hex", op),
        "n_crows": plan.n_crows,
    }
    hexio.write_words(run_dir / "slots.hex", words)
    return n


def run_plan(plan, sim_name: str = "verilator", gaps: Gaps = Gaps(), seed: int = 1,
             run_dir: Path | None = None, waves: bool | None = None,
             progress=None, timeout_cycles: int | None = None) -> RtlRun:
    """Run ``plan`` on the RTL through cocotb; returns the result memory and the counters.

    ``progress``: optional callable(rows_done, rows_total), called from a watcher thread.
    """
    import json
    import tempfile
    import threading
    import time

    cfg = plan.cfg
    sim.check_sim(sim_name)
    waves = sim.waves_requested() if waves is None else waves
    aw = addr_bits_for(plan)
    bdir = build_model(cfg, sim_name, aw, waves)
    if run_dir is None:
        (sim.BUILD / "runs").mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=sim.BUILD / "runs"))
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)

    n = write_images(plan, run_dir)
    n.update(seed=seed & 0xFFFFFFFF, mode_rows=plan.mode[0], mode_cols=plan.mode[1])
    plus = [f"+{k}={v}" for k, v in n.items()]
    plus += [f"+{k}={run_dir / (k + '.hex')}"
             for k in ("wrom", "arom", "aprog", "pprog", "oprog", "slots")]
    plus += [f"+cram_out={run_dir / 'cram.hex'}"]
    plus += [f"+gap_w={gaps.weight}", f"+gap_a={gaps.act}", f"+gap_p={gaps.psum}",
             f"+stall_o={gaps.out}"]
    if timeout_cycles is None:
        pred = plan.cycles().cycles
        # Gaps slow each stream by at most 256/(256-p); allow four times that, plus slack.
        worst = max([gaps.weight, gaps.act, gaps.psum, gaps.out, 0])
        timeout_cycles = int(pred * 4 * 256 / (256 - worst)) + 10_000
    job = {"n_out": plan.out_rows, "slots": cfg.n_slots, "timeout_cycles": timeout_cycles,
           "result": str(run_dir / "result.json"), "progress": str(run_dir / "progress.txt")}
    (run_dir / "job.json").write_text(json.dumps(job))

    stop = threading.Event()
    watcher = None
    if progress is not None:
        def watch():
            while not stop.wait(0.5):
                try:
                    done_rows = int((run_dir / "progress.txt").read_text().split()[0])
                except (OSError, ValueError, IndexError):
                    continue
                progress(done_rows, plan.out_rows)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    t0 = time.perf_counter()
    try:
        sim.run(bdir, "tb_top", sim_name, "verif.harness_tb", run_dir, plusargs=plus,
                env={"SPLITSYS_JOB": str(run_dir / "job.json")}, waves=waves)
    finally:
        stop.set()
        if watcher:
            watcher.join()
    wall = time.perf_counter() - t0
    res = json.loads((run_dir / "result.json").read_text())
    cmem = hexio.read_rows(run_dir / "cram.hex", plan.n_crows, cfg.cols, cfg.acc_bits)
    return RtlRun(cmem=cmem, cycles=res["cycles"], counters=res["counters"],
                  wall_seconds=res.get("sim_seconds", wall), run_dir=run_dir,
                  slots=res["slots"])
