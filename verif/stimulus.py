"""Random stimulus shared by the testbenches: operands with the extremes, edge-sized shapes."""

from __future__ import annotations

import os
import random

import numpy as np

__all__ = ["edge_sizes", "pick_seed", "random_int8", "random_shape"]


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


def random_shape(rng: np.random.Generator, rows: int, cols: int, max_batch: int = 2):
    """(batch, M, K, N) with K from the row edge sizes, N from the column edge sizes."""
    b = int(rng.integers(1, max_batch + 1))
    m = int(rng.choice(edge_sizes(rows) + [int(rng.integers(1, 3 * rows + 1))]))
    k = int(rng.choice(edge_sizes(rows)))
    n = int(rng.choice(edge_sizes(cols)))
    return b, m, k, n
