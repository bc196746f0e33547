"""The numerics contract, bit-exact, in NumPy: element formats, input casts, MX quantization and
the fused float32 accumulation. The RTL (``hdl/fpmac.py``) must agree to the bit.

Formats
    ``int8``; ``fp8_e4m3`` (OCP E4M3FN: bias 7, max 448, no Inf, NaN = S.1111.111);
    ``fp8_e5m2`` (bias 15, max 57344, IEEE Inf/NaN); ``bf16``; ``mxfp8_e4m3``/``mxfp8_e5m2`` (OCP MX
    v1.0: blocks of 32 along K, one E8M0 scale per block).
Input cast
    float32 first, then round to nearest even into the element format. FP8 casts saturate (beyond
    the largest finite magnitude, ±Inf included → ±max); NaN stays NaN; bf16 is IEEE (overflow →
    ±Inf).
MX quantization of a 32-block V
    ``shared = floor(log2(max|V|)) - emax`` (emax 8 for E4M3, 15 for E5M2), clamped to
    [-127, 127]; an all-zero block gets -127; elements are ``cast(V / 2**shared)``. A's blocks run
    along its rows (K), B's along its columns (K). MX inputs must be finite, K a multiple of 32.
Accumulation
    per output element ``acc = +0.0`` (float32), then for k in increasing order
    ``acc = round_fp32(acc + a_k * b_k * 2**(sa_k + sb_k))``: the product and its scaling are exact
    and the only rounding is that of the sum — a fused multiply-add, round to nearest even, IEEE
    binary32 with subnormals, Inf and NaN per IEEE. Any NaN result is returned as 0x7FC00000.

Words: the array carries each element as one integer *word*: the format's code (int8: the
two's-complement byte; floats: the IEEE-style bit pattern), and for MX the block scale's E8M0
code in the byte above it (so an MX word is 16 bits: ``code | scale << 8``).

Implementation notes: every element value is exact in float64 and so is a product of two (at most
8 x 8 significant bits, scales within 2**±254). The sum is done with Knuth's TwoSum, so
``s + err == acc + p`` exactly; rounding ``s`` to float32 is then correct except when ``s`` lies
exactly on a float32 rounding midpoint and ``err != 0`` (a double-rounding hazard), where the
result is the neighbour on ``err``'s side. All casts to the element formats are computed here from
exact float64 values (``ml_dtypes`` casts from float64 round twice and do not saturate).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

__all__ = ["FORMATS", "Format", "NumericsError", "fma_f32", "get_format"]

CANONICAL_NAN = np.uint32(0x7FC00000)
E8M0_BIAS = 127
MX_BLOCK = 32


class NumericsError(ValueError):
    """An input breaks the numerics contract (one-line message)."""


@dataclass(frozen=True)
class Format:
    """One element format. Float formats: ``ebits`` exponent bits, ``mbits`` mantissa bits."""

    name: str
    kind: str                    #: "int", "float" or "mx"
    ebits: int = 0
    mbits: int = 0
    bias: int = 0
    has_inf: bool = True
    saturate: bool = False       #: casts saturate to ±max (FP8) instead of overflowing to ±Inf
    elem: str = ""               #: MX: the element format
    emax: int = 0                #: MX: largest exponent of the element format

    # --- shape of a word -----------------------------------------------------------------
    @property
    def is_float(self) -> bool:
        return self.kind != "int"

    @property
    def is_mx(self) -> bool:
        return self.kind == "mx"

    @property
    def code_bits(self) -> int:
        if self.is_mx:
            return get_format(self.elem).code_bits
        return 8 if self.kind == "int" else 1 + self.ebits + self.mbits

    @property
    def word_bits(self) -> int:
        """Bits the array carries per element (code, and the scale for MX)."""
        return self.code_bits + (8 if self.is_mx else 0)

    @property
    def element(self) -> Format:
        """The element format (itself, or the FP8 format inside MX)."""
        return get_format(self.elem) if self.is_mx else self

    # --- float formats: value tables ---------------------------------------------------
    @property
    def max_finite(self) -> float:
        f = self.element
        if f.name == "fp8_e4m3":
            return 448.0
        top = (1 << f.ebits) - 2
        return float((2 - 2.0 ** -f.mbits) * 2.0 ** (top - f.bias))

    @cached_property
    def table(self) -> np.ndarray:
        """float64 value of every code of the element format (NaN for NaN codes)."""
        f = self.element
        if f.kind == "int":
            return np.arange(-128, 128, dtype=np.float64)[np.arange(256) ^ 0x80]
        n = 1 << f.code_bits
        codes = np.arange(n, dtype=np.int64)
        sign = np.where(codes >> (f.code_bits - 1) & 1, -1.0, 1.0)
        exp = (codes >> f.mbits) & ((1 << f.ebits) - 1)
        man = codes & ((1 << f.mbits) - 1)
        sub = exp == 0
        val = np.where(sub, man * 2.0 ** (1 - f.bias - f.mbits),
                       (man + (1 << f.mbits)) * 2.0 ** (exp - f.bias - f.mbits))
        val = sign * val
        top = exp == (1 << f.ebits) - 1
        if f.name == "fp8_e4m3":
            val = np.where(top & (man == (1 << f.mbits) - 1), np.nan, val)
        else:
            val = np.where(top & (man != 0), np.nan, val)
            val = np.where(top & (man == 0), sign * np.inf, val)
        return val

    # --- words ---------------------------------------------------------------------------
    def split(self, words) -> tuple[np.ndarray, np.ndarray]:
        """Words → (codes, E8M0 scale codes); non-MX formats get scale 127 (2**0)."""
        w = np.asarray(words).astype(np.int64) & ((1 << self.word_bits) - 1)
        cb = self.code_bits
        code = w & ((1 << cb) - 1)
        scale = (w >> cb) if self.is_mx else np.full_like(w, E8M0_BIAS)
        return code, scale

    def join(self, codes, scales=None) -> np.ndarray:
        codes = np.asarray(codes).astype(np.int64)
        if not self.is_mx:
            return codes.astype(self.word_dtype)
        return (codes | np.asarray(scales).astype(np.int64) << self.code_bits).astype(
            self.word_dtype)

    @property
    def word_dtype(self):
        return np.int8 if self.kind == "int" else (np.uint8 if self.word_bits == 8
                                                   else np.uint16)

    def values(self, words) -> np.ndarray:
        """Exact float64 value of each word (MX: the element times its block scale)."""
        code, scale = self.split(words)
        v = self.table[code]
        if self.is_mx:
            v = np.ldexp(v, (scale - E8M0_BIAS).astype(np.int64))
        return v

    def pad_words(self) -> tuple[int, int]:
        """(activation pad, weight pad): their product is -0, the identity of the float sum."""
        if self.kind == "int":
            return 0, 0
        neg0 = 1 << (self.code_bits - 1)
        sc = E8M0_BIAS << self.code_bits if self.is_mx else 0
        return sc, neg0 | sc

    # --- casts ---------------------------------------------------------------------------
    def encode(self, x) -> np.ndarray:
        """Round exact float64 values into codes of the element format (RNE, contract rules)."""
        f = self.element
        x = np.asarray(x, dtype=np.float64)
        sign = np.signbit(x).astype(np.int64)
        ax = np.abs(x)
        nan = np.isnan(x)
        inf = np.isinf(x)
        fin = ~(nan | inf)
        ax_f = np.where(fin, ax, 0.0)
        _, E = np.frexp(ax_f)
        e = np.where(ax_f > 0, E - 1, 1 - f.bias)
        qe = np.maximum(e, 1 - f.bias) - f.mbits                    # exponent of one ulp
        q = np.rint(np.ldexp(ax_f, -qe))                             # RNE (exact scaling)
        val = np.ldexp(q, qe)
        big = val > self.max_finite
        if f.saturate:
            val = np.where(big | inf, self.max_finite, val)
            over = np.zeros_like(big)
        else:
            over = big | inf
            val = np.where(over, 0.0, val)
        # Bits of a finite magnitude: normal if val >= 2**(1-bias).
        _, E2 = np.frexp(val)
        e2 = E2 - 1
        normal = val >= 2.0 ** (1 - f.bias)
        exp_field = np.where(normal, e2 + f.bias, 0)
        man = np.where(normal, np.ldexp(val, f.mbits - e2) - (1 << f.mbits),
                       np.ldexp(val, f.mbits - (1 - f.bias)))
        code = (exp_field.astype(np.int64) << f.mbits) | man.astype(np.int64)
        top = (1 << f.ebits) - 1
        if not f.saturate:
            code = np.where(over, top << f.mbits, code)              # ±Inf
        if f.name == "fp8_e4m3":
            nan_code = (1 << (f.ebits + f.mbits)) - 1                 # S.1111.111
        else:
            nan_code = (top << f.mbits) | (1 << (f.mbits - 1))       # quiet NaN
        code = np.where(nan, nan_code, code)
        return code | (sign << (f.code_bits - 1))

    def cast(self, x) -> np.ndarray:
        """Contract input cast of a float (or integer) array: float32 first, then this format."""
        x32 = np.asarray(x).astype(np.float32)
        return self.encode(x32.astype(np.float64))

    def quantize(self, x, axis: int) -> np.ndarray:
        """Words of ``x`` (any float array), MX blocks of 32 along ``axis``.

        Raises :class:`NumericsError` for non-finite MX inputs or a length not a multiple of 32.
        """
        if not self.is_mx:
            return self.join(self.cast(x))
        x32 = np.asarray(x).astype(np.float32)
        if not np.all(np.isfinite(x32)):
            raise NumericsError(f"{self.name} inputs must be finite (NaN/Inf found, or a value "
                                f"beyond float32)")
        n = x32.shape[axis]
        if n % MX_BLOCK:
            raise NumericsError(f"{self.name} needs K to be a multiple of {MX_BLOCK}, not {n}")
        v = np.moveaxis(x32.astype(np.float64), axis, -1)
        blocks = v.reshape(*v.shape[:-1], n // MX_BLOCK, MX_BLOCK)
        amax = np.max(np.abs(blocks), axis=-1)
        _, E = np.frexp(amax)
        shared = np.where(amax > 0, E - 1 - self.emax, -127)
        shared = np.clip(shared, -127, 127)
        scaled = np.ldexp(blocks, -shared[..., None])
        codes = self.encode(scaled).reshape(v.shape)
        scales = np.repeat(shared + E8M0_BIAS, MX_BLOCK, axis=-1).reshape(v.shape)
        words = self.join(codes, scales)
        return np.moveaxis(words, -1, axis)


FORMATS = {
    "int8": Format("int8", "int"),
    "fp8_e4m3": Format("fp8_e4m3", "float", 4, 3, 7, has_inf=False, saturate=True),
    "fp8_e5m2": Format("fp8_e5m2", "float", 5, 2, 15, has_inf=True, saturate=True),
    "bf16": Format("bf16", "float", 8, 7, 127, has_inf=True, saturate=False),
    "mxfp8_e4m3": Format("mxfp8_e4m3", "mx", elem="fp8_e4m3", emax=8),
    "mxfp8_e5m2": Format("mxfp8_e5m2", "mx", elem="fp8_e5m2", emax=15),
}


def get_format(name: str) -> Format:
    try:
        return FORMATS[name]
    except KeyError:
        raise ValueError(f"unknown format {name!r}; one of {', '.join(FORMATS)}") from None


_F32_MAX = float(np.finfo(np.float32).max)
_OVF_MID = 2.0 ** 128 - 2.0 ** 103          # midpoint between the largest float32 and 2**128


def fma_f32(acc, p) -> np.ndarray:
    """One fused accumulation step: round_fp32(acc + p), ``acc`` float32, ``p`` exact float64.

    Returns float32; NaNs are not canonicalized here (see :func:`f32_bits`).
    """
    a = np.asarray(acc, dtype=np.float32).astype(np.float64)
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        s = a + p
        bb = s - a
        err = (a - (s - bb)) + (p - bb)
        r = s.astype(np.float32)
    fin = np.isfinite(s) & np.isfinite(err)
    r64 = r.astype(np.float64)
    # Double-rounding hazard: s exactly halfway between two float32 values and err != 0.
    toward = np.where(s > r64, np.inf, -np.inf).astype(np.float32)
    other = np.nextafter(r, toward)
    with np.errstate(invalid="ignore", over="ignore"):
        mid = (r64 + other.astype(np.float64)) / 2
    hazard = fin & np.isfinite(r64) & (s != r64) & (s == mid) & (err != 0)
    hi = np.maximum(r, other)
    lo = np.minimum(r, other)
    out = np.where(hazard, np.where(err > 0, hi, lo), r)
    # The overflow midpoint: RNE ties to 2**128 (Inf); a residual toward zero keeps ±max.
    ovf = fin & (np.abs(s) == _OVF_MID) & (err != 0) & (np.sign(err) != np.sign(s))
    out = np.where(ovf, np.copysign(np.float32(_F32_MAX), s).astype(np.float32), out)
    return out.astype(np.float32)


def f32_bits(x) -> np.ndarray:
    """float32 values as int32 bit patterns, NaN canonicalized to 0x7FC00000."""
    x = np.asarray(x, dtype=np.float32)
    bits = x.view(np.uint32).copy()
    bits[np.isnan(x)] = CANONICAL_NAN
    return bits.view(np.int32)


def bits_f32(b) -> np.ndarray:
    return np.asarray(b).astype(np.int64).astype(np.uint32).view(np.float32)
