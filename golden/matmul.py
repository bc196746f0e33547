"""Tiling of C = A·B onto the array, shared by the golden model and every RTL driver.

A job is cut into *passes*: one weight tile (R rows of K × C columns of N, zero padded) and the
matching K-slice of A streamed through, row by row. K-tiles are accumulated in increasing k order
by injecting the running sum of the previous K-tile (the array adds it at the top of the columns),
so every output element sums its K terms in increasing k order, whatever the array size.

Pass order is ``for kt: for b: for nt`` — all K-tiles ``kt`` of every (batch, N-tile) output block
before the next K-tile, so a pass's partial sums were produced ``batch * n_tiles`` passes earlier
and are normally back from the array by the time they are needed.

The plan is plain arrays, which the golden model executes here and the harness loads into its
memories (``verif/harness.py``):

``weights`` (P·R, C)
    weight rows in stream order (each tile row 0 first).
``act`` (NA, R)
    each (batch, K-tile) slice of A stored once, M rows each.
``passes`` (P, 5) int64
    ``act_base, rows, acc, c_base, dep`` — see :data:`PASS_FIELDS`.
The result memory (``n_crows`` rows of C) holds, for each (batch, N-tile), M rows; after the last
K-tile it holds C.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.config import ArrayConfig

from .array import ArrayModel, CycleReport

__all__ = ["PASS_FIELDS", "Plan", "check_operands", "plan_matmul", "run_golden"]

PASS_FIELDS = ("act_base", "rows", "acc", "c_base", "dep")


class OperandError(ValueError):
    """A matmul operand breaks the contract (one-line message for the CLI)."""


def check_operands(cfg: ArrayConfig, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Validate A and B against the contract and return them as (batch, M, K), (batch, K, N) int8.

    Raises :class:`OperandError` with a one-line message on any violation.
    """
    a = np.asarray(a)
    b = np.asarray(b)
    for name, x in (("A", a), ("B", b)):
        if x.ndim not in (2, 3):
            raise OperandError(f"{name} must be 2-D or 3-D (batch first), not {x.ndim}-D {x.shape}")
        if x.size == 0:
            raise OperandError(f"{name} is empty: shape {x.shape}")
    if a.ndim != b.ndim:
        raise OperandError(f"A and B must both be 2-D or both 3-D, not {a.shape} and {b.shape}")
    if a.ndim == 3 and a.shape[0] != b.shape[0]:
        raise OperandError(f"batch sizes differ: A {a.shape} vs B {b.shape}")
    if a.shape[-1] != b.shape[-2]:
        raise OperandError(f"inner dimensions differ: A {a.shape} (K={a.shape[-1]}) vs "
                           f"B {b.shape} (K={b.shape[-2]})")
    k = a.shape[-1]
    if k > ArrayConfig.MAX_K:
        raise OperandError(f"K = {k} exceeds the int8 contract's limit of {ArrayConfig.MAX_K}")
    out = []
    for name, x in (("A", a), ("B", b)):
        if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer)
                                       or np.issubdtype(x.dtype, np.floating)):
            raise OperandError(f"{name} must hold integers, not {x.dtype}")
        if np.issubdtype(x.dtype, np.floating):
            if not np.all(np.isfinite(x)):
                raise OperandError(f"{name} holds NaN or Inf; int8 needs integers in [-128, 127]")
            if not np.all(x == np.round(x)):
                bad = x[x != np.round(x)].flat[0]
                raise OperandError(f"{name} holds a non-integer value ({bad}); "
                                   f"int8 needs integers in [-128, 127]")
        lo, hi = x.min(), x.max()
        if lo < -128 or hi > 127:
            bad = lo if lo < -128 else hi
            raise OperandError(f"{name} holds {bad:g}, outside int8 [-128, 127]")
        x = x.astype(np.int8)
        out.append(x if x.ndim == 3 else x[None])
    return out[0], out[1]


@dataclass
class Plan:
    """A job cut into array passes (see the module docstring)."""

    cfg: ArrayConfig
    batch: int
    m: int
    k: int
    n: int
    squeeze: bool                #: inputs were 2-D: the result drops the batch axis
    weights: np.ndarray          #: (P*R, C) int8
    act: np.ndarray              #: (NA, R) int8
    passes: np.ndarray           #: (P, 5) int64, fields PASS_FIELDS
    n_crows: int

    @property
    def n_passes(self) -> int:
        return len(self.passes)

    @property
    def k_tiles(self) -> int:
        return -(-self.k // self.cfg.rows)

    @property
    def n_tiles(self) -> int:
        return -(-self.n // self.cfg.cols)

    @property
    def out_rows(self) -> int:
        """Result rows the array produces (every pass, every row)."""
        return int(self.passes[:, 1].sum())

    @property
    def macs(self) -> int:
        """Useful multiply-accumulates (padding excluded)."""
        return self.batch * self.m * self.k * self.n

    def field(self, name: str) -> np.ndarray:
        return self.passes[:, PASS_FIELDS.index(name)]

    def c_row(self, b: int, nt: int) -> int:
        """First result-memory row of output block (batch ``b``, N-tile ``nt``)."""
        return (b * self.n_tiles + nt) * self.m

    def assemble(self, cmem: np.ndarray) -> np.ndarray:
        """The result C from the result memory (int32, (batch, M, N) or (M, N))."""
        cfg = self.cfg
        blocks = np.asarray(cmem, dtype=np.int32)[: self.n_crows]
        blocks = blocks.reshape(self.batch, self.n_tiles, self.m, cfg.cols)
        c = blocks.transpose(0, 2, 1, 3).reshape(self.batch, self.m, self.n_tiles * cfg.cols)
        c = np.ascontiguousarray(c[:, :, : self.n])
        return c[0] if self.squeeze else c

    def cycles(self, **timing) -> CycleReport:
        """The cycle model's prediction for this plan without gaps (harness timing by default;
        see :meth:`ArrayModel.cycles` for ``timing``)."""
        return ArrayModel(self.cfg).cycles(self.field("rows"), self.field("acc"),
                                           self.field("dep"), **timing)


def plan_matmul(cfg: ArrayConfig, a, b) -> Plan:
    """Tile C = A·B for ``cfg``. ``a``/``b`` are checked with :func:`check_operands`."""
    squeeze = np.asarray(a).ndim == 2
    a3, b3 = check_operands(cfg, a, b)
    R, C = cfg.rows, cfg.cols
    batch, m, k = a3.shape
    n = b3.shape[2]
    kt_n, nt_n = -(-k // R), -(-n // C)
    # Zero-pad K to whole tiles (padded rows/weights add exact zeros) and N to whole columns.
    ap = np.zeros((batch, m, kt_n * R), dtype=np.int8)
    ap[:, :, :k] = a3
    bp = np.zeros((batch, kt_n * R, nt_n * C), dtype=np.int8)
    bp[:, :k, :n] = b3
    # A stored once per (batch, K-tile): rows [(b*kt_n + kt)*m, +m).
    act = ap.reshape(batch, m, kt_n, R).transpose(0, 2, 1, 3).reshape(-1, R)
    weights, passes = [], []
    out_base = 0
    first_out = {}
    for kt in range(kt_n):
        for bi in range(batch):
            for nt in range(nt_n):
                weights.append(bp[bi, kt * R:(kt + 1) * R, nt * C:(nt + 1) * C])
                acc = kt > 0
                dep = first_out[(bi, nt)] if acc else 0
                passes.append(((bi * kt_n + kt) * m, m, int(acc), (bi * nt_n + nt) * m, dep))
                first_out[(bi, nt)] = out_base
                out_base += m
    return Plan(cfg=cfg, batch=batch, m=m, k=k, n=n, squeeze=squeeze,
                weights=np.concatenate(weights).reshape(-1, C),
                act=np.ascontiguousarray(act),
                passes=np.array(passes, dtype=np.int64).reshape(-1, len(PASS_FIELDS)),
                n_crows=batch * nt_n * m)


def run_golden(plan: Plan) -> np.ndarray:
    """Execute ``plan`` on the golden array model; returns the result memory (n_crows, C)."""
    cfg = plan.cfg
    model = ArrayModel(cfg)
    cmem = np.zeros((plan.n_crows, cfg.cols), dtype=np.int32)
    R = cfg.rows
    for p, (ab, rows, acc, cb, _dep) in enumerate(plan.passes):
        w = plan.weights[p * R:(p + 1) * R]
        psum = cmem[cb:cb + rows] if acc else None
        cmem[cb:cb + rows] = model.tile(w, plan.act[ab:ab + rows], psum)
    return cmem
