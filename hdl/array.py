"""Weight-stationary R×C systolic array with double-buffered weights and internal skew/de-skew.

Dataflow (wavefront ``m`` = one activation row, transferred in enabled cycle ``t``)::

    act row ──► in-stage ──► row i delayed i ──► PE(i,0) ─► PE(i,1) ─► …     (activation →)
    psum row ─► in-stage ──► col j delayed j ──► PE(0,j)                        (partial sum ↓)
                                                     ⋮
                                                 PE(R-1,j) ─► col j delayed C-1-j ─► out row

PE(i, j) works on wavefront ``m`` in enabled cycle ``t + 1 + i + j``; the de-skewed result row is
presented on ``out`` in enabled cycle ``t + R + C`` (:attr:`ArrayConfig.latency`).

Stall: one enable, ``en = ~out.valid | out.ready``, gates every register of the pipeline, the
weight load path included, so a stalled output freezes the array with nothing lost or duplicated.

Weights: a tile is ``R`` beats on ``weight``, row 0 first, each beat one row of ``C`` weights
(beat ``i``'s weight ``j`` belongs to PE(i, j)). Beat ``i`` reaches column ``j`` ``1 + j`` cycles
after its transfer and is written into one bank of PE(i, j) — the diagonal schedule of the data —
so:

* a bank may start loading the cycle after the last activation row of the tile that used it was
  transferred (that row has already read PE(i,j) by the time the new weight arrives there), and
* a tile may start computing the cycle after its last weight beat was transferred.

With ``M >= R`` rows per tile, tiles therefore run back to back with no weight-load bubble.
"""

from amaranth.hdl import Const, Module, Mux, Signal, signed
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from .config import ArrayConfig
from .pe import PE

__all__ = ["SystolicArray", "act_layout", "out_layout", "psum_layout", "weight_layout"]


def weight_layout(cfg: ArrayConfig) -> data.ArrayLayout:
    """One weight row: ``C`` weights, element ``j`` goes to column ``j``."""
    return data.ArrayLayout(signed(cfg.w_bits), cfg.cols)


def act_layout(cfg: ArrayConfig) -> data.StructLayout:
    """One activation row: ``R`` elements (element ``i`` meets weight row ``i``) and two flags.

    ``acc``: add the next ``psum`` row to this row's result (else start from zero).
    ``last``: last row of the current weight tile; the array then switches to the other bank.
    """
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.a_bits), cfg.rows),
        "acc": 1,
        "last": 1,
    })


def psum_layout(cfg: ArrayConfig) -> data.ArrayLayout:
    """One partial-sum row injected at the top of the ``C`` columns."""
    return data.ArrayLayout(signed(cfg.acc_bits), cfg.cols)


def out_layout(cfg: ArrayConfig) -> data.StructLayout:
    """One result row (``C`` sums) and the ``last`` flag of the activation row it came from."""
    return data.StructLayout({
        "data": data.ArrayLayout(signed(cfg.acc_bits), cfg.cols),
        "last": 1,
    })


def _delay(m, value, n, en, name):
    """``value`` through ``n`` enable-gated registers (no reset: datapath)."""
    for k in range(n):
        r = Signal.like(value, name=f"{name}_d{k}", reset_less=True)
        with m.If(en):
            m.d.sync += r.eq(value)
        value = r
    return value


class SystolicArray(wiring.Component):
    """Weight-stationary R×C array of :class:`PE`, streams in and out.

    Parameters
    ----------
    cfg : ArrayConfig
        Array size and element format.

    Members
    -------
    weight : In(stream.Signature(weight_layout(cfg)))
        Weight rows; ``R`` beats make one tile (row 0 first).
    act : In(stream.Signature(act_layout(cfg)))
        Activation rows, whole (unskewed).
    psum : In(stream.Signature(psum_layout(cfg)))
        Partial-sum rows, one per activation row that has ``acc`` set, in the same order.
    out : Out(stream.Signature(out_layout(cfg)))
        Result rows, whole (de-skewed), one per activation row, in order.
    busy : Out(1)
        Rows in flight or a weight tile loaded/loading.

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`ArrayConfig`.
    """

    def __init__(self, cfg: ArrayConfig):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        self._cfg = cfg
        super().__init__({
            "weight": In(stream.Signature(weight_layout(cfg))),
            "act": In(stream.Signature(act_layout(cfg))),
            "psum": In(stream.Signature(psum_layout(cfg))),
            "out": Out(stream.Signature(out_layout(cfg))),
            "busy": Out(1),
        })

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        R, C = cfg.rows, cfg.cols

        en = Signal()
        m.d.comb += en.eq(~self.out.valid | self.out.ready)

        # --- control: two weight banks -----------------------------------------------------
        loaded = Signal(2)           # bank holds a complete tile not yet fully consumed
        load_bank = Signal()         # bank the weight stream is filling
        wrow = Signal(range(R))      # next weight row of the tile being loaded
        cur_bank = Signal()          # bank the next activation row multiplies

        w_fire = Signal()
        m.d.comb += [
            self.weight.ready.eq(en & ~loaded.bit_select(load_bank, 1)),
            w_fire.eq(self.weight.valid & self.weight.ready),
        ]
        act_ok = Signal()
        a_fire = Signal()
        m.d.comb += [
            act_ok.eq(en & loaded.bit_select(cur_bank, 1)),
            self.act.ready.eq(act_ok & (~self.act.payload.acc | self.psum.valid)),
            self.psum.ready.eq(act_ok & self.act.valid & self.act.payload.acc),
            a_fire.eq(self.act.valid & self.act.ready),
        ]

        set_loaded = Signal(2)
        clr_loaded = Signal(2)
        with m.If(w_fire):
            with m.If(wrow == R - 1):
                m.d.sync += [wrow.eq(0), load_bank.eq(~load_bank)]
                m.d.comb += set_loaded.eq(Mux(load_bank, 0b10, 0b01))
            with m.Else():
                m.d.sync += wrow.eq(wrow + 1)
        with m.If(a_fire & self.act.payload.last):
            m.d.sync += cur_bank.eq(~cur_bank)
            m.d.comb += clr_loaded.eq(Mux(cur_bank, 0b10, 0b01))
        m.d.sync += loaded.eq((loaded | set_loaded) & ~clr_loaded)

        # --- weight load path: in-stage, then column j delayed j -----------------------------
        w_valid = Signal()
        w_row = Signal(range(R))
        w_bank = Signal()
        w_data = Signal(weight_layout(cfg), reset_less=True)
        with m.If(en):
            m.d.sync += [w_valid.eq(w_fire), w_row.eq(wrow), w_bank.eq(load_bank),
                         w_data.eq(self.weight.payload)]
        wctl = data.StructLayout({"valid": 1, "row": range(R), "bank": 1})
        col_ctl = []
        ctl = Signal(wctl)
        m.d.comb += [ctl.valid.eq(w_valid), ctl.row.eq(w_row), ctl.bank.eq(w_bank)]
        for j in range(C):
            col_ctl.append(ctl)
            if j < C - 1:
                nxt = Signal(wctl, name=f"wctl{j + 1}")
                with m.If(en):
                    m.d.sync += nxt.eq(ctl)
                ctl = nxt
        col_w = [_delay(m, w_data[j], j, en, f"wcol{j}") for j in range(C)]

        # --- activation / psum skew --------------------------------------------------------
        row_a = [_delay(m, self.act.payload.data[i], i + 1, en, f"arow{i}") for i in range(R)]
        p_inj = Signal(psum_layout(cfg))
        m.d.comb += p_inj.eq(Mux(self.act.payload.acc, self.psum.payload, 0))
        col_p = [_delay(m, p_inj[j], j + 1, en, f"pcol{j}") for j in range(C)]

        # Bank select of each anti-diagonal d = i + j, one register per diagonal.
        seld = []
        s = Signal(name="sel_d0")
        with m.If(en):
            m.d.sync += s.eq(cur_bank)
        seld.append(s)
        for d in range(1, R + C - 1):
            s = _delay(m, seld[-1], 1, en, f"sel_d{d}")
            seld.append(s)

        # Valid and last travel with the wavefront to the output.
        v = Signal(2, name="vl_in")
        m.d.comb += v.eq(Mux(a_fire, Mux(self.act.payload.last, 0b11, 0b01), 0))
        vl = []
        for k in range(R + C):
            r = Signal(2, name=f"vl{k}")
            with m.If(en):
                m.d.sync += r.eq(v)
            vl.append(r)
            v = r

        # --- PE grid -----------------------------------------------------------------------
        pes = [[PE(cfg) for _ in range(C)] for _ in range(R)]
        for i in range(R):
            for j in range(C):
                pe = pes[i][j]
                m.submodules[f"pe_{i}_{j}"] = pe
                c = col_ctl[j]
                hit = en & c.valid & (c.row == i)
                m.d.comb += [
                    pe.en.eq(en),
                    pe.a_in.eq(row_a[i] if j == 0 else pes[i][j - 1].a_out),
                    pe.p_in.eq(col_p[j] if i == 0 else pes[i - 1][j].p_out),
                    pe.sel.eq(seld[i + j]),
                    pe.w_in.eq(col_w[j]),
                    pe.w_we.eq(Mux(hit, Mux(c.bank, 0b10, 0b01), 0)),
                ]

        # --- de-skew and output ------------------------------------------------------------
        for j in range(C):
            res = _delay(m, pes[R - 1][j].p_out, C - 1 - j, en, f"ocol{j}")
            m.d.comb += self.out.payload.data[j].eq(res)
        m.d.comb += [
            self.out.valid.eq(vl[-1][0]),
            self.out.payload.last.eq(vl[-1][1]),
        ]

        in_flight = Const(0)
        for vl_k in vl:
            in_flight = in_flight | vl_k[0]
        m.d.comb += self.busy.eq(in_flight | loaded.any() | (wrow != 0) | w_valid)
        return m
