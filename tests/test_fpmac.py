"""FusedMac RTL against the golden numerics, bit for bit.

FP8 (and MX FP8): every one of the 65,536 (a, w) element pairs against accumulators from every
class — ±0, subnormals, the largest finite, ±Inf, NaN, and values where the sum lands exactly on
a float32 tie. The default run takes +0, -0 and four more accumulators picked by the seed (and,
for MX, two scale pairs); ``-m slow`` runs all accumulators and all scale pairs. BF16: random
pairs plus directed cases at the edges of the binary32 range.
"""

import numpy as np
import pytest

from golden.numerics import f32_bits, fma_f32, get_format
from hdl.fpmac import FusedMac
from verif.fpmac_tb import run_sweep

F32 = {
    "+0": 0x00000000, "-0": 0x80000000, "+min_sub": 0x00000001, "-min_sub": 0x80000001,
    "max_sub": 0x007FFFFF, "min_norm": 0x00800000, "-min_norm": 0x80800000,
    "+max": 0x7F7FFFFF, "-max": 0xFF7FFFFF, "+inf": 0x7F800000, "-inf": 0xFF800000,
    "nan": 0x7FC00000, "-nan": 0xFFC00001, "1.0": 0x3F800000, "-1.0": 0xBF800000,
    # Ties: with ulp 2 at 2^24, +-1 lands halfway; odd LSBs make "to even" go both ways.
    "2^24": 0x4B800000, "-2^24": 0xCB800000, "2^24+2": 0x4B800001, "2^25+4": 0x4C000001,
    "2^-2": 0x3E800000, "2^-2+ulp": 0x3E800001, "2^8+ulp": 0x43800001, "-2^8-ulp": 0xC3800001,
    "2^-120": 0x03800000, "2^-126+ulp": 0x00800001, "3*2^20": 0x4A400000,
    "2^15+ulp": 0x47000001, "2^-8+3ulp": 0x3B800003,
}
ALWAYS = ["+0", "-0"]
MX_SCALES = [(127, 127), (0, 254), (254, 254), (1, 1), (150, 90), (127, 0), (200, 180),
             (60, 40)]


def _golden(fmt, a, w, acc):
    f = get_format(fmt)
    with np.errstate(invalid="ignore", over="ignore"):
        return f32_bits(fma_f32(np.asarray(acc, np.uint32).view(np.float32),
                                f.values(a) * f.values(w))).view(np.uint32)


def _ties(fmt, a, w, acc):
    """How many cases land exactly halfway between two float32 values (exact f64 sum)."""
    f = get_format(fmt)
    with np.errstate(invalid="ignore", over="ignore"):
        s = np.asarray(acc, np.uint32).view(np.float32).astype(np.float64) + \
            f.values(a) * f.values(w)
        r = s.astype(np.float32)
        other = np.nextafter(r, np.where(s > r, np.inf, -np.inf).astype(np.float32))
        mid = (r.astype(np.float64) + other.astype(np.float64)) / 2
    return int(np.sum(np.isfinite(s) & (s != r) & (s == mid)))


def _sweep(fmt, accs, scales, run_dir):
    f = get_format(fmt)
    n = 1 << f.code_bits
    a, w = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    a, w = a.ravel(), w.ravel()
    cases_a, cases_w, cases_c = [], [], []
    for sa, sw in scales:
        for acc in accs:
            cases_a.append(a | (sa << 8) if f.is_mx else a)
            cases_w.append(w | (sw << 8) if f.is_mx else w)
            cases_c.append(np.full(len(a), F32[acc], dtype=np.uint32))
    A, W, Cc = (np.concatenate(x) for x in (cases_a, cases_w, cases_c))
    got = run_sweep(fmt, A, W, Cc, run_dir)
    want = _golden(fmt, A, W, Cc)
    bad = np.nonzero(got != want)[0]
    msg = "" if not len(bad) else (
        f"{len(bad)} of {len(A)} differ, first: a={A[bad[0]]:#x} w={W[bad[0]]:#x} "
        f"acc={Cc[bad[0]]:#x} rtl={got[bad[0]]:#x} golden={want[bad[0]]:#x}")
    return len(A), _ties(fmt, A, W, Cc), msg


@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp8_e5m2", "mxfp8_e4m3", "mxfp8_e5m2"])
def test_fp8_every_pair(fmt, seed, run_dir):
    rng = np.random.default_rng(seed)
    others = [k for k in F32 if k not in ALWAYS]
    accs = ALWAYS + list(rng.choice(others, 4, replace=False))
    scales = ([MX_SCALES[0], MX_SCALES[int(rng.integers(1, len(MX_SCALES)))]]
              if "mx" in fmt else [(127, 127)])
    n, _, msg = _sweep(fmt, accs, scales, run_dir)
    assert not msg, f"seed {seed} accumulators {accs} scales {scales}: {msg}"
    assert n == 65536 * len(accs) * len(scales)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["fp8_e4m3", "fp8_e5m2", "mxfp8_e4m3", "mxfp8_e5m2"])
def test_fp8_every_pair_every_accumulator(fmt, run_dir):
    scales = MX_SCALES if "mx" in fmt else [(127, 127)]
    n, ties, msg = _sweep(fmt, list(F32), scales, run_dir)
    assert not msg
    assert ties > 0, "the accumulator set must produce exact ties"
    print(f"{fmt}: {n} cases, {ties} exact ties, 0 mismatches")


def test_bf16_random_and_edges(seed, run_dir):
    """Random bf16 pairs and accumulators, and directed cases at the edges of binary32: products
    that overflow it, land on its largest finite or in its subnormals, or underflow to ±0."""
    f = get_format("bf16")
    rng = np.random.default_rng(seed)
    n = 200_000
    a = rng.integers(0, 1 << 16, n)
    w = rng.integers(0, 1 << 16, n)
    acc = rng.integers(0, 1 << 32, n, dtype=np.uint64).astype(np.uint32)
    acc[: n // 4] = rng.choice(list(F32.values()), n // 4)
    edges = np.array([0x7F7F, 0xFF7F, 0x7F00, 0x3F80, 0x0080, 0x8080, 0x0001, 0x8001, 0x007F,
                      0x1F80, 0x5F80, 0x5F7F, 0x2000, 0x0040, 0x7F80, 0xFF80, 0x7FC0, 0x0000,
                      0x8000, 0x4000], dtype=np.int64)
    ea, ew = np.meshgrid(edges, edges, indexing="ij")
    ea, ew = ea.ravel(), ew.ravel()
    eacc = np.array(list(F32.values()), dtype=np.uint32)
    A = np.concatenate([a, np.repeat(ea, len(eacc))])
    W = np.concatenate([w, np.repeat(ew, len(eacc))])
    C = np.concatenate([acc, np.tile(eacc, len(ea))])
    got = run_sweep("bf16", A, W, C, run_dir)
    want = _golden("bf16", A, W, C)
    bad = np.nonzero(got != want)[0]
    assert not len(bad), (f"seed {seed}: {len(bad)} differ; first a={A[bad[0]]:#x} "
                          f"w={W[bad[0]]:#x} acc={C[bad[0]]:#x}")
    # The directed set really reaches the edges: overflow, largest finite, subnormal results.
    out = want[n:].view(np.float32)
    assert np.isinf(out).any() and (np.abs(out) == np.float32(3.4028235e38)).any()
    assert ((np.abs(out) < np.float32(1.1754944e-38)) & (out != 0)).any()
    assert f.values(np.array([0x7F7F]))[0] ** 2 > 2.0 ** 128


def test_fusedmac_rejects_int8():
    with pytest.raises(ValueError, match="fmt must be one of"):
        FusedMac("int8")
