"""``splitsys hbm-bench`` and the HBM sections of ``make bench``, ``make synth``, ``make verilog``.

* :func:`add_parser` registers ``hbm-bench`` on the ``splitsys`` sub-parsers;
  ``python -m scripts.hbm hbm-bench ...`` runs it on its own.
* :func:`run_bench` runs one access pattern on the RTL DMA against the RTL HBM model (the fast
  harness of ``verif/dma_harness.py``: descriptors, SRAM and HBM stores in the simulation top,
  Python off the per-beat path), checks every byte of the SRAM and of the HBM and every status
  against the golden functional model (``golden.dma.run``), and predicts the cycles with the
  HBM timing model (``golden.dma.predict_cycles``). The report: ``cycles``, ``bytes``,
  ``peak_bytes_per_cycle``, ``efficiency`` (bytes / (cycles x peak)), ``beats_per_second``
  (AXI beats per wall second inside the simulator), ``verified`` and ``timing_model``.
* :func:`bench` is the ``make bench`` section (every pattern), :func:`synth` the ``make synth``
  section (Yosys logic area of the DMA and its AXI masters; the reorder buffers counted as
  memory macros), :func:`write_verilog` the DMA's Verilog for the lint.

Patterns (HBM byte addresses are global: interleaved over the channels every ``interleave`` B):

* ``seq-read`` / ``seq-write``: 64 KiB descriptors (one row each) over consecutive addresses;
* ``strided``: 256 B rows every 2304 B (2 KiB + 256 B), 64 rows per descriptor, packed in the
  SRAM (a gather of short rows, e.g. one head's vectors out of a KV cache);
* ``random``: one-row descriptors of 32 B to 4 KiB at random byte addresses, half reads and
  half writes.

Every pattern is built so that any order of completion between descriptors leaves the same
memories (a read lands at the SRAM address given by its HBM address; writes come from SRAM bytes
fixed by their HBM address; reads and writes use disjoint halves), so the golden model, which runs
descriptors one after the other, is exact. When ``--bytes`` exceeds the space, the descriptors
repeat over the same addresses.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

__all__ = ["PATTERNS", "add_parser", "bench", "main", "make_pattern", "run_bench", "synth",
           "write_verilog"]

PATTERNS = ("seq-read", "seq-write", "strided", "random")
SIMS = ("verilator", "icarus")
MAX_DESC = 1024            # descriptor ROM of the default harness build
MAX_BYTES = 64 << 20
TARGET_EFFICIENCY = 0.90   # seq-read
TARGET_BEATS_PER_S = 200_000
STRIDE_ROW, STRIDE = 256, 2304


def configs(channels: int = 2):
    """``(DmaConfig, HbmConfig)`` of the bench: defaults, 1 MiB SRAM, 256 KiB per channel."""
    from hdl.dma import DmaConfig
    from verif.dma_harness import hbm_config

    cfg = DmaConfig(channels=channels, sram_addr_bits=20)
    return cfg, hbm_config(cfg, rows=16)


def make_pattern(cfg, hcfg, pattern: str, nbytes: int, seed: int = 1):
    """Descriptors and initial memories ``(descs, hbm, err, sram)`` of a pattern."""
    import numpy as np

    from golden.dma import Descriptor

    if pattern not in PATTERNS:
        raise ValueError(f"pattern must be one of {', '.join(PATTERNS)}, not {pattern!r}")
    if not 1 <= nbytes <= MAX_BYTES:
        raise ValueError(f"bytes must be in [1, {MAX_BYTES}], not {nbytes}")
    rng = np.random.default_rng(seed)
    B, C = cfg.data_bytes, cfg.channels
    S = 1 << cfg.sram_addr_bits
    cap = hcfg.capacity * C                        # global bytes backed by the model
    region = min(cap, S)                           # addresses a read may map 1:1 into the SRAM
    hbm = [rng.integers(0, 256, (hcfg.words, B), dtype=np.uint8) for _ in range(C)]
    err = [np.zeros(hcfg.words, bool) for _ in range(C)]
    sram = rng.integers(0, 256, S, dtype=np.uint8)
    descs = []
    if pattern in ("seq-read", "seq-write"):
        write = pattern == "seq-write"
        chunk = 65536
        while -(-nbytes // chunk) > MAX_DESC:
            chunk *= 2
        chunk = min(chunk, region)
        left, k = nbytes, 0
        while left:
            n = min(chunk, left)
            h = (k * chunk) % region
            descs.append(Descriptor(write, h, h, 1, n, tag=k & 0xFF))
            left -= n
            k += 1
    elif pattern == "strided":
        rows = max(64, -(-nbytes // (STRIDE_ROW * MAX_DESC)))
        span = (rows - 1) * STRIDE + STRIDE_ROW
        if span > region:
            raise ValueError(f"bytes too large for the strided pattern (at most "
                             f"{MAX_DESC * STRIDE_ROW * ((region - STRIDE_ROW) // STRIDE + 1)})")
        per = rows * STRIDE_ROW
        base = [(k * span, k * per) for k in range(max(1, min(region // span, S // per)))]
        left, k = nbytes, 0
        while left:
            h, s = base[k % len(base)]
            r, n = (min(rows, left // STRIDE_ROW), STRIDE_ROW) if left >= STRIDE_ROW \
                else (1, left)
            descs.append(Descriptor(False, h, s, r, n, STRIDE, STRIDE_ROW, tag=k & 0xFF))
            left -= r * n
            k += 1
    else:
        half = region // 2
        top = max(4096, -(-2 * nbytes // MAX_DESC))
        left, k = nbytes, 0
        while left:
            n = min(left, int(rng.integers(32, top + 1)), half)
            off = int(rng.integers(0, half - n + 1))
            if rng.random() < 0.5:       # read: HBM lower half -> SRAM at the same address
                descs.append(Descriptor(False, off, off, 1, n, tag=k & 0xFF))
            else:                        # write: SRAM upper half -> HBM upper half
                descs.append(Descriptor(True, cap // 2 + off, S // 2 + off, 1, n,
                                        tag=k & 0xFF))
            left -= n
            k += 1
    if len(descs) > MAX_DESC:
        raise ValueError(f"{pattern}: {len(descs)} descriptors, more than {MAX_DESC}")
    return descs, hbm, err, sram


def _limits(rep: dict) -> str:
    """What holds the pattern below the peak, from the counters."""
    h = rep["hbm"]
    beats = h["rd_beats"] + h["wr_beats"]
    bursts = rep["dma"]["ar"] + rep["dma"]["aw"]
    acts = h["acts"]
    parts = []
    if rep["efficiency"] >= 0.97:
        parts.append("at the peak: refresh hidden, row misses hidden by the lookahead")
    if bursts:
        parts.append(f"{beats / bursts:.1f} beats/burst")
    if acts:
        parts.append(f"a row miss every {beats / acts:.1f} beats")
        tfaw = rep["config"]["hbm"]["timing_cycles"]["tFAW"]
        per_window = acts * tfaw / (rep["cycles"] * rep["channels"])
        if per_window >= 0.8 * 4:
            parts.append(f"tFAW-bound ({per_window:.1f} ACTs per {tfaw}-cycle window per "
                         f"channel, at most 4)")
    if h["rd_beats"] and h["wr_beats"]:
        parts.append("read/write turnarounds (tRTW, tWTR)")
    per = rep["dma"]["beats_per_channel"]
    if len(per) > 1 and max(per) > 1.05 * (sum(per) / len(per)):
        parts.append(f"channel imbalance (max/mean {max(per) * len(per) / sum(per):.2f})")
    useful = rep["bytes"] / max(1, beats * rep["config"]["dma"]["data_bits"] // 8)
    if useful < 0.95:
        parts.append(f"partial beats ({100 * useful:.0f}% of the bytes of the beats used)")
    return "; ".join(parts)


def run_bench(pattern: str = "seq-read", nbytes: int = 1 << 20, channels: int = 2,
              seed: int = 1, sim_name: str = "verilator", predict: bool = True,
              run_dir: Path | None = None) -> dict:
    """Run ``pattern`` on the RTL and return the report (see the module docstring)."""
    import numpy as np

    from golden import dma as gd
    from verif import dma_harness

    cfg, hcfg = configs(channels)
    descs, hbm, err, sram = make_pattern(cfg, hcfg, pattern, nbytes, seed)
    t0 = time.perf_counter()
    dma_harness.build_model(cfg, hcfg, sim_name)
    build_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    run = dma_harness.run_dma(cfg, hcfg, descs, hbm, err, sram, seed=seed, sim_name=sim_name,
                              run_dir=run_dir)
    run_s = time.perf_counter() - t1
    g_hbm, g_sram, g_st = gd.run(cfg, descs, hbm, err, sram, hcfg.words)
    C = cfg.channels
    st = run.stats
    sram_ok = bool(np.array_equal(g_sram, run.sram))
    hbm_ok = all(np.array_equal(a, b) for a, b in zip(g_hbm, run.hbm, strict=True))
    status_ok = g_st == run.statuses
    all_okay = all(s.resp == 0 for s in run.statuses)
    moved = sum(s.bytes for s in run.statuses)
    viol = run.violations(cfg)
    verified = (sram_ok and hbm_ok and status_ok and all_okay and not viol
                and moved == sum(d.nbytes for d in descs))
    cycles = run.cycles
    peak = hcfg.peak_bytes_per_cycle
    beats_c = [st[f"rd_beats_{c}"] + st[f"wr_beats_{c}"] for c in range(C)]
    beats = sum(beats_c)
    hstat = {k: sum(st[f"hbm_{k}_{c}"] for c in range(C))
             for k in ("rd_beats", "wr_beats", "acts", "pres", "refs", "row_hits",
                       "err_beats", "protocol_errors")}
    rep = {
        "pattern": pattern, "bytes": nbytes, "channels": C, "descriptors": len(descs),
        "seed": seed, "sim": sim_name, "cycles": cycles, "peak_bytes_per_cycle": peak,
        "efficiency": round(nbytes / (cycles * peak), 4),
        "beat_efficiency": round(beats / (cycles * C), 4),
        "axi_beats": beats,
        "beats_per_second": round(beats / max(run.sim_seconds, 1e-9)),
        "sim_cycles_per_second": round(cycles / max(run.sim_seconds, 1e-9)),
        "sim_seconds": round(run.sim_seconds, 3),
        "beats_per_cpu_second": round(beats / max(run.extra.get("sim_cpu_seconds") or 0,
                                                  1e-9)),
        "sim_cpu_seconds": round(run.extra.get("sim_cpu_seconds") or 0, 3),
        "verified": bool(verified),
        "checks": {"sram_bytes": sram_ok, "hbm_bytes": hbm_ok, "statuses": status_ok,
                   "all_okay": all_okay, "bytes_moved": moved, "protocol": viol},
        "hbm": hstat,
        "dma": {"ar": sum(st[f"ar_{c}"] for c in range(C)),
                "aw": sum(st[f"aw_{c}"] for c in range(C)),
                "segments": sum(st[f"segments_{c}"] for c in range(C)),
                "beats_per_channel": beats_c},
        "config": {"dma": cfg.as_dict(), "hbm": hcfg.as_dict()},
        "peak_gbytes_per_s": round(hcfg.peak_gbytes_per_s, 1),
        "build_seconds": round(build_s, 2), "run_wall_seconds": round(run_s, 2),
        "run_dir": str(run.run_dir),
    }
    if verified:        # the memory images are large (MiB of hex): kept only for failures
        for f in Path(run.run_dir).glob("*.hex"):
            f.unlink()
    if predict:
        t2 = time.perf_counter()
        p = gd.predict_cycles(cfg, hcfg, descs)
        rep["timing_model"] = {
            "predicted_cycles": p["cycles"], "per_channel": p["per_channel"],
            "error": round((p["cycles"] - cycles) / cycles, 4),
            "agreement": round(1 - abs(p["cycles"] - cycles) / cycles, 4),
            "predicted_efficiency": round(nbytes / (p["cycles"] * peak), 4),
            "seconds": round(time.perf_counter() - t2, 1),
        }
    if pattern == "seq-read":
        rep["target"] = {"efficiency": TARGET_EFFICIENCY,
                         "met": rep["efficiency"] >= TARGET_EFFICIENCY}
    rep["speed_target"] = {"beats_per_second": TARGET_BEATS_PER_S,
                           "met": rep["beats_per_second"] >= TARGET_BEATS_PER_S}
    rep["limits"] = _limits(rep)
    return rep


def cmd_hbm_bench(args) -> int:
    from scripts.cli import UsageError

    if not 1 <= args.bytes <= MAX_BYTES:
        raise UsageError(f"--bytes must be in [1, {MAX_BYTES}], not {args.bytes}")
    try:
        cfg, hcfg = configs(args.channels)
    except (TypeError, ValueError) as e:
        raise UsageError(str(e).replace("channels", "--channels", 1)) from None
    if args.report:
        rp = Path(args.report)
        if not rp.parent.exists():
            raise UsageError(f"report directory does not exist: {rp.parent}")
        if rp.is_dir():
            raise UsageError(f"--report is a directory: {rp}")
    if not 0 <= args.seed < 1 << 32:
        raise UsageError(f"--seed must be in [0, 2**32), not {args.seed}")
    try:
        make_pattern(cfg, hcfg, args.pattern, args.bytes, args.seed)
    except ValueError as e:
        raise UsageError(str(e)) from None
    from verif import sim

    try:
        sim.check_sim(args.sim)
    except (sim.SimError, ValueError) as e:
        raise UsageError(str(e)) from None
    rep = run_bench(args.pattern, args.bytes, args.channels, args.seed, args.sim,
                    predict=not args.no_predict)
    if args.report:
        Path(args.report).write_text(json.dumps(rep, indent=1) + "\n")
    print(f"hbm-bench {args.pattern}: {args.bytes} B, {rep['channels']} channels x "
          f"{cfg.data_bits} bits, {rep['descriptors']} descriptors ({args.sim})")
    tgt = rep.get("target")
    print(f"  cycles         : {rep['cycles']}")
    print(f"  efficiency     : {100 * rep['efficiency']:.1f}% of {rep['peak_bytes_per_cycle']} "
          f"B/cycle ({rep['peak_gbytes_per_s']} GB/s at the model clock)"
          + (f" (target {100 * tgt['efficiency']:.0f}%: {'met' if tgt['met'] else 'MISSED'})"
             if tgt else ""))
    if "timing_model" in rep:
        tm = rep["timing_model"]
        print(f"  timing model   : {tm['predicted_cycles']} cycles predicted "
              f"({100 * tm['error']:+.2f}%)")
    print(f"  limits         : {rep['limits']}")
    print(f"  verified       : {rep['verified']}")
    print(f"  sim speed      : {rep['beats_per_second'] / 1e3:.0f} k AXI beats per wall second "
          f"({rep['sim_cycles_per_second'] / 1e3:.0f} k cycles/s); "
          f"{rep['beats_per_cpu_second'] / 1e3:.0f} k per CPU second")
    if not rep["verified"]:
        print(f"splitsys: HBM bench not verified: {rep['checks']} (run dir {rep['run_dir']})",
              file=sys.stderr)
        return 1
    return 0


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``hbm-bench`` on ``splitsys``'s sub-parsers (built with ``_Parser``)."""
    import os

    s = subparsers.add_parser("hbm-bench", help="DMA + HBM model bandwidth on the RTL")
    s.add_argument("--pattern", default="seq-read", choices=PATTERNS)
    s.add_argument("--bytes", type=int, default=4 << 20, metavar="B",
                   help="bytes to move (default 4 MiB)")
    s.add_argument("--channels", type=int, default=2, metavar="N",
                   help="pseudo-channels / AXI masters, power of two (2)")
    s.add_argument("--report", metavar="r.json", help="write a JSON report")
    s.add_argument("--seed", type=int, default=1, help="memory contents and random pattern")
    s.add_argument("--sim", default=os.environ.get("SIM", "verilator") or "verilator",
                   choices=SIMS)
    s.add_argument("--no-predict", action="store_true",
                   help="skip the Python timing model (tens of thousands of cycles/s)")
    s.set_defaults(func=cmd_hbm_bench)
    return s


# --- make bench / make synth / make verilog sections -----------------------------------------

def bench(quick: bool, out: Path) -> tuple[dict, str]:
    """Every pattern on the default configuration; raises if a run is not verified."""
    out.mkdir(parents=True, exist_ok=True)
    sizes = ({p: 1 << 20 for p in PATTERNS} if quick else
             {"seq-read": 4 << 20, "seq-write": 4 << 20, "strided": 2 << 20, "random": 2 << 20})
    rows = []
    for pattern in PATTERNS:
        print(f"bench hbm {pattern} {sizes[pattern]} B ...", flush=True)
        rep = run_bench(pattern, sizes[pattern], run_dir=out / "hbm_runs" / pattern)
        if not rep["verified"]:
            raise RuntimeError(f"bench hbm {pattern}: not verified ({rep['checks']})")
        rows.append(rep)
        print(f"  efficiency {100 * rep['efficiency']:.1f}%, "
              f"{rep['beats_per_second'] / 1e3:.0f} k beats/s, timing model "
              f"{100 * rep['timing_model']['error']:+.2f}%", flush=True)
    # Simulation speed on a longer stream (fixed costs of a run amortized), no prediction.
    sb = (4 if quick else 16) << 20
    print(f"bench hbm speed: seq-read {sb} B ...", flush=True)
    spd = run_bench("seq-read", sb, predict=False, run_dir=out / "hbm_runs" / "speed")
    if not spd["verified"]:
        raise RuntimeError(f"bench hbm speed run: not verified ({spd['checks']})")
    h = rows[0]["config"]["hbm"]
    lines = ["| pattern | bytes | cycles | efficiency | target | timing model (error) | "
             "what limits it | verified | sim speed, AXI beats per wall s (per CPU s) |",
             "|---|---:|---:|---:|---|---:|---|---|---:|"]
    for r in rows:
        t = r.get("target")
        tgt = (f"≥ {100 * t['efficiency']:.0f}% {'✓' if t['met'] else '✗'}" if t else "—")
        tm = r["timing_model"]
        lines.append(
            f"| {r['pattern']} | {r['bytes']} | {r['cycles']} | {100 * r['efficiency']:.1f}% "
            f"| {tgt} | {tm['predicted_cycles']} ({100 * tm['error']:+.2f}%) | {r['limits']} | "
            f"{'yes' if r['verified'] else 'NO'} | {r['beats_per_second'] / 1e3:.0f} k "
            f"({r['beats_per_cpu_second'] / 1e3:.0f} k) |")
    md = "\n".join(lines) + "\n\n"
    md += (f"{rows[0]['channels']} pseudo-channels x 256-bit AXI4 (DMA defaults: 8 read IDs, "
           f"32-beat bursts, 1 KiB channel interleave); HBM model {h['bank_groups']} bank "
           f"groups x {h['banks']} banks, {h['page_bytes']} B pages, per-bank refresh, "
           f"HBM3 timings at 6.4 Gb/s scaled to a {h['clock_mhz']:.0f} MHz model clock: peak "
           f"{h['peak_bytes_per_cycle']} B/cycle ({h['peak_gbytes_per_s']} GB/s). Efficiency "
           f"= bytes / (cycles x peak); every byte of SRAM and HBM and every status checked "
           f"against the golden model; timing model = `golden.dma.predict_cycles` (the "
           f"cycle-exact HBM channel model fed the DMA's bursts). Sim speed: AXI beats per "
           f"wall second inside the simulator (Verilator), memory loads and dumps excluded; "
           f"in brackets per CPU second of the simulator process (less sensitive to other load "
           f"on the machine). The simulator's rate is in cycles; patterns that leave the bus "
           f"idle carry fewer beats per cycle, hence fewer beats per second.\n")
    md += (f"\nSimulation speed on a {sb >> 20} MiB sequential read ({spd['cycles']} cycles, "
           f"{spd['axi_beats']} beats, verified): {spd['beats_per_second'] / 1e3:.0f} k AXI beats "
           f"per wall second ({spd['sim_cycles_per_second'] / 1e3:.0f} k cycles/s; "
           f"{spd['beats_per_cpu_second'] / 1e3:.0f} k beats per CPU second): target ≥ 200 k "
           f"{'met' if spd['speed_target']['met'] else 'MISSED'}.\n")
    data = {"runs": rows, "speed": spd}
    return data, md


def write_verilog(out: Path, cfg=None) -> Path:
    """Write ``dma.v`` (default configuration: the DMA and its AXI4 masters) into ``out``."""
    from amaranth.back import verilog

    from hdl.dma import Dma, DmaConfig

    cfg = cfg or DmaConfig()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "dma.v"
    path.write_text(f"// splitsys dma, {cfg.name} (generated by Amaranth; do not edit)\n"
                    + verilog.convert(Dma(cfg), name="dma", emit_src=False))
    return path


def rob_modules(cfg) -> tuple[str, ...]:
    """Verilog module names of the reorder-buffer memories in ``dma.v``."""
    return tuple(f"dma.lane{c}.rob" for c in range(cfg.channels))


def synth(out: Path) -> dict:
    """Logic area of the DMA (splitter, lanes = AXI masters, completion) of the default
    configuration, its reorder buffers as memory macros (the SRAM bit-cell model of
    ``scripts/sram.py``). The simulation-only HBM model is not synthesized.

    The Yosys result is cached by the Verilog's content (``out/cache``).
    """
    from hdl.dma import DmaConfig
    from scripts.sram import MACRO_SOURCE, UM2_PER_BIT
    from scripts.synth import NAND2_UM2, SynthError, synthesize_cached

    cfg = DmaConfig()
    v = write_verilog(out / "verilog", cfg)
    boxes = rob_modules(cfg)
    r = synthesize_cached(v, "dma", out, "dma", boxes,
                          "the DMA (reorder buffers black-boxed)")
    if r.get("blackboxes") != len(boxes):
        raise SynthError(f"dma: {r.get('blackboxes')} black-box instances, expected one reorder "
                         f"buffer per lane ({len(boxes)})")
    if any(k.startswith("$mem") for k in r["cells"]):
        raise SynthError("dma: memory cells left in the netlist")
    if not r["flip_flops"] or r["nand2_eq"] <= 0:
        raise SynthError("dma: empty netlist")
    rob_bits = cfg.channels * cfg.rob_beats * (cfg.data_bits + 2)
    rob_um2 = rob_bits * UM2_PER_BIT
    um2 = r["nand2_eq"] * NAND2_UM2
    res = {"config": cfg.as_dict(), "logic": r, "logic_um2_nangate45": round(um2, 1),
           "rob_bits": rob_bits, "rob_um2": round(rob_um2, 1), "rob_source": MACRO_SOURCE}
    res["markdown"] = (
        f"DMA + {cfg.channels} AXI4 masters ({cfg.data_bits}-bit, {cfg.ids} read IDs, "
        f"{cfg.rob_beats}-beat reorder buffer per channel, {cfg.max_desc} descriptors in "
        f"flight):\n\n"
        "| part | method | cells | flip-flops | NAND2-eq | µm² (45 nm) |\n"
        "|---|---|---:|---:|---:|---:|\n"
        f"| logic (splitter, burst generators, ID/reorder control, realigners, strobes, "
        f"completion, FIFOs) | Yosys, reorder buffers black-boxed | {r['cell_count']} | "
        f"{r['flip_flops']} | {r['nand2_eq']:.0f} | {um2:.0f} |\n"
        f"| reorder buffers ({rob_bits} bits) | {UM2_PER_BIT:.4f} µm²/bit (SRAM model of "
        f"scripts/sram.py) | — | — | — | {rob_um2:.0f} |\n\n"
        "The HBM device model is simulation-only and not synthesized.\n")
    (out / "dma_area.json").write_text(json.dumps(res, indent=1) + "\n")
    (out / "dma_area.md").write_text(res["markdown"])
    return res


def main(argv=None) -> int:
    from scripts.cli import _Parser, dispatch

    p = _Parser(prog="splitsys", description="HBM interface bench")
    add_parser(p.add_subparsers(dest="cmd", required=True, parser_class=_Parser))
    return dispatch(p, argv)


if __name__ == "__main__":
    sys.exit(main())
