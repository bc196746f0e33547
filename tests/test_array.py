"""SystolicArray on the RTL (cocotb): bit-exact against the golden model, cycles against the cycle
model, stream rules, no lost or duplicated rows under random gaps and backpressure — in every
split mode, with mode switches between jobs and no reset.

Two drivers, one scheduler: ``verif/array_tb.py`` (Python drives every stream each cycle:
protocol checks) and ``verif/harness.py`` (streams fed from memories in HDL: fast, used by the CLI).
"""

import numpy as np
import pytest

from golden.schedule import run_golden, schedule
from hdl.array import SystolicArray
from hdl.config import ArrayConfig
from verif.array_tb import run_jobs
from verif.harness import Gaps, run_plan
from verif.stimulus import edge_sizes, operands, random_int8, random_shape

from .conftest import require


def _shapes(rng, cfg, n):
    km = 32 if cfg.dtype.startswith("mx") else 1
    return [list(random_shape(rng, cfg.rows, cfg.cols, 1, km)[1:]) for _ in range(n)]


def _random_jobs(rng, cfg, count):
    """Random batches of differently shaped matmuls, cycling through every mode."""
    jobs = []
    for i in range(count):
        mode = cfg.modes[i % len(cfg.modes)]
        free = i % 3 == 0
        jobs.append({"shapes": _shapes(rng, cfg, int(rng.integers(1, 5))),
                     "split": f"{mode[0]}x{mode[1]}",
                     "gap": 0.0 if free else round(float(rng.uniform(0.05, 0.6)), 2),
                     "stall": 0.0 if free else round(float(rng.uniform(0.05, 0.7)), 2)})
    return jobs


def _check(report, seed):
    assert not report.get("errors"), f"seed {seed}: {report.get('errors')}"
    for j in report["jobs"]:
        if "bad_mode" in j:
            continue
        assert j["mismatched_rows"] == 0
        for g, st in zip(j["groups"], j["stall"], strict=True):
            if not j["gap"] and not st:
                assert g["cycles"] == g["predicted"], f"seed {seed}: {j}"


# --- direct drive (Python on every port) ---------------------------------------------------

@pytest.mark.parametrize("array,sub", [("16x16", "8x8"), ("4x4", "2x2"), ("3x5", "1x1"),
                                       ("1x1", "1x1")])
def test_direct_random_jobs(array, sub, seed, run_dir):
    """Random jobs back to back through every mode (switched at run time, no reset), random
    valid gaps on weight/act/psum, random ready on every result stream."""
    cfg = ArrayConfig.from_text(array, sub=sub)
    rng = np.random.default_rng(seed)
    jobs = _random_jobs(rng, cfg, 3 * len(cfg.modes) if len(cfg.modes) < 8 else 8)
    _check(run_jobs(cfg, jobs, seed, test_dir=run_dir), seed)


def test_direct_edge_sizes_every_mode(seed, run_dir):
    """Every K and N edge size (1, R-1, R, R+1, 2R+3 of the group) in every mode."""
    cfg = ArrayConfig(16, 16)
    rng = np.random.default_rng(seed)
    jobs = []
    for mode in cfg.modes:
        g = cfg.groups(mode)[0]
        ks, ns = edge_sizes(g.rows), edge_sizes(g.cols)
        shapes = [[ks[(i * 3) % len(ks)], k, ns[(i * 2) % len(ns)]] for i, k in enumerate(ks)]
        jobs.append({"shapes": shapes, "split": f"{mode[0]}x{mode[1]}", "gap": 0.2,
                     "stall": 0.3})
    jobs.append({"shapes": [[2, 4 * cfg.rows, cfg.cols]], "orientation": "normal"})  # psum waits
    jobs.append({"shapes": [[16, 32, 3], [16, 32, 3]], "split": "2x1"})             # M = rows
    rng.shuffle(jobs)
    _check(run_jobs(cfg, jobs, seed, test_dir=run_dir), seed)


def test_direct_backpressure_one_group(seed, run_dir):
    """Result ready low 90% of the time on one group only: every row of every group arrives
    once, in order, and the other groups finish exactly when the cycle model says — the stalled
    group neither slows nor corrupts them."""
    cfg = ArrayConfig(16, 16)
    rng = np.random.default_rng(seed)
    jobs = []
    for mode, stalled in (("2x2", 2), ("1x2", 0), ("2x1", 1)):
        n = len(cfg.groups(mode))
        stall = [0.9 if g == stalled else 0.0 for g in range(n)]
        jobs.append({"shapes": _shapes(rng, cfg, 2 * n), "split": mode, "stall": stall})
    rep = run_jobs(cfg, jobs, seed, test_dir=run_dir)
    _check(rep, seed)
    for job in rep["jobs"]:
        for g, st in zip(job["groups"], job["stall"], strict=True):
            if st and g["rows"]:
                assert g["stalled"] > 0      # backpressure really happened


def test_direct_mode_errors(seed, run_dir):
    """An unsupported mode raises mode_error and changes nothing; the next valid one works."""
    cfg = ArrayConfig(16, 16)
    jobs = [{"shapes": [[3, 5, 7]], "split": "2x2"}, {"bad_mode": [3, 1]},
            {"bad_mode": [0, 2]}, {"bad_mode": [2, 0]},
            {"shapes": [[9, 20, 20]], "split": "1x2"}]
    _check(run_jobs(cfg, jobs, seed, test_dir=run_dir), seed)


def test_direct_monolithic_baseline(seed, run_dir):
    """The non-splittable build (the area baseline) runs the same jobs in 1x1."""
    cfg = ArrayConfig(16, 16, splittable=False)
    rng = np.random.default_rng(seed)
    _check(run_jobs(cfg, _random_jobs(rng, cfg, 3), seed, test_dir=run_dir), seed)


# --- harness (streams in HDL; what the CLI uses) -------------------------------------------

@pytest.mark.parametrize("array,sub", [("16x16", "8x8"), ("3x5", "1x1")])
def test_harness_random(array, sub, seed, run_dir):
    cfg = ArrayConfig.from_text(array, sub=sub)
    rng = np.random.default_rng(seed)
    for i, mode in enumerate(list(cfg.modes) * 2):
        ops = [(random_int8(rng, (m, k)), random_int8(rng, (k, n)))
               for m, k, n in _shapes(rng, cfg, int(rng.integers(1, 6)))]
        plan = schedule(cfg, mode, ops)
        gaps = Gaps() if i % 2 == 0 else Gaps(*(int(x) for x in rng.integers(0, 200, 4)))
        run = run_plan(plan, gaps=gaps, seed=seed + i, run_dir=run_dir / f"job{i}")
        bad = int((run.cmem != run_golden(plan)).any(axis=1).sum())
        assert bad == 0, f"seed {seed} job {i} {mode} {gaps}: {bad} rows differ"
        assert run.counters["out_rows"] == plan.out_rows
        assert run.counters["a_rows"] == plan.out_rows
        assert run.counters["w_beats"] == sum(len(g.weights) for g in plan.groups)
        for (a, b), c in zip(ops, plan.assemble(run.cmem), strict=True):
            np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))
        if not gaps.any:
            pred = plan.cycles()
            assert run.cycles == pred.cycles, f"seed {seed} job {i} {mode}"
            for gp, gc, pr in zip(plan.groups, run.group_counters(plan), pred.groups,
                                  strict=True):
                if gp.out_rows:
                    assert gc["done_cycle"] == pr.cycles


def test_harness_long_job_cycle_exact(run_dir):
    """A job long enough for the steady state: 96x160x144 on 16x16 in 1x1 and 2x2."""
    cfg = ArrayConfig(16, 16)
    rng = np.random.default_rng(5)
    ops = [(random_int8(rng, (96, 160)), random_int8(rng, (160, 144)))]
    for mode in ("1x1", "2x2"):
        plan = schedule(cfg, mode, ops)
        run = run_plan(plan, run_dir=run_dir / mode)
        assert (run.cmem == run_golden(plan)).all()
        assert run.cycles == plan.cycles().cycles


def test_32x32_smoke(seed, run_dir):
    """32x32 with 8x8 sub-arrays (9 modes): elaborates, and a small batch runs in 1x1 and
    4x4, bit-exact and cycle-exact."""
    cfg = ArrayConfig(32, 32)
    assert len(cfg.modes) == 9
    rng = np.random.default_rng(seed)
    ops = [(random_int8(rng, (5, 40)), random_int8(rng, (40, 33))) for _ in range(4)]
    for mode in ("1x1", "4x4", "2x4"):
        plan = schedule(cfg, mode, ops)
        run = run_plan(plan, run_dir=run_dir / mode)
        assert (run.cmem == run_golden(plan)).all(), f"seed {seed} {mode}"
        assert run.cycles == plan.cycles().cycles


# --- float formats (numerics contract; FusedMac exhaustive sweeps are in test_fpmac.py) -----

FLOATS = ["fp8_e4m3", "fp8_e5m2", "bf16", "mxfp8_e4m3", "mxfp8_e5m2"]


@pytest.mark.parametrize("fmt", FLOATS)
def test_harness_float_formats(fmt, seed, run_dir):
    """Random batches per format in every mode of a 4x4 array (2x2 sub-arrays): subnormal-range,
    saturating, NaN/Inf (not MX), cancelling and overflowing inputs; bit-exact against the golden
    model, identical across modes, cycle-exact."""
    cfg = ArrayConfig(4, 4, fmt, 2, 2)
    rng = np.random.default_rng(seed)
    shapes = _shapes(rng, cfg, 4)
    shapes[-1][1] = max(shapes[-1][1], 2)  # K >= 2 somewhere, so the planted cancellations exist
    ops = [operands(rng, fmt, m, k, n) for m, k, n in shapes]
    ref = None
    for i, mode in enumerate(cfg.modes):
        plan = schedule(cfg, mode, ops)
        gaps = Gaps() if i % 2 == 0 else Gaps(*(int(x) for x in rng.integers(0, 200, 4)))
        run = run_plan(plan, gaps=gaps, seed=seed + i, run_dir=run_dir / f"m{i}")
        bad = int((run.cmem != run_golden(plan)).any(axis=1).sum())
        assert bad == 0, f"seed {seed} {fmt} {mode} {gaps}: {bad} rows differ"
        if not gaps.any:
            assert run.cycles == plan.cycles().cycles
        outs = plan.assemble(run.cmem)
        if ref is None:
            ref = outs
        for x, y in zip(outs, ref, strict=True):
            np.testing.assert_array_equal(x, y, err_msg=f"{mode} differs from 1x1")
    allbits = np.concatenate([x.ravel() for x in ref]).view(np.uint32)
    assert (allbits == 0).any(), "no exact cancellation to +0 exercised"


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "mxfp8_e5m2"])
def test_direct_float_formats(fmt, seed, run_dir):
    """Direct drive with random gaps and backpressure, every mode, float words on every port."""
    cfg = ArrayConfig(4, 4, fmt, 2, 2)
    rng = np.random.default_rng(seed)
    _check(run_jobs(cfg, _random_jobs(rng, cfg, 6), seed, test_dir=run_dir), seed)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FLOATS)
def test_harness_float_16x16(fmt, seed, run_dir):
    cfg = ArrayConfig(16, 16, fmt)
    rng = np.random.default_rng(seed)
    ops = [operands(rng, fmt, m, k, n) for m, k, n in _shapes(rng, cfg, 3)]
    for i, mode in enumerate(cfg.modes):
        plan = schedule(cfg, mode, ops)
        run = run_plan(plan, run_dir=run_dir / f"m{i}")
        assert (run.cmem == run_golden(plan)).all(), f"seed {seed} {fmt} {mode}"
        assert run.cycles == plan.cycles().cycles


# --- Icarus (second simulator, a subset) ---------------------------------------------------

@pytest.mark.icarus
def test_icarus_harness(seed, run_dir):
    require("icarus")
    cfg = ArrayConfig(4, 4, sub_rows=2, sub_cols=2)
    rng = np.random.default_rng(seed)
    for i, (mode, gaps) in enumerate((("1x1", Gaps()), ("2x2", Gaps(60, 90, 30, 120)),
                                      ("2x1", Gaps()))):
        ops = [(random_int8(rng, (m, k)), random_int8(rng, (k, n)))
               for m, k, n in _shapes(rng, cfg, 3)]
        plan = schedule(cfg, mode, ops)
        run = run_plan(plan, "icarus", gaps=gaps, seed=seed, run_dir=run_dir / f"job{i}")
        assert (run.cmem == run_golden(plan)).all(), f"seed {seed} job {i}"
        if not gaps.any:
            assert run.cycles == plan.cycles().cycles


@pytest.mark.icarus
def test_icarus_direct(seed, run_dir):
    require("icarus")
    cfg = ArrayConfig(4, 4, sub_rows=2, sub_cols=2)
    jobs = [{"shapes": [[6, 5, 9]]}, {"shapes": [[9, 4, 3], [2, 2, 2]], "split": "2x2",
                                      "gap": 0.3, "stall": 0.5},
            {"bad_mode": [3, 3]}, {"shapes": [[3, 3, 3]], "split": "1x2"}]
    _check(run_jobs(cfg, jobs, seed, sim_name="icarus", test_dir=run_dir), seed)


def test_constructor_checks():
    with pytest.raises(TypeError, match="cfg must be an ArrayConfig"):
        SystolicArray((16, 16))
    with pytest.raises(ValueError, match="rows must be in"):
        ArrayConfig(rows=0)
    with pytest.raises(TypeError, match="cols must be an integer"):
        ArrayConfig(cols=2.0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        ArrayConfig(dtype="int4")
    with pytest.raises(TypeError, match="splittable must be a bool"):
        ArrayConfig(splittable=1)
