"""Fast harness of one HBM pseudo-channel: traffic, channel and logs in HDL, Python off the path.

``HbmHarness`` (Amaranth, simulation only) is :class:`hdl.hbm.HbmChannel` behind
:class:`AxiTrafficGen`, the ideal master mirrored by ``golden.hbm.IdealMaster``: bursts from a
ROM in order, at most ``max_out`` outstanding, write data from a hash of the address (and random
strobes if asked), R/B ready withheld at random (xorshift32, ``stall``/256). Every R beat, every
B response and every DRAM command is written to a log memory with its cycle.

The generated Verilog top (``tb_top``) holds the ROM, the backing store, the error map and the
logs, loads them with ``$readmemh`` and dumps them with ``$writememh`` once cocotb has seen
``done`` (``dump_now``).
"""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from amaranth.hdl import Cat, Const, Module, Mux, Shape, Signal
from amaranth.lib import data, fifo, wiring
from amaranth.lib.wiring import In, Out

from hdl.axi import AxiSignature, Burst
from hdl.hbm import STATS, ColCmd, HbmChannel, HbmConfig, RowCmd, cmd_layout

from . import hexio, sim

__all__ = ["AxiTrafficGen", "HbmHarness", "HbmRun", "run_traffic", "xorshift32"]

JOB_ENV = "SPLITSYS_HBM_JOB"
WSTRB_SALT = 0x5BD1E995
READY_SALT = 0x27D4EB2F


def xorshift32(x):
    """One xorshift32 step on an Amaranth value (32 bits)."""
    x = (x ^ (x << 13))[:32]
    x = x ^ (x >> 17)
    return (x ^ (x << 5))[:32]


def burst_layout(cfg: HbmConfig) -> data.StructLayout:
    """One burst of the traffic ROM."""
    return data.StructLayout({"write": 1, "id": cfg.id_bits, "addr": cfg.addr_bits,
                              "beats": 9})


def rlog_layout(cfg: HbmConfig) -> data.StructLayout:
    return data.StructLayout({"data": cfg.data_bits, "cycle": 32, "id": cfg.id_bits,
                              "resp": 2, "last": 1})


def blog_layout(cfg: HbmConfig) -> data.StructLayout:
    return data.StructLayout({"cycle": 32, "id": cfg.id_bits, "resp": 2})


def clog_layout(cfg: HbmConfig) -> data.StructLayout:
    return data.StructLayout({"cmd": cmd_layout(cfg), "cycle": 32})


class AxiTrafficGen(wiring.Component):
    """The ideal AXI master of the HBM harness (see the module docstring)."""

    def __init__(self, cfg: HbmConfig, rom_bits: int, log_bits: int):
        self._cfg = cfg
        super().__init__({
            "axi": Out(AxiSignature(addr_width=cfg.addr_bits, data_width=cfg.data_bits,
                                    id_width=cfg.id_bits)),
            "rom_addr": Out(rom_bits), "rom_data": In(burst_layout(cfg)),
            "n_bursts": In(32), "max_out": In(9), "seed": In(32), "stall": In(8),
            "strobes": In(1),
            "rlog_we": Out(1), "rlog_addr": Out(log_bits), "rlog_data": Out(rlog_layout(cfg)),
            "blog_we": Out(1), "blog_addr": Out(log_bits), "blog_data": Out(blog_layout(cfg)),
            "cycle": Out(32), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        lb = cfg.beat_shift
        axi = self.axi
        nxt = Signal(32)
        out = Signal(10)
        cyc = Signal(32)
        e = self.rom_data
        m.d.comb += self.rom_addr.eq(nxt)
        offer = (nxt < self.n_bursts) & (out < self.max_out)
        for ch, valid in (("ar", offer & ~e.write), ("aw", offer & e.write)):
            m.d.comb += [
                getattr(axi, f"{ch}valid").eq(valid), getattr(axi, f"{ch}id").eq(e.id),
                getattr(axi, f"{ch}addr").eq(e.addr), getattr(axi, f"{ch}len").eq(e.beats - 1),
                getattr(axi, f"{ch}size").eq(lb), getattr(axi, f"{ch}burst").eq(Burst.INCR),
            ]
        issue = (axi.arvalid & axi.arready) | (axi.awvalid & axi.awready)
        with m.If(issue):
            m.d.sync += nxt.eq(nxt + 1)

        # Write data: one job per AW, beats as the slave takes them.
        job = data.StructLayout({"addr": cfg.addr_bits, "beats": 9})
        m.submodules.wjobs = wjobs = fifo.SyncFIFO(width=job.size, depth=512)
        wj_in = data.View(job, wjobs.w_data)
        wj = data.View(job, wjobs.r_data)
        m.d.comb += [wjobs.w_en.eq(axi.awvalid & axi.awready), wj_in.addr.eq(e.addr),
                     wj_in.beats.eq(e.beats)]
        wbeat = Signal(9)
        word = Signal(32)
        m.d.comb += word.eq(wj.addr[lb:] + wbeat)
        lanes = cfg.data_bytes // 4
        m.d.comb += axi.wdata.eq(Cat(xorshift32((Cat(Const(k, 5), word)[:32]) ^ self.seed)
                                     for k in range(lanes)))
        nk = max(1, cfg.data_bytes // 32)
        rnd = Cat(xorshift32(Cat(Const(k, 5), word)[:32] ^ (self.seed ^ WSTRB_SALT))
                  for k in range(nk))
        m.d.comb += [
            axi.wstrb.eq(Mux(self.strobes, rnd[:cfg.data_bytes], (1 << cfg.data_bytes) - 1)),
            axi.wvalid.eq(wjobs.r_rdy), axi.wlast.eq(wbeat == wj.beats - 1),
        ]
        w_hs = axi.wvalid & axi.wready
        with m.If(w_hs):
            with m.If(axi.wlast):
                m.d.sync += wbeat.eq(0)
            with m.Else():
                m.d.sync += wbeat.eq(wbeat + 1)
        m.d.comb += wjobs.r_en.eq(w_hs & axi.wlast)

        # R/B ready: withheld stall/256 of the cycles.
        rng = Signal(32)
        started = Signal()
        seed0 = self.seed ^ READY_SALT
        cur = Mux(started, rng, Mux(seed0 == 0, 1, seed0))
        ready = ~((self.stall != 0) & (cur[:8] < self.stall))
        m.d.sync += [rng.eq(xorshift32(cur)), started.eq(1)]
        m.d.comb += [axi.rready.eq(ready), axi.bready.eq(ready)]
        r_hs = axi.rvalid & axi.rready
        b_hs = axi.bvalid & axi.bready
        m.d.sync += out.eq(out + issue - (r_hs & axi.rlast) - b_hs)

        ridx = Signal(self.rlog_addr.shape())
        bidx = Signal(self.blog_addr.shape())
        m.d.comb += [
            self.rlog_we.eq(r_hs), self.rlog_addr.eq(ridx),
            self.rlog_data.data.eq(axi.rdata), self.rlog_data.cycle.eq(cyc),
            self.rlog_data.id.eq(axi.rid), self.rlog_data.resp.eq(axi.rresp),
            self.rlog_data.last.eq(axi.rlast),
            self.blog_we.eq(b_hs), self.blog_addr.eq(bidx),
            self.blog_data.cycle.eq(cyc), self.blog_data.id.eq(axi.bid),
            self.blog_data.resp.eq(axi.bresp),
        ]
        m.d.sync += [ridx.eq(ridx + r_hs), bidx.eq(bidx + b_hs)]
        done = (nxt == self.n_bursts) & (out == 0) & ~wjobs.r_rdy
        m.d.comb += [self.done.eq(done), self.cycle.eq(cyc)]
        with m.If(~done):
            m.d.sync += cyc.eq(cyc + 1)
        return m


class HbmHarness(wiring.Component):
    """:class:`AxiTrafficGen` driving one :class:`HbmChannel`, with the command trace logged."""

    def __init__(self, cfg: HbmConfig, rom_bits: int, log_bits: int):
        self._cfg = cfg
        self._rom_bits, self._log_bits = rom_bits, log_bits
        super().__init__({
            "rom_addr": Out(rom_bits), "rom_data": In(burst_layout(cfg)),
            "n_bursts": In(32), "max_out": In(9), "seed": In(32), "stall": In(8),
            "strobes": In(1),
            "mem_addr": Out(cfg.word_bits), "mem_rdata": In(cfg.data_bits), "mem_err": In(1),
            "mem_we": Out(1), "mem_wdata": Out(cfg.data_bits), "mem_wstrb": Out(cfg.data_bytes),
            "rlog_we": Out(1), "rlog_addr": Out(log_bits), "rlog_data": Out(rlog_layout(cfg)),
            "blog_we": Out(1), "blog_addr": Out(log_bits), "blog_data": Out(blog_layout(cfg)),
            "clog_we": Out(1), "clog_addr": Out(log_bits), "clog_data": Out(clog_layout(cfg)),
            "stats": Out(STATS), "cycles": Out(32), "n_cmds": Out(32), "done": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.tg = tg = AxiTrafficGen(cfg, self._rom_bits, self._log_bits)
        m.submodules.hbm = hbm = HbmChannel(cfg)
        wiring.connect(m, tg.axi, hbm.axi)
        for name in ("rom_data", "n_bursts", "max_out", "seed", "stall", "strobes"):
            m.d.comb += getattr(tg, name).eq(getattr(self, name))
        for name in ("rom_addr", "rlog_we", "rlog_addr", "rlog_data", "blog_we", "blog_addr",
                     "blog_data", "done"):
            m.d.comb += getattr(self, name).eq(getattr(tg, name))
        m.d.comb += [
            self.mem_addr.eq(hbm.mem_addr), hbm.mem_rdata.eq(self.mem_rdata),
            hbm.mem_err.eq(self.mem_err), self.mem_we.eq(hbm.mem_we),
            self.mem_wdata.eq(hbm.mem_wdata), self.mem_wstrb.eq(hbm.mem_wstrb),
            self.cycles.eq(tg.cycle),
        ]
        # The channel keeps running (refresh) after done, until cocotb has seen it: the log and
        # the counters stop at the first done cycle, the last one the golden model simulates.
        done_seen = Signal()
        snap = Signal(STATS)
        with m.If(tg.done & ~done_seen):
            m.d.sync += [done_seen.eq(1), snap.eq(hbm.stats)]
        m.d.comb += self.stats.eq(Mux(done_seen, snap, hbm.stats))
        cidx = Signal(32)
        any_cmd = ((hbm.cmd.row != RowCmd.NONE) | (hbm.cmd.col != ColCmd.NONE)) & ~tg.done
        m.d.comb += [self.clog_we.eq(any_cmd), self.clog_addr.eq(cidx),
                     self.clog_data.cmd.eq(hbm.cmd), self.clog_data.cycle.eq(tg.cycle),
                     self.n_cmds.eq(cidx)]
        m.d.sync += cidx.eq(cidx + any_cmd)
        return m


def top_verilog(cfg: HbmConfig, rom_bits: int, log_bits: int) -> str:
    """``tb_top``: clock, reset, ROM, backing store with byte strobes, error map, logs."""
    B = cfg.data_bytes
    rl, bl, cl = rlog_layout(cfg).size, blog_layout(cfg).size, clog_layout(cfg).size
    stats = [name for name, _ in STATS]
    return "\n".join([
        "`timescale 1ns/1ps",
        "// Generated by verif/hbm_harness.py: simulation top of one HBM pseudo-channel.",
        "module tb_top;",
        "  reg clk = 1'b0;",
        "  reg rst = 1'b1;",
        "  always #5 clk = ~clk;",
        "  reg [31:0] n_bursts = 0, max_out = 0, tg_seed = 0, stall = 0, strobes = 0;",
        "  integer tmp, i;",
        "  reg [8*1024-1:0] fname;",
        f"  reg [{burst_layout(cfg).size - 1}:0] rom [0:{(1 << rom_bits) - 1}];",
        f"  reg [{cfg.data_bits - 1}:0] mem [0:{cfg.words - 1}];",
        f"  reg errm [0:{cfg.words - 1}];",
        f"  reg [{rl - 1}:0] rlog [0:{(1 << log_bits) - 1}];",
        f"  reg [{bl - 1}:0] blog [0:{(1 << log_bits) - 1}];",
        f"  reg [{cl - 1}:0] clog [0:{(1 << log_bits) - 1}];",
        f"  wire [{rom_bits - 1}:0] rom_addr;",
        f"  wire [{cfg.word_bits - 1}:0] mem_addr;",
        f"  wire [{cfg.data_bits - 1}:0] mem_wdata;",
        f"  wire [{B - 1}:0] mem_wstrb;",
        "  wire mem_we, rlog_we, blog_we, clog_we, done;",
        f"  wire [{log_bits - 1}:0] rlog_addr, blog_addr, clog_addr;",
        f"  wire [{rl - 1}:0] rlog_data;",
        f"  wire [{bl - 1}:0] blog_data;",
        f"  wire [{cl - 1}:0] clog_data;",
        f"  wire [{STATS.size - 1}:0] stats;",
        "  wire [31:0] cycles, n_cmds;",
        *(f"  wire [31:0] stat_{s} = stats[{32 * k + 31}:{32 * k}];"
          for k, s in enumerate(stats)),
        "  hbm_harness u (.clk(clk), .rst(rst), .rom_addr(rom_addr), .rom_data(rom[rom_addr]),",
        "    .n_bursts(n_bursts), .max_out(max_out[8:0]), .seed(tg_seed), .stall(stall[7:0]),",
        "    .strobes(strobes[0]), .mem_addr(mem_addr), .mem_rdata(mem[mem_addr]),",
        "    .mem_err(errm[mem_addr]), .mem_we(mem_we), .mem_wdata(mem_wdata),",
        "    .mem_wstrb(mem_wstrb), .rlog_we(rlog_we), .rlog_addr(rlog_addr),",
        "    .rlog_data(rlog_data), .blog_we(blog_we), .blog_addr(blog_addr),",
        "    .blog_data(blog_data), .clog_we(clog_we), .clog_addr(clog_addr),",
        "    .clog_data(clog_data), .stats(stats), .cycles(cycles), .n_cmds(n_cmds),",
        "    .done(done));",
        "  always @(posedge clk) if (!rst) begin",
        "    if (mem_we)",
        f"      for (i = 0; i < {B}; i = i + 1)",
        "        if (mem_wstrb[i]) mem[mem_addr][8*i +: 8] <= mem_wdata[8*i +: 8];",
        "    if (rlog_we) rlog[rlog_addr] <= rlog_data;",
        "    if (blog_we) blog[blog_addr] <= blog_data;",
        "    if (clog_we) clog[clog_addr] <= clog_data;",
        "  end",
        "  initial begin",
        *(f'    if ($value$plusargs("{p}=%d", tmp)) {p} = tmp;'
          for p in ("n_bursts", "max_out", "tg_seed", "stall", "strobes")),
        '    if ($value$plusargs("rom=%s", fname)) $readmemh(fname, rom);',
        '    if ($value$plusargs("mem=%s", fname)) $readmemh(fname, mem);',
        '    if ($value$plusargs("errm=%s", fname)) $readmemh(fname, errm);',
        "    repeat (2) @(posedge clk);",
        "    rst <= 1'b0;",
        "  end",
        "  reg dumped = 1'b0;",
        "  reg dump_now = 1'b0;   // set by cocotb once done is seen (outside the timing)",
        "  always @(posedge clk) if (!rst && dump_now && !dumped) begin",
        "    dumped <= 1'b1;",
        '    if ($value$plusargs("mem_out=%s", fname)) $writememh(fname, mem);',
        '    if ($value$plusargs("rlog_out=%s", fname)) $writememh(fname, rlog);',
        '    if ($value$plusargs("blog_out=%s", fname)) $writememh(fname, blog);',
        '    if ($value$plusargs("clog_out=%s", fname)) $writememh(fname, clog);',
        "  end",
        "endmodule",
        "",
    ])


# --------------------------------------------------------------------------------------------

def _sources(cfg: HbmConfig, rom_bits: int, log_bits: int) -> tuple[Path, list[Path]]:
    key = f"hbm_{cfg.name}_r{rom_bits}l{log_bits}"
    v = sim.generated_verilog(key, "hbm_harness", lambda: HbmHarness(cfg, rom_bits, log_bits),
                              files=["verif/hbm_harness.py"])
    top = v.parent / "tb_top.sv"
    text = top_verilog(cfg, rom_bits, log_bits)
    with sim.locked(top):
        if not top.exists() or top.read_text() != text:
            top.write_text(text)
    return sim.BUILD / "sim" / "hbm", [v, top]


REPORT = ["cycles", "n_cmds"] + [f"stat_{s}" for s, _ in STATS]


def build_model(cfg: HbmConfig, sim_name: str = "verilator", rom_bits: int = 12,
                log_bits: int = 14) -> Path:
    base, srcs = _sources(cfg, rom_bits, log_bits)
    return sim.build(srcs, "tb_top", sim_name, base / f"{sim_name}_{cfg.name[:40]}",
                     public=["clk", "rst", "done", "dump_now", *REPORT])


@dataclass
class HbmRun:
    """What one harness run logged."""

    cycles: int
    rbeats: list          #: (cycle, id, resp, last, data) per R beat, in order
    bresps: list          #: (cycle, id, resp)
    trace: list           #: (cycle, row_cmd, row_bank, row_row, col_cmd, col_bank, col_col)
    mem: np.ndarray
    stats: dict
    sim_seconds: float
    run_dir: Path | None = None
    extra: dict = field(default_factory=dict)


def _words(path: Path, n: int) -> list[int]:
    """The first ``n`` words of a ``$writememh`` file, as integers."""
    out = []
    if n == 0:
        return out
    for line in Path(path).read_text().splitlines():
        for tok in line.split("//", 1)[0].split():
            if tok.startswith("@"):
                continue
            if any(ch in tok for ch in "xXzZ"):
                raise ValueError(f"{path}: word {len(out)} holds unknown bits: never written?")
            out.append(int(tok, 16))
            if len(out) == n:
                return out
    raise ValueError(f"{path}: {len(out)} words, expected {n}")


def run_traffic(cfg: HbmConfig, bursts, mem: np.ndarray, err: np.ndarray, max_out: int = 8,
                seed: int = 1, stall: int = 0, strobes: int = 0, sim_name: str = "verilator",
                run_dir: Path | None = None, timeout_cycles: int | None = None) -> HbmRun:
    """Run ``bursts`` (``golden.hbm.Burst``) on the RTL channel; return the logs."""
    rom_bits = max(12, (len(bursts) - 1).bit_length())
    log_bits = 14
    nbeats = sum(b.beats for b in bursts if not b.write)
    if nbeats > (1 << log_bits) or len(bursts) > (1 << log_bits):
        raise ValueError(f"at most {1 << log_bits} read beats and bursts per run")
    sim.check_sim(sim_name)
    bdir = build_model(cfg, sim_name, rom_bits, log_bits)
    if run_dir is None:
        (sim.BUILD / "runs").mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="hbm_", dir=sim.BUILD / "runs"))
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    lay = burst_layout(cfg)
    words = []
    for b in bursts:
        w = 0
        for name, value in (("write", int(b.write)), ("id", b.id), ("addr", b.addr),
                            ("beats", b.beats)):
            w |= value << lay[name].offset
        words.append(w)
    hexio.write_words(run_dir / "rom.hex", words or [0])
    hexio.write_raw(run_dir / "mem.hex", np.asarray(mem, np.uint8).reshape(cfg.words, -1))
    hexio.write_words(run_dir / "errm.hex", np.asarray(err, bool).reshape(-1).astype(int))
    plus = [f"+n_bursts={len(bursts)}", f"+max_out={max_out}", f"+tg_seed={seed & 0xFFFFFFFF}",
            f"+stall={stall}", f"+strobes={strobes}"]
    for name in ("rom", "mem", "errm"):
        plus.append(f"+{name}={run_dir / (name + '.hex')}")
    for name in ("mem", "rlog", "blog", "clog"):
        plus.append(f"+{name}_out={run_dir / (name + '_out.hex')}")
    if timeout_cycles is None:
        timeout_cycles = 200 * sum(b.beats for b in bursts) * 256 // (256 - stall) + 100_000
    job = {"timeout_cycles": timeout_cycles, "result": str(run_dir / "result.json"),
           "report": REPORT, "what": f"{len(bursts)} HBM bursts"}
    (run_dir / "job.json").write_text(json.dumps(job))
    sim.run(bdir, "tb_top", sim_name, "verif.hbm_harness_tb", run_dir, plusargs=plus,
            env={JOB_ENV: str(run_dir / "job.json")})
    res = json.loads((run_dir / "result.json").read_text())
    nb = sum(1 for b in bursts if b.write)
    rl, bl, cl = rlog_layout(cfg), blog_layout(cfg), clog_layout(cfg)

    def field_of(lay, w, name):
        f = lay[name]
        width = Shape.cast(f.shape).width
        return (w >> f.offset) & ((1 << width) - 1)

    B = cfg.data_bytes
    rbeats = []
    for w in _words(run_dir / "rlog_out.hex", nbeats):
        d = field_of(rl, w, "data").to_bytes(B, "little")
        rbeats.append((field_of(rl, w, "cycle"), field_of(rl, w, "id"), field_of(rl, w, "resp"),
                       bool(field_of(rl, w, "last")), np.frombuffer(d, np.uint8)))
    bresps = [(field_of(bl, w, "cycle"), field_of(bl, w, "id"), field_of(bl, w, "resp"))
              for w in _words(run_dir / "blog_out.hex", nb)]
    trace = []
    cmd = cmd_layout(cfg)
    rows = {1: "ACT", 2: "PRE", 3: "REF", 4: "REFAB"}
    cols = {1: "RD", 2: "WR"}
    for w in _words(run_dir / "clog_out.hex", res["n_cmds"]):
        c = field_of(cl, w, "cmd")
        rc = rows.get(field_of(cmd, c, "row"))
        cc = cols.get(field_of(cmd, c, "col"))
        trace.append((field_of(cl, w, "cycle"), rc,
                      field_of(cmd, c, "row_bank") if rc else 0,
                      field_of(cmd, c, "row_row") if rc == "ACT" else 0,
                      cc, field_of(cmd, c, "col_bank") if cc else 0,
                      field_of(cmd, c, "col_col") if cc else 0))
    memo = hexio.read_rows(run_dir / "mem_out.hex", cfg.words, B, 8, signed=False)
    stats = {s: res[f"stat_{s}"] for s, _ in STATS}
    return HbmRun(res["cycles"], rbeats, bresps, trace, memo.astype(np.uint8), stats,
                  res["sim_seconds"], run_dir)
