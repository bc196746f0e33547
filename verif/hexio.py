"""``$readmemh``/``$writememh`` files from and to NumPy, vectorized (backdoor memory loads)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["read_rows", "write_raw", "write_rows", "write_words"]

_UINT = {8: np.uint8, 16: np.uint16, 32: np.uint32, 64: np.uint64}


def write_rows(path: Path, rows: np.ndarray, bits: int) -> int:
    """Write each row of ``rows`` (N, E) as one memory word, element 0 in the low bits.

    ``bits`` is the element width (8, 16, 32 or 64); values are taken two's complement.
    Returns N.
    """
    rows = np.asarray(rows)
    if rows.ndim != 2:
        raise ValueError(f"rows must be 2-D, not {rows.shape}")
    if bits not in _UINT:
        raise ValueError(f"element width must be one of {sorted(_UINT)}, not {bits}")
    u = rows.astype(np.int64 if bits < 64 else rows.dtype).astype(_UINT[bits])
    le = np.ascontiguousarray(u.astype(u.dtype.newbyteorder("<")))
    return write_raw(path, le.view(np.uint8).reshape(len(rows), -1))


def write_raw(path: Path, raw: np.ndarray) -> int:
    """Write each row of little-endian bytes ``raw`` (N, B) as one memory word. Returns N."""
    # Little-endian bytes of the whole row, reversed = the packed word in big-endian = its hex.
    raw = np.asarray(raw, dtype=np.uint8)[:, ::-1]
    text = raw.tobytes().hex()
    width = raw.shape[1] * 2
    n = len(raw)
    with open(path, "w") as f:
        if n:
            f.write("\n".join(text[i * width:(i + 1) * width] for i in range(n)))
            f.write("\n")
    return n


def write_words(path: Path, words) -> int:
    """Write Python integers (any width, non-negative), one per line."""
    words = list(words)
    with open(path, "w") as f:
        for w in words:
            f.write(f"{int(w):x}\n")
    return len(words)


def read_rows(path: Path, n: int, elems: int, bits: int, signed: bool = True) -> np.ndarray:
    """Read ``n`` words of ``elems`` elements of ``bits`` each, as written by ``$writememh``."""
    words = []
    for line in Path(path).read_text().splitlines():
        line = line.split("//", 1)[0].strip()
        if not line or line.startswith("@"):
            continue
        words.extend(line.split())
    if len(words) < n:
        raise ValueError(f"{path}: {len(words)} words, expected {n}")
    digits = elems * bits // 4
    words = words[:n]
    for k, w in enumerate(words):
        if any(ch in w for ch in "xXzZ"):
            raise ValueError(f"{path}: word {k} holds unknown bits ({w}): never written?")
    text = "".join(w.rjust(digits, "0")[-digits:] for w in words)
    raw = np.frombuffer(bytes.fromhex(text), dtype=np.uint8).reshape(n, -1)[:, ::-1]
    u = np.ascontiguousarray(raw).view(np.dtype(_UINT[bits]).newbyteorder("<"))
    u = u.reshape(n, elems).astype(_UINT[bits])
    if signed:
        return u.view({8: np.int8, 16: np.int16, 32: np.int32, 64: np.int64}[bits])
    return u
