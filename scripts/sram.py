"""``splitsys sram-bench`` and the SRAM sections of ``make bench`` / ``make synth``.

* :func:`add_parser` registers ``sram-bench`` on the ``splitsys`` sub-parsers;
  ``python -m scripts.sram sram-bench ...`` runs it on its own.
* :func:`run_bench` runs the RTL (the fast harness: traffic, response sinks and a shadow
  checker in HDL, Python off the per-cycle path), replays the served-request log through the
  golden functional model, compares the counters with the golden cycle model, and returns the
  report: ``accesses_per_cycle``, ``conflict_rate``, ``stall_cycles`` per client, ``verified``.
* :func:`bench` is the ``make bench`` section (default configuration, every pattern);
  :func:`synth` the ``make synth`` section: the controller's logic area from Yosys with the
  banks as black boxes, and the macro area from an analytical bit-cell model.

Macro area model: ``area = bits x (die area / die bits)`` of Intel's 45 nm SRAM test chip (the
node of the Nangate 45 nm logic figures), as Intel announced it on 24-25 January 2006: 153 Mbit
of 6T cells of 0.346 µm² on a 119 mm² die (reported by PC Pro, A. Williams, "Intel declares
itself on 45nm track", 25 Jan 2006, http://www.pcpro.co.uk/news/82953/intel-declares-itself-on-
45nm-track; ZDNet's report of the same announcement gives 0.345). Intel's 45 nm SRAM test
chips are described in Bhattacharya et al., "45nm SRAM Technology Development and Technology
Lead Vehicle", Intel Technology Journal 12(2), 2008 (not the source of the numbers used here).
Reading "153 Mbit" as 153 * 2**20 bits, the die holds 0.742 µm² per bit, i.e. the bit cells
fill 46.6% of it: whole-die efficiency, with I/O, test circuits and the on-die tester included,
so a conservative figure for a macro (a compiled macro's array efficiency is higher). Check
bits are counted. A lower bound is the bit cell alone (0.346 µm²/bit, 2.1x smaller).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["add_parser", "bench", "main", "macro_area", "run_bench", "synth", "write_verilog"]

PATTERNS = ("stream", "random", "same-bank")
SIMS = ("verilator", "icarus")

#: Macro area model constants (see the module docstring for the source).
BITCELL_UM2 = 0.346
DIE_MM2 = 119.0
DIE_BITS = 153 * 2**20
UM2_PER_BIT = DIE_MM2 * 1e6 / DIE_BITS
ARRAY_EFFICIENCY = BITCELL_UM2 / UM2_PER_BIT
NODE = "45 nm (Intel 45 nm SRAM test chip, 2006)"
MACRO_URL = "http://www.pcpro.co.uk/news/82953/intel-declares-itself-on-45nm-track"
MACRO_SOURCE = ("Intel 45 nm 153 Mbit SRAM test chip: 0.346 µm² 6T cell, 119 mm² die "
                f"({MACRO_URL}; "
                "Intel Technology Journal 12(2), 2008, '45nm SRAM Technology Development and "
                "Technology Lead Vehicle')")


def _config(args):
    from hdl.sram import SramConfig
    from scripts.cli import UsageError

    try:
        return SramConfig(banks=args.banks, word_bits=args.word_bits, depth=args.depth,
                          clients=args.clients, arbitration=args.arbitration,
                          xor_hash=args.xor_hash, resp_depth=args.resp_depth)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e)) from None


def macro_area(cfg) -> dict:
    """Memory-macro area of ``cfg``'s banks from the analytical bits -> µm² model."""
    bits = cfg.depth * cfg.code_bits
    return {"bits": bits, "data_bits": cfg.depth * cfg.word_bits,
            "um2_per_bit": round(UM2_PER_BIT, 4), "bitcell_um2": BITCELL_UM2,
            "array_efficiency": round(ARRAY_EFFICIENCY, 4),
            "um2": round(bits * UM2_PER_BIT, 1), "mm2": round(bits * UM2_PER_BIT / 1e6, 4),
            "per_bank_um2": round(bits * UM2_PER_BIT / cfg.banks, 1),
            "node": NODE, "source": MACRO_SOURCE}


def run_bench(cfg, pattern: str = "stream", cycles: int = 20_000, seed: int = 1, gap: int = 0,
              stall: int = 0, sim_name: str = "verilator", replay: bool = True,
              run_dir: Path | None = None) -> dict:
    """Run ``pattern`` on the RTL and return the report (see the module docstring)."""
    from golden.sram import estimate, simulate_traffic
    from verif import sram_harness

    t0 = time.perf_counter()
    sram_harness.build_model(cfg, sim_name)
    build_s = time.perf_counter() - t0
    run = sram_harness.run_traffic(cfg, pattern, cycles, seed, gap, stall, sim_name=sim_name,
                                   run_dir=run_dir, log=replay)
    cnt = run.counters
    names = cfg.client_names
    rep = {
        "config": cfg.as_dict(), "pattern": pattern, "window_cycles": cycles,
        "cycles": run.cycles, "seed": seed, "gap": gap, "stall": stall, "sim": sim_name,
        "accesses": run.accesses,
        "accesses_per_cycle": round(run.accesses_per_cycle, 4),
        "conflict_rate": round(run.conflict_rate, 4),
        "stall_cycles": dict(zip(names, cnt["stall_cycles"], strict=True)),
        "conflict_cycles": dict(zip(names, cnt["conflict_cycles"], strict=True)),
        "clients": [{"name": n, **{k: cnt[k][c] for k in cnt}} for c, n in enumerate(names)],
        "reads": sum(cnt["reads"]), "responses": sum(cnt["responses"]),
        "shadow_mismatches": sum(cnt["mismatches"]), "lost_requests": run.lost,
        "harness_errors": run.errors,
        "ecc_corrected": run.ecc_corrected, "ecc_uncorrectable": run.ecc_uncorrectable,
    }
    ok = rep["shadow_mismatches"] == 0 and run.lost == 0 and run.errors == 0
    if replay:
        t1 = time.perf_counter()
        sb = sram_harness.replay(cfg, run.log)
        rep["golden_replay"] = {"reads_checked": sum(sb.responses), "errors": sb.n_errors,
                                "first_errors": sb.errors[:3],
                                "seconds": round(time.perf_counter() - t1, 2)}
        ok = ok and sb.ok and sum(sb.responses) == rep["reads"]
        run.log.unlink(missing_ok=True)           # large; the counters stay in the report
    rep["verified"] = bool(ok)
    model = simulate_traffic(cfg, pattern, cycles, seed, gap, stall)
    same = (model.cycles == run.cycles and all(
        getattr(model, k) == cnt[k] for k in ("accesses", "reads", "stall_cycles",
                                              "conflict_cycles", "valid_cycles")))
    rep["cycle_model"] = {"exact": same, **model.as_dict()}
    rep["estimate"] = estimate(cfg, pattern)
    if pattern == "stream" and not gap and not stall:      # the target conditions
        target = 0.9 * min(cfg.clients, cfg.banks)
        rep["target"] = {"accesses_per_cycle": round(target, 3),
                         "met": rep["accesses_per_cycle"] >= target}
    rep.update(sim_seconds=round(run.sim_seconds, 3), build_seconds=round(build_s, 2),
               sim_cycles_per_second=round(run.cycles / max(run.sim_seconds, 1e-9)),
               sim_accesses_per_second=round(run.accesses / max(run.sim_seconds, 1e-9)),
               run_dir=str(run.run_dir))
    return rep


def cmd_sram_bench(args) -> int:
    from scripts.cli import UsageError

    cfg = _config(args)
    if not 1 <= args.cycles <= 100_000_000:
        raise UsageError(f"--cycles must be in [1, 100000000], not {args.cycles}")
    for k in ("gap", "stall"):
        v = getattr(args, k)
        if not 0 <= v <= 255:
            raise UsageError(f"--{k} must be in [0, 255], not {v}")
    if args.report:
        rp = Path(args.report)
        if rp.parent and not rp.parent.exists():
            raise UsageError(f"report directory does not exist: {rp.parent}")
        if rp.is_dir():
            raise UsageError(f"--report is a directory: {rp}")
    from golden.sram import region

    if args.pattern == "stream" and region(cfg) == 0:
        raise UsageError(f"--pattern stream needs --depth >= clients x banks (each client its own "
                         f"rows), not {cfg.depth} for {cfg.clients} x {cfg.banks}")
    from verif import sim

    try:
        sim.check_sim(args.sim)
    except (sim.SimError, ValueError) as e:
        raise UsageError(str(e)) from None
    rep = run_bench(cfg, args.pattern, args.cycles, args.seed, args.gap, args.stall, args.sim,
                    replay=not args.no_replay)
    if args.report:
        Path(args.report).write_text(json.dumps(rep, indent=1) + "\n")
    stalls = ", ".join(f"{k} {v}" for k, v in rep["stall_cycles"].items())
    tgt = rep.get("target")
    print(f"sram-bench {args.pattern}: {cfg.clients} clients, {cfg.banks} banks, "
          f"{cfg.word_bits}-bit words, {cfg.arbitration}{', xor hash' if cfg.xor_hash else ''}")
    print(f"  accesses/cycle : {rep['accesses_per_cycle']:.3f} over {rep['cycles']} cycles"
          + (f" (target {tgt['accesses_per_cycle']:.2f}: {'met' if tgt['met'] else 'MISSED'})"
             if tgt else ""))
    print(f"  conflict rate  : {rep['conflict_rate']:.4f}")
    print(f"  stall cycles   : {stalls}")
    print(f"  verified       : {rep['verified']} ({rep['reads']} reads; shadow mismatches "
          f"{rep['shadow_mismatches']}, lost {rep['lost_requests']}"
          + (f", golden replay errors {rep['golden_replay']['errors']}"
             if "golden_replay" in rep else "") + ")")
    print(f"  cycle model    : {'exact' if rep['cycle_model']['exact'] else 'MISMATCH'}")
    print(f"  sim speed      : {rep['sim_cycles_per_second'] / 1e3:.1f} k cycles/s, "
          f"{rep['sim_accesses_per_second'] / 1e3:.1f} k accesses/s ({args.sim})")
    if not rep["verified"]:
        print(f"splitsys: SRAM reads differ from the model (run dir {rep['run_dir']})",
              file=sys.stderr)
        return 1
    if not rep["cycle_model"]["exact"]:
        print("splitsys: SRAM counters differ from the cycle model", file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``sram-bench`` on ``splitsys``'s sub-parsers (built with ``_Parser``)."""
    import os

    s = subparsers.add_parser("sram-bench", help="SRAM subsystem throughput on the RTL")
    s.add_argument("--clients", type=int, default=6, metavar="P", help="client ports (6)")
    s.add_argument("--banks", type=int, default=8, metavar="N", help="banks, power of two (8)")
    s.add_argument("--pattern", default="stream", choices=PATTERNS)
    s.add_argument("--cycles", type=int, default=20_000, metavar="C",
                   help="cycles the clients offer requests (then the run drains)")
    s.add_argument("--report", metavar="r.json", help="write a JSON report")
    s.add_argument("--word-bits", type=int, default=128, help="data bits per word (128)")
    s.add_argument("--depth", type=int, default=4096, help="words in the SRAM (4096)")
    s.add_argument("--arbitration", default="round_robin", choices=("round_robin", "priority"))
    s.add_argument("--xor-hash", action="store_true", help="XOR-folded bank selection")
    s.add_argument("--resp-depth", type=int, default=4, help="response FIFO per client (4)")
    s.add_argument("--gap", type=int, default=0, metavar="P",
                   help="clients withhold valid P/256 of the cycles")
    s.add_argument("--stall", type=int, default=0, metavar="P",
                   help="response ready low P/256 of the cycles")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--sim", default=os.environ.get("SIM", "verilator") or "verilator",
                   choices=SIMS)
    s.add_argument("--no-replay", action="store_true",
                   help="skip the golden replay of the request log (the HDL shadow still "
                        "checks every read)")
    s.set_defaults(func=cmd_sram_bench)
    return s


# --- make bench / make synth sections ---------------------------------------------------------

def bench(quick: bool, out: Path) -> tuple[dict, str]:
    """Default configuration, every pattern (plus priority and XOR-hash variants)."""
    from golden.sram import simulate_traffic
    from hdl.sram import SramConfig

    out.mkdir(parents=True, exist_ok=True)
    cycles = 4000 if quick else 40_000
    base = SramConfig()
    runs = [(base, "stream", 0, 0), (base, "random", 0, 0), (base, "same-bank", 0, 0),
            (base, "stream", 0, 64), (base, "random", 64, 64)]
    if not quick:
        runs += [(SramConfig(arbitration="priority"), "random", 0, 0),
                 (SramConfig(xor_hash=True), "stream", 0, 0),
                 (SramConfig(xor_hash=True), "random", 0, 0)]
    rows = []
    for cfg, pattern, gap, stall in runs:
        print(f"bench sram {pattern} {cfg.arbitration}{' xor' if cfg.xor_hash else ''} "
              f"gap {gap} stall {stall} ...", flush=True)
        rep = run_bench(cfg, pattern, cycles, seed=1, gap=gap, stall=stall,
                        run_dir=out / "sram_runs" / f"{pattern}_{cfg.name}_{gap}_{stall}")
        if not rep["verified"]:
            raise RuntimeError(f"bench sram {pattern}: reads differ from the model")
        if not rep["cycle_model"]["exact"]:
            raise RuntimeError(f"bench sram {pattern}: counters differ from the cycle model")
        rows.append(rep)
        print(f"  {rep['accesses_per_cycle']:.3f} accesses/cycle, conflict rate "
              f"{rep['conflict_rate']:.3f}, {rep['sim_cycles_per_second'] / 1e3:.1f} k "
              f"cycles/s", flush=True)
    # Simulation speed of the fast path alone: no log (the HDL shadow still checks every read).
    sp = run_bench(base, "stream", 10 * cycles, seed=2, replay=False,
                   run_dir=out / "sram_runs" / "speed")
    if not sp["verified"] or not sp["cycle_model"]["exact"]:
        raise RuntimeError("bench sram speed run: not verified")
    print(f"  speed (no log): {sp['sim_cycles_per_second'] / 1e3:.1f} k cycles/s, "
          f"{sp['sim_accesses_per_second'] / 1e6:.2f} M accesses/s", flush=True)
    # Banks x clients from the cycle model (held exact to the RTL by the tests).
    sweep = []
    for n in (2, 4, 8, 16):
        for p in (2, 4, 6, 8):
            c = SramConfig(banks=n, clients=p, depth=4096)
            r = simulate_traffic(c, "random", 1000 if quick else 5000, seed=1)
            sweep.append({"banks": n, "clients": p,
                          "accesses_per_cycle": round(r.accesses_per_cycle, 3),
                          "conflict_rate": round(r.conflict_rate, 3)})
    lines = [f"{base.banks} banks x {base.bank_depth} words of {base.word_bits} + "
             f"{base.check_bits} check bits, {base.clients} clients "
             f"({', '.join(base.client_names)}), response FIFOs {base.resp_depth} deep; "
             f"{cycles} cycles of traffic per row, seed 1. Verified = every read matched the HDL "
             f"shadow and the golden functional model's replay of the served order, nothing "
             f"lost; every row's counters equal the golden cycle model's exactly. Target: "
             f"streaming ≥ 0.9 × min(P, N).", "",
             "| pattern | arbitration | gap / stall | accesses/cycle | target | conflict rate | "
             "stall cycles per client (" + ", ".join(base.client_names) + ") | verified | "
             "sim speed |", "|---|---|---|---:|---:|---:|---|---|---:|"]
    for r in rows:
        c = r["config"]
        arb = c["arbitration"] + (", xor hash" if c["xor_hash"] else "")
        tgt = r.get("target")
        tgt_s = (f"≥ {tgt['accesses_per_cycle']:.1f} {'✓' if tgt['met'] else '✗'}" if tgt
                 else "—")
        lines.append(
            f"| {r['pattern']} | {arb} | {r['gap']}/256, {r['stall']}/256 | "
            f"{r['accesses_per_cycle']:.3f} | {tgt_s} | {r['conflict_rate']:.3f} | "
            f"{' / '.join(str(v) for v in r['stall_cycles'].values())} | "
            f"{'yes' if r['verified'] else 'NO'} | {r['sim_cycles_per_second'] / 1e3:.0f} k "
            f"cycles/s |")
    md = "\n".join(lines) + "\n\n"
    if any(r["config"]["xor_hash"] and r["pattern"] == "stream" for r in rows):
        md += ("The streaming target is met with the default low-order interleave. With the XOR "
               "hash (an option against power-of-two strides) consecutive rows permute the "
               "banks differently, so streams that were staggered collide at row boundaries: "
               "the stream row shows the cost.\n\n")
    md += (f"Simulation speed of the fast path without the log (stream, {sp['cycles']} cycles, "
           f"every read still checked by the HDL shadow): "
           f"{sp['sim_cycles_per_second'] / 1e3:.0f} k cycles/s, "
           f"{sp['sim_accesses_per_second'] / 1e6:.2f} M accesses/s (Verilator). The rows above "
           f"also write the request/response log that the golden model replays.\n\n")
    md += ("Random traffic, accesses per cycle (conflict rate) by banks × clients "
           "(cycle model):\n\n| banks \\ clients | " + " | ".join(str(p) for p in (2, 4, 6, 8))
           + " |\n|---|" + "---:|" * 4 + "\n")
    for n in (2, 4, 8, 16):
        cells = [f"{s['accesses_per_cycle']:.2f} ({s['conflict_rate']:.2f})"
                 for s in sweep if s["banks"] == n]
        md += f"| {n} | " + " | ".join(cells) + " |\n"
    data = {"config": base.as_dict(), "cycles": cycles, "runs": rows, "speed": sp,
            "sweep": sweep}
    return data, md


def write_verilog(out: Path, cfg=None) -> Path:
    """Write ``sram.v`` (default configuration) into ``out`` for ``make verilog``'s lint."""
    from amaranth.back import verilog

    from hdl.sram import Sram, SramConfig

    cfg = cfg or SramConfig()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "sram.v"
    path.write_text(f"// splitsys sram, {cfg.name} (generated by Amaranth; do not edit)\n"
                    + verilog.convert(Sram(cfg), name="sram", emit_src=False))
    return path


def bank_modules(cfg) -> tuple[str, ...]:
    """Verilog module names of the banks in ``sram.v`` (Amaranth names submodules by path)."""
    return tuple(f"sram.bank{b}" for b in range(cfg.banks))


def check_black_boxes(cfg, r: dict):
    """The statistics ``r`` of ``synthesize`` really left every bank out, and only them."""
    from scripts.synth import SynthError

    names = bank_modules(cfg)
    # scripts.synth reports black-box instances in "blackboxes" (older versions: in "cells").
    boxed = r.get("blackboxes", sum(r["cells"].get(b, 0) for b in names))
    if boxed != cfg.banks:
        raise SynthError(f"sram: {boxed} black-box instances, expected one per bank "
                         f"({cfg.banks})")
    if any(k.startswith("$mem") for k in r["cells"]):
        raise SynthError("sram: memory cells left in the controller netlist")
    if not r["flip_flops"] or r["nand2_eq"] <= 0:
        raise SynthError("sram: empty controller netlist")


def synth(out: Path) -> dict:
    """Controller logic area (banks black-boxed) and macro area of the default configuration.

    The Yosys result is cached by the Verilog's content (``out/cache``), as for the arrays.
    """
    from hdl.sram import SramConfig
    from scripts.synth import NAND2_UM2, synthesize_cached

    cfg = SramConfig()
    v = write_verilog(out / "verilog", cfg)
    r = synthesize_cached(v, "sram", out, "sram", bank_modules(cfg),
                          "the SRAM controller (banks black-boxed)")
    check_black_boxes(cfg, r)
    macro = macro_area(cfg)
    ctl_um2 = r["nand2_eq"] * NAND2_UM2
    res = {"config": cfg.as_dict(), "controller": r,
           "controller_um2_nangate45": round(ctl_um2, 1), "macro": macro,
           "controller_share": round(ctl_um2 / (ctl_um2 + macro["um2"]), 4)}
    c = cfg
    res["markdown"] = (
        f"SRAM subsystem ({c.banks} banks x {c.bank_depth} words of {c.word_bits} + "
        f"{c.check_bits} check bits, {c.clients} clients, {c.arbitration}):\n\n"
        "| part | method | cells | flip-flops | NAND2-eq | µm² (45 nm) |\n"
        "|---|---|---:|---:|---:|---:|\n"
        f"| controller (arbiters, ECC, RMW, FIFOs, counters) | Yosys, banks black-boxed | "
        f"{r['cell_count']:,} | {r['flip_flops']:,} | {r['nand2_eq']:,.0f} | {ctl_um2:,.0f} |\n"
        f"| memory macros ({macro['bits']:,} bits) | {UM2_PER_BIT:.4f} µm²/bit "
        f"({BITCELL_UM2} µm² 6T cell / {100 * ARRAY_EFFICIENCY:.1f}% array efficiency, "
        f"Intel 45 nm) | — | — | — | {macro['um2']:,.0f} |\n\n"
        f"The controller is {100 * res['controller_share']:.1f}% of the total. Macro constant: "
        f"Intel's 45 nm SRAM test chip, 153 Mbit with a {BITCELL_UM2} µm² 6T cell on a "
        f"{DIE_MM2:.0f} mm² die (January 2006; {MACRO_URL}): die area per bit, so I/O and test "
        f"logic are included (see docs/sram.md).\n")
    (out / "sram_area.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "sram_area.md").write_text(res["markdown"])
    return res


def main(argv=None) -> int:
    from scripts.cli import _Parser, dispatch

    p = _Parser(prog="splitsys", description="SRAM subsystem bench")
    add_parser(p.add_subparsers(dest="cmd", required=True, parser_class=_Parser))
    return dispatch(p, argv)


if __name__ == "__main__":
    sys.exit(main())
