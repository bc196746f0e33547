"""``splitsys``: the command line over the RTL, the golden model, synthesis and benches.

Every user error ends in one line on stderr and exit code 2; an RTL result that differs from the
golden model ends in one line and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

from hdl.config import DTYPES, ArrayConfig

ENGINES = ("rtl", "golden")
SIMS = ("verilator", "icarus")


class UsageError(Exception):
    """Bad input: reported as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, no usage dump
        raise UsageError(message)


def _load_npy(path: str, name: str) -> np.ndarray:
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{name}: no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{name}: is a directory: {path}")
    try:
        with open(p, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise UsageError(f"{name}: not a .npy file: {path}")
        return np.load(p, allow_pickle=False)
    except PermissionError:
        raise UsageError(f"{name}: permission denied: {path}") from None
    except (ValueError, OSError, EOFError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UsageError(f"{name}: not a readable .npy array ({path}): {msg}") from None


def _config(args, splittable: bool = True) -> ArrayConfig:
    try:
        return ArrayConfig.from_text(args.array, args.dtype, getattr(args, "sub", None),
                                     splittable)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None


class _Progress:
    """A one-line progress indicator on a terminal (nothing when stderr is not a TTY)."""

    def __init__(self, label: str, enabled: bool | None = None):
        self.label = label
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.t0 = time.perf_counter()
        self.shown = False

    def __call__(self, done: int, total: int):
        if not self.enabled or total <= 0:
            return
        frac = min(1.0, done / total)
        el = time.perf_counter() - self.t0
        eta = el / frac - el if frac > 0 else float("nan")
        bar = "#" * int(frac * 30)
        sys.stderr.write(f"\r{self.label} [{bar:<30}] {100 * frac:5.1f}%  "
                         f"{done}/{total} rows  ETA {eta:5.1f}s ")
        sys.stderr.flush()
        self.shown = True

    def note(self, text: str):
        if self.enabled:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()

    def close(self):
        if self.shown:
            sys.stderr.write("\n")
            sys.stderr.flush()


def run_matmul(cfg: ArrayConfig, a, b, engine="rtl", sim_name="verilator", seed=1, gaps=0,
               progress: _Progress | None = None, split="1x1",
               orientation="auto") -> tuple[np.ndarray, dict]:
    """Run one job on ``engine``; return C and the report dict (shared by matmul, demo, bench)."""
    from golden.matmul import OperandError, assemble, plan_matmul, run_golden

    squeeze = np.asarray(a).ndim == 2
    try:
        plan = plan_matmul(cfg, a, b, split, orientation)
    except OperandError as e:
        raise UsageError(str(e)) from None
    except ValueError as e:  # the split mode
        raise UsageError(str(e)) from None
    t0 = time.perf_counter()
    golden_cmem = run_golden(plan)
    golden_s = time.perf_counter() - t0
    pred = plan.cycles()
    m, k, n = plan.shapes[0]
    report = {
        "engine": engine, "dtype": cfg.dtype, "array": f"{cfg.rows}x{cfg.cols}",
        "sub_array": f"{cfg.sub_rows}x{cfg.sub_cols}",
        "split": plan.split, "split_requested": split,
        "shape": {"batch": len(plan.shapes), "m": m, "k": k, "n": n},
        "macs": plan.macs, "pes": cfg.pes, "passes": plan.n_passes,
        "orientation": plan.orientation()[0] if len(set(plan.orientation())) == 1
        else plan.orientation(),
        "predicted_cycles": pred.cycles,
    }
    groups = [{"group": gp.group.index, "slot": gp.group.slot,
               "size": f"{gp.group.rows}x{gp.group.cols}", "passes": gp.n_passes,
               "blocks": len(gp.units), "predicted_busy_cycles": pr.cycles if gp.out_rows else 0,
               "cycle_breakdown": pr.as_dict()}
              for gp, pr in zip(plan.groups, pred.groups, strict=True)]
    if engine == "golden":
        cycles = pred.cycles
        cmem = golden_cmem
        report.update(cycles=cycles, wall_seconds=round(golden_s, 4))
        for g in groups:
            g["busy_cycles"] = g["predicted_busy_cycles"]
    else:
        from verif import harness, sim

        try:
            sim.check_sim(sim_name)
        except (sim.SimError, ValueError) as e:
            raise UsageError(str(e)) from None
        g = harness.Gaps.uniform(gaps)
        aw = harness.addr_bits_for(plan)
        tb = time.perf_counter()
        waves = sim.waves_requested()
        if progress and not harness.model_ready(cfg, sim_name, aw, waves):
            progress.note(f"[{sim_name}] compiling the {cfg.name} model (once; cached under "
                          f"build/sim)")
        harness.build_model(cfg, sim_name, aw, waves)
        build_s = time.perf_counter() - tb
        t1 = time.perf_counter()
        run = harness.run_plan(plan, sim_name, gaps=g, seed=seed, progress=progress)
        wall = time.perf_counter() - t1
        if progress:
            progress.close()
        cycles = run.cycles
        cmem = run.cmem
        bad = int((cmem != golden_cmem).any(axis=1).sum())
        gc = run.group_counters(plan)
        exact_groups = all(
            (c["done_cycle"] if gp.out_rows else 0) == gr["predicted_busy_cycles"]
            for c, gp, gr in zip(gc, plan.groups, groups, strict=True))
        for gr, c, gp in zip(groups, gc, plan.groups, strict=True):
            gr["busy_cycles"] = c["done_cycle"] if gp.out_rows else 0
            gr["counters"] = {k: v for k, v in c.items() if k != "done_cycle"}
        report.update(
            cycles=cycles, wall_seconds=round(wall, 3), build_seconds=round(build_s, 2),
            sim=sim_name, seed=seed, gaps=gaps,
            sim_seconds=round(run.wall_seconds, 3),
            sim_macs_per_second=round(plan.macs / max(run.wall_seconds, 1e-9)),
            sim_cycles_per_second=round(cycles / max(run.wall_seconds, 1e-9)),
            counters=run.counters, verified=bad == 0, mismatched_rows=bad,
            cycle_model="exact" if cycles == pred.cycles and exact_groups else
            ("not applicable (random gaps)" if gaps else "MISMATCH"),
            waves=str(run.run_dir / "dump.fst") if sim.waves_requested() else None,
            run_dir=str(run.run_dir),
        )
    cyc = report["cycles"]
    report["utilization"] = round(plan.macs / (cyc * cfg.pes), 6)
    report["groups"] = groups
    # What the mode asks of the memories, averaged over the job (per cycle, all groups).
    w_rows = sum(len(gp.weights) for gp in plan.groups)
    p_rows = sum(int(gp.passes[gp.passes[:, 2] == 1, 1].sum()) for gp in plan.groups)
    report["sram_demand_per_cycle"] = {
        "activation_rows": round(plan.out_rows / cyc, 4),
        "partial_sum_rows": round(p_rows / cyc, 4),
        "result_rows": round(plan.out_rows / cyc, 4),
        "weight_rows": round(w_rows / cyc, 4),
        "streams": 4 * len(plan.groups),
    }
    return assemble(plan, cmem, squeeze), report


def cmd_matmul(args) -> int:
    cfg = _config(args)
    if args.gaps and args.engine != "rtl":
        raise UsageError("--gaps only applies to --engine rtl")
    if not 0 <= args.gaps <= 255:
        raise UsageError(f"--gaps must be in [0, 255], not {args.gaps}")
    a = _load_npy(args.a, "A")
    b = _load_npy(args.b, "B")
    out = Path(args.output)
    if out.parent and not out.parent.exists():
        raise UsageError(f"output directory does not exist: {out.parent}")
    if args.waves:
        os.environ["WAVES"] = "1"
    prog = _Progress(f"[{args.engine}]")
    c, report = run_matmul(cfg, a, b, args.engine, args.sim, args.seed, args.gaps, prog,
                           split=args.split, orientation=args.orient)
    np.save(out, c)
    if args.report:
        Path(args.report).write_text(json.dumps(report, indent=1) + "\n")
    if args.engine == "rtl" and not report["verified"]:
        print(f"splitsys: RTL result differs from the golden model in "
              f"{report['mismatched_rows']} rows (run dir {report['run_dir']})", file=sys.stderr)
        return 1
    if args.engine == "rtl" and not args.gaps and report["cycle_model"] != "exact":
        print(f"splitsys: RTL took {report['cycles']} cycles, the cycle model predicts "
              f"{report['predicted_cycles']}", file=sys.stderr)
        return 1
    return 0


def cmd_demo(args) -> int:
    cfg = _config(args)
    rng = np.random.default_rng(2026)
    m, k, n = 64, 256, 256
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    outdir = Path("build/demo")
    outdir.mkdir(parents=True, exist_ok=True)
    np.save(outdir / "A.npy", a)
    np.save(outdir / "B.npy", b)
    print(f"splitsys demo: C = A·B, int8, A {m}x{k}, B {k}x{n}, on the {cfg.rows}x{cfg.cols} "
          f"RTL array ({args.sim}, {cfg.sub_rows}x{cfg.sub_cols} sub-arrays, split 1x1)")
    prog = _Progress(f"[{args.sim}]")
    c, rep = run_matmul(cfg, a, b, "rtl", args.sim, seed=1, progress=prog)
    np.save(outdir / "C.npy", c)
    exact = np.array_equal(c, a.astype(np.int64) @ b.astype(np.int64))
    rep["numpy_reference_equal"] = bool(exact)
    (outdir / "report.json").write_text(json.dumps(rep, indent=1) + "\n")
    bd = rep["groups"][0]["cycle_breakdown"]
    ok = rep["verified"] and exact and rep["cycle_model"] == "exact"
    print(f"  result        : {'bit-exact vs golden model and NumPy' if ok else 'MISMATCH'}")
    print(f"  cycles        : {rep['cycles']} (cycle model: {rep['predicted_cycles']}, "
          f"{rep['cycle_model']})")
    print(f"  utilization   : {100 * rep['utilization']:.2f}% of {cfg.pes} PEs "
          f"({bd['act_busy']} streaming, {bd['wait_weights']} waiting for weights, "
          f"{bd['wait_psum']} for partial sums, {bd['fill_drain']} fill/drain)")
    print(f"  sim speed     : {rep['sim_macs_per_second'] / 1e6:.1f} M MAC/s, "
          f"{rep['sim_cycles_per_second'] / 1e3:.0f} k cycles/s in the simulator "
          f"({rep['wall_seconds']:.2f} s for the run, build {rep['build_seconds']:.1f} s)")
    print(f"  report        : {outdir / 'report.json'} (C in {outdir / 'C.npy'})")
    if len(cfg.modes) > 1:
        # The split array's point: decode attention, 8 heads x 4 queries x head_dim 64 x 512.
        q = rng.integers(-128, 128, (8, 4, 64), dtype=np.int8)
        kt = rng.integers(-128, 128, (8, 64, 512), dtype=np.int8)
        want = np.einsum("bmk,bkn->bmn", q.astype(np.int64), kt.astype(np.int64))
        line = []
        for split in ("1x1", "auto"):
            cs, r = run_matmul(cfg, q, kt, "rtl", args.sim, seed=1, split=split)
            ok = ok and r["verified"] and r["cycle_model"] == "exact" and np.array_equal(cs,
                                                                                         want)
            line.append((r["split"], r["utilization"], r["cycles"]))
        (s1, u1, c1), (s2, u2, c2) = line
        print(f"  split demo    : decode attention q·K^T, 8 heads x 4 queries x 64 x 512: "
              f"{s1} {100 * u1:.1f}% ({c1} cycles) -> {s2} {100 * u2:.1f}% ({c2} cycles), "
              f"{u2 / u1:.2f}x, results identical")
    return 0 if ok else 1


def cmd_verilog(args) -> int:
    from scripts import hbm, sram
    from scripts.verilog import generate, lint

    cfg = _config(args)
    files = generate(cfg, Path(args.out))
    files.append(sram.write_verilog(Path(args.out)))
    files.append(hbm.write_verilog(Path(args.out)))
    for f in files:
        print(f"wrote {f}")
    if args.lint:
        return lint(files)
    return 0


def cmd_synth(args) -> int:
    from scripts.verilog import synth_report

    cfg = _config(args)
    rc = synth_report(cfg, Path(args.out), big=args.big, readme=args.readme)
    if rc == 0:
        from scripts import hbm, sram

        for name, mod in (("sram", sram), ("hbm", hbm)):
            md = mod.synth(Path(args.out))["markdown"]
            print(md)
            if args.readme:
                from scripts.bench import update_readme

                update_readme(name, md, tag="synth")
    return rc


def cmd_bench(args) -> int:
    from scripts.bench import main as bench_main

    return bench_main(quick=args.quick, out=Path(args.out), readme=args.readme,
                      only=args.only)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="splitsys", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=_Parser)

    def common(sp):
        sp.add_argument("--array", default="16x16", help="array size RxC (default 16x16)")
        sp.add_argument("--sub", default=None, metavar="RxC",
                        help="sub-array size (default 8 where 8 divides, else the whole side)")
        sp.add_argument("--dtype", default="int8", choices=DTYPES, help="element format")

    m = sub.add_parser("matmul", help="C = A·B on the RTL or the golden model")
    m.add_argument("a", metavar="A.npy")
    m.add_argument("b", metavar="B.npy")
    m.add_argument("-o", "--output", required=True, metavar="C.npy")
    common(m)
    m.add_argument("--split", default="1x1", metavar="GRxGC|auto",
                   help="split mode (default 1x1 = monolithic; auto = fastest by the model)")
    m.add_argument("--orient", default="auto", choices=("auto", "normal", "transposed"),
                   help="stream A (normal) or B^T (transposed); auto picks per matmul")
    m.add_argument("--engine", default="rtl", choices=ENGINES)
    m.add_argument("--sim", default=os.environ.get("SIM", "verilator") or "verilator",
                   choices=SIMS)
    m.add_argument("--report", metavar="run.json", help="write a JSON report")
    m.add_argument("--seed", type=int, default=1, help="seed of the random stream gaps")
    m.add_argument("--gaps", type=int, default=0, metavar="P",
                   help="random valid/ready gaps on every stream, P/256 per cycle (RTL)")
    m.add_argument("--waves", action="store_true", help="write FST waves (same as WAVES=1)")
    m.set_defaults(func=cmd_matmul)

    d = sub.add_parser("demo", help="a representative int8 job on the RTL, checked")
    common(d)
    d.add_argument("--sim", default=os.environ.get("SIM", "verilator") or "verilator",
                   choices=SIMS)
    d.set_defaults(func=cmd_demo)

    v = sub.add_parser("verilog", help="write the PE's and the array's Verilog")
    common(v)
    v.add_argument("--out", default="build/verilog")
    v.add_argument("--lint", action="store_true", help="run verilator --lint-only -Wall")
    v.set_defaults(func=cmd_verilog)

    s = sub.add_parser("synth", help="Yosys gate-level area of the PE and the array")
    common(s)
    s.add_argument("--out", default="build/synth")
    s.add_argument("--big", action="store_true", help="also the 32x32 array (8x8 sub-arrays)")
    s.add_argument("--readme", action="store_true", help="update the README's area table")
    s.set_defaults(func=cmd_synth)

    b = sub.add_parser("bench", help="utilization and simulation-speed benchmarks")
    b.add_argument("--out", default="build/bench")
    b.add_argument("--quick", action="store_true", help="smaller shapes (a smoke run)")
    b.add_argument("--readme", action="store_true", help="update the README's bench table")
    b.add_argument("--only", action="append", default=[], help="run only the named bench(es)")
    b.set_defaults(func=cmd_bench)

    # Memory-subsystem benches live with their blocks.
    from scripts import hbm, sram

    sram.add_parser(sub)
    hbm.add_parser(sub)
    return p


def main(argv=None) -> int:
    return dispatch(build_parser(), argv)


def dispatch(parser: argparse.ArgumentParser, argv=None) -> int:
    """Parse ``argv`` and run the chosen command: bad input is one line and exit 2, a tool
    failure one line and exit 1 (shared by ``python -m scripts.sram`` / ``scripts.hbm``)."""
    try:
        args = parser.parse_args(argv)
        return args.func(args)
    except UsageError as e:
        print(f"splitsys: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("splitsys: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # a tool failure (build, simulator): one line, pointing at the log
        from scripts.synth import SynthError
        from verif.sim import SimError

        if isinstance(e, (SimError, SynthError)):
            print(f"splitsys: {e}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":  # ``python -m scripts.cli``: the module's own classes, not __main__'s
    from scripts.cli import main as _main

    sys.exit(_main())
