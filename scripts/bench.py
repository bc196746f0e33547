"""``make bench``: utilization measured in RTL cycles, and simulation speed, as JSON and Markdown.

Every number comes from a run of the RTL through cocotb (the harness: streams fed from memories
in HDL, clock in HDL), each result checked bit for bit against the golden model; a result that
differs, or a cycle count the cycle model did not predict exactly, fails the bench.

Sections (``--only NAME``):

* ``speed``: int8 GEMM and LLM-like shapes on the 16x16 array (monolithic mode), simulation
  speed under Verilator and Icarus;
* ``formats``: simulation speed of the demo job in every element format;
* ``split``: utilization per split mode for decode attention, decode projections and prefill,
  the gain over the monolithic mode, a plot, and what each mode asks of the SRAM;
* ``sram``: the SRAM subsystem's throughput per traffic pattern (``scripts/sram.py``);
* ``hbm``: the DMA against the HBM model per access pattern (``scripts/hbm.py``).
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path

import numpy as np

from hdl.config import ArrayConfig

README = Path(__file__).resolve().parent.parent / "README.md"


def _run(cfg, a, b, split="1x1", sim_name="verilator"):
    from scripts.cli import run_matmul

    t0 = time.perf_counter()
    _, rep = run_matmul(cfg, a, b, "rtl", sim_name, seed=1, split=split)
    rep["end_to_end_seconds"] = round(time.perf_counter() - t0, 2)
    what = f"{np.shape(a)} x {np.shape(b)} split {split} on {sim_name}"
    if not rep["verified"]:
        raise RuntimeError(f"bench {what}: the RTL result differs from the golden model")
    if rep["cycle_model"] != "exact":
        raise RuntimeError(f"bench {what}: RTL {rep['cycles']} cycles, the cycle model "
                           f"predicts {rep['predicted_cycles']}")
    return rep


def _float_operands(shape, fmt, seed=7):
    b, m, k, n = shape
    rng = np.random.default_rng(seed)
    return rng.standard_normal((b, m, k)), rng.standard_normal((b, k, n))


def _operands(shape, seed=7):
    b, m, k, n = shape
    rng = np.random.default_rng(seed)
    return (rng.integers(-128, 128, (b, m, k), dtype=np.int8),
            rng.integers(-128, 128, (b, k, n), dtype=np.int8))


# --- speed ------------------------------------------------------------------------------------

def bench_speed(cfg, quick, out):
    big = 64 if quick else 256
    dk = 512 if quick else 4096
    items = [("GEMM", (1, big, big, big), "verilator")]
    items += [(f"decode M={m}", (1, m, dk, dk), "verilator") for m in (1, 8, 32)]
    items += [("prefill M=256", (1, 256, 256 if quick else 1024, 256 if quick else 1024),
               "verilator")]
    small = (1, 16, 64, 64) if quick else (1, 64, 256, 256)
    items += [("demo job", small, "verilator"),
              ("small job (Icarus)", (1, 16, 64, 64), "icarus"),
              ("small job (Verilator)", (1, 16, 64, 64), "verilator")]
    return _speed_rows(cfg, items)


def bench_formats(cfg, quick, out):
    """Simulation speed per element format: 256x256x256 on the 16x16 array, one fused
    multiply-add per PE per cycle (each format is its own model: a long optimized build)."""
    from hdl.config import DTYPES

    shape = (1, 16, 64, 64) if quick else (1, 256, 256, 256)  # long enough to time (~1 s+)
    return _speed_rows(cfg, [(f"GEMM, {f}", shape, "verilator", f) for f in DTYPES])


def _speed_rows(cfg, items):
    from dataclasses import replace

    rows = []
    for item in items:
        name, shape, sim_name = item[:3]
        fmt = item[3] if len(item) > 3 else "int8"
        from verif.sim import have_simulator

        if not have_simulator(sim_name):
            print(f"skip {name}: {sim_name} is not installed")
            continue
        print(f"bench {name}: {shape[1]}x{shape[2]}x{shape[3]} on {sim_name} ...", flush=True)
        c = replace(cfg, dtype=fmt)
        a, b = _operands(shape) if fmt == "int8" else _float_operands(shape, fmt)
        rep = _run(c, a, b, "1x1", sim_name)
        bd = rep["groups"][0]["cycle_breakdown"]
        row = {"bench": name, "shape": f"{shape[1]}x{shape[2]}x{shape[3]}", "sim": sim_name,
               "dtype": fmt,
               "cycles": rep["cycles"], "utilization": rep["utilization"], "breakdown": bd,
               "sim_seconds": rep["sim_seconds"],
               "sim_macs_per_second": rep["sim_macs_per_second"],
               "sim_cycles_per_second": rep["sim_cycles_per_second"],
               "end_to_end_seconds": rep["end_to_end_seconds"]}
        rows.append(row)
        print(f"  {row['cycles']} cycles, utilization {100 * row['utilization']:.2f}%, "
              f"{row['sim_macs_per_second'] / 1e6:.1f} M MAC/s, "
              f"{row['sim_cycles_per_second'] / 1e3:.1f} k cycles/s", flush=True)
    lines = ["| bench | M×K×N | sim | cycles | utilization | waiting for weights | "
             "fill/drain | sim speed (MAC/s) | sim speed (cycles/s) |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        bd = r["breakdown"]
        lines.append(
            f"| {r['bench']} | {r['shape']} | {r['sim']} | {r['cycles']:,} | "
            f"{100 * r['utilization']:.2f}% | {bd['wait_weights']:,} | {bd['fill_drain']} | "
            f"{r['sim_macs_per_second'] / 1e6:.2f} M | "
            f"{r['sim_cycles_per_second'] / 1e3:.1f} k |")
    return {"rows": rows}, "\n".join(lines) + "\n"


# --- split ------------------------------------------------------------------------------------

def split_workloads(quick):
    """(group, label, (batch, M, K, N), M) — the LLM shapes of the split bench."""
    wl = []
    ctxs = (256,) if quick else (256, 2048)
    dims = (64,) if quick else (64, 128)
    for m in (1, 2, 4, 8):
        for d in dims:
            for ctx in ctxs:
                wl.append(("attention", f"q·Kᵀ 8 heads × {m} q × d{d} × ctx{ctx}",
                           (8, m, d, ctx), m))
                wl.append(("attention", f"P·V 8 heads × {m} q × ctx{ctx} × d{d}",
                           (8, m, ctx, d), m))
    kn = ((512, 512),) if quick else ((512, 512), (1024, 4096), (4096, 1024))
    for m in (1, 8, 32):
        for k, n in kn:
            wl.append(("projection", f"proj M={m} K={k} N={n}", (1, m, k, n), m))
    for m in ((128,) if quick else (128, 512)):
        wl.append(("prefill", f"prefill M={m} K=N=1024" if not quick else f"prefill M={m}",
                   (1, m, 256 if quick else 1024, 256 if quick else 1024), m))
    return wl


def bench_split(cfg, quick, out):
    modes = [f"{a}x{b}" for a, b in cfg.modes]
    rows = []
    for kind, label, shape, m in split_workloads(quick):
        a, b = _operands(shape)
        res = {}
        for mode in modes:
            rep = _run(cfg, a, b, mode)
            res[mode] = {"utilization": rep["utilization"], "cycles": rep["cycles"],
                         "orientation": rep["orientation"],
                         "sram": rep["sram_demand_per_cycle"],
                         "group_busy_cycles": [g["busy_cycles"] for g in rep["groups"]]}
        from golden.matmul import plan_matmul

        auto = plan_matmul(cfg, a, b, "auto").split
        best = max(modes, key=lambda x: (res[x]["utilization"], -modes.index(x)))
        row = {"kind": kind, "workload": label, "shape": shape, "m": m, "modes": res,
               "auto": auto, "best": best,
               "gain": res[best]["utilization"] / res["1x1"]["utilization"],
               "auto_gain": res[auto]["utilization"] / res["1x1"]["utilization"]}
        rows.append(row)
        print(f"  {label}: " + ", ".join(f"{x} {100 * res[x]['utilization']:.1f}%"
                                         for x in modes)
              + f"; auto -> {auto} ({row['auto_gain']:.2f}x)", flush=True)
    plot = _plot(rows, modes, out / "split_utilization.png")
    att = [r for r in rows if r["kind"] == "attention" and r["m"] <= 8]
    summary = {
        "modes": modes,
        "min_gain_attention_m_le_8": round(min(r["auto_gain"] for r in att), 3) if att else None,
        "peak_streams_per_mode": {x: 4 * len(cfg.groups(x)) for x in modes},
        "plot": str(plot) if plot else None,
    }
    lines = ["| workload | " + " | ".join(f"{x}" for x in modes) + " | auto | gain |",
             "|---|" + "---:|" * (len(modes) + 2)]
    for r in rows:
        cells = []
        for x in modes:
            u = f"{100 * r['modes'][x]['utilization']:.1f}%"
            cells.append(f"**{u}**" if x == r["auto"] else u)
        lines.append(f"| {r['workload']} | " + " | ".join(cells)
                     + f" | {r['auto']} | {r['auto_gain']:.2f}× |")
    md = "\n".join(lines) + "\n"
    # What a mode asks of the SRAM: per group, one weight row, one activation row, one partial
    # sum row and one result row per cycle at most; measured averages on a decode workload.
    ref = next((r for r in rows if r["kind"] == "attention" and r["m"] == 8), rows[0])
    bw = ["| mode | groups | streams | peak rows/cycle (act + psum + result + weight) | "
          "peak bytes/cycle | measured on " + ref["workload"] + ": act / psum / result / "
          "weight rows per cycle |", "|---|---:|---:|---:|---:|---|"]
    for x in modes:
        gs = cfg.groups(x)
        g = gs[0]
        peak_rows = 4 * len(gs)
        peak_bytes = len(gs) * (g.rows * cfg.a_bits // 8 + g.cols * cfg.acc_bits // 8 * 2
                                + g.cols * cfg.w_bits // 8)
        s = ref["modes"][x]["sram"]
        bw.append(f"| {x} | {len(gs)} | {4 * len(gs)} | {peak_rows} | {peak_bytes} | "
                  f"{s['activation_rows']:.2f} / {s['partial_sum_rows']:.2f} / "
                  f"{s['result_rows']:.2f} / {s['weight_rows']:.2f} |")
    md += "\n" + "\n".join(bw) + "\n"
    return {"rows": rows, "summary": summary}, md


def _plot(rows, modes, path: Path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no plot")
        return None
    groups = {}
    for r in rows:
        if r["kind"] == "prefill":
            continue
        key = r["workload"].split(" × ")[0] if r["kind"] == "attention" else "projection"
        if r["kind"] == "attention":
            key = r["workload"].replace(f"× {r['m']} q ", "× M q ")
        else:
            key = r["workload"].replace(f"M={r['m']} ", "")
        groups.setdefault(key, []).append(r)
    keys = [k for k in groups if len(groups[k]) > 1][:4]
    fig, axes = plt.subplots(1, len(keys), figsize=(4.2 * len(keys), 3.6), squeeze=False)
    for ax, k in zip(axes[0], keys, strict=False):
        rs = sorted(groups[k], key=lambda r: r["m"])
        for x in modes:
            ax.plot([r["m"] for r in rs], [100 * r["modes"][x]["utilization"] for r in rs],
                    marker="o", label=x)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("M (queries / tokens)")
        ax.set_ylabel("utilization (%) — RTL cycles")
        ax.set_title(k, fontsize=8)
        ax.set_ylim(0, 105)
        ax.grid(alpha=0.3)
    axes[0][0].legend(title="split")
    fig.suptitle("16x16 splittable array (8x8 sub-arrays): utilization per split mode")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --- driver -----------------------------------------------------------------------------------

def bench_sram(cfg, quick, out):
    from scripts.sram import bench

    return bench(quick, out)


def bench_hbm(cfg, quick, out):
    from scripts.hbm import bench

    return bench(quick, out)


SECTIONS = {"speed": bench_speed, "formats": bench_formats, "split": bench_split,
            "sram": bench_sram, "hbm": bench_hbm}


def main(quick: bool = False, out: Path = Path("build/bench"), readme: bool = False,
         only=()) -> int:
    out.mkdir(parents=True, exist_ok=True)
    cfg = ArrayConfig(16, 16)
    for name, fn in SECTIONS.items():
        if only and name not in only:
            continue
        print(f"== bench {name} ({'quick' if quick else 'full'}) ==", flush=True)
        t0 = time.perf_counter()
        data, md = fn(cfg, quick, out)
        data.update(array=cfg.as_dict(), quick=quick, seconds=round(time.perf_counter() - t0, 1),
                    machine=f"{platform.machine()}, Python {platform.python_version()}")
        (out / f"{name}.json").write_text(json.dumps(data, indent=1, default=str) + "\n")
        (out / f"{name}.md").write_text(md)
        print(md)
        if readme and not quick:
            update_readme(name, md)
            png = out / "split_utilization.png"
            if name == "split" and png.exists():
                import shutil

                (README.parent / "docs").mkdir(exist_ok=True)
                shutil.copy(png, README.parent / "docs" / png.name)
    return 0


def update_readme(section: str, md: str, tag: str = "bench"):
    """Replace the README block between ``<!-- tag:section:begin -->`` and its end marker."""
    begin, end = f"<!-- {tag}:{section}:begin -->", f"<!-- {tag}:{section}:end -->"
    text = README.read_text()
    if begin not in text or end not in text:
        print(f"README has no {begin} … {end} block; table not inserted")
        return
    pre, rest = text.split(begin, 1)
    _, post = rest.split(end, 1)
    README.write_text(f"{pre}{begin}\n{md}{end}{post}")
    print(f"updated the {section} table in {README}")
