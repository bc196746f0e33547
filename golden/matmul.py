"""Matmul jobs: the CLI's contract on the operands, and batches onto the scheduler.

``A`` is (M, K) or (batch, M, K), ``B`` is (K, N) or (batch, K, N); the batch becomes a list of
independent matmuls for :func:`golden.schedule.schedule`, which the golden model and the RTL run
alike. ``split="auto"`` picks the mode (and orientation) the cycle model predicts fastest.
"""

from __future__ import annotations

import numpy as np

from hdl.config import ArrayConfig

from .schedule import Plan, run_golden, schedule

__all__ = ["OperandError", "assemble", "check_operands", "plan_matmul", "run_golden"]


class OperandError(ValueError):
    """A matmul operand breaks the contract (one-line message for the CLI)."""


def check_operands(cfg: ArrayConfig, a, b) -> tuple[np.ndarray, np.ndarray]:
    """Validate A and B against the contract and return their element words, shaped
    (batch, M, K) and (batch, K, N): int8 values, or the float formats' words (cast and, for MX,
    quantized in blocks of 32 along K by ``golden.numerics``).

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
        what = "int8 contract's limit" if cfg.dtype == "int8" else "limit"
        raise OperandError(f"K = {k} exceeds the {what} of {ArrayConfig.MAX_K}")
    if cfg.is_float:
        return _float_words(cfg, a, b)
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


def _float_words(cfg: ArrayConfig, a: np.ndarray, b: np.ndarray):
    from .numerics import NumericsError, get_format

    f = get_format(cfg.dtype)
    for name, x in (("A", a), ("B", b)):
        if x.dtype == np.bool_ or not (np.issubdtype(x.dtype, np.integer)
                                       or np.issubdtype(x.dtype, np.floating)):
            raise OperandError(f"{name} must hold real numbers, not {x.dtype}")
    a3 = a if a.ndim == 3 else a[None]
    b3 = b if b.ndim == 3 else b[None]
    try:
        with np.errstate(over="ignore"):
            return f.quantize(a3, axis=-1), f.quantize(b3, axis=-2)
    except NumericsError as e:
        raise OperandError(str(e)) from None


def plan_matmul(cfg: ArrayConfig, a, b, split="1x1", orientation: str = "auto") -> Plan:
    """Check the operands and schedule the (batched) matmul on ``split`` (``"auto"``: fastest).

    Raises :class:`OperandError` for bad operands and :class:`ValueError` for a bad mode.
    """
    a3, b3 = check_operands(cfg, a, b)
    ops = list(zip(a3, b3, strict=True))
    if split == "auto":
        best = None
        for mode in cfg.modes:
            plan = schedule(cfg, mode, ops, orientation)
            cyc = plan.cycles().cycles
            if best is None or cyc < best[0]:
                best = (cyc, plan)
        return best[1]
    return schedule(cfg, split, ops, orientation)


def assemble(plan: Plan, cmem, squeeze: bool) -> np.ndarray:
    """C as one array — int32 for int8, float32 for the float formats — shaped (batch, M, N),
    or (M, N) when the inputs were 2-D."""
    c = np.stack(plan.assemble(np.asarray(cmem, dtype=np.int32)))
    if plan.cfg.is_float:
        c = np.ascontiguousarray(c).view(np.float32)
    return c[0] if squeeze else c
