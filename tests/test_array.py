"""SystolicArray on the RTL (cocotb): bit-exact against the golden model, cycles against the cycle
model, stream rules and no lost or duplicated rows under random gaps and backpressure.

Two drivers, one tiling: ``verif/array_tb.py`` (Python drives every stream each cycle: protocol
checks) and ``verif/harness.py`` (streams fed from memories in HDL: fast, used by the CLI).
"""

import numpy as np
import pytest

from golden.matmul import plan_matmul, run_golden
from hdl.array import SystolicArray
from hdl.config import ArrayConfig
from verif.array_tb import run_jobs
from verif.harness import Gaps, run_plan
from verif.stimulus import edge_sizes, random_int8, random_shape

from .conftest import require


def _random_jobs(rng, cfg, count, gap_free_every=3):
    jobs = []
    for i in range(count):
        b, m, k, n = random_shape(rng, cfg.rows, cfg.cols)
        free = i % gap_free_every == 0
        jobs.append({"shape": [b, m, k, n],
                     "gap": 0.0 if free else round(float(rng.uniform(0.05, 0.6)), 2),
                     "stall": 0.0 if free else round(float(rng.uniform(0.05, 0.7)), 2)})
    return jobs


def _check(report, seed):
    assert not report.get("errors"), f"seed {seed}: {report.get('errors')}"
    for j in report["jobs"]:
        assert j["mismatched_rows"] == 0
        if not j["gap"] and not j["stall"]:
            assert j["cycles"] == j["predicted"], f"seed {seed}: {j}"


# --- direct drive (Python on every port) ---------------------------------------------------

@pytest.mark.parametrize("array", ["4x4", "16x16", "1x1"])
def test_direct_random_jobs(array, seed, run_dir):
    """Random edge-sized jobs back to back, random valid gaps on weight/act/psum, random ready."""
    cfg = ArrayConfig.from_text(array)
    rng = np.random.default_rng(seed)
    jobs = _random_jobs(rng, cfg, 9 if cfg.rows > 1 else 5)
    _check(run_jobs(cfg, jobs, seed, test_dir=run_dir), seed)


def test_direct_edge_sizes_all_dims(seed, run_dir):
    """Every K and N edge size (1, R-1, R, R+1, 2R+3) at least once, M from the same set."""
    cfg = ArrayConfig(16, 16)
    rng = np.random.default_rng(seed)
    ks, ns = edge_sizes(cfg.rows), edge_sizes(cfg.cols)
    jobs = []
    for i, k in enumerate(ks):
        n = ns[(i * 2) % len(ns)]
        m = ks[(i * 3) % len(ks)]
        jobs.append({"shape": [1, m, k, n], "gap": 0.2, "stall": 0.3})
    jobs.append({"shape": [1, 2, 4 * cfg.rows, cfg.cols]})      # psum waits: one N-tile, M=2
    jobs.append({"shape": [2, cfg.rows, 2 * cfg.rows, 3]})      # M = R exactly, batch 2
    rng.shuffle(jobs)
    _check(run_jobs(cfg, jobs, seed, test_dir=run_dir), seed)


def test_direct_backpressure_no_loss(seed, run_dir):
    """Output ready low 85% of the time, inputs always valid: every row arrives exactly once, in
    order, with its last flag, and the stream rules hold while stalled."""
    cfg = ArrayConfig(4, 4)
    jobs = [{"shape": [1, 23, 9, 7], "gap": 0.0, "stall": 0.85},
            {"shape": [2, 5, 4, 4], "gap": 0.5, "stall": 0.95}]
    rep = run_jobs(cfg, jobs, seed, test_dir=run_dir)
    _check(rep, seed)
    assert all(j["stalled"] > j["rows"] for j in rep["jobs"])   # backpressure really happened


# --- harness (streams in HDL; what the CLI uses) -------------------------------------------

@pytest.mark.parametrize("array", ["16x16", "3x5"])
def test_harness_random(array, seed, run_dir):
    cfg = ArrayConfig.from_text(array)
    rng = np.random.default_rng(seed)
    for i in range(5):
        b, m, k, n = random_shape(rng, cfg.rows, cfg.cols, max_batch=3)
        a, bm = random_int8(rng, (b, m, k)), random_int8(rng, (b, k, n))
        plan = plan_matmul(cfg, a, bm)
        gaps = Gaps() if i % 2 == 0 else Gaps(*(int(x) for x in rng.integers(0, 200, 4)))
        run = run_plan(plan, gaps=gaps, seed=seed + i, run_dir=run_dir / f"job{i}")
        want = run_golden(plan)
        bad = int((run.cmem != want).any(axis=1).sum())
        assert bad == 0, f"seed {seed} job {i} {(b, m, k, n)} {gaps}: {bad} rows differ"
        assert run.counters["out_rows"] == plan.out_rows
        assert run.counters["a_rows"] == plan.out_rows
        assert run.counters["w_beats"] == len(plan.weights)
        if not gaps.any:
            assert run.cycles == plan.cycles().cycles, f"seed {seed} job {i} {(b, m, k, n)}"
        np.testing.assert_array_equal(
            plan.assemble(run.cmem),
            np.einsum("bmk,bkn->bmn", a.astype(np.int64), bm.astype(np.int64)))


def test_harness_long_job_cycle_exact(run_dir):
    """A job long enough for the steady state: 96x160x144 on 16x16, exact cycles."""
    cfg = ArrayConfig(16, 16)
    rng = np.random.default_rng(5)
    plan = plan_matmul(cfg, random_int8(rng, (96, 160)), random_int8(rng, (160, 144)))
    run = run_plan(plan, run_dir=run_dir)
    assert (run.cmem == run_golden(plan)).all()
    assert run.cycles == plan.cycles().cycles


# --- Icarus (second simulator, a subset) ---------------------------------------------------

@pytest.mark.icarus
def test_icarus_harness(seed, run_dir):
    require("icarus")
    cfg = ArrayConfig(4, 4)
    rng = np.random.default_rng(seed)
    for i, gaps in enumerate((Gaps(), Gaps(60, 90, 30, 120))):
        b, m, k, n = random_shape(rng, cfg.rows, cfg.cols)
        plan = plan_matmul(cfg, random_int8(rng, (b, m, k)), random_int8(rng, (b, k, n)))
        run = run_plan(plan, "icarus", gaps=gaps, seed=seed, run_dir=run_dir / f"job{i}")
        assert (run.cmem == run_golden(plan)).all(), f"seed {seed} job {i}"
        if not gaps.any:
            assert run.cycles == plan.cycles().cycles


@pytest.mark.icarus
def test_icarus_direct(seed, run_dir):
    require("icarus")
    cfg = ArrayConfig(4, 4)
    jobs = [{"shape": [1, 6, 5, 9]}, {"shape": [2, 9, 4, 3], "gap": 0.3, "stall": 0.5}]
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
