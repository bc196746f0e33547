"""Direct cocotb testbench of :class:`hdl.array.SystolicArray`: Python drives every stream.

Slower than the harness (Python runs every cycle) but it checks what the harness cannot see from
the outside: the stream rules on every port, each result row's ``last`` flag, rows neither lost
nor duplicated, with random valid gaps on the three inputs and random ready on the output.
Jobs come from the shared tiling (:func:`golden.matmul.plan_matmul`) and are checked bit for bit
against :func:`golden.matmul.run_golden`, and, without gaps, against the cycle model.

The launcher (:func:`run_jobs`) runs in pytest; :func:`jobs` runs inside the simulator.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

JOB_ENV = "SPLITSYS_JOB"
TOP = "systolic_array"
#: Driver timing for the cycle model (see ArrayModel.cycles): sources offer from cycle 0, a
#: partial sum the cycle after its result row's transfer.
TIMING = {"source_delay": 0, "psum_turnaround": 1}
MODE_COLS_SHIFT = [0]     # bit offset of the mode payload's "cols" field (set from the layout)


def run_jobs(cfg, jobs: list[dict], seed: int, sim_name: str = "verilator",
             test_dir: Path | None = None, waves: bool | None = None) -> dict:
    """Build the array (cached) and run ``jobs`` in one simulation; return the report dict.

    Each job: ``{"shapes": [[m, k, n], ...], "split": "GRxGC", "gap": float,
    "stall": float or [float per group], "orientation": "auto"}``, or ``{"bad_mode": [gr, gc]}``
    (offered on the mode stream; it must raise ``mode_error``). Jobs run back to back, no reset.
    """
    import tempfile

    from hdl.array import SystolicArray

    from . import sim

    sim.check_sim(sim_name)
    waves = sim.waves_requested() if waves is None else waves
    key = f"array_{cfg.name}"
    v = sim.generated_verilog(key, TOP, lambda: SystolicArray(cfg))
    ports = ["clk", "rst", "busy", "mode_error", "cur_mode", "mode__valid", "mode__ready",
             "mode__payload"]
    ports += [f"{n}__{s}__{f}" for n in ("weight", "act", "psum", "out")
              for s in range(cfg.n_slots) for f in ("valid", "ready", "payload")]
    bdir = sim.build([v], TOP, sim_name, sim.BUILD / "sim" / key, public=ports, waves=waves)
    if test_dir is None:
        (sim.BUILD / "runs").mkdir(parents=True, exist_ok=True)
        test_dir = Path(tempfile.mkdtemp(prefix="array_", dir=sim.BUILD / "runs"))
    spec = {"cfg": cfg.as_dict(), "jobs": jobs, "seed": seed,
            "report": str(Path(test_dir) / "report.json")}
    Path(test_dir).mkdir(parents=True, exist_ok=True)
    (Path(test_dir) / "job.json").write_text(json.dumps(spec))
    try:
        sim.run(bdir, TOP, sim_name, "verif.array_tb", Path(test_dir),
                env={JOB_ENV: str(Path(test_dir) / "job.json")}, waves=waves)
    finally:
        rep = Path(spec["report"])
        report = json.loads(rep.read_text()) if rep.exists() else {}
    return report


# --------------------------------------------------------------------------------------------
# Inside the simulator
# --------------------------------------------------------------------------------------------

try:
    import cocotb
    from cocotb.clock import Clock
    from cocotb.triggers import ClockCycles, FallingEdge, ReadOnly, RisingEdge
except ImportError:  # pragma: no cover - only the launcher is used outside a simulator
    cocotb = None

if cocotb is not None and os.environ.get(JOB_ENV):

    async def set_mode(dut, mode, budget=10_000):
        """Offer ``mode`` (GR, GC) on the mode stream; return the array's mode_error after it."""
        await FallingEdge(dut.clk)
        dut.mode__payload.value = int(mode[0]) | int(mode[1]) << MODE_COLS_SHIFT[0]
        dut.mode__valid.value = 1
        for _ in range(budget):
            await ReadOnly()
            taken = int(dut.mode__ready.value)
            await FallingEdge(dut.clk)
            if taken:
                break
        else:
            raise AssertionError("the mode stream was never ready (array busy?)")
        dut.mode__valid.value = 0
        return int(dut.mode_error.value)

    @cocotb.test()
    async def jobs(dut):
        import random

        import numpy as np

        from golden.schedule import run_golden, schedule
        from hdl.array import act_layout, mode_layout, out_layout, psum_layout, weight_layout
        from hdl.config import ArrayConfig

        from .stimulus import operands
        from .stream import StreamSink, StreamSource, pack, unpack

        spec = json.loads(Path(os.environ[JOB_ENV]).read_text())
        cfg = ArrayConfig(**spec["cfg"])
        MODE_COLS_SHIFT[0] = dict(iter(mode_layout(cfg)))["cols"].offset
        seed = spec["seed"]
        dut._log.info("seed %d", seed)
        rng = np.random.default_rng(seed)
        prng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        dut.mode__valid.value = 0
        for sl in range(cfg.n_slots):   # undriven inputs are X under Icarus
            for name in ("weight", "act", "psum"):
                getattr(dut, f"{name}__{sl}__valid").value = 0
                getattr(dut, f"{name}__{sl}__payload").value = 0
            getattr(dut, f"out__{sl}__ready").value = 0
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

        wl, al, pl, ol = weight_layout(cfg), act_layout(cfg), psum_layout(cfg), out_layout(cfg)
        report = {"seed": seed, "jobs": []}
        errors = []
        for jn, job in enumerate(spec["jobs"]):
            if "bad_mode" in job:
                before = int(dut.cur_mode.value)
                err = await set_mode(dut, job["bad_mode"])
                cur = int(dut.cur_mode.value)
                if not err:
                    errors.append(f"job {jn}: mode {job['bad_mode']} accepted without error")
                if cur != before:
                    errors.append(f"job {jn}: refused mode changed the mode in force")
                report["jobs"].append({"bad_mode": job["bad_mode"], "mode_error": err,
                                       "cur_mode_raw": cur})
                continue
            mode = cfg.check_mode(job.get("split", "1x1"))
            if await set_mode(dut, mode):
                errors.append(f"job {jn}: valid mode {mode} raised mode_error")
                break
            shapes = job["shapes"]
            ops = [operands(rng, cfg.dtype, m, k, n) for m, k, n in shapes]
            plan = schedule(cfg, mode, ops, job.get("orientation", "auto"))
            want = run_golden(plan)
            cmem = np.zeros_like(want)
            n_groups = len(plan.groups)
            gap = job.get("gap", 0.0)
            stall = job.get("stall", 0.0)
            stalls = stall if isinstance(stall, list) else [stall] * n_groups
            tasks, sinks, got = [], [], []
            for gi, gp in enumerate(plan.groups):
                s = gp.group.slot
                G = gp.group
                got.append({"n": 0})
                targets = []
                for _ab, rows, _acc, cb, _dep in gp.passes:
                    targets += [(cb + i, i == rows - 1) for i in range(rows)]

                def on_out(raw, targets=targets, g=got[gi], gi=gi, G=G, jn=jn, cmem=cmem):
                    q = g["n"]
                    g["n"] += 1
                    if q >= len(targets):
                        errors.append(f"job {jn} group {gi}: extra result row {q}")
                        return
                    item = unpack(ol, raw)
                    row, last = targets[q]
                    if item["last"] != int(last):
                        errors.append(f"job {jn} group {gi}: row {q} has last={item['last']}")
                    cmem[row, :G.cols] = item["data"][:G.cols]

                srcs = [StreamSource(dut, f"{n}__{s}", dut.clk, gap, prng)
                        for n in ("weight", "act", "psum")]
                sink = StreamSink(dut, f"out__{s}", dut.clk, stalls[gi], prng, on_item=on_out)
                wsrc, asrc, psrc = srcs
                for row in gp.weights:
                    wsrc.put(pack(wl, list(row) + [0] * (cfg.cols - G.cols)))
                for ab, rows, acc, cb, dep in gp.passes:
                    for i in range(rows):
                        data = list(gp.act[ab + i]) + [0] * (cfg.rows - G.rows)
                        asrc.put(pack(al, {"data": data, "acc": int(acc),
                                           "last": int(i == rows - 1)}))
                        if acc:
                            def item(r=cb + i, need=dep + i + 1, g=got[gi], C_=G.cols,
                                     cmem=cmem):
                                if g["n"] < need:
                                    return None
                                return pack(pl, list(cmem[r, :C_]) + [0] * (cfg.cols - C_))
                            psrc.put(item)
                tasks += [cocotb.start_soon(x.run()) for x in (*srcs, sink)]
                sinks.append((sink, srcs))
            pred = plan.cycles(**TIMING)
            budget = int(pred.cycles * 4 / max(1e-3, 1 - max([gap, *stalls]))) + 2000
            waited = 0
            while (any(g["n"] < gp.out_rows for g, gp in zip(got, plan.groups, strict=True))
                   and waited < budget):
                await RisingEdge(dut.clk)
                waited += 1
            for t in tasks:
                t.cancel()
            await FallingEdge(dut.clk)
            for sink, srcs in sinks:
                for x in srcs:
                    x.valid.value = 0
                sink.ready.value = 0
            # Idle for a while: anything still coming out now is a duplicated row.
            await ClockCycles(dut.clk, cfg.latency + 4)
            rec = {"split": f"{mode[0]}x{mode[1]}", "shapes": shapes, "gap": gap,
                   "stall": stalls, "predicted": pred.cycles, "groups": []}
            for gi, ((sink, _), gp) in enumerate(zip(sinks, plan.groups, strict=True)):
                if int(sink.valid.value):
                    errors.append(f"job {jn} group {gi}: result stream valid after the job")
                errors.extend(sink.errors)
                if got[gi]["n"] != gp.out_rows:
                    errors.append(f"job {jn} group {gi}: {got[gi]['n']} result rows, "
                                  f"expected {gp.out_rows} (after {waited} cycles)")
                gcyc = sink.last_cycle + 1 if gp.out_rows else 0
                gpred = pred.groups[gi].cycles if gp.out_rows else 0
                rec["groups"].append({"cycles": gcyc, "predicted": gpred,
                                      "stalled": sink.stalled, "rows": gp.out_rows})
                if not gap and not stalls[gi] and gcyc != gpred:
                    errors.append(f"job {jn} {rec['split']} group {gi}: {gcyc} cycles, the "
                                  f"cycle model predicts {gpred}")
            mism = int((cmem != want).any(axis=1).sum())
            rec["mismatched_rows"] = mism
            if mism:
                errors.append(f"job {jn} {rec['split']} shapes {shapes}: {mism} result rows "
                              f"differ from the golden model")
            # Bit-identical across modes: the same operands in 1x1 give the same results.
            ref = schedule(cfg, (1, 1), ops)
            for got_c, ref_c in zip(plan.assemble(cmem), ref.assemble(run_golden(ref)),
                                    strict=True):
                if not np.array_equal(got_c, ref_c):
                    errors.append(f"job {jn}: {rec['split']} differs from 1x1")
                    break
            report["jobs"].append(rec)
            if errors:
                break
        report["errors"] = errors
        Path(spec["report"]).write_text(json.dumps(report, indent=1))
        assert not errors, "; ".join(errors[:5]) + f" (seed {seed})"
