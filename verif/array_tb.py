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


def run_jobs(cfg, jobs: list[dict], seed: int, sim_name: str = "verilator",
             test_dir: Path | None = None, waves: bool | None = None) -> dict:
    """Build the array (cached) and run ``jobs`` in one simulation; return the report dict.

    Each job: ``{"shape": [b, m, k, n], "gap": float, "stall": float}``.
    """
    import tempfile

    from hdl.array import SystolicArray

    from . import sim

    sim.check_sim(sim_name)
    waves = sim.waves_requested() if waves is None else waves
    key = f"array_{cfg.name}"
    v = sim.generated_verilog(key, TOP, lambda: SystolicArray(cfg))
    ports = ["clk", "rst", "busy"] + [f"{s}__{f}" for s in ("weight", "act", "psum", "out")
                                      for f in ("valid", "ready", "payload")]
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
    from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
except ImportError:  # pragma: no cover - only the launcher is used outside a simulator
    cocotb = None

if cocotb is not None and os.environ.get(JOB_ENV):

    @cocotb.test()
    async def jobs(dut):
        import random

        import numpy as np

        from golden.matmul import plan_matmul, run_golden
        from hdl.array import act_layout, out_layout, psum_layout, weight_layout
        from hdl.config import ArrayConfig

        from .stimulus import random_int8
        from .stream import StreamSink, StreamSource, pack, unpack

        spec = json.loads(Path(os.environ[JOB_ENV]).read_text())
        cfg = ArrayConfig(**spec["cfg"])
        seed = spec["seed"]
        dut._log.info("seed %d", seed)
        rng = np.random.default_rng(seed)
        prng = random.Random(seed)
        cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
        dut.rst.value = 1
        await ClockCycles(dut.clk, 3)
        await FallingEdge(dut.clk)
        dut.rst.value = 0

        wl, al, pl, ol = weight_layout(cfg), act_layout(cfg), psum_layout(cfg), out_layout(cfg)
        report = {"seed": seed, "jobs": []}
        errors = []
        for jn, job in enumerate(spec["jobs"]):
            b, m, k, n = job["shape"]
            gap, stall = job.get("gap", 0.0), job.get("stall", 0.0)
            a = random_int8(rng, (b, m, k))
            bm = random_int8(rng, (b, k, n))
            plan = plan_matmul(cfg, a, bm)
            want = run_golden(plan)
            cmem = np.zeros_like(want)
            got_rows = {"n": 0}
            # stream position -> (c row, is last row of its pass)
            targets = []
            for _ab, rows, _acc, cb, _dep in plan.passes:
                targets += [(cb + i, i == rows - 1) for i in range(rows)]

            def on_out(raw, cmem=cmem, targets=targets, got=got_rows, jn=jn):
                q = got["n"]
                got["n"] += 1
                if q >= len(targets):
                    errors.append(f"job {jn}: extra result row {q} (duplicated?)")
                    return
                item = unpack(ol, raw)
                row, last = targets[q]
                if item["last"] != int(last):
                    errors.append(f"job {jn}: result row {q} has last={item['last']}")
                cmem[row] = item["data"]

            wsrc = StreamSource(dut, "weight", dut.clk, gap, prng)
            asrc = StreamSource(dut, "act", dut.clk, gap, prng)
            psrc = StreamSource(dut, "psum", dut.clk, gap, prng)
            sink = StreamSink(dut, "out", dut.clk, stall, prng, on_item=on_out)
            for row in plan.weights:
                wsrc.put(pack(wl, row.tolist()))
            for ab, rows, acc, cb, dep in plan.passes:
                for i in range(rows):
                    asrc.put(pack(al, {"data": plan.act[ab + i].tolist(), "acc": int(acc),
                                       "last": int(i == rows - 1)}))
                    if acc:
                        def item(r=cb + i, need=dep + i + 1, cmem=cmem, got=got_rows):
                            return pack(pl, cmem[r].tolist()) if got["n"] >= need else None
                        psrc.put(item)
            tasks = [cocotb.start_soon(x.run()) for x in (wsrc, asrc, psrc, sink)]
            pred = plan.cycles(**TIMING).cycles
            budget = int(pred * 4 / max(1e-3, (1 - max(gap, stall)))) + 2000
            waited = 0
            while got_rows["n"] < plan.out_rows and waited < budget:
                await RisingEdge(dut.clk)
                waited += 1
            for t in tasks:
                t.cancel()
            await FallingEdge(dut.clk)
            for s in (wsrc, asrc, psrc):
                s.valid.value = 0
            sink.ready.value = 0
            # Idle for a while: anything extra coming out now is a duplicated row.
            await ClockCycles(dut.clk, cfg.latency + 4)
            if int(dut.out__valid.value):
                errors.append(f"job {jn}: result stream still valid after the job")
            errors.extend(sink.errors)
            if got_rows["n"] != plan.out_rows:
                errors.append(f"job {jn}: {got_rows['n']} result rows, expected {plan.out_rows}"
                              f" (after {waited} cycles)")
            mism = int((cmem != want).any(axis=1).sum())
            if mism:
                errors.append(f"job {jn} shape {job['shape']}: {mism} result-memory rows differ "
                              f"from the golden model")
            cycles = sink.last_cycle + 1
            rec = {"shape": job["shape"], "gap": gap, "stall": stall, "cycles": cycles,
                   "predicted": pred, "rows": plan.out_rows, "stalled": sink.stalled,
                   "mismatched_rows": mism}
            if not gap and not stall and cycles != pred:
                errors.append(f"job {jn} shape {job['shape']}: {cycles} cycles, cycle model "
                              f"predicts {pred}")
            report["jobs"].append(rec)
            if errors:
                break
        report["errors"] = errors
        Path(spec["report"]).write_text(json.dumps(report, indent=1))
        assert not errors, "; ".join(errors[:5]) + f" (seed {seed})"
