"""Golden model of :class:`hdl.array.SystolicArray`: bit-exact results and a cycle model.

The result model works one *pass* at a time (one weight tile, ``M`` activation rows, optional
injected partial sums), exactly as the array computes: for each output element the sum runs over
the array rows ``i = 0 .. R-1`` in increasing order, starting from the injected partial sum.

The cycle model predicts, cycle for cycle, a job streamed through the array by the simulation
harness (``verif/harness.py``) when no stream has gaps: it mirrors the array's control (two weight
banks, the diagonal load schedule, latency ``R + C``) and the harness's feeders (registered stream
sources, partial sums read back from the result memory once written). Tests hold it to the RTL
cycle count exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hdl.config import ArrayConfig, Group

__all__ = ["ArrayModel", "CycleReport"]


def _wrap32(x: np.ndarray) -> np.ndarray:
    """Two's-complement wrap to int32 (the accumulator register's width)."""
    return (np.asarray(x, dtype=np.int64) & 0xFFFFFFFF).astype(np.uint32).view(np.int32)


@dataclass
class CycleReport:
    """Predicted timing of a job (all in array clock cycles)."""

    cycles: int                 #: first cycle after reset .. last result row transfer, inclusive
    act_busy: int               #: cycles an activation row was transferred (= rows streamed)
    wait_weights: int           #: cycles the activation stream waited for a weight tile
    wait_psum: int              #: cycles it waited for a partial sum still in flight
    fill_drain: int             #: start-up and pipeline drain cycles (latency R + C and feeders)
    first_row: int              #: cycle the first activation row was transferred
    act_times: np.ndarray       #: transfer cycle of every activation row, in stream order

    def as_dict(self) -> dict:
        return {
            "cycles": self.cycles,
            "act_busy": self.act_busy,
            "wait_weights": self.wait_weights,
            "wait_psum": self.wait_psum,
            "fill_drain": self.fill_drain,
        }


class ArrayModel:
    """Bit-exact model of one group of an array configuration.

    Parameters
    ----------
    cfg : ArrayConfig
    group : Group, optional
        The group that runs the passes (default: the whole array, mode ``1x1``).
    """

    #: First cycle a harness source offers a beat: the mode is taken in cycle 0, then the
    #: sources start (their valid registers).
    SOURCE_DELAY = 2
    #: Extra cycles from a result row's transfer to its partial sum being offered again: the
    #: result memory write and the partial-sum source register.
    PSUM_TURNAROUND = 2

    def __init__(self, cfg: ArrayConfig, group: Group | None = None):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        self.cfg = cfg
        self.group = group if group is not None else cfg.groups((1, 1))[0]

    # --- results ----------------------------------------------------------------------------
    def tile(self, weights, act, psum=None) -> np.ndarray:
        """One pass: ``out[m, j] = psum[m, j] + sum_i act[m, i] * weights[i, j]``.

        ``weights`` is (rows, cols) of the group, ``act`` (M, rows), both element words;
        ``psum`` (M, cols) accumulator bits (int32) or ``None`` for zeros. int8: exact, wrapped
        to int32. Float formats: one fused float32 step per array row, i = 0 .. rows-1 in
        order (``golden.numerics.fma_f32``); the result is float32 bits (NaN canonical).
        """
        g = self.group
        w = np.asarray(weights)
        a = np.asarray(act)
        if w.shape != (g.rows, g.cols):
            raise ValueError(f"weight tile must be {g.rows}x{g.cols}, not {w.shape}")
        if a.ndim != 2 or a.shape[1] != g.rows:
            raise ValueError(f"activation rows must be (M, {g.rows}), not {a.shape}")
        if not self.cfg.is_float:
            # Exact in int64 (|a*w| <= 2**14, R <= 256 terms), then the register's wrap.
            acc = a.astype(np.int64) @ w.astype(np.int64)
            if psum is not None:
                acc = acc + np.asarray(psum, dtype=np.int64)
            return _wrap32(acc)
        from .numerics import bits_f32, f32_bits, fma_f32, get_format

        f = get_format(self.cfg.dtype)
        av, wv = f.values(a), f.values(w)
        acc = (bits_f32(psum) if psum is not None
               else np.zeros((a.shape[0], g.cols), dtype=np.float32))
        with np.errstate(invalid="ignore", over="ignore"):
            for i in range(g.rows):
                acc = fma_f32(acc, av[:, i, None] * wv[None, i, :])
        return f32_bits(acc)

    # --- cycles -----------------------------------------------------------------------------
    def cycles(self, rows, acc, dep, source_delay: int | None = None,
               psum_turnaround: int | None = None) -> CycleReport:
        """Predict a gap-free run.

        Parameters
        ----------
        rows : sequence of int
            Activation rows of each pass (one weight tile per pass), in stream order.
        acc : sequence of bool
            Whether each pass adds injected partial sums.
        dep : sequence of int
            For an ``acc`` pass, the stream index of the result row that feeds its first
            partial sum (its row ``m`` reads result row ``dep + m``); ignored otherwise.
        source_delay, psum_turnaround
            Driver timing: the first cycle a source can offer a beat, and the cycles from a
            result row's transfer to its partial sum being offered. Default: the harness's
            (:attr:`SOURCE_DELAY`, :attr:`PSUM_TURNAROUND`).
        """
        sd = self.SOURCE_DELAY if source_delay is None else source_delay
        pt = self.PSUM_TURNAROUND if psum_turnaround is None else psum_turnaround
        R, lat = self.group.rows, self.group.latency
        rows = [int(r) for r in rows]
        n = sum(rows)
        A = np.zeros(n, dtype=np.int64)      # activation row transfer cycle
        q = 0
        last_a = sd - 1                      # transfer cycle of the previous activation row
        w_last = sd - 1                      # transfer cycle of the previous weight beat
        ends = []                            # last activation row cycle of each tile
        wait_w = wait_p = 0
        for t, (mt, acc_t, dep_t) in enumerate(zip(rows, acc, dep, strict=True)):
            # Weight beats: back to back, but a bank reloads only after the tile two back
            # (same bank) transferred its last row.
            w0 = w_last + 1
            if t >= 2:
                w0 = max(w0, ends[t - 2] + 1)
            w_last = w0 + R - 1
            free = last_a + 1                # activation source offers the next row
            start = max(free, w_last + 1)    # bank complete the cycle after its last beat
            base = np.full(mt, start, dtype=np.int64)
            if acc_t:
                ready = A[dep_t:dep_t + mt] + lat + pt
                base = np.maximum(base, ready - np.arange(mt))
            times = np.maximum.accumulate(base) + np.arange(mt)
            A[q:q + mt] = times
            wait_w += start - free
            wait_p += int(times[-1] - times[0] - (mt - 1)) + int(times[0] - start)
            q += mt
            last_a = int(times[-1])
            ends.append(last_a)
        total = last_a + lat + 1
        return CycleReport(
            cycles=total,
            act_busy=n,
            wait_weights=int(wait_w),
            wait_psum=int(wait_p),
            fill_drain=int(total - n - wait_w - wait_p),
            first_row=int(A[0]) if n else 0,
            act_times=A,
        )
