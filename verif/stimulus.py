"""Random stimulus shared by the testbenches: operands with the extremes, edge-sized shapes."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["edge_sizes", "operands", "pick_seed", "random_floats", "random_int8", "random_shape"]


def pick_seed(seed: int | None = None) -> int:
    """``SEED`` from the environment (replay), else the given seed, else a fresh random one."""
    env = os.environ.get("SEED", "").strip()
    if env:
        return int(env, 0)
    if seed is not None:
        return seed
    return random.SystemRandom().randrange(1, 2**31)


def edge_sizes(n: int) -> list[int]:
    """The sizes around an array edge of ``n``: 1, n-1, n, n+1, 2n+3 (deduplicated, positive)."""
    return sorted({s for s in (1, n - 1, n, n + 1, 2 * n + 3) if s >= 1})


def random_int8(rng: np.random.Generator, shape) -> np.ndarray:
    """int8 values, uniform, with -128 and 127 planted densely (and whole rows of them)."""
    x = rng.integers(-128, 128, size=shape, dtype=np.int64)
    mask = rng.random(shape)
    x[mask < 0.08] = -128
    x[(mask >= 0.08) & (mask < 0.16)] = 127
    if x.ndim >= 2 and x.shape[-2] > 1 and rng.random() < 0.5:
        x[..., rng.integers(x.shape[-2]), :] = rng.choice([-128, 127])
    return x.astype(np.int8)


def random_shape(rng: np.random.Generator, rows: int, cols: int, max_batch: int = 2,
                 k_multiple: int = 1):
    """(batch, M, K, N) with K from the row edge sizes, N from the column edge sizes.

    ``k_multiple``: K rounded up to a multiple of it (32 for the MX formats).
    """
    b = int(rng.integers(1, max_batch + 1))
    m = int(rng.choice(edge_sizes(rows) + [int(rng.integers(1, 3 * rows + 1))]))
    k = int(rng.choice(edge_sizes(rows)))
    k = -(-k // k_multiple) * k_multiple
    n = int(rng.choice(edge_sizes(cols)))
    return b, m, k, n


def random_floats(rng: np.random.Generator, shape, fmt_name: str) -> np.ndarray:
    """Float inputs that exercise the contract: a spread of magnitudes, ±0, values in the
    format's subnormal range, values beyond its largest finite (saturating FP8, overflowing
    bf16), and — except for MX, whose inputs must be finite — NaN and ±Inf."""
    from golden.numerics import get_format

    f = get_format(fmt_name)
    el = f.element
    x = rng.standard_normal(shape) * 2.0 ** float(rng.integers(-8, 9))
    pick = rng.random(shape)
    tiny = 2.0 ** (1 - el.bias) * rng.uniform(0, 1, shape)           # subnormal range
    x = np.where(pick < 0.06, tiny * rng.choice([-1, 1], shape), x)
    x = np.where((pick >= 0.06) & (pick < 0.10), rng.choice([0.0, -0.0], shape), x)
    huge = f.max_finite * rng.uniform(1, 4, shape) * rng.choice([-1, 1], shape)
    if f.name == "bf16":
        huge = rng.choice([-1, 1], shape) * 2.0 ** rng.uniform(100, 127.9, shape)
    if f.is_mx:
        huge = rng.choice([-1, 1], shape) * 2.0 ** rng.uniform(60, 127, shape)
    x = np.where((pick >= 0.10) & (pick < 0.14), huge, x)
    if not f.is_mx:
        x = np.where((pick >= 0.14) & (pick < 0.15), np.nan, x)
        x = np.where((pick >= 0.15) & (pick < 0.16), np.inf * rng.choice([-1, 1], shape), x)
    return x


def operands(rng: np.random.Generator, dtype: str, m: int, k: int, n: int):
    """One matmul's operands as element words of ``dtype``: (A (m,k), B (k,n)).

    Floats also get exact cancellations planted: pairs of A columns repeated against pairs of
    B rows negated, so some sums are exactly zero (+0 by the contract).
    """
    if dtype == "int8":
        return random_int8(rng, (m, k)), random_int8(rng, (k, n))
    from golden.numerics import get_format

    f = get_format(dtype)
    a = random_floats(rng, (m, k), dtype)
    b = random_floats(rng, (k, n), dtype)
    if k >= 2:
        # Some rows of A repeat each value twice and some columns of B negate every second one:
        # those outputs sum (x*y) + (-x*y) pairs — exact in float32 for moderate values — to +0.
        rows = rng.random(m) < 0.4
        rows[rng.integers(m)] = True
        cols = rng.random(n) < 0.4
        cols[rng.integers(n)] = True
        a[rows] = rng.standard_normal((int(rows.sum()), k))
        b[:, cols] = rng.standard_normal((k, int(cols.sum())))
        for t in range(0, k - 1, 2):
            a[rows, t + 1] = a[rows, t]
            b[t + 1, cols] = -b[t, cols]
        if k % 2:
            a[rows, k - 1] = 0.0
    with np.errstate(over="ignore"):
        return f.quantize(a, axis=1), f.quantize(b, axis=0)
