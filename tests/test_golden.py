"""Golden model: scheduling and bit-exact results against NumPy, the cycle model's properties."""

import numpy as np
import pytest

from golden.array import ArrayModel
from golden.matmul import OperandError, assemble, check_operands, plan_matmul
from golden.schedule import run_golden, schedule
from hdl.config import ArrayConfig
from verif.stimulus import edge_sizes, random_int8


def _c(plan, squeeze=False):
    return assemble(plan, run_golden(plan), squeeze)


@pytest.mark.parametrize("array,sub", [("16x16", None), ("4x4", "2x2"), ("3x5", "1x1"),
                                       ("1x1", None), ("32x32", "8x8")])
def test_schedule_matches_numpy_in_every_mode(array, sub, seed):
    rng = np.random.default_rng(seed)
    cfg = ArrayConfig.from_text(array, sub=sub)
    for _ in range(6):
        b = int(rng.integers(1, 4))
        m = int(rng.integers(1, 40))
        k = int(rng.choice(edge_sizes(cfg.rows) + [int(rng.integers(1, 80))]))
        n = int(rng.choice(edge_sizes(cfg.cols) + [int(rng.integers(1, 80))]))
        a, bm = random_int8(rng, (b, m, k)), random_int8(rng, (b, k, n))
        want = np.einsum("bmk,bkn->bmn", a.astype(np.int64), bm.astype(np.int64))
        for mode in [*cfg.modes, "auto"]:
            for orient in ("normal", "transposed", "auto"):
                got = _c(plan_matmul(cfg, a, bm, mode, orient))
                assert got.dtype == np.int32
                np.testing.assert_array_equal(got, want, err_msg=f"seed {seed} {mode} {orient}")


def test_mixed_shapes_in_one_batch(seed):
    """Independent matmuls of different shapes share the groups; each result is exact."""
    rng = np.random.default_rng(seed)
    cfg = ArrayConfig(16, 16)
    ops = [(random_int8(rng, (m, k)), random_int8(rng, (k, n)))
           for m, k, n in [(1, 64, 300), (8, 128, 40), (33, 7, 9), (2, 200, 16), (16, 16, 16)]]
    for mode in cfg.modes:
        plan = schedule(cfg, mode, ops)
        for (a, b), c in zip(ops, plan.assemble(run_golden(plan)), strict=True):
            np.testing.assert_array_equal(c, a.astype(np.int64) @ b.astype(np.int64))
        assert sum(len(g.units) for g in plan.groups) == len(plan.units)


def test_two_d_inputs_give_two_d_result():
    cfg = ArrayConfig(4, 4)
    a = np.arange(6).reshape(2, 3) - 3
    b = np.arange(12).reshape(3, 4) - 6
    c = _c(plan_matmul(cfg, a, b), squeeze=True)
    assert c.shape == (2, 4)
    np.testing.assert_array_equal(c, a @ b)


def test_worst_case_magnitude_fits_int32():
    """K = 65536 of (-128)·(-128) is 2**30: exact, no wrap (the contract's limit)."""
    cfg = ArrayConfig(16, 16)
    a = np.full((1, 65536), -128)
    b = np.full((65536, 1), -128)
    assert _c(plan_matmul(cfg, a, b), squeeze=True)[0, 0] == 2**30


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


@pytest.mark.parametrize("mode", ["3x1", "1x3", "0x1", "2x2x2"])
def test_bad_split_mode(mode):
    cfg = ArrayConfig(16, 16)
    with pytest.raises(ValueError, match="split"):
        plan_matmul(cfg, np.zeros((2, 2)), np.zeros((2, 2)), mode)


def test_cycle_model_256_cube():
    """256x256x256 on 16x16: every cycle streams a row but one weight preload and one drain."""
    cfg = ArrayConfig(16, 16)
    plan = plan_matmul(cfg, np.zeros((256, 256), np.int8), np.zeros((256, 256), np.int8))
    r = plan.cycles().groups[0]
    g = cfg.groups()[0]
    assert r.act_busy == 256 * 16 * 16
    assert r.wait_weights == cfg.rows          # the first tile's load only
    assert r.wait_psum == 0
    assert r.fill_drain == g.latency + ArrayModel.SOURCE_DELAY
    assert r.cycles == r.act_busy + cfg.rows + g.latency + ArrayModel.SOURCE_DELAY


@pytest.mark.parametrize("m", [16, 17, 40])
def test_no_weight_bubble_when_m_at_least_r(m):
    cfg = ArrayConfig(16, 16)
    plan = plan_matmul(cfg, np.zeros((m, 64), np.int8), np.zeros((64, 64), np.int8),
                       orientation="normal")
    assert plan.cycles().groups[0].wait_weights == cfg.rows


def test_weight_bound_when_m_below_r():
    """M < R: the weight stream (R beats a tile) paces the passes."""
    cfg = ArrayConfig(16, 16)
    plan = plan_matmul(cfg, np.zeros((4, 64), np.int8), np.zeros((64, 64), np.int8),
                       orientation="normal")
    r = plan.cycles().groups[0]
    assert np.all(np.diff(r.act_times.reshape(-1, 4)[:, 0]) == cfg.rows)


def test_split_doubles_decode_attention_utilization():
    """The point of splitting: 8 heads x 4 queries x 64 x 512 runs twice as fast on 2x2."""
    cfg = ArrayConfig(16, 16)
    q = np.zeros((8, 4, 64), np.int8)
    k = np.zeros((8, 64, 512), np.int8)
    mono = plan_matmul(cfg, q, k, "1x1").cycles().cycles
    split = plan_matmul(cfg, q, k, "auto")
    assert split.split != "1x1" and mono / split.cycles().cycles > 1.95


def test_config_modes_and_groups():
    cfg = ArrayConfig(16, 16)
    assert cfg.sub_rows == cfg.sub_cols == 8
    assert cfg.modes == ((1, 1), (1, 2), (2, 1), (2, 2))
    gs = cfg.groups("2x2")
    assert [(g.slot, g.rows, g.cols, g.latency) for g in gs] == [
        (0, 8, 8, 8), (1, 8, 8, 8), (2, 8, 8, 8), (3, 8, 8, 8)]
    assert ArrayConfig(16, 16, splittable=False).modes == ((1, 1),)
    assert ArrayConfig(12, 6).sub_rows == 12 and ArrayConfig(12, 6).sub_cols == 6
    with pytest.raises(ValueError, match="sub_rows must be a positive divisor"):
        ArrayConfig(16, 16, sub_rows=5)
