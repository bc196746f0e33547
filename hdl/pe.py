"""Processing element of the weight-stationary systolic array."""

from amaranth.hdl import Module, Mux, Signal, signed, unsigned
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from .config import ArrayConfig
from .fpmac import FusedMac

__all__ = ["PE", "elem_shape"]


def elem_shape(cfg: ArrayConfig):
    """Shape of one element word: signed for int8, a bit pattern for the float formats."""
    return signed(cfg.a_bits) if cfg.dtype == "int8" else unsigned(cfg.a_bits)


class PE(wiring.Component):
    """One processing element: a double-buffered stationary weight and a MAC.

    Every enabled cycle the PE registers ``p_in + a_in * w[sel]`` and passes it down (``p_out``):
    int8, the exact product added into a 32-bit two's-complement sum (wraps modulo 2**32, which
    the int8 contract never reaches for K <= 65536); float formats, the fused float32
    multiply-add of :class:`hdl.fpmac.FusedMac`.
    The activation arrives on the row's broadcast within the sub-array (the array registers it
    between sub-arrays). The two weight banks are written through ``w_in``/``w_we`` (one write
    enable per bank) while the other bank computes.

    Parameters
    ----------
    cfg : ArrayConfig
        Formats of the activation, weight and accumulator.

    Members
    -------
    en : In(1)
        Clock enable of the datapath registers (the array's stall).
    a_in : In(signed(a_bits))
        Activation of this PE's row.
    p_in, p_out : In/Out(signed(acc_bits))
        Partial sum from above, registered ``p_in + a_in * w[sel]`` below.
    sel : In(1)
        Which weight bank this activation multiplies.
    w_in : In(signed(w_bits))
        Weight to write.
    w_we : In(2)
        Write enable per bank (already qualified by the array's enable).

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`ArrayConfig`.
    """

    def __init__(self, cfg: ArrayConfig):
        if not isinstance(cfg, ArrayConfig):
            raise TypeError(f"cfg must be an ArrayConfig, not {cfg!r}")
        self._cfg = cfg
        a = w = elem_shape(cfg)
        p = signed(cfg.acc_bits)
        super().__init__({
            "en": In(1),
            "a_in": In(a),
            "p_in": In(p), "p_out": Out(p),
            "sel": In(1),
            "w_in": In(w), "w_we": In(2),
        })

    @property
    def cfg(self) -> ArrayConfig:
        return self._cfg

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        # Datapath registers carry no reset: nothing reads them before a valid wavefront wrote them.
        w0 = Signal(elem_shape(cfg), reset_less=True)
        w1 = Signal(elem_shape(cfg), reset_less=True)
        p_r = Signal(signed(cfg.acc_bits), reset_less=True)
        with m.If(self.w_we[0]):
            m.d.sync += w0.eq(self.w_in)
        with m.If(self.w_we[1]):
            m.d.sync += w1.eq(self.w_in)
        w = Mux(self.sel, w1, w0)
        if cfg.dtype == "int8":
            result = (self.p_in + self.a_in * w)[: cfg.acc_bits]
        else:
            m.submodules.mac = fma = FusedMac(cfg.dtype)
            m.d.comb += [fma.a.eq(self.a_in), fma.w.eq(w), fma.acc.eq(self.p_in)]
            result = fma.out
        with m.If(self.en):
            m.d.sync += p_r.eq(result)
        m.d.comb += self.p_out.eq(p_r)
        return m
