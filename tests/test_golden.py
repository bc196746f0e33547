"""Golden model: tiling and bit-exact results against NumPy, the cycle model's properties."""

import numpy as np
import pytest

from golden.array import ArrayModel
from golden.matmul import OperandError, check_operands, plan_matmul, run_golden
from hdl.config import ArrayConfig
from verif.stimulus import edge_sizes, random_int8


@pytest.mark.parametrize("array", [(16, 16), (4, 4), (3, 5), (1, 1)])
def test_tiling_matches_numpy(array, seed):
    rng = np.random.default_rng(seed)
    cfg = ArrayConfig(*array)
    for _ in range(20):
        b = int(rng.integers(1, 4))
        m = int(rng.integers(1, 40))
        k = int(rng.choice(edge_sizes(cfg.rows) + [int(rng.integers(1, 80))]))
        n = int(rng.choice(edge_sizes(cfg.cols) + [int(rng.integers(1, 80))]))
        a, bm = random_int8(rng, (b, m, k)), random_int8(rng, (b, k, n))
        plan = plan_matmul(cfg, a, bm)
        want = np.einsum("bmk,bkn->bmn", a.astype(np.int64), bm.astype(np.int64))
        got = plan.assemble(run_golden(plan))
        assert got.dtype == np.int32
        np.testing.assert_array_equal(got, want, err_msg=f"seed {seed} shape {(b, m, k, n)}")


def test_two_d_inputs_give_two_d_result():
    cfg = ArrayConfig(4, 4)
    a = np.arange(6).reshape(2, 3) - 3
    b = np.arange(12).reshape(3, 4) - 6
    c = plan_matmul(cfg, a, b).assemble(run_golden(plan_matmul(cfg, a, b)))
    assert c.shape == (2, 4)
    np.testing.assert_array_equal(c, a @ b)


def test_worst_case_magnitude_fits_int32():
    """K = 65536 of (-128)·(-128) is 2**30: exact, no wrap (the contract's limit)."""
    cfg = ArrayConfig(16, 16)
    a = np.full((1, 65536), -128)
    b = np.full((65536, 1), -128)
    c = plan_matmul(cfg, a, b).assemble(run_golden(plan_matmul(cfg, a, b)))
    assert c[0, 0] == 2**30


def test_tile_wraps_like_the_register():
    model = ArrayModel(ArrayConfig(2, 1))
    w = np.array([[127], [127]])
    out = model.tile(w, np.array([[127, 127]]), np.array([[2**31 - 1]]))
    assert out[0, 0] == np.int32(np.int64(2**31 - 1 + 2 * 127 * 127) - 2**32)


@pytest.mark.parametrize("a_shape,b_shape,msg", [
    ((3,), (3, 2), "2-D or 3-D"),
    ((2, 3), (2, 3, 2), "must both be 2-D or both 3-D"),
    ((2, 2, 3), (3, 3, 2), "batch sizes differ"),
    ((2, 3), (4, 2), "inner dimensions differ"),
    ((0, 3), (3, 2), "empty"),
])
def test_shape_errors(a_shape, b_shape, msg):
    with pytest.raises(OperandError, match=msg):
        check_operands(ArrayConfig(), np.zeros(a_shape), np.zeros(b_shape))


@pytest.mark.parametrize("value,msg", [(128, "outside int8"), (-129, "outside int8"),
                                       (0.5, "non-integer"), (np.nan, "NaN")])
def test_value_errors(value, msg):
    a = np.zeros((2, 3))
    a[1, 2] = value
    with pytest.raises(OperandError, match=msg):
        check_operands(ArrayConfig(), a, np.zeros((3, 2)))


def test_k_limit():
    with pytest.raises(OperandError, match="65537 exceeds"):
        check_operands(ArrayConfig(), np.zeros((1, 65537), np.int8), np.zeros((65537, 1), np.int8))


def test_cycle_model_256_cube():
    """256x256x256 on 16x16: every cycle streams a row except one weight preload and one drain."""
    cfg = ArrayConfig(16, 16)
    plan = plan_matmul(cfg, np.zeros((256, 256), np.int8), np.zeros((256, 256), np.int8))
    r = plan.cycles()
    assert r.act_busy == 256 * 16 * 16
    assert r.wait_weights == cfg.rows          # the first tile's load only
    assert r.wait_psum == 0
    assert r.fill_drain == cfg.latency + 1     # the source register and the pipeline
    assert r.cycles == r.act_busy + cfg.rows + cfg.latency + 1


@pytest.mark.parametrize("m", [16, 17, 40])
def test_no_weight_bubble_when_m_at_least_r(m):
    cfg = ArrayConfig(16, 16)
    plan = plan_matmul(cfg, np.zeros((m, 64), np.int8), np.zeros((64, 64), np.int8))
    assert plan.cycles().wait_weights == cfg.rows


def test_weight_bound_when_m_below_r():
    """M < R: the weight stream (R beats a tile) paces the passes."""
    cfg = ArrayConfig(16, 16)
    plan = plan_matmul(cfg, np.zeros((4, 64), np.int8), np.zeros((64, 64), np.int8))
    r = plan.cycles()
    assert np.all(np.diff(r.act_times.reshape(-1, 4)[:, 0]) == cfg.rows)
