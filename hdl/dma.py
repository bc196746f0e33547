"""DMA between the SRAM and HBM: 2-D strided descriptors become AXI4 bursts, one master per
HBM pseudo-channel.

Descriptor (:func:`desc_layout`): direction (``write = 0``: HBM -> SRAM, ``1``: SRAM -> HBM),
a tag, HBM byte address, SRAM byte address, ``rows`` rows of ``row_bytes`` bytes, HBM and SRAM
row strides (added modulo the address width: a negative stride is its two's complement). Any
alignment, any length (``rows`` = 0 or ``row_bytes`` = 0 moves nothing and completes OKAY).

Datapath::

    desc ─► splitter ─► segments ─► lane c (one per pseudo-channel = AXI master c):
        reads:  bursts ─► AR ... R ─► reorder buffer ─► realign ─► SRAM write port c
        writes: bursts ─► AW;  SRAM read port c ─► realign ─► W (strobes) ... B
    lane events (segment in SRAM, B answered) ─► completion table ─► status (in order)

* **Channels and interleave.** The HBM byte space is interleaved over the ``channels``
  pseudo-channels every ``interleave`` bytes; channel ``(addr / interleave) % channels`` sees
  the PC-local address with the channel bits removed. The splitter cuts every row at interleave
  boundaries into *segments*, one per cycle, each handed to its channel's lane: a descriptor is
  spread over the channels by address.
* **Bursts.** A lane cuts a segment into INCR bursts at every multiple of ``chunk`` = min(4096,
  ``max_burst`` beats, ``interleave``): never across 4 KiB, at most ``max_burst`` (<= 256)
  beats, full-width beats from the beat-aligned address, one burst per cycle.
* **Reads.** Up to ``ids`` bursts in flight per lane, each under its own ID; an ID is taken only
  when the reorder buffer has room for the whole burst, so R is always accepted. Beats are
  written at their burst's place in the buffer whatever order IDs come back in, and drained in
  request order: the SRAM sees data in order.
* **Realignment.** HBM and SRAM addresses need not share an alignment: a byte rotator with one
  word of history turns source words into destination words with byte enables (at most one
  extra output word per segment, one cycle).
* **Writes.** SRAM words are read in order, realigned to the HBM alignment, and sent with byte
  strobes: partial first and last beats of a segment only carry its bytes. All writes of a lane
  use one AXI ID, so they complete in order (``write_outstanding`` in flight).
* **Errors.** A read beat answering SLVERR/DECERR writes none of its bytes to the SRAM (bytes of
  the same output word from good beats still are); a write burst answering an error counts none
  of its bytes as moved. Every error response is counted, and the worst one (DECERR > SLVERR >
  OKAY) is the descriptor's ``resp``: reported, never swallowed.
* **Completion.** One status per descriptor, in descriptor order: tag, direction, resp, bytes
  moved, error responses. Descriptors overlap in flight (up to ``max_desc``); ordering between a
  read and a write of different descriptors to the same bytes is the issuer's (wait for the
  status). Writes to HBM are ordered per channel; SRAM writes are ordered per lane.
"""

from __future__ import annotations

from dataclasses import dataclass

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, fifo, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axi import BOUNDARY, MAX_BEATS, AxiSignature, Burst

__all__ = ["Dir", "Dma", "DmaConfig", "DmaLane", "Realign", "RobMemory", "desc_layout",
           "event_layout", "segment_layout", "sram_rd_layout", "sram_rdata_layout",
           "sram_wr_layout", "status_layout"]

ROWS_BITS = 16
ROW_BYTES_BITS = 20
TAG_BITS = 8


class Dir(enum.Enum, shape=1):
    """Descriptor direction."""

    READ = 0       # HBM -> SRAM
    WRITE = 1      # SRAM -> HBM


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pow2(v) -> bool:
    return _is_int(v) and v >= 1 and not v & (v - 1)


def _log2(v: int) -> int:
    return v.bit_length() - 1


@dataclass(frozen=True)
class DmaConfig:
    """Parameters of the DMA (pure Python: shared by RTL, golden model, tests and bench).

    Parameters
    ----------
    data_bits : int
        AXI data width and SRAM port width, a power of two in [32, 1024].
    channels : int
        Pseudo-channels, one AXI master (lane) each: a power of two in [1, 16].
    interleave : int
        Bytes per channel before the next channel, a power of two in [data_bits/8, 2**20].
    addr_bits : int
        HBM byte address width, in [16, 48] (each channel's AXI address has
        ``addr_bits - log2(channels)`` bits).
    sram_addr_bits : int
        SRAM byte address width, in [log2(data_bits/8) + 1, 32].
    ids : int
        Read IDs (bursts in flight) per channel, a power of two in [1, 256].
    max_burst : int
        Most beats in one burst, a power of two in [1, 256].
    rob_beats : int
        Reorder buffer per channel in beats, a power of two in [max_burst, 4096].
    write_outstanding : int
        Write bursts in flight per channel, in [1, 64].
    max_desc : int
        Descriptors in flight, a power of two in [1, 64].
    queue : int
        Depth of each lane's segment and burst queues, a power of two in [2, 64].

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    data_bits: int = 256
    channels: int = 2
    interleave: int = 1024
    addr_bits: int = 32
    sram_addr_bits: int = 20
    ids: int = 8
    max_burst: int = 32
    rob_beats: int = 256
    write_outstanding: int = 8
    max_desc: int = 8
    queue: int = 8

    def __post_init__(self):
        for name in self.__dataclass_fields__:
            v = getattr(self, name)
            if not _is_int(v):
                raise TypeError(f"{name} must be an integer, not {v!r}")
        pow2 = [("data_bits", 32, 1024), ("channels", 1, 16), ("ids", 1, 256),
                ("max_burst", 1, MAX_BEATS), ("max_desc", 1, 64), ("queue", 2, 64)]
        for name, lo, hi in pow2:
            v = getattr(self, name)
            if not (_pow2(v) and lo <= v <= hi):
                raise ValueError(f"{name} must be a power of two in [{lo}, {hi}], not {v}")
        if not (_pow2(self.interleave) and self.data_bytes <= self.interleave <= 1 << 20):
            raise ValueError(f"interleave must be a power of two in [{self.data_bytes}, "
                             f"1048576], not {self.interleave}")
        if not (_pow2(self.rob_beats) and self.max_burst <= self.rob_beats <= 4096):
            raise ValueError(f"rob_beats must be a power of two in [max_burst, 4096] "
                             f"(max_burst = {self.max_burst}), not {self.rob_beats}")
        lo = max(16, _log2(self.channels) + 12)
        if not lo <= self.addr_bits <= 48:
            raise ValueError(f"addr_bits must be in [{lo}, 48], not {self.addr_bits}")
        if not self.beat_shift + 1 <= self.sram_addr_bits <= 32:
            raise ValueError(f"sram_addr_bits must be in [{self.beat_shift + 1}, 32], "
                             f"not {self.sram_addr_bits}")
        if not 1 <= self.write_outstanding <= 64:
            raise ValueError(f"write_outstanding must be in [1, 64], "
                             f"not {self.write_outstanding}")

    @property
    def data_bytes(self) -> int:
        return self.data_bits // 8

    @property
    def beat_shift(self) -> int:
        return _log2(self.data_bytes)

    @property
    def chan_bits(self) -> int:
        return _log2(self.channels)

    @property
    def chan_addr_bits(self) -> int:
        """AXI address bits of each channel (PC-local byte address)."""
        return self.addr_bits - self.chan_bits

    @property
    def id_bits(self) -> int:
        return max(1, _log2(self.ids))

    @property
    def chunk(self) -> int:
        """Bursts split at every multiple of this many bytes."""
        return min(BOUNDARY, self.max_burst * self.data_bytes, self.interleave)

    @property
    def sram_word_bits(self) -> int:
        return self.sram_addr_bits - self.beat_shift

    def channel_of(self, addr: int) -> tuple[int, int]:
        """``(channel, PC-local address)`` of a global HBM byte address."""
        g = _log2(self.interleave)
        ch = (addr >> g) & (self.channels - 1)
        local = ((addr >> (g + self.chan_bits)) << g) | (addr & (self.interleave - 1))
        return ch, local

    def global_of(self, ch: int, local: int) -> int:
        """Inverse of :meth:`channel_of`."""
        g = _log2(self.interleave)
        return (((local >> g) << (g + self.chan_bits)) | (ch << g)
                | (local & (self.interleave - 1)))

    @property
    def name(self) -> str:
        return (f"d{self.data_bits}c{self.channels}i{self.interleave}a{self.addr_bits}"
                f"s{self.sram_addr_bits}id{self.ids}b{self.max_burst}r{self.rob_beats}"
                f"w{self.write_outstanding}q{self.max_desc}x{self.queue}")

    def as_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d["chunk"] = self.chunk
        return d


# --------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------

def desc_layout(cfg: DmaConfig) -> data.StructLayout:
    """A descriptor (see the module docstring)."""
    return data.StructLayout({
        "write": Dir, "tag": TAG_BITS, "hbm_addr": cfg.addr_bits,
        "sram_addr": cfg.sram_addr_bits, "rows": ROWS_BITS, "row_bytes": ROW_BYTES_BITS,
        "hbm_stride": cfg.addr_bits, "sram_stride": cfg.sram_addr_bits,
    })


def status_layout(cfg: DmaConfig) -> data.StructLayout:
    """A descriptor's completion: worst response, bytes moved, error responses counted."""
    return data.StructLayout({"tag": TAG_BITS, "write": Dir, "resp": 2,
                              "bytes": ROWS_BITS + ROW_BYTES_BITS, "errors": 32})


def sram_wr_layout(cfg: DmaConfig) -> data.StructLayout:
    """An SRAM write: word address, data, byte enables (bit i: byte i)."""
    return data.StructLayout({"addr": cfg.sram_word_bits, "data": cfg.data_bits,
                              "be": cfg.data_bytes})


def sram_rd_layout(cfg: DmaConfig) -> data.StructLayout:
    """An SRAM read request: word address (data returns in order on ``sram_rdata``)."""
    return data.StructLayout({"addr": cfg.sram_word_bits})


def sram_rdata_layout(cfg: DmaConfig) -> data.StructLayout:
    return data.StructLayout({"data": cfg.data_bits})


def segment_layout(cfg: DmaConfig) -> data.StructLayout:
    """A piece of one row inside one interleave unit, as handed to a lane."""
    return data.StructLayout({"write": Dir, "addr": cfg.chan_addr_bits,
                              "sram": cfg.sram_addr_bits, "n": ROW_BYTES_BITS,
                              "slot": max(1, _log2(cfg.max_desc))})


def event_layout(cfg: DmaConfig) -> data.StructLayout:
    """A completion event of a lane: one read segment or one write burst is finished."""
    return data.StructLayout({"valid": 1, "slot": max(1, _log2(cfg.max_desc)),
                              "bytes": ROW_BYTES_BITS + 1, "errors": ROW_BYTES_BITS + 1,
                              "resp": 2})


def _realign_seg(cfg: DmaConfig, addr_bits: int) -> data.StructLayout:
    return data.StructLayout({
        "a0": cfg.beat_shift, "b0": cfg.beat_shift, "n": ROW_BYTES_BITS,
        "J": ROW_BYTES_BITS + 1, "K": ROW_BYTES_BITS + 1, "base": addr_bits,
        "slot": max(1, _log2(cfg.max_desc)),
    })


def _fifo(m: Module, name: str, layout, depth: int):
    """A SyncFIFO of ``layout`` with views on both ends: ``(fifo, in_view, out_view)``."""
    size = layout.size if isinstance(layout, data.Layout) else layout
    f = fifo.SyncFIFO(width=size, depth=depth)
    m.submodules[name] = f
    if isinstance(layout, data.Layout):
        return f, data.View(layout, f.w_data), data.View(layout, f.r_data)
    return f, f.w_data, f.r_data


def _max(a, b):
    return Mux(a > b, a, b)


# --------------------------------------------------------------------------------------------
# Realignment
# --------------------------------------------------------------------------------------------

class Realign(wiring.Component):
    """Byte realignment of one segment at a time: source words at offset ``a0`` to destination
    words at offset ``b0``, ``n`` bytes, with byte enables.

    Source word ``j`` (``J`` of them) holds bytes ``j*B - a0 ..`` of the segment; it is rotated
    by ``(b0 - a0) mod B`` bytes and, with the previous rotated word, forms destination word
    ``j - e`` (``e`` = 1 if ``b0 < a0``); a last word from the history alone follows when the
    destination needs ``K`` = ``J - e + 1`` words. Lanes of an errored source word are not
    enabled; a destination word with no byte enabled is dropped (``keep_empty`` keeps it).

    Members
    -------
    seg : In(stream)
        Segment parameters; taken when the segment is finished.
    src : In(stream)
        Source words ``{data, resp}``; ``resp`` SLVERR/DECERR (bit 1) marks an errored word.
    dst : Out(stream)
        Destination words ``{addr = base + k, data, be}``, registered.
    done : Out(event_layout)
        One cycle per finished segment: bytes enabled, errored source words, worst response.
    """

    def __init__(self, cfg: DmaConfig, addr_bits: int, keep_empty: bool):
        self._cfg = cfg
        self._keep = keep_empty
        self._ab = addr_bits
        B = cfg.data_bytes
        super().__init__({
            "seg": In(stream.Signature(_realign_seg(cfg, addr_bits))),
            "src": In(stream.Signature(data.StructLayout({"data": cfg.data_bits, "resp": 2}))),
            "dst": Out(stream.Signature(data.StructLayout({"addr": addr_bits,
                                                           "data": cfg.data_bits,
                                                           "be": B}))),
            "done": Out(event_layout(cfg)),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        B, lb = cfg.data_bytes, cfg.beat_shift
        seg = self.seg.payload
        src = self.src.payload
        active = self.seg.valid

        shift = Signal(lb)
        e = Signal()
        m.d.comb += [shift.eq(seg.b0 - seg.a0), e.eq(seg.b0 < seg.a0)]
        rot = src.data
        for k in range(lb):
            stage = Signal(cfg.data_bits, name=f"rot{k}")
            m.d.comb += stage.eq(Mux(shift[k], rot.rotate_left(8 << k), rot))
            rot = stage
        lane_lo = Signal(B)          # destination lanes taken from the previous source word
        # (Comparisons whose result is a constant are written as that constant: the lint.)
        m.d.comb += lane_lo.eq(Cat((shift > i) if i < B - 1 else Const(0) for i in range(B)))

        j = Signal(ROW_BYTES_BITS + 1)
        flush = Signal()
        prev = Signal(cfg.data_bits)
        prev_err = Signal()
        acc_bytes = Signal(ROW_BYTES_BITS + 1)
        acc_errs = Signal(ROW_BYTES_BITS + 1)
        acc_resp = Signal(2)

        cur_err = src.resp[1]
        k = Signal(ROW_BYTES_BITS + 1)
        m.d.comb += k.eq(Mux(flush, seg.K - 1, j - e))
        end_lane = Signal(lb)
        m.d.comb += end_lane.eq(seg.b0 + seg.n - 1)
        lo = Mux(k == 0, seg.b0, 0)
        hi = Mux(k == seg.K - 1, end_lane, B - 1)
        in_range = Cat(((lo <= i) if i < B - 1 else Const(1))
                       & ((hi >= i) if i > 0 else Const(1)) for i in range(B))
        errm = Cat(Mux(lane_lo[i], prev_err, Mux(flush, 1, cur_err)) for i in range(B))
        be = Signal(B)
        m.d.comb += be.eq(in_range & ~errm)
        out_data = Signal(cfg.data_bits)
        m.d.comb += out_data.eq(Cat(Mux(lane_lo[i], prev[8 * i:8 * i + 8], rot[8 * i:8 * i + 8])
                                    for i in range(B)))

        emit_slot = flush | (j >= e)                 # this step produces a destination word
        empty = Const(0) if self._keep else (be == 0)
        out_free = ~self.dst.valid | self.dst.ready
        can = ~emit_slot | empty | out_free
        step = Signal()
        m.d.comb += step.eq(active & (flush | self.src.valid) & can)
        m.d.comb += self.src.ready.eq(active & ~flush & can)
        load = step & emit_slot & ~empty
        with m.If(load):
            m.d.sync += [self.dst.valid.eq(1), self.dst.payload.addr.eq(seg.base + k),
                         self.dst.payload.data.eq(out_data), self.dst.payload.be.eq(be)]
        with m.Elif(self.dst.ready):
            m.d.sync += self.dst.valid.eq(0)

        nbytes = Signal(range(B + 1))
        m.d.comb += nbytes.eq(Mux(load, sum(be[i] for i in range(B)), 0))
        new_bytes = acc_bytes + nbytes
        new_errs = acc_errs + (~flush & cur_err)
        new_resp = Mux(flush, acc_resp, _max(acc_resp, src.resp))
        last_src = j == seg.J - 1
        needs_flush = seg.K + e > seg.J
        finish = step & (flush | (last_src & ~needs_flush))
        with m.If(step & ~flush):
            m.d.sync += [prev.eq(rot), prev_err.eq(cur_err), j.eq(j + 1)]
            with m.If(last_src & needs_flush):
                m.d.sync += flush.eq(1)
        with m.If(step):
            m.d.sync += [acc_bytes.eq(new_bytes), acc_errs.eq(new_errs), acc_resp.eq(new_resp)]
        with m.If(finish):
            m.d.sync += [j.eq(0), flush.eq(0), acc_bytes.eq(0), acc_errs.eq(0),
                         acc_resp.eq(0)]
        m.d.comb += [
            self.seg.ready.eq(finish),
            self.done.valid.eq(finish), self.done.slot.eq(seg.slot),
            self.done.bytes.eq(new_bytes), self.done.errors.eq(new_errs),
            self.done.resp.eq(new_resp),
        ]
        return m


# --------------------------------------------------------------------------------------------
# One lane: the AXI master of one pseudo-channel
# --------------------------------------------------------------------------------------------

class RobMemory(wiring.Component):
    """Storage of a lane's reorder buffer: ``rob_beats`` x (data, resp), one write port and one
    asynchronous read port.

    Its own module so that area estimates can count it as a memory macro (a black box in
    Yosys) rather than as flip-flops.

    Members
    -------
    w : In(...)
        ``en``, ``addr``, ``data`` (``data``, ``resp``): written at the clock edge.
    r : In(...)
        ``addr`` in, ``data`` out in the same cycle.
    """

    def __init__(self, cfg: DmaConfig):
        self._cfg = cfg
        lay = data.StructLayout({"data": cfg.data_bits, "resp": 2})
        ab = _log2(cfg.rob_beats)
        super().__init__({
            "w": In(data.StructLayout({"en": 1, "addr": ab, "data": lay})),
            "r": In(data.StructLayout({"addr": ab})),
            "r_data": Out(lay),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self._cfg
        m.submodules.mem = mem = Memory(
            shape=data.StructLayout({"data": cfg.data_bits, "resp": 2}), depth=cfg.rob_beats,
            init=[])
        wp = mem.write_port()
        rp = mem.read_port(domain="comb")
        m.d.comb += [wp.en.eq(self.w.en), wp.addr.eq(self.w.addr), wp.data.eq(self.w.data),
                     rp.addr.eq(self.r.addr), self.r_data.eq(rp.data)]
        return m


class DmaLane(wiring.Component):
    """The AXI4 master of one pseudo-channel and its SRAM ports.

    Members
    -------
    seg : In(stream.Signature(segment_layout(cfg)))
        Segments of this channel, in order.
    axi : Out(AxiSignature(...))
        AXI4 master (PC-local addresses).
    sram_wr : Out(stream.Signature(sram_wr_layout(cfg)))
        SRAM writes of HBM -> SRAM segments, in order.
    sram_rd : Out(stream.Signature(sram_rd_layout(cfg)))
        SRAM read requests of SRAM -> HBM segments, in order.
    sram_rdata : In(stream.Signature(sram_rdata_layout(cfg)))
        Their data, in request order.
    rd_done, wr_done : Out(event_layout(cfg))
        A read segment finished (in the SRAM), a write burst answered (B).
    stats : Out(...)
        Beats and bursts moved.
    """

    def __init__(self, cfg: DmaConfig):
        self._cfg = cfg
        super().__init__({
            "seg": In(stream.Signature(segment_layout(cfg))),
            "axi": Out(AxiSignature(addr_width=cfg.chan_addr_bits, data_width=cfg.data_bits,
                                    id_width=cfg.id_bits)),
            "sram_wr": Out(stream.Signature(sram_wr_layout(cfg))),
            "sram_rd": Out(stream.Signature(sram_rd_layout(cfg))),
            "sram_rdata": In(stream.Signature(sram_rdata_layout(cfg))),
            "rd_done": Out(event_layout(cfg)),
            "wr_done": Out(event_layout(cfg)),
            "stats": Out(data.StructLayout({"rd_beats": 32, "wr_beats": 32, "ar": 32,
                                            "aw": 32})),
        })

    def elaborate(self, platform):  # noqa: C901 - one lane, written out in order
        m = Module()
        cfg = self._cfg
        lb = cfg.beat_shift
        axi = self.axi
        ab = cfg.chan_addr_bits
        slot_bits = max(1, _log2(cfg.max_desc))
        chunk_mask = cfg.chunk - 1

        # --- segment queue and burst generator ------------------------------------------------
        segq, segq_in, s = _fifo(m, "segq", segment_layout(cfg), cfg.queue)
        m.d.comb += [segq_in.eq(self.seg.payload), segq.w_en.eq(self.seg.valid),
                     self.seg.ready.eq(segq.w_rdy)]
        sv = segq.r_rdy
        first = Signal(init=1)
        cur = Signal(ab)
        cur_a = Signal(ab)
        m.d.comb += cur_a.eq(Mux(first, s.addr, cur))
        seg_end = Signal(ab + 1)
        bound = Signal(ab + 1)
        end = Signal(ab + 1)
        m.d.comb += [seg_end.eq(s.addr + s.n), bound.eq((cur_a | chunk_mask) + 1),
                     end.eq(Mux(seg_end < bound, seg_end, bound))]
        beats = Signal(9)
        m.d.comb += beats.eq((end - 1)[lb:] - cur_a[lb:] + 1)
        is_last = end == seg_end
        aligned = Cat(Const(0, lb), cur_a[lb:])
        is_rd = s.write == Dir.READ
        s_lo = s.sram[:lb]
        a_lo = s.addr[:lb]
        words_hbm = Signal(ROW_BYTES_BITS + 1)
        words_sram = Signal(ROW_BYTES_BITS + 1)
        m.d.comb += [words_hbm.eq(((a_lo + s.n - 1) >> lb) + 1),
                     words_sram.eq(((s_lo + s.n - 1) >> lb) + 1)]

        ar_lay = data.StructLayout({"addr": ab, "beats": 9})
        aw_lay = data.StructLayout({"addr": ab, "beats": 9, "slot": slot_bits,
                                    "bytes": _log2(cfg.chunk) + 1})
        arq, arq_in, arq_out = _fifo(m, "arq", ar_lay, cfg.queue)
        awq, awq_in, awq_out = _fifo(m, "awq", aw_lay, cfg.queue)
        wlen, wlen_in, wlen_out = _fifo(m, "wlen", 9, cfg.queue + cfg.write_outstanding)
        rxi_lay = _realign_seg(cfg, cfg.sram_word_bits)
        txi_lay = _realign_seg(cfg, 1)
        rxi, rxi_in, rxi_out = _fifo(m, "rxinfo", rxi_lay, cfg.queue)
        txi, txi_in, txi_out = _fifo(m, "txinfo", txi_lay, cfg.queue)
        sreq_lay = data.StructLayout({"start": cfg.sram_word_bits, "count": ROW_BYTES_BITS + 1})
        sreq, sreq_in, sreq_out = _fifo(m, "sreq", sreq_lay, cfg.queue)

        ok = Signal()
        m.d.comb += ok.eq(sv & Mux(is_rd, arq.w_rdy & (~first | rxi.w_rdy),
                                   awq.w_rdy & wlen.w_rdy
                                   & (~first | (sreq.w_rdy & txi.w_rdy))))
        with m.If(ok):
            m.d.sync += [cur.eq(end), first.eq(is_last)]
        m.d.comb += [
            segq.r_en.eq(ok & is_last),
            arq.w_en.eq(ok & is_rd), arq_in.addr.eq(aligned), arq_in.beats.eq(beats),
            rxi.w_en.eq(ok & is_rd & first),
            rxi_in.a0.eq(a_lo), rxi_in.b0.eq(s_lo), rxi_in.n.eq(s.n),
            rxi_in.J.eq(words_hbm), rxi_in.K.eq(words_sram), rxi_in.base.eq(s.sram[lb:]),
            rxi_in.slot.eq(s.slot),
            awq.w_en.eq(ok & ~is_rd), awq_in.addr.eq(aligned), awq_in.beats.eq(beats),
            awq_in.slot.eq(s.slot), awq_in.bytes.eq(end - cur_a),
            wlen.w_en.eq(ok & ~is_rd), wlen_in.eq(beats),
            sreq.w_en.eq(ok & ~is_rd & first), sreq_in.start.eq(s.sram[lb:]),
            sreq_in.count.eq(words_sram),
            txi.w_en.eq(ok & ~is_rd & first),
            txi_in.a0.eq(s_lo), txi_in.b0.eq(a_lo), txi_in.n.eq(s.n),
            txi_in.J.eq(words_sram), txi_in.K.eq(words_hbm), txi_in.base.eq(0),
            txi_in.slot.eq(s.slot),
        ]

        # --- reads: IDs, reorder buffer, in-order drain --------------------------------------
        N = cfg.ids
        R = cfg.rob_beats
        rb = _log2(R)
        busy = Signal(N)
        next_id = Signal(max(1, _log2(N)))
        bases = [Signal(rb, name=f"rob_base{i}") for i in range(N)]
        cnts = [Signal(9, name=f"rob_cnt{i}") for i in range(N)]
        A_base, A_cnt = Array(bases), Array(cnts)
        alloc = Signal(rb)
        used = Signal(range(R + 1))
        iss_lay = data.StructLayout({"id": cfg.id_bits, "beats": 9})
        iss, iss_in, iss_out = _fifo(m, "issued", iss_lay, N)
        m.submodules.rob = rob = RobMemory(cfg)
        rob_w = rob.w
        rob_r = rob.r

        id_free = ~busy.bit_select(next_id, 1) if N > 1 else ~busy[0]
        ar_load = Signal()
        m.d.comb += ar_load.eq(arq.r_rdy & id_free & (used + arq_out.beats <= R) & iss.w_rdy
                               & (~axi.arvalid | axi.arready))
        with m.If(ar_load):
            m.d.sync += [axi.arvalid.eq(1), axi.arid.eq(next_id), axi.araddr.eq(arq_out.addr),
                         axi.arlen.eq(arq_out.beats - 1), next_id.eq(next_id + 1),
                         alloc.eq(alloc + arq_out.beats)]
        with m.Elif(axi.arready):
            m.d.sync += axi.arvalid.eq(0)
        m.d.comb += [axi.arsize.eq(lb), axi.arburst.eq(Burst.INCR), arq.r_en.eq(ar_load),
                     iss.w_en.eq(ar_load), iss_in.id.eq(next_id),
                     iss_in.beats.eq(arq_out.beats)]

        # R: always accepted (the whole burst has its place).
        r_hs = axi.rvalid
        m.d.comb += [axi.rready.eq(1), rob_w.en.eq(r_hs),
                     rob_w.addr.eq(A_base[axi.rid] + A_cnt[axi.rid]),
                     rob_w.data.data.eq(axi.rdata), rob_w.data.resp.eq(axi.rresp)]

        # Drain in request order.
        dj = Signal(9)
        drain_ptr = Signal(rb)
        head_id = iss_out.id
        avail = iss.r_rdy & (A_cnt[head_id] > dj)
        m.d.comb += rob_r.addr.eq(drain_ptr)
        m.submodules.rx = rx = Realign(cfg, cfg.sram_word_bits, keep_empty=False)
        m.d.comb += [rx.src.valid.eq(avail), rx.src.payload.data.eq(rob.r_data.data),
                     rx.src.payload.resp.eq(rob.r_data.resp),
                     rx.seg.valid.eq(rxi.r_rdy), rx.seg.payload.eq(rxi_out),
                     rxi.r_en.eq(rx.seg.ready)]
        drain = avail & rx.src.ready
        drain_last = dj == iss_out.beats - 1
        with m.If(drain):
            m.d.sync += drain_ptr.eq(drain_ptr + 1)
            with m.If(drain_last):
                m.d.sync += dj.eq(0)
            with m.Else():
                m.d.sync += dj.eq(dj + 1)
        m.d.comb += iss.r_en.eq(drain & drain_last)
        m.d.sync += used.eq(used + Mux(ar_load, arq_out.beats, 0) - drain)
        for i in range(N):
            set_i = ar_load & (next_id == i)
            clr_i = drain & drain_last & (head_id == i)
            with m.If(set_i):
                m.d.sync += [busy[i].eq(1), bases[i].eq(alloc), cnts[i].eq(0)]
            with m.Elif(clr_i):
                m.d.sync += busy[i].eq(0)
            with m.If(r_hs & (axi.rid == i)):
                m.d.sync += cnts[i].eq(cnts[i] + 1)
        wiring.connect(m, rx.dst, wiring.flipped(self.sram_wr))
        m.d.comb += self.rd_done.eq(rx.done)

        # --- writes: SRAM reads, realignment, W with strobes, AW, B ---------------------------
        ri = Signal(ROW_BYTES_BITS + 1)
        rq_free = ~self.sram_rd.valid | self.sram_rd.ready
        rq_load = sreq.r_rdy & rq_free
        rq_last = ri == sreq_out.count - 1
        with m.If(rq_load):
            m.d.sync += [self.sram_rd.valid.eq(1),
                         self.sram_rd.payload.addr.eq(sreq_out.start + ri),
                         ri.eq(Mux(rq_last, 0, ri + 1))]
        with m.Elif(self.sram_rd.ready):
            m.d.sync += self.sram_rd.valid.eq(0)
        m.d.comb += sreq.r_en.eq(rq_load & rq_last)

        m.submodules.tx = tx = Realign(cfg, 1, keep_empty=True)
        m.d.comb += [tx.src.valid.eq(self.sram_rdata.valid),
                     tx.src.payload.data.eq(self.sram_rdata.payload.data),
                     tx.src.payload.resp.eq(0), self.sram_rdata.ready.eq(tx.src.ready),
                     tx.seg.valid.eq(txi.r_rdy), tx.seg.payload.eq(txi_out),
                     txi.r_en.eq(tx.seg.ready)]
        wb = Signal(9)
        w_last = wb == wlen_out - 1
        m.d.comb += [
            axi.wvalid.eq(tx.dst.valid & wlen.r_rdy), axi.wdata.eq(tx.dst.payload.data),
            axi.wstrb.eq(tx.dst.payload.be), axi.wlast.eq(w_last),
            tx.dst.ready.eq(wlen.r_rdy & axi.wready),
        ]
        w_hs = axi.wvalid & axi.wready
        with m.If(w_hs):
            m.d.sync += wb.eq(Mux(w_last, 0, wb + 1))
        m.d.comb += wlen.r_en.eq(w_hs & w_last)

        WO = cfg.write_outstanding
        outstanding = Signal(range(WO + 1))
        bp_lay = data.StructLayout({"slot": slot_bits, "bytes": _log2(cfg.chunk) + 1})
        bp, bp_in, bp_out = _fifo(m, "bpend", bp_lay, max(2, WO))
        aw_load = Signal()
        m.d.comb += aw_load.eq(awq.r_rdy & (outstanding < WO) & (~axi.awvalid | axi.awready))
        with m.If(aw_load):
            m.d.sync += [axi.awvalid.eq(1), axi.awaddr.eq(awq_out.addr),
                         axi.awlen.eq(awq_out.beats - 1)]
        with m.Elif(axi.awready):
            m.d.sync += axi.awvalid.eq(0)
        m.d.comb += [axi.awid.eq(0), axi.awsize.eq(lb), axi.awburst.eq(Burst.INCR),
                     awq.r_en.eq(aw_load), bp.w_en.eq(aw_load),
                     bp_in.slot.eq(awq_out.slot), bp_in.bytes.eq(awq_out.bytes)]
        b_hs = axi.bvalid & bp.r_rdy
        m.d.comb += axi.bready.eq(bp.r_rdy)
        m.d.sync += outstanding.eq(outstanding + aw_load - b_hs)
        b_err = axi.bresp[1]
        m.d.comb += [
            bp.r_en.eq(b_hs),
            self.wr_done.valid.eq(b_hs), self.wr_done.slot.eq(bp_out.slot),
            self.wr_done.bytes.eq(Mux(b_err, 0, bp_out.bytes)),
            self.wr_done.errors.eq(b_err), self.wr_done.resp.eq(axi.bresp),
        ]

        st = self.stats
        m.d.sync += [st.rd_beats.eq(st.rd_beats + r_hs), st.wr_beats.eq(st.wr_beats + w_hs),
                     st.ar.eq(st.ar + (axi.arvalid & axi.arready)),
                     st.aw.eq(st.aw + (axi.awvalid & axi.awready))]
        return m


# --------------------------------------------------------------------------------------------
# The DMA: splitter, lanes, completion
# --------------------------------------------------------------------------------------------

class Dma(wiring.Component):
    """The DMA engine (see the module docstring).

    Parameters
    ----------
    cfg : DmaConfig

    Members
    -------
    desc : In(stream.Signature(desc_layout(cfg)))
        Descriptors.
    status : Out(stream.Signature(status_layout(cfg)))
        One status per descriptor, in descriptor order.
    m : Out(AxiSignature(...)).array(channels)
        One AXI4 master per pseudo-channel (ports ``m__<c>__araddr``…).
    sram_wr, sram_rd : Out(stream.Signature(...)).array(channels)
        Per lane: SRAM writes (address, data, byte enables) and read requests.
    sram_rdata : In(stream.Signature(...)).array(channels)
        Per lane: read data, in request order.
    busy : Out(1)
        A descriptor is in flight.

    Raises
    ------
    TypeError
        If ``cfg`` is not a :class:`DmaConfig`.
    """

    def __init__(self, cfg: DmaConfig):
        if not isinstance(cfg, DmaConfig):
            raise TypeError(f"cfg must be a DmaConfig, not {cfg!r}")
        self._cfg = cfg
        C = cfg.channels
        super().__init__({
            "desc": In(stream.Signature(desc_layout(cfg))),
            "status": Out(stream.Signature(status_layout(cfg))),
            "m": Out(AxiSignature(addr_width=cfg.chan_addr_bits, data_width=cfg.data_bits,
                                  id_width=cfg.id_bits)).array(C),
            "sram_wr": Out(stream.Signature(sram_wr_layout(cfg))).array(C),
            "sram_rd": Out(stream.Signature(sram_rd_layout(cfg))).array(C),
            "sram_rdata": In(stream.Signature(sram_rdata_layout(cfg))).array(C),
            "busy": Out(1),
            "stats": Out(data.StructLayout({"rd_beats": 32, "wr_beats": 32, "ar": 32,
                                            "aw": 32, "segments": 32})).array(C),
        })

    @property
    def cfg(self) -> DmaConfig:
        return self._cfg

    def elaborate(self, platform):  # noqa: C901 - splitter and completion, written out in order
        m = Module()
        cfg = self._cfg
        C, D = cfg.channels, cfg.max_desc
        G = cfg.interleave
        gb, cb = _log2(G), cfg.chan_bits
        slot_bits = max(1, _log2(D))

        lanes = []
        for c in range(C):
            lane = DmaLane(cfg)
            m.submodules[f"lane{c}"] = lane
            lanes.append(lane)
            wiring.connect(m, lane.axi, wiring.flipped(self.m[c]))
            wiring.connect(m, lane.sram_wr, wiring.flipped(self.sram_wr[c]))
            wiring.connect(m, lane.sram_rd, wiring.flipped(self.sram_rd[c]))
            wiring.connect(m, wiring.flipped(self.sram_rdata[c]), lane.sram_rdata)

        # --- completion table -----------------------------------------------------------------
        tags = [Signal(TAG_BITS, name=f"tag{e}") for e in range(D)]
        dirs = [Signal(name=f"dir{e}") for e in range(D)]
        gen_done = [Signal(name=f"gen_done{e}") for e in range(D)]
        expected = [Signal(32, name=f"expected{e}") for e in range(D)]
        units = [Signal(32, name=f"units{e}") for e in range(D)]
        nbytes = [Signal(ROWS_BITS + ROW_BYTES_BITS, name=f"bytes{e}") for e in range(D)]
        errs = [Signal(32, name=f"errors{e}") for e in range(D)]
        resps = [Signal(2, name=f"resp{e}") for e in range(D)]
        head = Signal(slot_bits)
        tail = Signal(slot_bits)
        inflight = Signal(range(D + 1))

        # --- splitter -------------------------------------------------------------------------
        d = self.desc.payload
        active = Signal()
        wr = Signal()
        slot = Signal(slot_bits)
        rows_left = Signal(ROWS_BITS)
        row_bytes = Signal(ROW_BYTES_BITS)
        hstride = Signal(cfg.addr_bits)
        sstride = Signal(cfg.sram_addr_bits)
        row_h = Signal(cfg.addr_bits)
        row_s = Signal(cfg.sram_addr_bits)
        seg_h = Signal(cfg.addr_bits)
        seg_s = Signal(cfg.sram_addr_bits)
        rem = Signal(ROW_BYTES_BITS)
        count = Signal(32)

        accept = Signal()
        empty_desc = (d.rows == 0) | (d.row_bytes == 0)
        m.d.comb += [accept.eq(self.desc.valid & ~active & (inflight != D)),
                     self.desc.ready.eq(accept)]

        to_bound = Signal(gb + 1)
        m.d.comb += to_bound.eq(G - seg_h[:gb])
        seg_len = Signal(ROW_BYTES_BITS)
        m.d.comb += seg_len.eq(Mux(rem < to_bound, rem, to_bound))
        lane_sel = seg_h[gb:gb + cb] if cb else Const(0, 1)
        local = Cat(seg_h[:gb], seg_h[gb + cb:])
        cgb = _log2(cfg.chunk)
        seg_last_byte = Signal(cfg.addr_bits)
        m.d.comb += seg_last_byte.eq(seg_h + seg_len - 1)
        n_bursts = Signal(ROW_BYTES_BITS + 1)
        m.d.comb += n_bursts.eq(seg_last_byte[cgb:] - seg_h[cgb:] + 1)
        pushed = Signal()
        ready_any = Signal()
        for c, lane in enumerate(lanes):
            sel = lane_sel == c
            m.d.comb += [
                lane.seg.valid.eq(active & sel),
                lane.seg.payload.write.as_value().eq(wr), lane.seg.payload.addr.eq(local),
                lane.seg.payload.sram.eq(seg_s), lane.seg.payload.n.eq(seg_len),
                lane.seg.payload.slot.eq(slot),
            ]
            with m.If(sel):
                m.d.comb += ready_any.eq(lane.seg.ready)
        m.d.comb += pushed.eq(active & ready_any)
        row_end = seg_len == rem
        desc_end = pushed & row_end & (rows_left == 1)
        new_count = count + Mux(wr, n_bursts, 1)

        with m.If(accept):
            m.d.sync += [
                active.eq(~empty_desc), wr.eq(d.write), slot.eq(tail),
                rows_left.eq(d.rows), row_bytes.eq(d.row_bytes), hstride.eq(d.hbm_stride),
                sstride.eq(d.sram_stride), row_h.eq(d.hbm_addr), row_s.eq(d.sram_addr),
                seg_h.eq(d.hbm_addr), seg_s.eq(d.sram_addr), rem.eq(d.row_bytes),
                count.eq(0),
            ]
        with m.If(pushed):
            m.d.sync += count.eq(new_count)
            with m.If(row_end):
                nh = row_h + hstride
                ns = row_s + sstride
                m.d.sync += [rows_left.eq(rows_left - 1), row_h.eq(nh), row_s.eq(ns),
                             seg_h.eq(nh), seg_s.eq(ns), rem.eq(row_bytes)]
                with m.If(rows_left == 1):
                    m.d.sync += active.eq(0)
            with m.Else():
                m.d.sync += [seg_h.eq(seg_h + seg_len), seg_s.eq(seg_s + seg_len),
                             rem.eq(rem - seg_len)]

        # --- events into the table ------------------------------------------------------------
        events = [lane.rd_done for lane in lanes] + [lane.wr_done for lane in lanes]
        status = self.status
        retire = Signal()
        h_done = Signal()
        m.d.comb += h_done.eq((inflight != 0) & Array(gen_done)[head]
                              & (Array(units)[head] == Array(expected)[head]))
        m.d.comb += retire.eq(h_done & (~status.valid | status.ready))
        with m.If(retire):
            m.d.sync += [status.valid.eq(1), status.payload.tag.eq(Array(tags)[head]),
                         status.payload.write.as_value().eq(Array(dirs)[head]),
                         status.payload.resp.eq(Array(resps)[head]),
                         status.payload.bytes.eq(Array(nbytes)[head]),
                         status.payload.errors.eq(Array(errs)[head]),
                         head.eq(head + 1)]
        with m.Elif(status.ready):
            m.d.sync += status.valid.eq(0)
        m.d.sync += inflight.eq(inflight + accept - retire)
        with m.If(accept):
            m.d.sync += tail.eq(tail + 1)

        for e in range(D):
            hit = [ev.valid & (ev.slot == e) for ev in events]
            add_u = sum(h for h in hit)
            add_b = sum(Mux(h, ev.bytes, 0) for h, ev in zip(hit, events, strict=True))
            add_e = sum(Mux(h, ev.errors, 0) for h, ev in zip(hit, events, strict=True))
            r = resps[e]
            for h, ev in zip(hit, events, strict=True):
                r = Mux(h & (ev.resp > r), ev.resp, r)
            alloc = accept & (tail == e)
            with m.If(alloc):
                m.d.sync += [tags[e].eq(d.tag), dirs[e].eq(d.write),
                             gen_done[e].eq(empty_desc), expected[e].eq(0), units[e].eq(0),
                             nbytes[e].eq(0), errs[e].eq(0), resps[e].eq(0)]
            with m.Else():
                m.d.sync += [units[e].eq(units[e] + add_u), nbytes[e].eq(nbytes[e] + add_b),
                             errs[e].eq(errs[e] + add_e), resps[e].eq(r)]
                with m.If(desc_end & (slot == e)):
                    m.d.sync += [gen_done[e].eq(1), expected[e].eq(new_count)]

        m.d.comb += self.busy.eq(active | (inflight != 0) | status.valid)
        for c, lane in enumerate(lanes):
            st = self.stats[c]
            m.d.comb += [st.rd_beats.eq(lane.stats.rd_beats), st.wr_beats.eq(lane.stats.wr_beats),
                         st.ar.eq(lane.stats.ar), st.aw.eq(lane.stats.aw)]
            segs = Signal(32, name=f"segments{c}")
            m.d.sync += segs.eq(segs + (lane.seg.valid & lane.seg.ready))
            m.d.comb += st.segments.eq(segs)
        return m
