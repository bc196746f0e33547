"""The one configuration object that flows from the CLI to the RTL, the golden model and the tests.

Pure Python (no Amaranth import), so the golden model and the CLI can use it without the HDL.

Geometry: the R×C array is a grid of SR×SC sub-arrays of r×c PEs (SR = R/r, SC = C/c). A split
mode ``GRxGC`` cuts the grid into GR×GC equal groups (GR divides SR, GC divides SC); each group
runs as an independent (R/GR)×(C/GC) array with its own streams. Group ``g = gr*GC + gc`` sits at
sub-array ``(gr*SR/GR, gc*SC/GC)``; its streams are those of *slot* ``p*SC + q`` for its top-left
sub-array ``(p, q)``. ``1x1`` is the whole array as one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["DTYPES", "WORD_BITS", "ArrayConfig", "Group", "parse_shape"]

#: Element formats the array knows, and the bits of one element word on the array's streams (the
#: code, and for MX the block's E8M0 scale above it). The contract is in ``golden/numerics.py``.
WORD_BITS = {"int8": 8, "fp8_e4m3": 8, "fp8_e5m2": 8, "bf16": 16, "mxfp8_e4m3": 16,
             "mxfp8_e5m2": 16}
DTYPES = tuple(WORD_BITS)

_SHAPE_RE = re.compile(r"^\s*(\d+)\s*[xX×]\s*(\d+)\s*$")


def parse_shape(text: str, what: str = "array") -> tuple[int, int]:
    """Parse ``"RxC"`` into ``(R, C)``; raise :class:`ValueError` with a one-line message."""
    m = _SHAPE_RE.match(str(text))
    if not m:
        raise ValueError(f"--{what} must look like RxC (e.g. 16x16), not {text!r}")
    r, c = int(m.group(1)), int(m.group(2))
    if r < 1 or c < 1:
        raise ValueError(f"--{what} dimensions must be positive, not {text!r}")
    return r, c


def _divisors(n: int) -> list[int]:
    return [d for d in range(1, n + 1) if n % d == 0]


@dataclass(frozen=True)
class Group:
    """One group of a split mode: where it sits and how big it is."""

    index: int          #: g = gr*GC + gc
    slot: int           #: stream slot: p*SC + q of its top-left sub-array
    p: int              #: top-left sub-array row
    q: int              #: top-left sub-array column
    h: int              #: height in sub-arrays
    w: int              #: width in sub-arrays
    rows: int           #: PE rows (K per weight tile)
    cols: int           #: PE columns (N per weight tile)
    latency: int        #: cycles from an activation row's transfer to its result row


@dataclass(frozen=True)
class ArrayConfig:
    """Parameters of one (splittable) systolic array.

    Parameters
    ----------
    rows, cols : int
        R and C: PEs along K (the activation row width) and along N (the result row width).
    dtype : str
        Element format, one of :data:`DTYPES`.
    sub_rows, sub_cols : int or None
        Sub-array r×c. Activations are broadcast across a sub-array's ``c`` columns and
        registered between sub-arrays; partial sums are registered at every PE row. Default: 8
        where 8 divides the dimension, else the whole dimension (``c = 1`` is the classic
        fully systolic array).
    splittable : bool
        Build the split muxes and per-group streams (all uniform modes), or only the monolithic
        ``1x1`` array (the area baseline).

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a dimension is outside ``[1, 256]``, a sub-array does not divide the array, or the
        format is unknown.
    """

    rows: int = 16
    cols: int = 16
    dtype: str = "int8"
    sub_rows: int | None = None
    sub_cols: int | None = None
    splittable: bool = True
    _modes: tuple = field(default=(), init=False, repr=False, compare=False)

    #: Largest K the int8 contract accepts: 128*128*65536 = 2**30 still fits int32 (float
    #: formats have no such limit; the same bound keeps jobs within the harness memories).
    MAX_K = 65536

    def __post_init__(self):
        for name in ("rows", "cols"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an integer, not {v!r}")
            if not 1 <= v <= 256:
                raise ValueError(f"{name} must be in [1, 256], not {v}")
        for name, full in (("sub_rows", self.rows), ("sub_cols", self.cols)):
            v = getattr(self, name)
            if v is None:
                object.__setattr__(self, name, 8 if full % 8 == 0 else full)
                continue
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an integer, not {v!r}")
            if v < 1 or full % v:
                dim = "rows" if name == "sub_rows" else "cols"
                raise ValueError(f"{name} must be a positive divisor of {dim} ({full}), not {v}")
        if not isinstance(self.splittable, bool):
            raise TypeError(f"splittable must be a bool, not {self.splittable!r}")
        if not isinstance(self.dtype, str):
            raise TypeError(f"dtype must be a string, not {self.dtype!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")
        modes = ([(gr, gc) for gr in _divisors(self.sr) for gc in _divisors(self.sc)]
                 if self.splittable else [(1, 1)])
        object.__setattr__(self, "_modes", tuple(modes))

    @classmethod
    def from_text(cls, array: str = "16x16", dtype: str = "int8", sub: str | None = None,
                  splittable: bool = True) -> ArrayConfig:
        r, c = parse_shape(array, "array")
        sr = sc = None
        if sub is not None:
            sr, sc = parse_shape(sub, "sub")
        return cls(rows=r, cols=c, dtype=dtype, sub_rows=sr, sub_cols=sc, splittable=splittable)

    # --- geometry ----------------------------------------------------------------------------
    @property
    def sr(self) -> int:
        """Sub-array rows in the grid (SR = R / r)."""
        return self.rows // self.sub_rows

    @property
    def sc(self) -> int:
        """Sub-array columns in the grid (SC = C / c)."""
        return self.cols // self.sub_cols

    @property
    def modes(self) -> tuple[tuple[int, int], ...]:
        """Every split mode the hardware supports, ``(GR, GC)``; ``(1, 1)`` first."""
        return self._modes

    @property
    def n_slots(self) -> int:
        """Stream slots (one per sub-array when splittable, else one)."""
        return self.sr * self.sc if self.splittable else 1

    def check_mode(self, mode) -> tuple[int, int]:
        """``mode`` as ``(GR, GC)``; accepts ``"GRxGC"``. Raises :class:`ValueError`."""
        if isinstance(mode, str):
            gr, gc = parse_shape(mode, "split")
        else:
            gr, gc = mode
        if (gr, gc) not in self.modes:
            valid = ", ".join(f"{a}x{b}" for a, b in self.modes)
            raise ValueError(f"--split {gr}x{gc} is not a mode of this {self.rows}x{self.cols} "
                             f"array with {self.sub_rows}x{self.sub_cols} sub-arrays "
                             f"(valid: {valid})")
        return gr, gc

    def groups(self, mode=(1, 1)) -> list[Group]:
        """The groups of ``mode``, in group order."""
        gr, gc = self.check_mode(mode)
        h, w = self.sr // gr, self.sc // gc
        out = []
        for a in range(gr):
            for b in range(gc):
                p, q = a * h, b * w
                rows, cols = h * self.sub_rows, w * self.sub_cols
                out.append(Group(index=a * gc + b, slot=p * self.sc + q, p=p, q=q, h=h, w=w,
                                 rows=rows, cols=cols, latency=rows + w - 1))
        return out

    # --- formats -----------------------------------------------------------------------------
    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def is_float(self) -> bool:
        return self.dtype != "int8"

    @property
    def a_bits(self) -> int:
        """Width of one activation element word."""
        return WORD_BITS[self.dtype]

    @property
    def w_bits(self) -> int:
        """Width of one weight element word."""
        return WORD_BITS[self.dtype]

    @property
    def acc_bits(self) -> int:
        """Width of one partial sum / result element."""
        return 32

    @property
    def latency(self) -> int:
        """Cycles from an activation row's transfer to its result row, monolithic mode."""
        return self.rows + self.sc - 1

    @property
    def name(self) -> str:
        split = "" if self.splittable else "_mono"
        return f"{self.rows}x{self.cols}s{self.sub_rows}x{self.sub_cols}{split}_{self.dtype}"

    def as_dict(self) -> dict:
        return {"rows": self.rows, "cols": self.cols, "dtype": self.dtype,
                "sub_rows": self.sub_rows, "sub_cols": self.sub_cols,
                "splittable": self.splittable}
