"""The one configuration object that flows from the CLI to the RTL, the golden model and the tests.

Pure Python (no Amaranth import), so the golden model and the CLI can use it without the HDL.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["DTYPES", "ArrayConfig", "parse_shape"]

#: Element formats the array knows. The numerics contract is in ``golden/numerics.py``.
DTYPES = ("int8",)

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


@dataclass(frozen=True)
class ArrayConfig:
    """Parameters of one systolic array.

    Parameters
    ----------
    rows : int
        R, PEs along K (the activation row width). Default 16.
    cols : int
        C, PEs along N (the output row width). Default 16.
    dtype : str
        Element format, one of :data:`DTYPES`.

    Raises
    ------
    TypeError
        If ``rows``/``cols`` are not integers or ``dtype`` not a string.
    ValueError
        If a dimension is outside ``[1, 256]`` or the format is unknown.
    """

    rows: int = 16
    cols: int = 16
    dtype: str = "int8"

    #: Largest K the int8 contract accepts: 128*128*65536 = 2**30 still fits int32.
    MAX_K = 65536

    def __post_init__(self):
        for name in ("rows", "cols"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise TypeError(f"{name} must be an integer, not {v!r}")
            if not 1 <= v <= 256:
                raise ValueError(f"{name} must be in [1, 256], not {v}")
        if not isinstance(self.dtype, str):
            raise TypeError(f"dtype must be a string, not {self.dtype!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not {self.dtype!r}")

    @classmethod
    def from_text(cls, array: str = "16x16", dtype: str = "int8") -> ArrayConfig:
        r, c = parse_shape(array, "array")
        return cls(rows=r, cols=c, dtype=dtype)

    # --- derived numbers -------------------------------------------------------------------
    @property
    def pes(self) -> int:
        return self.rows * self.cols

    @property
    def a_bits(self) -> int:
        """Width of one activation element."""
        return 8

    @property
    def w_bits(self) -> int:
        """Width of one weight element."""
        return 8

    @property
    def acc_bits(self) -> int:
        """Width of one partial sum / result element."""
        return 32

    @property
    def latency(self) -> int:
        """Cycles from an activation row's transfer to its result row being presented."""
        return self.rows + self.cols

    @property
    def name(self) -> str:
        return f"{self.rows}x{self.cols}_{self.dtype}"

    def as_dict(self) -> dict:
        return {"rows": self.rows, "cols": self.cols, "dtype": self.dtype}
