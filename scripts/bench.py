"""``make bench``: utilization measured in RTL cycles, and simulation speed, as JSON and Markdown.

Every number comes from a run of the RTL through cocotb (the harness: streams fed from memories
in HDL, clock in HDL), each result checked bit for bit against the golden model; a mismatch or a
cycle count different from the cycle model fails the bench.
"""

from __future__ import annotations

import json
import platform
import re
import time
from pathlib import Path

import numpy as np

from hdl.config import ArrayConfig

README = Path(__file__).resolve().parent.parent / "README.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


def _job(cfg, m, k, n, sim_name="verilator", seed=7):
    from scripts.cli import run_matmul

    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (m, k), dtype=np.int8)
    b = rng.integers(-128, 128, (k, n), dtype=np.int8)
    t0 = time.perf_counter()
    _, rep = run_matmul(cfg, a, b, "rtl", sim_name, seed=1)
    rep["end_to_end_seconds"] = round(time.perf_counter() - t0, 2)
    if not rep["verified"]:
        raise RuntimeError(f"bench {m}x{k}x{n} on {sim_name}: RTL differs from the golden model")
    if rep["cycle_model"] != "exact":
        raise RuntimeError(f"bench {m}x{k}x{n}: RTL {rep['cycles']} cycles, model "
                           f"{rep['predicted_cycles']}")
    return rep


def _row(name, rep):
    return {
        "bench": name,
        "shape": f"{rep['shape']['m']}x{rep['shape']['k']}x{rep['shape']['n']}",
        "sim": rep["sim"],
        "cycles": rep["cycles"],
        "utilization": rep["utilization"],
        "breakdown": rep["cycle_breakdown"],
        "sim_seconds": rep["sim_seconds"],
        "sim_macs_per_second": rep["sim_macs_per_second"],
        "sim_cycles_per_second": rep["sim_cycles_per_second"],
        "end_to_end_seconds": rep["end_to_end_seconds"],
    }


def main(quick: bool = False, out: Path = Path("build/bench"), readme: bool = False,
         only=()) -> int:
    from verif.sim import have_simulator

    out.mkdir(parents=True, exist_ok=True)
    cfg = ArrayConfig(16, 16)
    big = 64 if quick else 256
    dk = 512 if quick else 4096
    benches = {
        "gemm": [("gemm", big, big, big, "verilator")],
        "decode": [(f"decode M={m}", m, dk, dk, "verilator") for m in (1, 8, 32)],
        "prefill": [("prefill M=256", 256, 1024 if not quick else 256,
                     1024 if not quick else 256, "verilator")],
        "icarus": [("gemm (Icarus)", big, big, big, "icarus")],
    }
    rows = []
    for key, items in benches.items():
        if only and key not in only:
            continue
        for name, m, k, n, s in items:
            if not have_simulator(s):
                print(f"skip {name}: {s} not installed")
                continue
            print(f"bench {name}: {m}x{k}x{n} int8 on {cfg.rows}x{cfg.cols} ({s}) ...",
                  flush=True)
            rep = _job(cfg, m, k, n, s)
            slug = re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")
            (out / f"{slug}.json").write_text(json.dumps(rep, indent=1) + "\n")
            row = _row(name, rep)
            rows.append(row)
            print(f"  {row['cycles']} cycles, utilization {100 * row['utilization']:.2f}%, "
                  f"{row['sim_macs_per_second'] / 1e6:.1f} M MAC/s, "
                  f"{row['sim_cycles_per_second'] / 1e3:.0f} k cycles/s", flush=True)
    summary = {"array": "16x16", "dtype": "int8", "quick": quick,
               "machine": f"{platform.machine()}, {platform.python_version()}", "rows": rows}
    (out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    md = table(rows)
    (out / "summary.md").write_text(md)
    print(md)
    if readme and not quick:
        update_readme(md)
    return 0


def table(rows) -> str:
    lines = [
        "| bench | M×K×N | sim | cycles | utilization | waiting for weights | "
        "sim speed (MAC/s) | sim speed (cycles/s) |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        bd = r["breakdown"]
        lines.append(
            f"| {r['bench']} | {r['shape']} | {r['sim']} | {r['cycles']:,} | "
            f"{100 * r['utilization']:.2f}% | {100 * bd['wait_weights'] / r['cycles']:.1f}% | "
            f"{r['sim_macs_per_second'] / 1e6:.1f} M | {r['sim_cycles_per_second'] / 1e3:.0f} k |")
    return "\n".join(lines) + "\n"


def update_readme(md: str):
    text = README.read_text()
    if BEGIN not in text or END not in text:
        print(f"README has no {BEGIN} … {END} block; table not inserted")
        return
    pre, rest = text.split(BEGIN, 1)
    _, post = rest.split(END, 1)
    README.write_text(f"{pre}{BEGIN}\n{md}{END}{post}")
    print(f"updated {README}")
