"""Fast simulation harness of :class:`hdl.sram.Sram`: traffic and checking in HDL, Python off the
per-cycle path.

``SramHarness`` (Amaranth, simulation only) wraps the SRAM with, per client:

* a traffic generator (a registered stream source) producing the patterns of
  :mod:`golden.sram` (``stream``, ``random``, ``same-bank``) from xorshift32 generators seeded
  from ``seed``, with random valid gaps (``gap``/256) — mirrored bit for bit by
  :func:`golden.sram.simulate_traffic`;
* a response sink with random not-ready cycles (``stall``/256, clients in ``stall_mask``);
* a **shadow checker**: a plain data memory written in grant order (byte masks applied), read
  when a read is granted; the expected word waits in a per-client FIFO and is compared with the
  response when it transfers (data, and both ECC flags low). Mismatches, responses without a
  request and requests never answered are counted.

``corrupt_client``/``corrupt_at`` flip bit 0 of one response on its way to the checker (and the
log): a test proves the checker and the golden replay both see it.

With ``direct`` high the generators and sinks step aside and the SRAM's ports are those of the
top (``req__<c>__valid`` … named as on :class:`hdl.sram.Sram`): the direct cocotb testbench
(``verif/sram_tb.py``) drives them, so both testbenches share one compiled model.

The generated Verilog top (``sram_tb_top``) makes the clock, reset, takes the knobs as plusargs
and, with ``+log=<file>``, writes every served request (``G <cycle> <client> <payload hex>``)
and every response (``R <cycle> <client> <payload hex>``) for a golden replay in Python
(:func:`replay`). cocotb only waits for ``done`` (``verif/sram_harness_tb.py``).
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from amaranth.hdl import Cat, Const, Module, Mux, Signal
from amaranth.lib import data, fifo, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from golden.sram import KEY_CTL, KEY_MASK, KEYS, PATTERNS, SALT_GAP, SALT_REQ, region
from golden.sram import stream_writer as _stream_writer
from hdl.sram import Op, Sram, SramConfig, inject_layout, request_layout, response_layout

from . import sim
from .harness import xorshift32

__all__ = ["COUNTERS", "HarnessRun", "SramHarness", "build_model", "replay", "run_traffic"]

#: Per-client counters the harness exposes (all 32 bits).
COUNTERS = ("accesses", "reads", "responses", "mismatches", "valid_cycles", "stall_cycles",
            "conflict_cycles")
TOP = "sram_tb_top"


class SramHarness(wiring.Component):
    """The SRAM between HDL traffic generators, random-ready sinks and a shadow checker.

    Parameters
    ----------
    cfg : SramConfig

    Members
    -------
    seed, pattern, cycles, gap, stall, stall_mask, corrupt_client, corrupt_at : In
        Knobs (``pattern`` indexes :data:`golden.sram.PATTERNS`); generators offer requests
        during the first ``cycles`` cycles after the start.
    done : Out(1)
        The window is over, every request was served and every read answered.
    cyc : Out(32)
        Cycles since the start (frozen at ``done``).
    <counter>_<c> : Out(32)
        Per client, :data:`COUNTERS`.
    errors : Out(32)
        Responses without a pending read (the checker's own overflow included).
    ecc_corrected, ecc_uncorrectable : Out(32)
    log_req_fire_<c>, log_req_<c>, log_resp_fire_<c>, log_resp_<c> : Out
        Served requests and (as checked) responses, for the log.
    """

    def __init__(self, cfg: SramConfig):
        if not isinstance(cfg, SramConfig):
            raise TypeError(f"cfg must be an SramConfig, not {cfg!r}")
        self._cfg = cfg
        P = cfg.clients
        members = {
            "seed": In(32), "pattern": In(2), "cycles": In(32), "gap": In(8), "stall": In(8),
            "stall_mask": In(P), "corrupt_client": In(4), "corrupt_at": In(32),
            "done": Out(1), "cyc": Out(32), "errors": Out(32),
            "ecc_corrected": Out(32), "ecc_uncorrectable": Out(32),
        }
        members.update({
            "direct": In(1),
            "x_req": In(stream.Signature(request_layout(cfg))).array(P),
            "x_resp": Out(stream.Signature(response_layout(cfg))).array(P),
            "x_inject": In(stream.Signature(inject_layout(cfg))),
            "x_stall_cycles": Out(data.ArrayLayout(cfg.counter_bits, P)),
            "x_conflict_cycles": Out(data.ArrayLayout(cfg.counter_bits, P)),
        })
        for c in range(P):
            members.update({f"{n}_{c}": Out(32) for n in COUNTERS})
            members.update({
                f"log_req_fire_{c}": Out(1), f"log_req_{c}": Out(request_layout(cfg).size),
                f"log_resp_fire_{c}": Out(1), f"log_resp_{c}": Out(response_layout(cfg).size),
            })
        super().__init__(members)

    @property
    def cfg(self) -> SramConfig:
        return self._cfg

    def elaborate(self, platform):  # noqa: C901 - the generators, written out
        m = Module()
        cfg = self._cfg
        P, W, MB = cfg.clients, cfg.word_bits, cfg.mask_bits
        m.submodules.dut = dut = Sram(cfg)
        m.submodules.shadow = shadow = memory.Memory(shape=W, depth=cfg.depth, init=[])

        started = Signal()
        cyc = Signal(32)
        done = Signal()
        running = started & (cyc < self.cycles)
        m.d.sync += started.eq(1)
        with m.If(started & ~done):
            m.d.sync += cyc.eq(cyc + 1)
        m.d.comb += self.cyc.eq(cyc)

        def count(name, cond):
            cnt = Signal(32, name=name)
            with m.If(cond):
                m.d.sync += cnt.eq(cnt + 1)
            return cnt

        errors = []
        idle = []
        for c in range(P):
            rq, rs = dut.req[c], dut.resp[c]
            xq, xs = self.x_req[c], self.x_resp[c]
            gp = Signal(request_layout(cfg), name=f"g{c}_payload")
            # --- generator ------------------------------------------------------------------
            la = Signal(32, name=f"g{c}_la")
            lg = Signal(32, name=f"g{c}_lg")
            off = Signal(cfg.addr_bits, name=f"g{c}_off")
            v = Signal(name=f"g{c}_valid")
            with m.If(~started):
                m.d.sync += [la.eq((self.seed ^ SALT_REQ[c]) | 1),
                             lg.eq((self.seed ^ SALT_GAP[c]) | 1)]
            with m.Else():
                m.d.sync += lg.eq(xorshift32(lg))
            gap_now = lg[:8] < self.gap
            stall_now = (lg[8:16] < self.stall) & self.stall_mask[c]

            dat = Cat(*(la ^ KEYS[j] for j in range((W + 31) // 32)))[:W]
            ctl = Signal(32, name=f"g{c}_ctl")
            m.d.comb += ctl.eq(xorshift32(la ^ KEYS[KEY_CTL]))
            adr = la
            rmask = Cat(*(ctl ^ KEYS[KEY_MASK + j] for j in range((MB + 31) // 32)))[:MB]
            full = Const((1 << MB) - 1, MB)
            s_addr = (Const(c * region(cfg), cfg.addr_bits) + off)[:cfg.addr_bits]
            s_op = Op.WRITE if _stream_writer(cfg, c) else Op.READ
            r_addr = adr[:cfg.addr_bits]
            row = adr[:cfg.row_bits]
            low = Const(0, cfg.bank_bits)
            if cfg.xor_hash and cfg.bank_bits:
                for lo in range(0, cfg.row_bits, cfg.bank_bits):
                    low = low ^ row[lo:lo + cfg.bank_bits]
            b_addr = Cat(low, row)[:cfg.addr_bits] if cfg.bank_bits else row
            x_op = ctl[0]                                   # Op.WRITE = 1
            x_mask = Mux(ctl[1:3].any(), full, rmask)

            with m.If(started & (~v | rq.ready)):
                ok = running & ~gap_now
                m.d.sync += v.eq(ok)
                with m.If(ok):
                    m.d.sync += [la.eq(xorshift32(la)), off.eq(off + 1), gp.data.eq(dat)]
                    with m.Switch(self.pattern):
                        with m.Case(PATTERNS.index("stream")):
                            m.d.sync += [gp.op.eq(s_op), gp.addr.eq(s_addr), gp.mask.eq(full)]
                        with m.Case(PATTERNS.index("random")):
                            m.d.sync += [gp.op.as_value().eq(x_op), gp.addr.eq(r_addr),
                                         gp.mask.eq(x_mask)]
                        with m.Default():
                            m.d.sync += [gp.op.as_value().eq(x_op), gp.addr.eq(b_addr),
                                         gp.mask.eq(x_mask)]
            m.d.comb += [
                rq.valid.eq(Mux(self.direct, xq.valid, v)),
                rq.payload.as_value().eq(Mux(self.direct, xq.payload.as_value(),
                                             gp.as_value())),
                xq.ready.eq(rq.ready),
            ]

            # --- shadow: written in grant order, read at the grant ------------------------
            fire = rq.valid & rq.ready
            is_rd = rq.payload.op == Op.READ
            wp = shadow.write_port(granularity=8)
            rp = shadow.read_port(domain="comb")
            m.d.comb += [wp.addr.eq(rq.payload.addr), wp.data.eq(rq.payload.data),
                         wp.en.eq(Mux(fire & ~is_rd, rq.payload.mask, 0)),
                         rp.addr.eq(rq.payload.addr)]
            exp = fifo.SyncFIFO(width=W, depth=cfg.resp_depth + 2)
            m.submodules[f"expect{c}"] = exp
            m.d.comb += [exp.w_en.eq(fire & is_rd), exp.w_data.eq(rp.data)]

            # --- response sink and check --------------------------------------------------
            m.d.comb += [rs.ready.eq(Mux(self.direct, xs.ready, ~stall_now & started)),
                         xs.valid.eq(rs.valid), xs.payload.eq(rs.payload)]
            rfire = rs.valid & rs.ready
            nresp = count(f"c{c}_responses", rfire)
            flip = (self.corrupt_client == c) & (self.corrupt_at == nresp + 1)
            got = Signal(response_layout(cfg), name=f"c{c}_got")
            m.d.comb += [got.as_value().eq(rs.payload.as_value()),
                         got.data.eq(rs.payload.data ^ flip)]
            bad = rfire & (~exp.r_rdy | (got.data != exp.r_data) | got.corrected
                           | got.uncorrectable)
            m.d.comb += exp.r_en.eq(rfire)
            errors.append(count(f"c{c}_extra", (rfire & ~exp.r_rdy) | (exp.w_en & ~exp.w_rdy)))
            idle.append(~v & (exp.level == 0))

            cnts = {
                "accesses": count(f"c{c}_accesses", fire),
                "reads": count(f"c{c}_reads", fire & is_rd),
                "responses": nresp,
                "mismatches": count(f"c{c}_mismatches", bad),
                "valid_cycles": count(f"c{c}_valid_cycles", rq.valid),
                "stall_cycles": dut.stall_cycles[c],
                "conflict_cycles": dut.conflict_cycles[c],
            }
            for n in COUNTERS:
                m.d.comb += getattr(self, f"{n}_{c}").eq(cnts[n])
            m.d.comb += [
                getattr(self, f"log_req_fire_{c}").eq(fire),
                getattr(self, f"log_req_{c}").eq(rq.payload.as_value()),
                getattr(self, f"log_resp_fire_{c}").eq(rfire),
                getattr(self, f"log_resp_{c}").eq(got.as_value()),
            ]

        m.d.comb += [
            done.eq(started & (cyc >= self.cycles) & Cat(*idle).all()),
            self.done.eq(done),
            self.errors.eq(sum(errors)),
            self.ecc_corrected.eq(dut.ecc_corrected),
            self.ecc_uncorrectable.eq(dut.ecc_uncorrectable),
            dut.inject.valid.eq(self.direct & self.x_inject.valid),
            dut.inject.payload.eq(self.x_inject.payload),
            self.x_inject.ready.eq(dut.inject.ready),
            self.x_stall_cycles.eq(dut.stall_cycles),
            self.x_conflict_cycles.eq(dut.conflict_cycles),
        ]
        return m


# --------------------------------------------------------------------------------------------
# Verilog top, build and run
# --------------------------------------------------------------------------------------------

KNOBS = {"seed": 32, "pattern": 2, "cycles": 32, "gap": 8, "stall": 8, "stall_mask": 16,
         "corrupt_client": 4, "corrupt_at": 32, "direct": 1}


def direct_ports(cfg: SramConfig) -> dict[str, tuple[int, bool]]:
    """The SRAM's ports as the top exposes them in direct mode: name -> (width, driven by
    the testbench)."""
    P, cb = cfg.clients, cfg.counter_bits
    rq, rs, ij = (request_layout(cfg).size, response_layout(cfg).size,
                  inject_layout(cfg).size)
    out = {}
    for c in range(P):
        out.update({f"req__{c}__valid": (1, True), f"req__{c}__payload": (rq, True),
                    f"req__{c}__ready": (1, False), f"resp__{c}__valid": (1, False),
                    f"resp__{c}__payload": (rs, False), f"resp__{c}__ready": (1, True)})
    out.update({"inject__valid": (1, True), "inject__payload": (ij, True),
                "inject__ready": (1, False), "stall_cycles": (cb * P, False),
                "conflict_cycles": (cb * P, False)})
    return out


def top_verilog(cfg: SramConfig) -> str:
    """``sram_tb_top``: clock, reset, knobs from plusargs, the request/response log."""
    P = cfg.clients
    rq, rs = request_layout(cfg).size, response_layout(cfg).size
    outs = ["done", "cyc", "errors", "ecc_corrected", "ecc_uncorrectable"]
    lines = [
        "`timescale 1ns/1ps",
        "// Generated by verif/sram_harness.py: simulation top of the SRAM harness.",
        f"module {TOP};",
        "  reg clk = 1'b0;",
        "  reg rst = 1'b1;",
        "  always #5 clk = ~clk;",
        *(f"  reg [31:0] {k} = 32'd0;" for k in KNOBS),
        "  reg [8*1024-1:0] fname;",
        "  integer tmp;",
        "  integer fd = 0;",
        "  wire done;",
        "  wire [31:0] cyc, errors, ecc_corrected, ecc_uncorrectable;",
    ]
    conns = ["    .clk(clk), .rst(rst)"]
    conns += [f"    .{k}({k}[{w - 1}:0])" if k != "stall_mask" else
              f"    .stall_mask(stall_mask[{P - 1}:0])" for k, w in KNOBS.items()]
    conns += [f"    .{o}({o})" for o in outs]
    for name, (w, driven) in direct_ports(cfg).items():
        lines.append(f"  {'reg' if driven else 'wire'} [{w - 1}:0] {name}"
                     + (f" = {w}'d0;" if driven else ";"))
        conns.append(f"    .x_{name}({name})")
    for c in range(P):
        lines += [f"  wire [31:0] {', '.join(f'{n}_{c}' for n in COUNTERS)};",
                  f"  wire log_req_fire_{c}, log_resp_fire_{c};",
                  f"  wire [{rq - 1}:0] log_req_{c};",
                  f"  wire [{rs - 1}:0] log_resp_{c};"]
        conns += [f"    .{n}_{c}({n}_{c})" for n in COUNTERS]
        conns += [f"    .{n}_{c}({n}_{c})" for n in ("log_req_fire", "log_req",
                                                    "log_resp_fire", "log_resp")]
    lines += ["  sram_harness u (", ",\n".join(conns), "  );"]
    lines += [
        "  initial begin",
        *(f'    if ($value$plusargs("{k}=%d", tmp)) {k} = tmp;' for k in KNOBS),
        '    if ($value$plusargs("log=%s", fname)) fd = $fopen(fname, "w");',
        "    if (direct == 0) begin   // direct mode: the testbench releases the reset",
        "      repeat (2) @(posedge clk);",
        "      rst <= 1'b0;",
        "    end",
        "  end",
        "  always @(posedge clk) if (fd != 0) begin",
    ]
    for c in range(P):
        lines += [f'    if (log_req_fire_{c}) $fwrite(fd, "G %0d {c} %h\\n", cyc, log_req_{c});',
                  f'    if (log_resp_fire_{c}) $fwrite(fd, "R %0d {c} %h\\n", cyc, '
                  f'log_resp_{c});']
    lines += [
        "    if (done) begin",
        "      $fclose(fd);",
        "      fd = 0;",
        "    end",
        "  end",
        "endmodule",
        "",
    ]
    return "\n".join(lines)


def _sources(cfg: SramConfig) -> tuple[Path, list[Path]]:
    key = f"sramh_{cfg.name}"
    hv = sim.generated_verilog(key, "sram_harness", lambda: SramHarness(cfg),
                               files=["verif/sram_harness.py", "golden/sram.py"])
    top = hv.parent / f"{TOP}.sv"
    text = top_verilog(cfg)
    if not top.exists() or top.read_text() != text:
        with sim.locked(top):
            top.write_text(text)
    return sim.BUILD / "sim" / key, [hv, top]


def public_signals(cfg: SramConfig) -> list[str]:
    return (["clk", "rst", "done", "cyc", "errors", "ecc_corrected", "ecc_uncorrectable"]
            + [f"{n}_{c}" for c in range(cfg.clients) for n in COUNTERS]
            + list(direct_ports(cfg)))


def model_ready(cfg: SramConfig, sim_name: str = "verilator", waves: bool = False) -> bool:
    base, srcs = _sources(cfg)
    return (sim.model_dir(srcs, sim_name, base, waves) / "splitsys.stamp").exists()


def build_model(cfg: SramConfig, sim_name: str = "verilator", waves: bool = False) -> Path:
    """Generate the harness Verilog and the top, and compile them (cached)."""
    base, srcs = _sources(cfg)
    return sim.build(srcs, TOP, sim_name, base, public=public_signals(cfg), waves=waves)


@dataclass
class HarnessRun:
    """What one harness simulation measured (counters per client, as lists)."""

    cycles: int
    counters: dict                       #: name -> [per client]
    errors: int
    ecc_corrected: int
    ecc_uncorrectable: int
    sim_seconds: float
    run_dir: Path
    log: Path | None = None
    knobs: dict = field(default_factory=dict)

    @property
    def accesses(self) -> int:
        return sum(self.counters["accesses"])

    @property
    def accesses_per_cycle(self) -> float:
        return self.accesses / max(1, self.cycles)

    @property
    def conflict_rate(self) -> float:
        return sum(self.counters["conflict_cycles"]) / max(1, sum(self.counters["valid_cycles"]))

    @property
    def lost(self) -> int:
        """Reads served but never answered."""
        return sum(self.counters["reads"]) - sum(self.counters["responses"])


def run_traffic(cfg: SramConfig, pattern: str = "stream", cycles: int = 10_000, seed: int = 1,
                gap: int = 0, stall: int = 0, stall_mask: int | None = None,
                sim_name: str = "verilator", run_dir: Path | None = None, log: bool = False,
                corrupt: tuple[int, int] | None = None, waves: bool | None = None,
                timeout_cycles: int | None = None) -> HarnessRun:
    """Run the harness once; ``log`` also writes the served-request/response log."""
    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}")
    sim.check_sim(sim_name)
    waves = sim.waves_requested() if waves is None else waves
    bdir = build_model(cfg, sim_name, waves)
    if run_dir is None:
        (sim.BUILD / "runs").mkdir(parents=True, exist_ok=True)
        run_dir = Path(tempfile.mkdtemp(prefix="sram_", dir=sim.BUILD / "runs"))
    run_dir = Path(run_dir).resolve()          # the simulator runs inside it
    run_dir.mkdir(parents=True, exist_ok=True)
    P = cfg.clients
    knobs = {"seed": seed & 0xFFFFFFFF, "pattern": PATTERNS.index(pattern), "cycles": cycles,
             "gap": gap, "stall": stall,
             "stall_mask": (1 << P) - 1 if stall_mask is None else stall_mask,
             "corrupt_client": corrupt[0] if corrupt else 0,
             "corrupt_at": corrupt[1] if corrupt else 0}
    plus = [f"+{k}={v}" for k, v in knobs.items()]
    logf = run_dir / "sram.log" if log else None
    if logf:
        plus.append(f"+log={logf}")
    if timeout_cycles is None:
        worst = max(gap, stall, 0)
        timeout_cycles = int(cycles * 8 * 256 / (256 - min(worst, 255))) + 10_000
    job = {"clients": P, "counters": list(COUNTERS), "timeout_cycles": timeout_cycles,
           "result": str(run_dir / "result.json")}
    (run_dir / "job.json").write_text(json.dumps(job))
    t0 = time.perf_counter()
    sim.run(bdir, TOP, sim_name, "verif.sram_harness_tb", run_dir, plusargs=plus,
            env={"SPLITSYS_JOB": str(run_dir / "job.json")}, waves=waves)
    wall = time.perf_counter() - t0
    res = json.loads((run_dir / "result.json").read_text())
    return HarnessRun(cycles=res["cycles"], counters=res["counters"], errors=res["errors"],
                      ecc_corrected=res["ecc_corrected"],
                      ecc_uncorrectable=res["ecc_uncorrectable"],
                      sim_seconds=res.get("sim_seconds", wall), run_dir=run_dir, log=logf,
                      knobs=knobs)


def replay(cfg: SramConfig, log: Path):
    """Replay a harness log through the shared scoreboard (golden functional model).

    Returns the :class:`verif.sram_scoreboard.SramScoreboard` after :meth:`finish`.
    """
    from .sram_scoreboard import SramScoreboard

    sb = SramScoreboard(cfg)
    rl, sl = request_layout(cfg), response_layout(cfg)
    from .stream import unpack

    with open(log) as f:
        for line in f:
            kind, cyc, c, raw = line.split()
            if kind == "G":
                sb.served(int(cyc), int(c), unpack(rl, int(raw, 16)))
            else:
                sb.response(int(cyc), int(c), unpack(sl, int(raw, 16)))
    sb.finish()
    return sb
