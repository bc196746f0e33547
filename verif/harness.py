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

from amaranth.hdl import Module, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hdl.array import SystolicArray
from hdl.config import ArrayConfig

__all__ = ["ADESC", "ODESC", "PDESC", "Harness", "xorshift32"]

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


class Harness(wiring.Component):
    """The array between memory-fed stream sources and a memory-writing sink.

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
        super().__init__({
            "wrom_addr": Out(aw), "wrom_data": In(C * cfg.w_bits),
            "arom_addr": Out(aw), "arom_data": In(R * cfg.a_bits),
            "aprog_addr": Out(aw), "aprog_data": In(ADESC),
            "pprog_addr": Out(aw), "pprog_data": In(PDESC),
            "oprog_addr": Out(aw), "oprog_data": In(ODESC),
            "cram_raddr": Out(aw), "cram_rdata": In(C * cfg.acc_bits),
            "cram_we": Out(1), "cram_waddr": Out(aw), "cram_wdata": Out(C * cfg.acc_bits),
            "n_wrows": In(32), "n_apass": In(32), "n_ppass": In(32), "n_out": In(32),
            "seed": In(32), "gap_w": In(8), "gap_a": In(8), "gap_p": In(8), "stall_o": In(8),
            "done": Out(1), "cycles": Out(48), "out_rows": Out(32), "w_beats": Out(32),
            "a_rows": Out(32), "p_rows": Out(32), "stall_cycles": Out(32),
        })

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    @property
    def addr_bits(self) -> int:
        return self._aw

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.array = arr = SystolicArray(cfg)

        # Random gap generators, one per stream.
        gaps = []
        for k, (salt, prob) in enumerate(zip(_SEED_SALT,
                                             (self.gap_w, self.gap_a, self.gap_p, self.stall_o),
                                             strict=True)):
            st = Signal(32, name=f"lfsr{k}")
            with m.If(st == 0):                       # first cycle after reset: load the seed
                m.d.sync += st.eq((self.seed ^ salt) | 1)
            with m.Else():
                m.d.sync += st.eq(xorshift32(st))
            gap = Signal(name=f"gap{k}")
            m.d.comb += gap.eq((st != 0) & (st[:8] < prob))
            gaps.append(gap)
        gap_w, gap_a, gap_p, stall_o = gaps

        def count(name, cond, width=32):
            c = Signal(width, name=name)
            with m.If(cond):
                m.d.sync += c.eq(c + 1)
            return c

        # --- weight source: linear walk over wrom ------------------------------------------
        widx = Signal(32)
        wv = Signal()
        w_load = ~wv | arr.weight.ready
        m.d.comb += [self.wrom_addr.eq(widx), arr.weight.valid.eq(wv)]
        with m.If(w_load):
            w_ok = (widx < self.n_wrows) & ~gap_w
            m.d.sync += wv.eq(w_ok)
            with m.If(w_ok):
                m.d.sync += [arr.weight.payload.eq(self.wrom_data), widx.eq(widx + 1)]

        # --- activation source: passes from aprog, rows from arom ------------------------------
        a_pidx, a_row = Signal(32), Signal(32)
        av = Signal()
        a_last = a_row == self.aprog_data.rows - 1
        m.d.comb += [
            self.aprog_addr.eq(a_pidx),
            self.arom_addr.eq(self.aprog_data.base + a_row),
            arr.act.valid.eq(av),
        ]
        with m.If(~av | arr.act.ready):
            a_ok = (a_pidx < self.n_apass) & ~gap_a
            m.d.sync += av.eq(a_ok)
            with m.If(a_ok):
                m.d.sync += [
                    arr.act.payload.data.eq(self.arom_data),
                    arr.act.payload.acc.eq(self.aprog_data.acc),
                    arr.act.payload.last.eq(a_last),
                ]
                with m.If(a_last):
                    m.d.sync += [a_pidx.eq(a_pidx + 1), a_row.eq(0)]
                with m.Else():
                    m.d.sync += a_row.eq(a_row + 1)

        # --- result sink: rows into cram at oprog's base -------------------------------------
        o_pidx, o_row = Signal(32), Signal(32)
        o_fire = Signal()
        out_cnt = Signal(32)
        m.d.comb += [
            self.oprog_addr.eq(o_pidx),
            arr.out.ready.eq(~stall_o),
            o_fire.eq(arr.out.valid & arr.out.ready),
            self.cram_we.eq(o_fire),
            self.cram_waddr.eq(self.oprog_data.base + o_row),
            self.cram_wdata.eq(arr.out.payload.data),
        ]
        with m.If(o_fire):
            m.d.sync += out_cnt.eq(out_cnt + 1)
            with m.If(o_row == self.oprog_data.rows - 1):
                m.d.sync += [o_pidx.eq(o_pidx + 1), o_row.eq(0)]
            with m.Else():
                m.d.sync += o_row.eq(o_row + 1)

        # --- partial-sum source: rows read back from cram once written -----------------------
        p_pidx, p_row = Signal(32), Signal(32)
        pv = Signal()
        m.d.comb += [
            self.pprog_addr.eq(p_pidx),
            self.cram_raddr.eq(self.pprog_data.base + p_row),
            arr.psum.valid.eq(pv),
        ]
        with m.If(~pv | arr.psum.ready):
            written = out_cnt > self.pprog_data.dep + p_row
            p_ok = (p_pidx < self.n_ppass) & ~gap_p & written
            m.d.sync += pv.eq(p_ok)
            with m.If(p_ok):
                m.d.sync += arr.psum.payload.eq(self.cram_rdata)
                with m.If(p_row == self.pprog_data.rows - 1):
                    m.d.sync += [p_pidx.eq(p_pidx + 1), p_row.eq(0)]
                with m.Else():
                    m.d.sync += p_row.eq(p_row + 1)

        # --- status --------------------------------------------------------------------------
        done = Signal()
        m.d.comb += done.eq((out_cnt == self.n_out) & (self.n_out != 0))
        m.d.comb += [
            self.done.eq(done),
            self.cycles.eq(count("cyc", ~done, 48)),
            self.out_rows.eq(out_cnt),
            self.w_beats.eq(count("wcnt", arr.weight.valid & arr.weight.ready)),
            self.a_rows.eq(count("acnt", arr.act.valid & arr.act.ready)),
            self.p_rows.eq(count("pcnt", arr.psum.valid & arr.psum.ready)),
            self.stall_cycles.eq(count("scnt", arr.out.valid & ~arr.out.ready)),
        ]
        return m


# --------------------------------------------------------------------------------------------
# Verilog top, build and run
# --------------------------------------------------------------------------------------------

def top_verilog(cfg: ArrayConfig, addr_bits: int) -> str:
    """The simulation top ``tb_top``: clock, reset, memories, ``$readmemh``/``$writememh``."""
    R, C = cfg.rows, cfg.cols
    mems = {  # name: (width, count plusarg)
        "wrom": (C * cfg.w_bits, "n_wrows"),
        "arom": (R * cfg.a_bits, "n_arows"),
        "aprog": (ADESC.size, "n_apass"),
        "pprog": (PDESC.size, "n_ppass"),
        "oprog": (ODESC.size, "n_opass"),
        "cram": (C * cfg.acc_bits, "n_crows"),
    }
    counts = sorted({v[1] for v in mems.values()} | {"n_out", "seed"})
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
    ]
    for name, (width, _) in mems.items():
        lines.append(f"  reg [{width - 1}:0] {name} [0:(1<<AW)-1];")
    lines += [
        "  wire [AW-1:0] wrom_addr, arom_addr, aprog_addr, pprog_addr, oprog_addr;",
        "  wire [AW-1:0] cram_raddr, cram_waddr;",
        f"  wire [{C * cfg.acc_bits - 1}:0] cram_wdata;",
        "  wire cram_we, done;",
        "  wire [47:0] cycles;",
        "  wire [31:0] out_rows, w_beats, a_rows, p_rows, stall_cycles;",
        "  harness u (",
        "    .clk(clk), .rst(rst),",
        "    .wrom_addr(wrom_addr), .wrom_data(wrom[wrom_addr]),",
        "    .arom_addr(arom_addr), .arom_data(arom[arom_addr]),",
        "    .aprog_addr(aprog_addr), .aprog_data(aprog[aprog_addr]),",
        "    .pprog_addr(pprog_addr), .pprog_data(pprog[pprog_addr]),",
        "    .oprog_addr(oprog_addr), .oprog_data(oprog[oprog_addr]),",
        "    .cram_raddr(cram_raddr), .cram_rdata(cram[cram_raddr]),",
        "    .cram_we(cram_we), .cram_waddr(cram_waddr), .cram_wdata(cram_wdata),",
        "    .n_wrows(n_wrows), .n_apass(n_apass), .n_ppass(n_ppass), .n_out(n_out),",
        "    .seed(seed), .gap_w(gap_w), .gap_a(gap_a), .gap_p(gap_p), .stall_o(stall_o),",
        "    .done(done), .cycles(cycles), .out_rows(out_rows), .w_beats(w_beats),",
        "    .a_rows(a_rows), .p_rows(p_rows), .stall_cycles(stall_cycles));",
        "  always @(posedge clk) if (cram_we) cram[cram_waddr] <= cram_wdata;",
        "  initial begin",
        *(f'    if ($value$plusargs("{c}=%d", tmp)) {c} = tmp;' for c in counts),
        '    if ($value$plusargs("gap_w=%d", tmp)) gap_w = tmp;',
        '    if ($value$plusargs("gap_a=%d", tmp)) gap_a = tmp;',
        '    if ($value$plusargs("gap_p=%d", tmp)) gap_p = tmp;',
        '    if ($value$plusargs("stall_o=%d", tmp)) stall_o = tmp;',
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


def addr_bits_for(plan) -> int:
    """Memory address width for ``plan``: at least 16 (one shared build for everyday jobs)."""
    need = max(len(plan.weights), len(plan.act), plan.n_passes, plan.n_crows, 2)
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
    public = ["clk", "rst", "done", "cycles", "out_rows", "w_beats", "a_rows", "p_rows",
              "stall_cycles"]
    return sim.build([hv, top], "tb_top", sim_name, base, public=public, waves=waves)


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

    passes = plan.passes
    acc = passes[:, 2].astype(bool)
    files = {}
    n = {}
    n["n_wrows"] = hexio.write_rows(run_dir / "wrom.hex", plan.weights, cfg.w_bits)
    n["n_arows"] = hexio.write_rows(run_dir / "arom.hex", plan.act, cfg.a_bits)
    n["n_apass"] = hexio.write_words(
        run_dir / "aprog.hex",
        (int(b) | int(r) << 32 | int(a) << 64 for b, r, a in passes[:, 0:3]))
    n["n_ppass"] = hexio.write_words(
        run_dir / "pprog.hex",
        (int(c) | int(r) << 32 | int(d) << 64 for r, c, d in passes[acc][:, [1, 3, 4]]))
    n["n_opass"] = hexio.write_words(
        run_dir / "oprog.hex", (int(c) | int(r) << 32 for r, c in passes[:, [1, 3]]))
    for k in ("wrom", "arom", "aprog", "pprog", "oprog"):
        files[k] = run_dir / f"{k}.hex"
    n["n_crows"] = plan.n_crows
    n["n_out"] = plan.out_rows
    n["seed"] = seed & 0xFFFFFFFF
    plus = [f"+{k}={v}" for k, v in n.items()]
    plus += [f"+{k}={v}" for k, v in files.items()]
    plus += [f"+cram_out={run_dir / 'cram.hex'}"]
    plus += [f"+gap_w={gaps.weight}", f"+gap_a={gaps.act}", f"+gap_p={gaps.psum}",
             f"+stall_o={gaps.out}"]
    if timeout_cycles is None:
        pred = plan.cycles().cycles
        # Gaps slow each stream by at most 256/(256-p); allow four times that, plus slack.
        worst = max([gaps.weight, gaps.act, gaps.psum, gaps.out, 0])
        timeout_cycles = int(pred * 4 * 256 / (256 - worst)) + 10_000
    job = {"n_out": plan.out_rows, "timeout_cycles": timeout_cycles,
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
                  wall_seconds=res.get("sim_seconds", wall), run_dir=run_dir)
