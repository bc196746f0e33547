"""Splittable weight-stationary R×C systolic array: a mesh of r×c sub-arrays.

Dataflow of one group (an (R/GR)×(C/GC) block of sub-arrays running one job; ``1x1`` = the whole
array). A row transferred on the group's ``act`` stream in enabled cycle ``t`` meets PE ``(i, j)``
(local row ``i``, in local sub-array column ``q``) in cycle ``t + i + q``::

    act row ──► row i delayed i ──► broadcast over the sub-array's c columns ─► E ─► next …
    psum row ─► column j delayed q ─► top PE row ↓ one PE row per cycle ↓ bottom PE row
                                       ─► column j delayed (w-1-q) ─► out row (de-skewed)

* Activations are broadcast along a row inside a sub-array and registered between sub-arrays
  (the ``E`` registers), as in Gemmini's mesh of tiles; partial sums are registered at every PE
  row, so each PE does one multiply-accumulate per cycle. ``c = 1`` is the classic fully systolic
  array. Fresh streams enter without an input register: the stream source's register is the
  first stage.
* The result row is presented ``rows + w - 1`` cycles after the activation row
  (``Group.latency``; ``w`` = the group's width in sub-arrays).
* Weights: a tile is ``rows`` beats on ``weight``, row 0 first; beat ``i`` is written into one
  bank of PE(i, j) ``q`` cycles after its transfer — the data's diagonal schedule — so a bank
  reloads from the cycle after the last row of the tile that used it, and a tile computes from the
  cycle after its last weight beat: with ``M >= rows`` rows per tile, tiles run back to back.
* The bank select travels with each activation; ``acc``/``last`` flags with each row.

Splitting: at every sub-array boundary where a group can start, muxes pick the neighbour's
activation (left) or the group's fresh stream through its own row skew; the neighbour's partial
sum (top) or the group's injected one; and a group's results leave de-skewed at the bottom of its
last sub-array row. The mode (``GRxGC``) is set through the ``mode`` stream while the array is
idle — no reset, no rebuild — and an unsupported mode raises ``mode_error`` and is ignored.

Stall: each group has one enable, ``~out.valid | out.ready`` of its own result stream, gating
every register of the group (weight path included): backpressure on one group freezes that group
only, with nothing lost or duplicated.
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import ArrayConfig
from .pe import PE, elem_shape

__all__ = ["SystolicArray", "act_layout", "mode_layout", "out_layout", "psum_layout",
           "weight_layout"]


def weight_layout(cfg: ArrayConfig) -> data.ArrayLayout:
    """One weight row: up to ``C`` weights, element ``j`` goes to the group's column ``j``."""
    return data.ArrayLayout(elem_shape(cfg), cfg.cols)


def act_layout(cfg: ArrayConfig) -> data.StructLayout:
    """One activation row: up to ``R`` elements (element ``i`` meets weight row ``i``), two flags.

    ``acc``: add the next ``psum`` row to this row's result (else start from zero).
    ``last``: last row of the current weight tile; the group then switches to the other bank.
    """
    return data.StructLayout({
        "data": data.ArrayLayout(elem_shape(cfg), cfg.rows),
        "acc": 1,
        "last": 1,
    })


def psum_layout(cfg: ArrayConfig) -> data.ArrayLayout:
    """One partial-sum row injected at the top of the group's columns."""
    return data.ArrayLayout(signed(cfg.acc_bits), cfg.cols)


def out_layout(cfg: ArrayConfig) -> data.StructLayout:
    """One result row and the ``last`` flag of the activation row it came from."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.acc_bits), cfg.cols),
        "last": 1,
    })


def mode_layout(cfg: ArrayConfig) -> data.StructLayout:
    """A split mode: ``rows`` = GR, ``cols`` = GC."""
    return data.StructLayout({"rows": range(cfg.sr + 1), "cols": range(cfg.sc + 1)})


class SystolicArray(wiring.Component):
    """Splittable weight-stationary array of :class:`PE`, whole rows in and out.

    Parameters
    ----------
    cfg : ArrayConfig
        Size, sub-array size, element format, and whether the split logic is built.

    Members
    -------
    weight, act, psum : In(stream.Signature(...)).array(n_slots)
        Per slot: weight rows (a tile is ``rows`` beats, row 0 first), activation rows with
        ``acc``/``last``, partial-sum rows (one per activation row with ``acc``, in order).
    out : Out(stream.Signature(out_layout(cfg))).array(n_slots)
        Per slot: result rows, one per activation row, in order.
    mode : In(stream.Signature(mode_layout(cfg)))
        Split mode; taken only while the array is idle.
    mode_error : Out(1)
        The last mode offered was not a supported one (it was ignored).
    cur_mode : Out(mode_layout(cfg))
        The mode in force.
    busy : Out(1)
        Rows or weights in flight anywhere, or a weight tile loaded.

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`ArrayConfig`.
    """

    def __init__(self, cfg: ArrayConfig):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        self._cfg = cfg
        n = cfg.n_slots
        super().__init__({
            "weight": In(stream.Signature(weight_layout(cfg))).array(n),
            "act": In(stream.Signature(act_layout(cfg))).array(n),
            "psum": In(stream.Signature(psum_layout(cfg))).array(n),
            "out": Out(stream.Signature(out_layout(cfg))).array(n),
            "mode": In(stream.Signature(mode_layout(cfg))),
            "mode_error": Out(1),
            "cur_mode": Out(mode_layout(cfg)),
            "busy": Out(1),
        })

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    def elaborate(self, platform):  # noqa: C901 - one netlist, written out in order
        m = Module()
        cfg = self._cfg
        R, C, r, c, SR, SC = cfg.rows, cfg.cols, cfg.sub_rows, cfg.sub_cols, cfg.sr, cfg.sc
        modes = cfg.modes
        K = len(modes)
        slots = range(cfg.n_slots)
        # owner[k][p][q]: the group of mode k that holds sub-array (p, q).
        owner = []
        for mode in modes:
            grid = [[None] * SC for _ in range(SR)]
            for g in cfg.groups(mode):
                for dp in range(g.h):
                    for dq in range(g.w):
                        grid[g.p + dp][g.q + dq] = g
            owner.append(grid)
        slot_group = [{g.slot: g for g in cfg.groups(mode)} for mode in modes]

        mode_idx = Signal(range(max(K, 2)))

        def bym(table, shape, name):
            """A value chosen by the mode in force: ``table[k]`` for mode ``k``."""
            if all(isinstance(t, int) for t in table) and len(set(table)) == 1:
                return Const(table[0], shape)
            if all(t is table[0] for t in table):
                return table[0]
            sig = Signal(shape, name=name)
            with m.Switch(mode_idx):
                for k, t in enumerate(table):
                    with m.Case(k):
                        m.d.comb += sig.eq(t)
            return sig

        def reg(value, shape, en, name):
            q = Signal(shape, name=name, reset_less=True)
            with m.If(en):
                m.d.sync += q.eq(value)
            return q

        # --- per-slot control ----------------------------------------------------------------
        en, cur_bank, fire_a = {}, {}, {}
        w_stage = {}
        busy_terms = []
        for s in slots:
            groups = [sg.get(s) for sg in slot_group]
            act_modes = [g for g in groups if g is not None]
            active = bym([int(g is not None) for g in groups], 1, f"s{s}_active")
            max_rows = max(g.rows for g in act_modes)
            last_row = bym([(g.rows if g else 1) - 1 for g in groups], range(max_rows),
                           f"s{s}_last_row")
            e = Signal(name=f"s{s}_en")
            ws, as_, ps, os_ = self.weight[s], self.act[s], self.psum[s], self.out[s]
            m.d.comb += e.eq(~os_.valid | os_.ready)
            en[s] = e

            loaded = Signal(2, name=f"s{s}_loaded")
            load_bank = Signal(name=f"s{s}_load_bank")
            wrow = Signal(range(max_rows), name=f"s{s}_wrow")
            cb = Signal(name=f"s{s}_cur_bank")
            cur_bank[s] = cb
            w_fire, a_fire, act_ok = (Signal(name=f"s{s}_{n}") for n in ("wfire", "afire", "aok"))
            m.d.comb += [
                ws.ready.eq(e & active & ~loaded.bit_select(load_bank, 1)),
                w_fire.eq(ws.valid & ws.ready),
                act_ok.eq(e & active & loaded.bit_select(cb, 1)),
                as_.ready.eq(act_ok & (~as_.payload.acc | ps.valid)),
                ps.ready.eq(act_ok & as_.valid & as_.payload.acc),
                a_fire.eq(as_.valid & as_.ready),
            ]
            fire_a[s] = a_fire
            set_l, clr_l = Signal(2, name=f"s{s}_set"), Signal(2, name=f"s{s}_clr")
            with m.If(w_fire):
                with m.If(wrow == last_row):
                    m.d.sync += [wrow.eq(0), load_bank.eq(~load_bank)]
                    m.d.comb += set_l.eq(Mux(load_bank, 0b10, 0b01))
                with m.Else():
                    m.d.sync += wrow.eq(wrow + 1)
            with m.If(a_fire & as_.payload.last):
                m.d.sync += cb.eq(~cb)
                m.d.comb += clr_l.eq(Mux(cb, 0b10, 0b01))
            m.d.sync += loaded.eq((loaded | set_l) & ~clr_l)

            # The weight beat as it enters the buses: the row index is global (the slot's first
            # PE row + wrow); it is written where it lands in the same cycle (no in-stage).
            p_s = s // SC if cfg.splittable else 0
            wr = Signal(range(R), name=f"s{s}_wr")
            m.d.comb += wr.eq(wrow + p_s * r)
            w_stage[s] = (w_fire, wr, load_bank, ws.payload)

            # Valid and last travel with the wavefront to the output tap of the mode.
            max_lat = max(g.latency for g in act_modes)
            v = Signal(2, name=f"s{s}_vin")
            m.d.comb += v.eq(Mux(a_fire, Mux(as_.payload.last, 0b11, 0b01), 0))
            vl = []
            for k in range(max_lat):
                v = reg(v, 2, e, f"s{s}_vl{k}")
                vl.append(v)
            vsel = bym([vl[g.latency - 1] if g else Const(0, 2) for g in groups], 2,
                       f"s{s}_vout")
            m.d.comb += [os_.valid.eq(vsel[0]), os_.payload.last.eq(vsel[1])]
            busy_terms += [vk[0] for vk in vl] + [loaded.any(), wrow != 0]

        def en_of(p, q):
            return bym([en[owner[k][p][q].slot] for k in range(K)], 1, f"en_{p}_{q}")

        sub_en = {(p, q): en_of(p, q) for p in range(SR) for q in range(SC)}

        # --- weight paths: per start row p and sub-array column q, then buses down ----------
        wctl = data.StructLayout({"valid": 1, "row": range(R), "bank": 1})
        w_shape = elem_shape(cfg)
        bus_ctl, bus_w = {}, {}
        for p in range(SR):
            for q in range(SC):
                grp = [owner[k][p][q] for k in range(K)]
                fresh = [g.p == p for g in grp]
                if not any(fresh):
                    bus_ctl[(p, q)] = bus_ctl[(p - 1, q)]
                    for j in range(q * c, (q + 1) * c):
                        bus_w[(p, j)] = bus_w[(p - 1, j)]
                    continue
                depth = max(q - g.q for g, f in zip(grp, fresh, strict=True) if f)
                srcs = []
                for g, f in zip(grp, fresh, strict=True):
                    cv = Signal(wctl, name=f"wsrc_{p}_{q}_s{g.slot}")
                    if f:
                        wv, wr, wb, _ = w_stage[g.slot]
                        m.d.comb += [cv.valid.eq(wv), cv.row.eq(wr), cv.bank.eq(wb)]
                    srcs.append(cv)
                line = [bym(srcs, wctl, f"wctl_{p}_{q}")]
                for d in range(depth):
                    line.append(reg(line[-1], wctl, sub_en[(p, q)], f"wctl_{p}_{q}_d{d}"))
                busy_terms += [x.valid for x in line[1:]]
                tap = bym([line[q - g.q] if f else line[0] for g, f in zip(grp, fresh,
                                                                            strict=True)],
                          wctl, f"wtap_{p}_{q}")
                bus_ctl[(p, q)] = tap if p == 0 else bym(
                    [tap if f else bus_ctl[(p - 1, q)] for f in fresh], wctl, f"wbus_{p}_{q}")
                for j in range(q * c, (q + 1) * c):
                    srcs = [w_stage[g.slot][3][j - g.q * c] if f else Const(0, w_shape)
                            for g, f in zip(grp, fresh, strict=True)]
                    dl = [bym(srcs, w_shape, f"wd_{p}_{j}")]
                    for d in range(depth):
                        dl.append(reg(dl[-1], w_shape, sub_en[(p, q)], f"wd_{p}_{j}_d{d}"))
                    wtap = bym([dl[q - g.q] if f else dl[0] for g, f in zip(grp, fresh,
                                                                            strict=True)],
                               w_shape, f"wdtap_{p}_{j}")
                    bus_w[(p, j)] = wtap if p == 0 else bym(
                        [wtap if f else bus_w[(p - 1, j)] for f in fresh], w_shape,
                        f"wdbus_{p}_{j}")

        # --- activation paths: row skew per start column, E registers between sub-arrays ------
        # A[(q, i)]: the activation (data and bank select) of row i in sub-array column q. A
        # group starting at column q gets its stream's element i' (= i - first row) delayed i'
        # cycles; a column it continues gets its left neighbour's, one E register later.
        a_w = cfg.a_bits + 1
        A = {}
        for q in range(SC):
            for i in range(R):
                p = i // r
                fresh = [owner[k][p][q].q == q for k in range(K)]
                prev = None
                if q > 0 and not all(fresh):
                    prev = reg(A[(q - 1, i)], a_w, sub_en[(p, q)], f"E_{q}_{i}")
                if any(fresh):
                    depth = max(i - owner[k][p][q].p * r for k in range(K) if fresh[k])
                    srcs = []
                    for k in range(K):
                        g = owner[k][p][q]
                        if fresh[k]:
                            srcs.append(Cat(self.act[g.slot].payload.data[i - g.p * r],
                                            cur_bank[g.slot]))
                        else:
                            srcs.append(Const(0, a_w))
                    line = [bym(srcs, a_w, f"asrc_{q}_{i}")]
                    for d in range(depth):
                        line.append(reg(line[-1], a_w, sub_en[(p, q)], f"askew_{q}_{i}_d{d}"))
                    A[(q, i)] = bym([line[i - owner[k][p][q].p * r] if fresh[k] else prev
                                     for k in range(K)], a_w, f"a_{q}_{i}")
                else:
                    A[(q, i)] = prev

        # --- partial-sum injection per start row, PE grid -------------------------------------
        pes = [[PE(cfg) for _ in range(C)] for _ in range(R)]
        for p in range(SR):
            for j in range(C):
                q = j // c
                fresh = [owner[k][p][q].p == p for k in range(K)]
                above = pes[p * r - 1][j].p_out if p > 0 else None
                if any(fresh):
                    depth = max(q - owner[k][p][q].q for k in range(K) if fresh[k])
                    srcs = []
                    for k in range(K):
                        g = owner[k][p][q]
                        if fresh[k]:
                            a_s, p_s_ = self.act[g.slot], self.psum[g.slot]
                            srcs.append(Mux(a_s.payload.acc, p_s_.payload[j - g.q * c], 0))
                        else:
                            srcs.append(Const(0, signed(cfg.acc_bits)))
                    acc_shape = signed(cfg.acc_bits)
                    line = [bym(srcs, acc_shape, f"psrc_{p}_{j}")]
                    for d in range(depth):
                        line.append(reg(line[-1], acc_shape, sub_en[(p, q)],
                                        f"pskew_{p}_{j}_d{d}"))
                    top = bym([line[q - owner[k][p][q].q] if fresh[k] else above
                               for k in range(K)], signed(cfg.acc_bits), f"ptop_{p}_{j}")
                else:
                    top = above
                m.d.comb += pes[p * r][j].p_in.eq(top)

        for i in range(R):
            p = i // r
            for j in range(C):
                q = j // c
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                ctl = bus_ctl[(p, q)]
                hit = sub_en[(p, q)] & ctl.valid & (ctl.row == i)
                a = A[(q, i)]
                m.d.comb += [
                    pe.en.eq(sub_en[(p, q)]),
                    pe.a_in.eq(a[: cfg.a_bits]),
                    pe.sel.eq(a[cfg.a_bits]),
                    pe.w_in.eq(bus_w[(p, j)]),
                    pe.w_we.eq(Mux(hit, Mux(ctl.bank, 0b10, 0b01), 0)),
                ]
                if i % r != 0:
                    m.d.comb += pe.p_in.eq(pes[i - 1][j].p_out)

        # --- de-skew at the bottom of every sub-array row where a group can end --------------
        deskew = {}
        for p in range(SR):
            for j in range(C):
                q = j // c
                ends = [owner[k][p][q].p + owner[k][p][q].h - 1 == p for k in range(K)]
                if not any(ends):
                    continue
                depth = max(owner[k][p][q].q + owner[k][p][q].w - 1 - q
                            for k in range(K) if ends[k])
                line = [pes[p * r + r - 1][j].p_out]
                for d in range(depth):
                    line.append(reg(line[-1], signed(cfg.acc_bits), sub_en[(p, q)],
                                    f"oskew_{p}_{j}_d{d}"))
                deskew[(p, j)] = line
        for s in slots:
            for jl in range(C):
                srcs = []
                for k in range(K):
                    g = slot_group[k].get(s)
                    if g is None or jl >= g.cols:
                        srcs.append(Const(0, signed(cfg.acc_bits)))
                        continue
                    j = g.q * c + jl
                    q = j // c
                    srcs.append(deskew[(g.p + g.h - 1, j)][g.w - 1 - (q - g.q)])
                m.d.comb += self.out[s].payload.data[jl].eq(
                    bym(srcs, signed(cfg.acc_bits), f"out_{s}_{jl}"))

        # --- mode register -------------------------------------------------------------------
        busy = Signal()
        m.d.comb += [busy.eq(Cat(*busy_terms).any()), self.busy.eq(busy),
                     self.mode.ready.eq(~busy)]
        mode_err = Signal()
        with m.If(self.mode.valid & ~busy):
            m.d.sync += mode_err.eq(1)
            for k, (gr, gc) in enumerate(modes):
                with m.If((self.mode.payload.rows == gr) & (self.mode.payload.cols == gc)):
                    m.d.sync += [mode_idx.eq(k), mode_err.eq(0)]
        m.d.comb += [
            self.mode_error.eq(mode_err),
            self.cur_mode.rows.eq(bym([gr for gr, _ in modes], range(SR + 1), "cur_gr")),
            self.cur_mode.cols.eq(bym([gc for _, gc in modes], range(SC + 1), "cur_gc")),
        ]
        return m
