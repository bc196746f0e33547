"""Golden functional model of the DMA (``hdl/dma.py``): which bytes go where, and what status.

Given descriptors, the HBM contents (one backing store and one error map per pseudo-channel,
PC-local beats), the SRAM contents and the capacity per channel, :func:`run` returns the final
HBM and SRAM and one :class:`Status` per descriptor — the contract the RTL is held to, byte for
byte. :func:`segments` and :func:`bursts` give the same cuts as the RTL (rows at interleave
boundaries, segments at ``cfg.chunk`` boundaries), which the protocol checks and the timing
prediction use.

Semantics (in descriptor order; see ``hdl/dma.py``):

* a read beat that answers SLVERR (marked in the error map) or DECERR (beyond the capacity)
  writes none of its bytes to the SRAM; every such beat counts as one error;
* a write burst with any SLVERR beat answers SLVERR (its good beats are written, the bad ones
  not) and a burst beyond the capacity DECERR (nothing written); either counts one error and
  none of the burst's bytes as moved;
* ``resp`` is the worst response seen (DECERR 3 > SLVERR 2 > OKAY 0), ``bytes`` the bytes moved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from amaranth.hdl import Shape

from hdl.dma import ROW_BYTES_BITS, ROWS_BITS, TAG_BITS, DmaConfig, desc_layout, status_layout

__all__ = ["Descriptor", "Status", "bursts", "pack_desc", "predict_cycles", "run", "segments",
           "unpack_status"]

OKAY, SLVERR, DECERR = 0, 2, 3


@dataclass(frozen=True)
class Descriptor:
    """One DMA descriptor (``write``: SRAM -> HBM; else HBM -> SRAM)."""

    write: bool
    hbm_addr: int
    sram_addr: int
    rows: int
    row_bytes: int
    hbm_stride: int = 0
    sram_stride: int = 0
    tag: int = 0

    def check(self, cfg: DmaConfig):
        """Raise ValueError if a field does not fit its descriptor field."""
        lim = {"hbm_addr": cfg.addr_bits, "sram_addr": cfg.sram_addr_bits, "rows": ROWS_BITS,
               "row_bytes": ROW_BYTES_BITS, "hbm_stride": cfg.addr_bits,
               "sram_stride": cfg.sram_addr_bits, "tag": TAG_BITS}
        for k, bits in lim.items():
            v = getattr(self, k)
            if not 0 <= v < 1 << bits:
                raise ValueError(f"descriptor {k} must be in [0, 2**{bits}), not {v}")

    @property
    def nbytes(self) -> int:
        return self.rows * self.row_bytes


@dataclass(frozen=True)
class Status:
    tag: int
    write: bool
    resp: int
    bytes: int
    errors: int


def pack_desc(cfg: DmaConfig, d: Descriptor) -> int:
    """The descriptor as the integer of ``desc_layout(cfg)``."""
    d.check(cfg)
    lay = desc_layout(cfg)
    out = 0
    for name, f in lay:
        out |= int(getattr(d, name)) << f.offset
    return out


def unpack_status(cfg: DmaConfig, raw: int) -> Status:
    lay = status_layout(cfg)
    v = {}
    for name, f in lay:
        v[name] = (raw >> f.offset) & ((1 << Shape.cast(f.shape).width) - 1)
    return Status(v["tag"], bool(v["write"]), v["resp"], v["bytes"], v["errors"])


def segments(cfg: DmaConfig, d: Descriptor):
    """``(channel, local HBM address, SRAM address, n)`` per segment, in order."""
    G = cfg.interleave
    amask = (1 << cfg.addr_bits) - 1
    smask = (1 << cfg.sram_addr_bits) - 1
    out = []
    if d.rows == 0 or d.row_bytes == 0:
        return out
    for r in range(d.rows):
        h = (d.hbm_addr + r * d.hbm_stride) & amask
        s = (d.sram_addr + r * d.sram_stride) & smask
        rem = d.row_bytes
        while rem:
            n = min(rem, G - h % G)
            ch, local = cfg.channel_of(h)
            out.append((ch, local, s, n))
            h = (h + n) & amask
            s = (s + n) & smask
            rem -= n
    return out


def bursts(cfg: DmaConfig, d: Descriptor):
    """``(channel, local beat-aligned address, beats, local first byte, bytes)`` per burst."""
    B, CH = cfg.data_bytes, cfg.chunk
    out = []
    for ch, local, _s, n in segments(cfg, d):
        cur, end = local, local + n
        while cur < end:
            e = min(end, (cur | (CH - 1)) + 1)
            beats = (e - 1) // B - cur // B + 1
            out.append((ch, cur - cur % B, beats, cur, e - cur))
            cur = e
    return out


def run(cfg: DmaConfig, descs, hbm: list[np.ndarray], err: list[np.ndarray],
        sram: np.ndarray, words_per_channel: int | None = None):
    """Execute ``descs`` in order; return ``(hbm, sram, statuses)`` (copies).

    ``hbm[c]``: (words, B) uint8 of channel c; ``err[c]``: bool per beat; ``sram``: bytes of
    the whole SRAM (2**sram_addr_bits). Beats at or beyond ``words_per_channel`` answer DECERR.
    """
    B = cfg.data_bytes
    hbm = [np.array(h, dtype=np.uint8).reshape(-1).copy() for h in hbm]
    err = [np.asarray(e, dtype=bool).reshape(-1) for e in err]
    sram = np.array(sram, dtype=np.uint8).reshape(-1).copy()
    if len(sram) != 1 << cfg.sram_addr_bits:
        raise ValueError(f"sram must hold 2**{cfg.sram_addr_bits} bytes, not {len(sram)}")
    words = [len(h) // B for h in hbm] if words_per_channel is None else \
        [words_per_channel] * cfg.channels
    S = len(sram)
    out = []
    for d in descs:
        resp = 0
        moved = 0
        nerr = 0
        for ch, local, s, n in segments(cfg, d):
            cap = words[ch]
            if not d.write:
                # Per beat fetched: its response; bytes of good beats land in the SRAM.
                cur, end = local, local + n
                first_w, last_w = cur // B, (end - 1) // B
                # Bursts re-fetch nothing within a segment: each beat once.
                w = np.arange(first_w, last_w + 1)
                dec = w >= cap
                slv = np.zeros_like(dec)
                slv[~dec] = err[ch][w[~dec]]
                bad = dec | slv
                nerr += int(bad.sum())
                if dec.any():
                    resp = max(resp, DECERR)
                if slv.any():
                    resp = max(resp, SLVERR)
                k = np.arange(n)
                good = ~bad[(local + k) // B - first_w]
                src = local + k[good]
                dst = (s + k[good]) % S
                sram[dst] = hbm[ch][src]
                moved += int(good.sum())
            else:
                CH = cfg.chunk
                cur, end = local, local + n
                while cur < end:
                    e = min(end, (cur | (CH - 1)) + 1)
                    w0, w1 = cur // B, (e - 1) // B
                    seg_s = s + (cur - local)
                    if w0 >= cap:
                        resp = max(resp, DECERR)
                        nerr += 1
                    else:
                        k = np.arange(e - cur)
                        bad_w = err[ch][np.arange(w0, w1 + 1)]
                        good = ~bad_w[(cur + k) // B - w0]
                        hbm[ch][cur + k[good]] = sram[(seg_s + k[good]) % S]
                        if bad_w.any():
                            resp = max(resp, SLVERR)
                            nerr += 1
                        else:
                            moved += e - cur
                    cur = e
        out.append(Status(d.tag, bool(d.write), resp, moved, nerr))
    return [h.reshape(-1, B) for h in hbm], sram, out


def predict_cycles(cfg: DmaConfig, hcfg, descs, max_out: int | None = None) -> dict:
    """Cycles the HBM model needs for the bursts of ``descs``: the HBM timing model.

    Each channel's bursts (:func:`bursts`, in descriptor order, as the lane issues them) go to
    ``golden.hbm.simulate`` — the cycle-exact model of one ``HbmChannel`` — driven by its ideal
    master with ``max_out`` bursts outstanding (default: the DMA's read IDs). The DMA's own
    pipeline (descriptor split, SRAM ports, realignment, completion) is not modelled: it adds a
    few cycles of latency at the start and end, and any stall the SRAM side causes.
    """
    from golden.hbm import Burst, simulate

    per = [[] for _ in range(cfg.channels)]
    for d in descs:
        for ch, addr, beats, _first, _n in bursts(cfg, d):
            per[ch].append(Burst(bool(d.write), len(per[ch]) % (1 << hcfg.id_bits), addr,
                                 beats))
    mo = max_out or cfg.ids
    cyc = [simulate(hcfg, b, max_out=mo).cycles if b else 0 for b in per]
    return {"cycles": max(cyc), "per_channel": cyc, "max_out": mo,
            "bursts": [len(b) for b in per]}
