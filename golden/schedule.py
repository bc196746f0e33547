"""The scheduler: a batch of independent matmuls onto the groups of a split mode.

Shared by the golden model and every RTL driver (the harness and the direct testbench), so the
RTL and the model execute the same passes.

* **Units.** A matmul C = A·B is cut into output blocks of one group's width: a block is one
  N-tile of C with all its K-tiles. A block runs entirely on one group, as ``k_tiles`` *passes*
  (one weight tile of ``rows × cols`` and ``M`` activation rows each); pass ``kt > 0`` injects the
  running sum of pass ``kt - 1``, so every output element accumulates its K terms in increasing k
  order — in every mode, which is why results are bit-identical across modes.
* **Orientation.** A block may instead compute ``C^T = B^T · A^T`` (stream the rows of ``B^T``,
  keep ``A^T`` stationary): the same products in the same k order, better when M is small and N
  large (decode). ``auto`` picks, per matmul, the orientation of fewer predicted cycles.
* **Assignment.** Blocks go to groups longest first, each to the least loaded group (LPT).
* **Order.** Within a group: ``for kt: for block`` — a block's partial sums come back
  ``#blocks`` passes later, normally before they are needed.

Plans are plain arrays, per group: ``weights`` (P·rows, cols), ``act`` (NA, rows) — each A-slice
stored once —, and ``passes`` (P, 5): ``act_base, rows, acc, c_base, dep`` (``dep``: the group's
own result-row index whose partial sum feeds the pass's first row). All groups share one result
memory of ``n_crows`` rows of ``cfg.cols`` elements.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hdl.config import ArrayConfig, Group

from .array import ArrayModel, CycleReport

__all__ = ["PASS_FIELDS", "GroupPlan", "Plan", "ScheduleCycles", "Unit", "run_golden",
           "schedule"]

PASS_FIELDS = ("act_base", "rows", "acc", "c_base", "dep")
ORIENTATIONS = ("auto", "normal", "transposed")


def _cdiv(a: int, b: int) -> int:
    return -(-a // b)


@dataclass
class Unit:
    """One output block: matmul ``mm``, N-tile ``nt`` (of the oriented product)."""

    mm: int
    transposed: bool
    nt: int
    rows: int          #: activation rows streamed per pass (M, or N when transposed)
    k: int
    cols: int          #: valid result columns in this block
    c_base: int = 0    #: first result-memory row
    group: int = 0


@dataclass
class GroupPlan:
    """The passes one group runs, and its stream contents."""

    group: Group
    units: list[Unit]
    weights: np.ndarray            #: (P*rows, cols)
    act: np.ndarray                #: (NA, rows)
    passes: np.ndarray             #: (P, 5) int64, fields PASS_FIELDS

    @property
    def n_passes(self) -> int:
        return len(self.passes)

    @property
    def out_rows(self) -> int:
        return int(self.passes[:, 1].sum()) if len(self.passes) else 0

    def field(self, name: str) -> np.ndarray:
        return self.passes[:, PASS_FIELDS.index(name)]

    def cycles(self, cfg: ArrayConfig, **timing) -> CycleReport:
        return ArrayModel(cfg, self.group).cycles(self.field("rows"), self.field("acc"),
                                                  self.field("dep"), **timing)


@dataclass
class ScheduleCycles:
    """Cycle-model prediction of a whole plan: groups run concurrently."""

    cycles: int
    groups: list[CycleReport]

    def as_dict(self) -> dict:
        busy = [g.cycles if g.act_busy else 0 for g in self.groups]
        return {"cycles": self.cycles, "group_cycles": busy,
                "groups": [g.as_dict() for g in self.groups]}


@dataclass
class Plan:
    """A batch of matmuls scheduled onto the groups of one split mode."""

    cfg: ArrayConfig
    mode: tuple[int, int]
    shapes: list[tuple[int, int, int]]          #: (M, K, N) per matmul
    groups: list[GroupPlan]
    n_crows: int
    units: list[Unit] = field(default_factory=list)

    @property
    def macs(self) -> int:
        return sum(m * k * n for m, k, n in self.shapes)

    @property
    def n_passes(self) -> int:
        return sum(g.n_passes for g in self.groups)

    @property
    def out_rows(self) -> int:
        return sum(g.out_rows for g in self.groups)

    @property
    def split(self) -> str:
        return f"{self.mode[0]}x{self.mode[1]}"

    def orientation(self) -> list[str]:
        o = ["normal"] * len(self.shapes)
        for u in self.units:
            o[u.mm] = "transposed" if u.transposed else "normal"
        return o

    def cycles(self, **timing) -> ScheduleCycles:
        reps = [g.cycles(self.cfg, **timing) for g in self.groups]
        return ScheduleCycles(cycles=max(r.cycles for r in reps if r.act_busy), groups=reps)

    def assemble(self, cmem: np.ndarray) -> list[np.ndarray]:
        """The results, one int32 (M, N) array per matmul, from the result memory."""
        cmem = np.asarray(cmem)
        outs = [np.zeros((m, n), dtype=cmem.dtype) for m, _, n in self.shapes]
        gcols = self.groups[0].group.cols
        for u in self.units:
            blk = cmem[u.c_base:u.c_base + u.rows, :u.cols]
            lo = u.nt * gcols
            if u.transposed:
                outs[u.mm][lo:lo + u.cols, :] = blk.T
            else:
                outs[u.mm][:, lo:lo + u.cols] = blk
        return outs


def _cost(rows_streamed: int, k_tiles: int, n_tiles: int, g: Group) -> int:
    """Cycles the block needs on its own: a pass takes max(M, rows) (weight-load bound)."""
    return k_tiles * n_tiles * max(rows_streamed, g.rows)


def schedule(cfg: ArrayConfig, mode, operands, orientation: str = "auto") -> Plan:
    """Schedule ``operands`` — a list of (A (M,K), B (K,N)) arrays of element words of
    ``cfg.dtype`` (int8 values, or ``golden.numerics`` words) — on ``mode``.

    Padding (K beyond the matmul, N beyond its last tile) is +0 in the streamed operand and -0
    in the stationary one: their product, -0, leaves every float sum unchanged (and adds 0 to
    int8 sums).
    """
    from .numerics import get_format

    pad_a, pad_w = get_format(cfg.dtype).pad_words()
    gr, gc = cfg.check_mode(mode)
    if orientation not in ORIENTATIONS:
        raise ValueError(f"orientation must be one of {', '.join(ORIENTATIONS)}, "
                         f"not {orientation!r}")
    groups = cfg.groups((gr, gc))
    g0 = groups[0]
    R, C = g0.rows, g0.cols
    units, shapes, ops = [], [], []
    for i, (a, b) in enumerate(operands):
        a, b = np.asarray(a), np.asarray(b)
        m, k = a.shape
        n = b.shape[1]
        shapes.append((m, k, n))
        kt = _cdiv(k, R)
        cost_n = _cost(m, kt, _cdiv(n, C), g0)
        cost_t = _cost(n, kt, _cdiv(m, C), g0)
        t = orientation == "transposed" or (orientation == "auto" and cost_t < cost_n)
        # The streamed operand (rows x K) and the stationary one (K x cols).
        ops.append((b.T, a.T) if t else (a, b))
        rows, ncols = (n, m) if t else (m, n)
        for nt in range(_cdiv(ncols, C)):
            units.append(Unit(mm=i, transposed=t, nt=nt, rows=rows, k=k,
                              cols=min(C, ncols - nt * C)))
    # Result-memory rows, in unit order.
    base = 0
    for u in units:
        u.c_base = base
        base += u.rows
    # LPT: longest block first, to the least loaded group (ties: lowest group index).
    load = [0] * len(groups)
    order = sorted(range(len(units)),
                   key=lambda x: (-_cost(units[x].rows, _cdiv(units[x].k, R), 1, g0), x))
    per_group: list[list[Unit]] = [[] for _ in groups]
    for x in order:
        gi = min(range(len(groups)), key=lambda j: (load[j], j))
        units[x].group = gi
        per_group[gi].append(units[x])
        load[gi] += _cost(units[x].rows, _cdiv(units[x].k, R), 1, g0)

    gplans = []
    for gi, g in enumerate(groups):
        us = per_group[gi]
        act_rows, act_base = [], {}
        for u in us:
            key = (u.mm, u.transposed)
            if key in act_base:
                continue
            s_op = ops[u.mm][0]                      # streamed (rows x K)
            kt_n = _cdiv(u.k, R)
            pad = np.full((u.rows, kt_n * R), pad_a, dtype=s_op.dtype)
            pad[:, :u.k] = s_op
            act_base[key] = sum(len(x) for x in act_rows)
            act_rows.append(pad.reshape(u.rows, kt_n, R).transpose(1, 0, 2).reshape(-1, R))
        weights, passes = [], []
        out_base, first_out = 0, {}
        for kt in range(max((_cdiv(u.k, R) for u in us), default=0)):
            for ui, u in enumerate(us):
                if kt >= _cdiv(u.k, R):
                    continue
                w_op = ops[u.mm][1]                  # stationary (K x cols)
                tile = np.full((R, C), pad_w, dtype=w_op.dtype)
                blk = w_op[kt * R:(kt + 1) * R, u.nt * C:u.nt * C + u.cols]
                tile[:blk.shape[0], :blk.shape[1]] = blk
                weights.append(tile)
                acc = kt > 0
                passes.append((act_base[(u.mm, u.transposed)] + kt * u.rows, u.rows, int(acc),
                               u.c_base, first_out[ui] if acc else 0))
                first_out[ui] = out_base
                out_base += u.rows
        dtype = operands[0][0].dtype if operands else np.int8
        gplans.append(GroupPlan(
            group=g, units=us,
            weights=(np.concatenate(weights) if weights
                     else np.zeros((0, C), dtype=dtype)).reshape(-1, C),
            act=(np.concatenate(act_rows) if act_rows
                 else np.zeros((0, R), dtype=dtype)).reshape(-1, R),
            passes=np.array(passes, dtype=np.int64).reshape(-1, len(PASS_FIELDS))))
    return Plan(cfg=cfg, mode=(gr, gc), shapes=shapes, groups=gplans, n_crows=base, units=units)


def run_golden(plan: Plan) -> np.ndarray:
    """Execute ``plan`` on the golden model; returns the result memory (n_crows, cfg.cols) of
    int32 words (int8 results, or float32 bits)."""
    cmem = np.zeros((plan.n_crows, plan.cfg.cols), dtype=np.int32)
    for gp in plan.groups:
        model = ArrayModel(plan.cfg, gp.group)
        R, C = gp.group.rows, gp.group.cols
        for p, (ab, rows, acc, cb, _dep) in enumerate(gp.passes):
            w = gp.weights[p * R:(p + 1) * R]
            psum = cmem[cb:cb + rows, :C] if acc else None
            cmem[cb:cb + rows, :C] = model.tile(w, gp.act[ab:ab + rows], psum)
    return cmem
