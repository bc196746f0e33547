"""The golden numerics, checked against arithmetic others wrote: exact rationals
(``fractions.Fraction``), Berkeley SoftFloat (``softfloatpy``), ``ml_dtypes`` casts and the
``gfloat`` OCP MX block quantizer."""

from fractions import Fraction

import ml_dtypes
import numpy as np
import pytest

from golden.numerics import FORMATS, bits_f32, f32_bits, fma_f32, get_format

FLOATS = ["fp8_e4m3", "fp8_e5m2", "bf16"]
ML = {"fp8_e4m3": ml_dtypes.float8_e4m3fn, "fp8_e5m2": ml_dtypes.float8_e5m2,
      "bf16": ml_dtypes.bfloat16}


def _f32_rne(q: Fraction) -> np.float32:
    """Correct round-to-nearest-even of an exact rational to float32, by brute force."""
    if q == 0:
        return np.float32(0.0)
    with np.errstate(over="ignore"):
        x = np.float32(float(q))      # within one ulp of the answer
    cands = [x, np.nextafter(x, np.float32(np.inf)), np.nextafter(x, np.float32(-np.inf))]
    fin = [c for c in cands if np.isfinite(c)]
    best = min(fin, key=lambda c: (abs(Fraction(float(c)) - q), int(c.view(np.uint32)) & 1))
    big = Fraction(2) ** 128 - Fraction(2) ** 103          # halfway to the next binade: Inf
    if abs(q) >= big:
        return np.float32(np.inf if q > 0 else -np.inf)
    return best


@pytest.mark.parametrize("fmt", FLOATS)
def test_code_table_matches_ml_dtypes(fmt):
    f = get_format(fmt)
    codes = np.arange(1 << f.code_bits, dtype=np.uint16 if f.code_bits > 8 else np.uint8)
    ref = codes.view(ML[fmt]).astype(np.float64)
    np.testing.assert_array_equal(f.table, ref)          # NaN positions included


@pytest.mark.parametrize("fmt", FLOATS)
def test_cast_matches_ml_dtypes_and_saturates(fmt, seed):
    f = get_format(fmt)
    rng = np.random.default_rng(seed)
    mag = rng.choice([1e-9, 1e-5, 1e-2, 1, 30, 400, 6e4, 1e38], 50000)
    with np.errstate(over="ignore"):
        x = (rng.standard_normal(50000) * mag).astype(np.float32)
    x = np.concatenate([x, f.table[np.isfinite(f.table)].astype(np.float32),
                        np.float32([0.0, -0.0, np.inf, -np.inf, np.nan])])
    codes = f.cast(x)
    ref = x.astype(ML[fmt]).view(np.uint16 if f.code_bits > 8 else np.uint8).astype(np.int64)
    inr = np.abs(x) <= f.max_finite
    np.testing.assert_array_equal(codes[inr], ref[inr], err_msg=f"seed {seed}")
    vals = f.values(f.join(codes))
    big = np.isfinite(x) & ~inr | np.isinf(x)
    if f.saturate:   # FP8: beyond max, Inf included -> ±max
        np.testing.assert_array_equal(vals[big], np.sign(x[big]) * f.max_finite)
    else:            # bf16: IEEE overflow -> ±Inf (where RNE rounds beyond max)
        assert np.all(np.isinf(vals[big & (np.abs(x) >= 2.0 ** 128 * (1 - 2.0 ** -9))]))
    assert np.all(np.isnan(vals[np.isnan(x)]))


def test_cast_goes_through_float32_first():
    """A float64 input is rounded to float32 before the element format (the contract)."""
    f = get_format("bf16")
    # 1 + 2^-8 + 2^-40: nearest bf16 from float64 directly is 1+2^-7; via float32 it is a tie
    # (1 + 2^-8) that rounds to even, 1.0.
    x = np.float64(1 + 2.0 ** -8 + 2.0 ** -40)
    assert f.values(f.join(f.cast(np.array([x]))))[0] == 1.0


@pytest.mark.parametrize("fmt", ["mxfp8_e4m3", "mxfp8_e5m2"])
def test_mx_quantization_matches_gfloat(fmt, seed):
    import gfloat
    from gfloat import formats

    f = get_format(fmt)
    fi = {"mxfp8_e4m3": formats.format_info_mxfp8_e4m3,
          "mxfp8_e5m2": formats.format_info_mxfp8_e5m2}[fmt]
    rng = np.random.default_rng(seed)
    for _ in range(300):
        scale = 2.0 ** rng.integers(-140, 120)
        v = (rng.standard_normal(32) * scale).astype(np.float32)
        if rng.random() < 0.1:
            v[:] = 0
        ours = f.values(f.quantize(v, axis=0))
        ref = gfloat.quantize_block(fi, v.astype(np.float64), gfloat.compute_scale_amax)
        np.testing.assert_array_equal(ours, ref, err_msg=f"seed {seed} block {v}")


def test_mx_rules():
    f = get_format("mxfp8_e4m3")
    words = f.quantize(np.zeros(32), axis=0)
    _, sc = f.split(words)
    assert np.all(sc == 0)                                    # all-zero block: -127
    v = np.zeros(64, np.float32)
    v[0], v[40] = 500.0, 2.0 ** -140
    code, sc = f.split(f.quantize(v, axis=0))
    assert sc[0] - 127 == 8 - 8 and f.values(f.quantize(v, axis=0))[0] == 448.0  # saturates
    assert sc[40] - 127 == -127                               # clamped shared exponent
    with pytest.raises(ValueError, match="finite"):
        f.quantize(np.array([np.inf] + [0.0] * 31), axis=0)
    with pytest.raises(ValueError, match="multiple of 32"):
        f.quantize(np.ones(33), axis=0)


@pytest.mark.parametrize("fmt", FLOATS)
def test_fma_matches_softfloat(fmt, seed):
    """One fused step against SoftFloat's f32_mul_add, with accumulators from every class."""
    import softfloatpy as sf

    f = get_format(fmt)
    rng = np.random.default_rng(seed)
    n = 4000
    vals = f.table.astype(np.float32)
    a = vals[rng.integers(0, len(vals), n)]
    b = vals[rng.integers(0, len(vals), n)]
    c = rng.integers(0, 2 ** 32, n, dtype=np.uint64).astype(np.uint32).view(np.float32)
    with np.errstate(invalid="ignore"):
        got = f32_bits(fma_f32(c, a.astype(np.float64) * b.astype(np.float64)))

    def tosf(x):
        return sf.Float32.from_bytes(np.float32(x).byteswap().tobytes())

    for i in range(n):
        r = sf.f32_mul_add(tosf(a[i]), tosf(b[i]), tosf(c[i]))
        bits = np.frombuffer(r.to_bytes(), dtype=">u4")[0]
        if np.isnan(np.uint32(bits).view(np.float32)):
            bits = 0x7FC00000
        assert np.uint32(bits) == got[i].view(np.uint32), f"seed {seed}: {a[i]} {b[i]} {c[i]}"


def test_fma_exact_rational_including_ties(seed):
    """Random and constructed midpoint cases against the exact rational sum."""
    rng = np.random.default_rng(seed)
    n = 3000
    c = (rng.standard_normal(n) * 2.0 ** rng.integers(-148, 126, n)).astype(np.float32)
    ulp = np.spacing(np.abs(c)).astype(np.float64)
    p = ulp / 2 * rng.choice([1, -1, 3], n) * (1 + rng.choice([0, 1, -1], n) * 2.0 ** -30)
    p[: n // 4] = rng.standard_normal(n // 4) * 2.0 ** rng.integers(-160, 140, n // 4)
    got = fma_f32(c, p)
    for i in range(n):
        want = _f32_rne(Fraction(float(c[i])) + Fraction(float(p[i])))
        assert got[i].view(np.uint32) == want.view(np.uint32), f"{c[i]!r} + {p[i]!r}"


def test_fma_special_cases():
    inf, nan = np.inf, np.nan
    acc = np.float32([0.0, -0.0, -0.0, 1.0, inf, inf, -inf, 3.4e38, -(2.0 ** -149), 5.0])
    p = np.float64([-0.0, -0.0, 0.0, -1.0, -inf, 1.0, nan, 3.4e38, 2.0 ** -149, 2.0 ** 300])
    out = fma_f32(acc, p)
    bits = f32_bits(out).view(np.uint32)
    assert bits[0] == 0x00000000          # +0 + -0 = +0
    assert bits[1] == 0x80000000          # -0 + -0 = -0
    assert bits[2] == 0x00000000          # -0 + +0 = +0
    assert bits[3] == 0x00000000          # x + -x = +0
    assert bits[4] == 0x7FC00000          # Inf - Inf = NaN (canonical)
    assert np.isposinf(out[5])
    assert bits[6] == 0x7FC00000
    assert np.isposinf(out[7])            # overflow to Inf
    assert bits[8] == 0x00000000          # exact cancellation of subnormals: +0
    assert np.isposinf(out[9])            # an MX-scaled product beyond float32


def test_words_and_padding():
    for name, f in FORMATS.items():
        pa, pw = f.pad_words()
        if f.is_float:
            v = f.values(np.array([pa])) * f.values(np.array([pw]))
            assert v[0] == 0 and np.signbit(v[0]), name       # -0: the sum's identity
    f = get_format("mxfp8_e5m2")
    w = f.join([0x3C], [130])
    assert f.values(w)[0] == 1.0 * 2 ** 3
    assert bits_f32(np.int32(0x3F800000)) == 1.0
