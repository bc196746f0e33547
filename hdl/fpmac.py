"""Fused multiply-accumulate for the float formats: ``out = round_fp32(acc + a * w * 2**(sa+sw))``.

One combinational step, one rounding (see ``golden/numerics.py`` for the contract):

1. decode ``a`` and ``w`` (FP8 E4M3/E5M2 or BF16; MX words also carry an E8M0 scale) and the
   float32 ``acc``; NaN/Inf/zero flags per format;
2. the exact product: significands multiplied, exponents and scales added, the product
   normalized (leading-zero count); the accumulator is used as it is (a subnormal one is placed
   by its field, which loses nothing: results down there round at its own LSB, 2**-149);
3. the operand with the higher top bit ("big") is placed with its MSB at bit 26 of a 28-bit
   window, the other aligned below it; what lands below bit 1 becomes a sticky bit 0, computed
   from trailing-zero counts. A product below float32's normal range (BF16, MX) is placed lower,
   so that the window never starts below 2**-127;
4. add or subtract, take the magnitude, normalize by a left shift that stops at 2**-126 (so
   subnormal results need no second shifter);
5. round to nearest even at float32 precision and encode, with overflow to ±Inf, NaN as
   0x7FC00000, and the IEEE sign of zero (``x + -x = +0``; ``-0 + -0 = -0``).
"""

from amaranth.hdl import Cat, Const, Module, Mux, Signal, signed
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["FusedMac", "FLOAT_FORMATS"]

# name: (ebits, mbits, bias, e4m3-style NaN (no Inf), MX)
FLOAT_FORMATS = {
    "fp8_e4m3": (4, 3, 7, True, False),
    "fp8_e5m2": (5, 2, 15, False, False),
    "bf16": (8, 7, 127, False, False),
    "mxfp8_e4m3": (4, 3, 7, True, True),
    "mxfp8_e5m2": (5, 2, 15, False, True),
}
_EXP = signed(12)          # every exponent here fits: products with MX scales reach ±~300


def _lzc(m, v, width, name):
    """Leading zeros of the ``width``-bit value ``v`` (``width`` when ``v == 0``)."""
    n = Signal(range(width + 1), name=name)
    expr = Const(width, n.shape())
    for i in range(width):            # the highest set bit wins: build from the LSB up
        expr = Mux(v[i], width - 1 - i, expr)
    m.d.comb += n.eq(expr)
    return n


def _tzc(m, v, width, name):
    """Trailing zeros of the ``width``-bit value ``v`` (``width`` when ``v == 0``)."""
    n = Signal(range(width + 1), name=name)
    expr = Const(width, n.shape())
    for i in reversed(range(width)):  # the lowest set bit wins: build from the MSB down
        expr = Mux(v[i], i, expr)
    m.d.comb += n.eq(expr)
    return n


def _shr_sticky(m, v, amt, width, name):
    """``v >> amt`` (``amt`` unsigned, may exceed ``width``) and whether a 1 was shifted out."""
    out = Signal(width, name=f"{name}_shr")
    sticky = Signal(name=f"{name}_st")
    ones = Const((1 << width) - 1, width)
    m.d.comb += [out.eq(v >> amt), sticky.eq((v & ~(ones << amt)[:width]) != 0)]
    return out, sticky


class FusedMac(wiring.Component):
    """Combinational fused multiply-add of one float element pair into a float32 accumulator.

    Parameters
    ----------
    fmt : str
        One of :data:`FLOAT_FORMATS`.

    Members
    -------
    a, w : In(word bits)
        Element words (MX: ``code | scale << 8``).
    acc : In(32)
        float32 accumulator bits.
    out : Out(32)
        float32 bits of ``round(acc + a*w*2**(sa+sw))``; NaN is 0x7FC00000.

    Raises
    ------
    ValueError
        If ``fmt`` is not a float format.
    """

    def __init__(self, fmt: str):
        if fmt not in FLOAT_FORMATS:
            raise ValueError(f"fmt must be one of {', '.join(FLOAT_FORMATS)}, not {fmt!r}")
        self._fmt = fmt
        e, mb, _, _, mx = FLOAT_FORMATS[fmt]
        self._cb = 1 + e + mb
        wb = self._cb + (8 if mx else 0)
        super().__init__({"a": In(wb), "w": In(wb), "acc": In(32), "out": Out(32)})

    @property
    def fmt(self) -> str:
        return self._fmt

    def _decode_elem(self, m, word, name):
        eb, mb, bias, e4m3, mx = FLOAT_FORMATS[self._fmt]
        cb = self._cb
        code = word[:cb]
        s, e, f = code[cb - 1], code[mb:mb + eb], code[:mb]
        sub = e == 0
        sig = Signal(mb + 1, name=f"{name}_sig")
        lsb = Signal(_EXP, name=f"{name}_lsb")          # exponent of the significand's LSB
        m.d.comb += [sig.eq(Cat(f, ~sub)), lsb.eq(Mux(sub, 1, e) - bias - mb)]
        top = e == (1 << eb) - 1
        if e4m3:
            nan, inf = top & (f == (1 << mb) - 1), Const(0, 1)
        else:
            nan, inf = top & (f != 0), top & (f == 0)
        scale = word[cb:cb + 8] if mx else None
        return s, sig, lsb, nan, inf, sub & (f == 0), scale

    def elaborate(self, platform):
        m = Module()
        _, mb, _, _, mx = FLOAT_FORMATS[self._fmt]
        sa, ma, la, na, ia, za, ka = self._decode_elem(m, self.a, "a")
        sw, mw, lw, nw, iw, zw, kw = self._decode_elem(m, self.w, "w")

        # --- product: exact ------------------------------------------------------------------
        pw = 2 * (mb + 1)
        p_sig = Signal(pw)
        p_lsb = Signal(_EXP)
        m.d.comb += p_sig.eq(ma * mw)
        if mx:
            m.d.comb += p_lsb.eq(la + lw + ka + kw - 254)
        else:
            m.d.comb += p_lsb.eq(la + lw)
        p_s = sa ^ sw
        p_zero = za | zw
        p_nan = na | nw | (ia & zw) | (iw & za)
        p_inf = (ia | iw) & ~p_nan

        # --- accumulator -----------------------------------------------------------------
        c = self.acc
        c_s, c_e, c_f = c[31], c[23:31], c[:23]
        c_sub = c_e == 0
        c_sig = Signal(24)
        c_lsb = Signal(_EXP)
        m.d.comb += [c_sig.eq(Cat(c_f, ~c_sub)), c_lsb.eq(Mux(c_sub, 1, c_e) - 150)]
        c_zero = c_sub & (c_f == 0)
        c_top = c_e == 255
        c_nan = c_top & (c_f != 0)
        c_inf = c_top & (c_f == 0)

        # --- normalize the product (MSB at the top of its field); top = exponent of the MSB.
        # The accumulator is left as it is: a subnormal one (leading zeros) sits at the bottom
        # of float32's range, where results round at its own LSB (2**-149) anyway, so placing it
        # by its field's top (c_lsb + 23) keeps every bit that can matter (see below).
        p_lz = _lzc(m, p_sig, pw, "p_lz")
        p_n = Signal(pw)
        c_n = c_sig
        p_top = Signal(_EXP)
        c_top_e = Signal(_EXP)
        m.d.comb += [p_n.eq(p_sig << p_lz), p_top.eq(p_lsb + (pw - 1) - p_lz),
                     c_top_e.eq(c_lsb + 23)]

        # --- order by top: "big" goes to bit T of the window, "small" below it -------------
        # A zero operand is always "small" (and then contributes nothing).
        big_is_c = Signal()
        m.d.comb += big_is_c.eq(~c_zero & (p_zero | (c_top_e >= p_top)))
        # Window: big's MSB at bit T = W-2 (one bit of headroom for the carry), bit 0 a sticky.
        # W = 28 is the least that works: with tops 2+ apart no cancellation, so the result's
        # MSB is >= T-1 and its guard bit >= T-25 = 1; closer, small fits whole above bit 0.
        W = 28
        T = W - 2
        big = Signal(W)
        small_full = Signal(W + 24)               # small, MSB at bit W+22, room to shift
        t_big = Signal(_EXP)
        d = Signal(_EXP)
        s_big = Signal()
        s_small = Signal()
        small_zero = Signal()
        # big's MSB at bit T; small's MSB at bit T before the alignment shift, kept in an
        # extended field (window bit k = field bit k+24) so that the shift can move bits below
        # bit 0, into the sticky.
        with m.If(big_is_c):
            m.d.comb += [big.eq(c_n << (T - 23)), small_full.eq(p_n << (W + 22 - (pw - 1))),
                         t_big.eq(c_top_e), d.eq(c_top_e - p_top), s_big.eq(c_s),
                         s_small.eq(p_s), small_zero.eq(p_zero)]
        with m.Else():
            m.d.comb += [big.eq(p_n << (T - (pw - 1))), small_full.eq(c_n << (W + 22 - 23)),
                         t_big.eq(p_top), d.eq(p_top - c_top_e), s_big.eq(p_s),
                         s_small.eq(c_s), small_zero.eq(c_zero)]
        dsh = Signal(range(64))
        m.d.comb += dsh.eq(Mux(d > 60, 60, d))
        al = Signal(W + 24)
        m.d.comb += al.eq(small_full >> dsh)
        # Sticky of everything that lands below window bit 1, from the small significand's
        # trailing zeros: its bit k lands at window bit (T - d) - (n - 1) + k.
        c_tz = _tzc(m, c_sig, 24, "c_tz")
        p_tz = _tzc(m, p_sig, pw, "p_tz")
        low = Signal(signed(9))
        m.d.comb += low.eq(dsh - T + Mux(big_is_c, pw, 24))
        p_ntz = Signal(range(2 * pw + 1))             # trailing zeros of the normalized product
        m.d.comb += p_ntz.eq(p_tz + p_lz)
        al_st = Mux(big_is_c, p_ntz, c_tz) < low
        # Bits 1..W-1 keep small exactly; bit 0 is a sticky for everything below. Then the sum
        # differs from the exact one only below bit 1 (by less than 2 units, both strictly
        # between the same two even numbers): same guard bit, same "anything below", same
        # rounding.
        small = Signal(W)
        m.d.comb += small.eq(Mux(small_zero, 0, Cat(al_st, al[25:W + 24])))

        # A product below float32's normal range (BF16 and MX can make one; FP8 alone cannot)
        # is placed lower in the window, so that window bit T is never below 2**-127: every
        # result then rounds at window bit W-24 or above, and normalization only shifts left.
        # The accumulator is then zero (a non-zero one, even subnormal, would be the larger).
        e30 = Signal(_EXP)                            # exponent of window bit T
        min_ptop = 2 * (1 - FLOAT_FORMATS[self._fmt][2] - mb) + (2 * mb + 1) - (pw - 1)
        if mx or min_ptop < -127:
            ub = Signal(range(41))
            m.d.comb += ub.eq(Mux(big_is_c | (p_top >= -127), 0,
                                  Mux(p_top < -127 - 40, 40, -127 - p_top)))
            b_st = ~p_zero & (p_ntz < ub + pw - T)
            big_t = Signal(W)
            # ub is clamped at 40: a product that far down is all sticky, and window bit T is
            # 2**-127 whenever ub > 0.
            m.d.comb += [big_t.eq(Cat(b_st | (big >> ub)[0], (big >> ub)[1:])),
                         e30.eq(Mux(ub != 0, -127, t_big))]
        else:
            big_t = big
            m.d.comb += e30.eq(t_big)

        # --- add or subtract -------------------------------------------------------------
        sub_op = s_big ^ s_small
        raw = Signal(signed(W + 2))
        m.d.comb += raw.eq(Mux(sub_op, big_t.as_signed() - small.as_signed(),
                               big_t.as_signed() + small.as_signed()))
        neg = raw < 0
        mag = Signal(W + 1)
        m.d.comb += mag.eq(Mux(neg, -raw, raw))
        r_s = Signal()
        m.d.comb += r_s.eq(s_big ^ neg)

        # --- normalize (never below 2**-126) and round to float32 -------------------------
        lz = _lzc(m, mag[:W], W, "r_lz")
        room = Signal(_EXP)                           # left shift that reaches 2**-126
        m.d.comb += room.eq(e30 + 127)
        sh = Signal(range(W + 1))
        m.d.comb += sh.eq(Mux(room < lz, room, lz))
        norm = Signal(W)
        m.d.comb += norm.eq(mag[:W] << sh)
        e_msb = Signal(_EXP)                          # exponent of norm's top bit
        m.d.comb += e_msb.eq(e30 + 1 - sh)
        keep = norm[W - 24:W]                         # 24 bits
        guard = norm[W - 25]
        sticky = norm[:W - 25] != 0
        up = guard & (sticky | keep[0])
        rounded = Signal(25)
        m.d.comb += rounded.eq(keep + up)
        # Biased exponent: a normal result keeps bit 23 set (a carry out of the 24 bits
        # renormalizes by one); a subnormal one (e_msb = -126, bit 23 clear) has field 0
        # unless rounding carried it into bit 23, the smallest normal.
        e_res = Signal(_EXP)
        frac = Signal(23)
        carry = rounded[24]
        m.d.comb += [
            e_res.eq(Mux(rounded[23] | carry, e_msb + 127 + carry, 0)),
            frac.eq(Mux(carry, rounded[1:24], rounded[:23])),
        ]
        overflow = e_res >= 255

        # --- specials and result -----------------------------------------------------------
        nan = p_nan | c_nan | (p_inf & c_inf & (p_s != c_s))
        inf = p_inf | c_inf
        inf_s = Mux(p_inf, p_s, c_s)
        exact_zero = mag == 0
        zero_s = Mux(p_zero & c_zero, p_s & c_s, 0)   # x + -x = +0; -0 + -0 = -0
        with m.If(nan):
            m.d.comb += self.out.eq(0x7FC00000)
        with m.Elif(inf):
            m.d.comb += self.out.eq(Cat(Const(0, 23), Const(0xFF, 8), inf_s))
        with m.Elif(exact_zero):
            m.d.comb += self.out.eq(Cat(Const(0, 31), zero_s))
        with m.Elif(overflow):
            m.d.comb += self.out.eq(Cat(Const(0, 23), Const(0xFF, 8), r_s))
        with m.Else():
            m.d.comb += self.out.eq(Cat(frac, e_res[:8], r_s))
        return m

