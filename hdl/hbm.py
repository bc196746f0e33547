"""HBM3-like device model for simulation: one AXI4 slave per pseudo-channel, cycle by cycle in HDL.

Each :class:`HbmChannel` is one pseudo-channel (PC) with its controller, written in Amaranth so
that its per-beat path runs in the simulator, not in Python. The backing store is a memory of
the simulation top (``$readmemh``/``$writememh`` backdoor), reached through ``mem_*`` ports.

Organization (per PC): ``bank_groups`` x ``banks`` banks, each with one row buffer (open-page
policy: a row stays open until another row of its bank, or a refresh, needs the bank). One AXI
beat of ``data_bits`` is one column access: with HBM3's 32-bit PC and BL8, 32 bytes; a row
(page) holds ``columns`` of them (HBM3: 32 columns = 1 KiB).

Address map (PC-local byte address, least significant first; "RoBaCoBg")::

    | row | bank | column | bank group | byte in beat |

Consecutive beats alternate bank groups, so a stream pays tCCD_S, not tCCD_L; a 4 KiB AXI page
is one row in each of four bank groups; the next 4 KiB goes to the next bank. Addresses beyond
the capacity answer DECERR.

Timing (clock = one beat per cycle per PC, see :class:`HbmConfig`): per bank tRCD, tRP, tRAS,
tRTP, write recovery; per PC tCCD_S/tCCD_L (different/same bank group), tRRD_S/tRRD_L, tFAW,
read/write turnaround, read latency, and refresh: per-bank (REFsb every tREFI/banks, tRFCsb,
tRREFD; default), all-bank (REFab every tREFI, tRFC) or off. The defaults and their sources
are in :data:`HBM3_NS`.

Controller (deliberately simple, and mirrored cycle for cycle by ``golden.hbm``):

* AR and AW requests enter one command queue of ``queue`` bursts, alternating when both wait.
* Column commands (one per cycle: RD or WR) issue strictly in queue order, beat by beat.
* A lookahead pointer walks the same bursts ahead of the column pointer (while fewer than
  ``lookahead`` beats wait in the window), issuing the row commands (one per cycle: ACT, PRE,
  REF) they need, in order. An AXI burst never crosses 4 KiB, so it needs one row in each bank
  group it touches (same bank index, at most ``bank_groups`` banks); the pointer checks one of
  them per cycle: open at the row, it passes; closed, it is activated when tRP/tRFC, tRRD and
  tFAW allow; open at another row, it is precharged once no beat in the window still needs it
  (and tRAS/tRTP/write recovery allow). When all of a burst's banks are ready, its beats join
  the window. So row misses are hidden behind earlier column traffic as far as the window
  reaches.
* Refresh: per-bank mode owes one REFsb every tREFIsb, each bank once per round of
  ``n_banks`` refreshes. An owed refresh goes to a bank the traffic just left — one of the
  banks of the burst completed last, not yet refreshed this round, that no queued burst
  touches — or, once 8 are owed (the postponement limit modelled), to the next bank of the
  round in round-robin order, busy or not: the lookahead then waits for it. All-bank mode
  stops the lookahead, precharges every bank and issues REFab every tREFI.
* Read data is returned ``tRL`` cycles after its RD, in command order, through a
  ``rdata_depth``-deep buffer; a RD issues only if the buffer has room. Write data is taken from
  a ``wdata_depth``-deep buffer when its WR issues; a burst's B response follows its last WR by
  ``tWL`` cycles.
* Errors: a beat whose word is marked in the error map (``mem_err``) answers SLVERR (reads: data
  zero; writes: the beat is not written, the burst answers SLVERR); a burst beyond the capacity
  answers DECERR and touches no bank.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from amaranth.hdl import Array, Cat, Const, Module, Mux, Signal
from amaranth.lib import data, enum, fifo, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .axi import AxiSignature, Burst, Resp

__all__ = ["HBM3_NS", "HBM3_SOURCES", "REFRESH", "STATS", "ColCmd", "HbmChannel", "HbmConfig",
           "HbmTiming", "RowCmd"]

#: HBM3 timing defaults in ns, at 6.4 Gb/s per pin (CK = 1.6 GHz, tCK = 0.625 ns).
#: Core timings: Ramulator 2's HBM3 "HBM3_6.4Gbps" preset (src/dram/impl/HBM3.cpp, the revision
#: with the HBM3_4.8..6.4Gbps presets; in nCK: nCL 23, nRCDRD 23, nRP 23, nRAS 55, nWR 26,
#: nRTPL 10, nCWL 7, nBL 2, nCCDS 2, nCCDL 4, nRRDS 2, nRRDL 4, nWTRS 10, nWTRL 13, nFAW 48,
#: nRFCSB 320, nREFI 6240, nRREFD 13), whose authors state they carry over the absolute ns values
#: of DRAMsim3's HBM2 configuration (configs/HBM2_8Gb_x128.ini: tRCD 14, tRP 14, tRAS 34, tFAW
#: 30, tREFI 3900 ns, tCCD_S/L 1/2 at tCK 1 ns) because JEDEC JESD238 values are not public.
#: Refresh: tRFCab 350 ns (8 Gb die) and tREFIsb = tREFI/16 = 244 ns (4-high stack, 16 banks),
#: the tables of the same Ramulator 2 file.
#: Composite command-to-command delays follow Ramulator 2's constraint list: WR->RD = CWL + BL
#: + WTR, RD->WR = CL + BL + 2 - CWL, WR->PRE = CWL + BL + WR, read data = CL + BL after RD.
HBM3_NS = {
    "tRCD": 23 * 0.625,            # ACT -> RD/WR
    "tRP": 23 * 0.625,             # PRE -> ACT
    "tRAS": 55 * 0.625,            # ACT -> PRE
    "tCCD_S": 2 * 0.625,           # CAS -> CAS, different bank group
    "tCCD_L": 4 * 0.625,           # CAS -> CAS, same bank group
    "tRRD_S": 2 * 0.625,           # ACT -> ACT, different bank group
    "tRRD_L": 4 * 0.625,           # ACT -> ACT, same bank group
    "tFAW": 48 * 0.625,            # four-activate window
    "tRTP": 10 * 0.625,            # RD -> PRE
    "tWR": (7 + 2 + 26) * 0.625,   # WR -> PRE (CWL + BL + WR)
    "tWTR_S": (7 + 2 + 10) * 0.625,  # WR -> RD, different bank group (CWL + BL + WTRS)
    "tWTR_L": (7 + 2 + 13) * 0.625,  # WR -> RD, same bank group (CWL + BL + WTRL)
    "tRTW": (23 + 2 + 2 - 7) * 0.625,  # RD -> WR (CL + BL + 2 - CWL)
    "tRL": (23 + 2) * 0.625,       # RD -> read data (CL + BL)
    "tWL": (7 + 2) * 0.625,        # last WR -> write response (CWL + BL)
    "tREFI": 3900.0,               # all-bank refresh interval
    "tRFC": 350.0,                 # all-bank refresh cycle time (8 Gb die)
    "tREFIpb": 3900.0 / 16,        # per-bank refresh interval (16 banks)
    "tRFCpb": 320 * 0.625,         # per-bank refresh cycle time (REFsb)
    "tRREFD": 13 * 0.625,          # REFsb -> ACT/REFsb to another bank
}
HBM3_SOURCES = (
    "Ramulator 2, src/dram/impl/HBM3.cpp, timing preset HBM3_6.4Gbps (and its tRFC/tREFIsb "
    "tables), which carries over the ns values of DRAMsim3 configs/HBM2_8Gb_x128.ini; "
    "JEDEC JESD238A (HBM3) organization: 4 bank groups x 4 banks per pseudo-channel, 32 DQ, "
    "BL8, 1 KiB page")

REFRESH = ("per_bank", "all_bank", "off")
#: Refresh commands that may be owed before the controller forces one on a busy bank.
MAX_POSTPONED = 8


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _pow2(v) -> bool:
    return _is_int(v) and v >= 1 and not v & (v - 1)


@dataclass(frozen=True)
class HbmTiming:
    """Timing parameters in model clock cycles (each >= 1).

    Intervals (``tREFI``, ``tREFIpb``) are rounded down from ns, delays rounded up.
    """

    tRCD: int = 12
    tRP: int = 12
    tRAS: int = 28
    tCCD_S: int = 1
    tCCD_L: int = 2
    tRRD_S: int = 1
    tRRD_L: int = 2
    tFAW: int = 24
    tRTP: int = 5
    tWR: int = 18
    tWTR_S: int = 10
    tWTR_L: int = 11
    tRTW: int = 10
    tRL: int = 13
    tWL: int = 5
    tREFI: int = 3120
    tRFC: int = 280
    tREFIpb: int = 195
    tRFCpb: int = 160
    tRREFD: int = 7

    def __post_init__(self):
        for k, v in self.as_dict().items():
            if not _is_int(v):
                raise TypeError(f"timing {k} must be an integer, not {v!r}")
            if not 1 <= v <= 65535:
                raise ValueError(f"timing {k} must be in [1, 65535] cycles, not {v}")

    @classmethod
    def from_ns(cls, ns: dict, clock_ns: float) -> HbmTiming:
        """Scale ``ns`` (keys as the fields) to a clock of ``clock_ns``."""
        out = {}
        for k, v in ns.items():
            c = v / clock_ns
            out[k] = max(1, math.floor(c + 1e-9) if k.startswith("tREFI")
                         else math.ceil(c - 1e-9))
        return cls(**out)

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass(frozen=True)
class HbmConfig:
    """Parameters of the HBM model (pure Python: shared by RTL, golden model, tests, bench).

    Parameters
    ----------
    channels : int
        Pseudo-channels modelled (one AXI slave each), a power of two in [1, 32].
    data_bits : int
        AXI data width = bytes of one column access x 8: a power of two in [64, 1024].
    gbps : float
        Data rate per DQ pin (Gb/s). Sets the model clock: one beat per cycle per PC, so
        ``clock_ns = data_bits / (dq * gbps)``; the ns timings are scaled to it.
    dq : int
        DQ pins per pseudo-channel (HBM3: 32).
    id_bits : int
        AXI ID width, in [1, 16].
    addr_bits : int
        AXI (PC-local) address width, in [12, 48]; at least the capacity's.
    bank_groups, banks, columns, rows : int
        Bank groups per PC, banks per group, beats per row, rows per bank (powers of two).
        The capacity per PC is their product times the beat size.
    queue : int
        Command queue depth in bursts (power of two in [2, 64]).
    lookahead : int
        How many beats ahead of the column pointer row commands may be issued, in [1, 255].
    rdata_depth, wdata_depth : int
        Read-return and write-data buffers, in beats (powers of two in [4, 256]).
    refresh : str
        ``"per_bank"`` (default), ``"all_bank"`` or ``"off"``.
    timing : HbmTiming or None
        Explicit cycle counts; default: :data:`HBM3_NS` scaled to the clock.

    Raises
    ------
    TypeError
        If a parameter has the wrong type.
    ValueError
        If a parameter is out of range.
    """

    channels: int = 2
    data_bits: int = 256
    gbps: float = 6.4
    dq: int = 32
    id_bits: int = 4
    addr_bits: int = 31
    bank_groups: int = 4
    banks: int = 4
    columns: int = 32
    rows: int = 64
    queue: int = 16
    lookahead: int = 64
    rdata_depth: int = 32
    wdata_depth: int = 32
    refresh: str = "per_bank"
    timing: HbmTiming | None = field(default=None)

    def __post_init__(self):
        for name in ("channels", "data_bits", "dq", "id_bits", "addr_bits", "bank_groups",
                     "banks", "columns", "rows", "queue", "lookahead", "rdata_depth",
                     "wdata_depth"):
            v = getattr(self, name)
            if not _is_int(v):
                raise TypeError(f"{name} must be an integer, not {v!r}")
        if not isinstance(self.gbps, (int, float)) or isinstance(self.gbps, bool):
            raise TypeError(f"gbps must be a number, not {self.gbps!r}")
        if not 0.1 <= self.gbps <= 100:
            raise ValueError(f"gbps must be in [0.1, 100], not {self.gbps}")
        checks = [
            ("channels", 1, 32), ("data_bits", 64, 1024), ("bank_groups", 1, 16),
            ("banks", 1, 16), ("columns", 1, 1024), ("rows", 1, 1 << 20),
            ("queue", 2, 64), ("rdata_depth", 4, 256), ("wdata_depth", 4, 256),
        ]
        for name, lo, hi in checks:
            v = getattr(self, name)
            if not (lo <= v <= hi and _pow2(v)):
                raise ValueError(f"{name} must be a power of two in [{lo}, {hi}], not {v}")
        if not 1 <= self.dq <= 1024:
            raise ValueError(f"dq must be in [1, 1024], not {self.dq}")
        if not 1 <= self.id_bits <= 16:
            raise ValueError(f"id_bits must be in [1, 16], not {self.id_bits}")
        if not 1 <= self.lookahead <= 255:
            raise ValueError(f"lookahead must be in [1, 255], not {self.lookahead}")
        if self.refresh not in REFRESH:
            raise ValueError(f"refresh must be one of {', '.join(REFRESH)}, "
                             f"not {self.refresh!r}")
        if self.data_bytes * self.bank_groups * self.columns < 4096:
            raise ValueError(f"data_bits/8 x bank_groups x columns must be at least 4096 (an AXI "
                             f"burst stays in one row of one bank per bank group), not "
                             f"{self.data_bytes * self.bank_groups * self.columns}")
        need = self.word_bits + self.beat_shift
        if not max(12, need) <= self.addr_bits <= 48:
            raise ValueError(f"addr_bits must be in [{max(12, need)}, 48] (the capacity needs "
                             f"{need}), not {self.addr_bits}")
        if self.timing is None:
            object.__setattr__(self, "timing", HbmTiming.from_ns(HBM3_NS, self.clock_ns))
        elif not isinstance(self.timing, HbmTiming):
            raise TypeError(f"timing must be an HbmTiming, not {self.timing!r}")

    # --- geometry -----------------------------------------------------------------------------
    @property
    def data_bytes(self) -> int:
        return self.data_bits // 8

    @property
    def beat_shift(self) -> int:
        return self.data_bytes.bit_length() - 1

    @property
    def bg_bits(self) -> int:
        return self.bank_groups.bit_length() - 1

    @property
    def col_bits(self) -> int:
        return self.columns.bit_length() - 1

    @property
    def bank_bits(self) -> int:
        return self.banks.bit_length() - 1

    @property
    def row_bits(self) -> int:
        return self.rows.bit_length() - 1

    @property
    def word_bits(self) -> int:
        """Bits of a PC-local beat (word) address."""
        return self.bg_bits + self.col_bits + self.bank_bits + self.row_bits

    @property
    def n_banks(self) -> int:
        return self.bank_groups * self.banks

    @property
    def words(self) -> int:
        """Beats (words) of backing store per PC."""
        return 1 << self.word_bits

    @property
    def capacity(self) -> int:
        """Bytes per pseudo-channel."""
        return self.words * self.data_bytes

    @property
    def page_bytes(self) -> int:
        return self.columns * self.data_bytes

    def decode(self, word: int) -> tuple[int, int, int, int]:
        """``(bank_group, column, bank, row)`` of a PC-local beat address (the address map)."""
        bg = word & (self.bank_groups - 1)
        word >>= self.bg_bits
        col = word & (self.columns - 1)
        word >>= self.col_bits
        bank = word & (self.banks - 1)
        word >>= self.bank_bits
        return bg, col, bank, word & (self.rows - 1)

    def flat_bank(self, bg: int, bank: int) -> int:
        """Index of a bank among the PC's ``n_banks``: ``bank * bank_groups + bank_group``."""
        return bank * self.bank_groups + bg

    # --- speed --------------------------------------------------------------------------------
    @property
    def clock_ns(self) -> float:
        """Model clock period: one beat per cycle per PC at ``gbps`` on ``dq`` pins."""
        return self.data_bits / (self.dq * self.gbps)

    @property
    def clock_mhz(self) -> float:
        return 1000.0 / self.clock_ns

    @property
    def peak_bytes_per_cycle(self) -> int:
        """All channels, one beat each per cycle."""
        return self.channels * self.data_bytes

    @property
    def peak_gbytes_per_s(self) -> float:
        return self.peak_bytes_per_cycle * self.clock_mhz / 1000.0

    @property
    def name(self) -> str:
        return (f"c{self.channels}_d{self.data_bits}_g{self.bank_groups}b{self.banks}"
                f"c{self.columns}r{self.rows}_q{self.queue}l{self.lookahead}"
                f"r{self.rdata_depth}w{self.wdata_depth}_i{self.id_bits}a{self.addr_bits}_"
                f"{self.refresh}_{'_'.join(str(v) for v in self.timing.as_dict().values())}")

    def as_dict(self) -> dict:
        return {
            "channels": self.channels, "data_bits": self.data_bits, "gbps": self.gbps,
            "dq": self.dq, "clock_mhz": round(self.clock_mhz, 3),
            "bank_groups": self.bank_groups, "banks": self.banks, "columns": self.columns,
            "rows": self.rows, "page_bytes": self.page_bytes,
            "capacity_per_channel": self.capacity, "queue": self.queue,
            "lookahead": self.lookahead, "rdata_depth": self.rdata_depth,
            "wdata_depth": self.wdata_depth, "refresh": self.refresh,
            "address_map": "row | bank | column | bank group | byte",
            "peak_bytes_per_cycle": self.peak_bytes_per_cycle,
            "peak_gbytes_per_s": round(self.peak_gbytes_per_s, 2),
            "timing_cycles": self.timing.as_dict(),
        }


class RowCmd(enum.Enum, shape=3):
    """Row command issued in a cycle (``cmd.row``)."""

    NONE = 0
    ACT = 1
    PRE = 2
    REF = 3          # REFsb: one bank
    REFAB = 4        # all banks


class ColCmd(enum.Enum, shape=2):
    """Column command issued in a cycle (``cmd.col``)."""

    NONE = 0
    RD = 1
    WR = 2


def cmd_layout(cfg: HbmConfig) -> data.StructLayout:
    """The commands of one cycle (a trace port for tests)."""
    nb = max(1, (cfg.n_banks - 1).bit_length())
    return data.StructLayout({
        "row": RowCmd, "row_bank": nb, "row_row": max(1, cfg.row_bits),
        "col": ColCmd, "col_bank": nb, "col_col": max(1, cfg.col_bits),
    })


#: Statistics counters of one channel (32 bits each, wrapping).
STATS = data.StructLayout({
    "rd_beats": 32, "wr_beats": 32, "acts": 32, "pres": 32, "refs": 32, "row_hits": 32,
    "err_beats": 32, "protocol_errors": 32,
})


def _dec(x):
    return Mux(x == 0, 0, x - 1)


def _max(a, b):
    return Mux(a > b, a, b)


class HbmChannel(wiring.Component):
    """One pseudo-channel: AXI4 slave, command queue, banks and their timing.

    Parameters
    ----------
    cfg : HbmConfig

    Members
    -------
    axi : In(AxiSignature(...))
        The AXI4 slave port (PC-local byte addresses, full-width INCR bursts).
    mem_addr : Out(word_bits)
        Beat address of this cycle's column command.
    mem_rdata : In(data_bits)
        Backing store at ``mem_addr`` (combinational read in the top).
    mem_err : In(1)
        Error-map bit at ``mem_addr``: the beat answers SLVERR.
    mem_we, mem_wdata, mem_wstrb : Out
        Write ``mem_wdata`` under byte mask ``mem_wstrb`` at ``mem_addr`` (at the clock edge).
    cmd : Out(cmd_layout(cfg))
        The row and column command issued this cycle (a trace port).
    stats : Out(STATS)
        Counters.

    Raises
    ------
    TypeError
        If ``cfg`` is not an :class:`HbmConfig`.
    """

    def __init__(self, cfg: HbmConfig):
        if not isinstance(cfg, HbmConfig):
            raise TypeError(f"cfg must be an HbmConfig, not {cfg!r}")
        self._cfg = cfg
        super().__init__({
            "axi": In(AxiSignature(addr_width=cfg.addr_bits, data_width=cfg.data_bits,
                                   id_width=cfg.id_bits)),
            "mem_addr": Out(cfg.word_bits), "mem_rdata": In(cfg.data_bits), "mem_err": In(1),
            "mem_we": Out(1), "mem_wdata": Out(cfg.data_bits), "mem_wstrb": Out(cfg.data_bytes),
            "cmd": Out(cmd_layout(cfg)),
            "stats": Out(STATS),
        })

    @property
    def cfg(self) -> HbmConfig:
        return self._cfg

    def elaborate(self, platform):  # noqa: C901 - one controller, written out in order
        m = Module()
        cfg = self._cfg
        t = cfg.timing
        axi = self.axi
        NB, NBG, Q, L = cfg.n_banks, cfg.bank_groups, cfg.queue, cfg.lookahead
        wb, lb, ib = cfg.word_bits, cfg.beat_shift, cfg.id_bits
        bgb, colb, bkb, rowb = cfg.bg_bits, cfg.col_bits, cfg.bank_bits, cfg.row_bits
        nbb = max(1, (NB - 1).bit_length())
        qb = (Q - 1).bit_length()

        now = Signal(32)
        m.d.sync += now.eq(now + 1)

        def decode(word):
            """(bank group, column, bank, row, flat bank) of a beat address."""
            bg = word[:bgb] if bgb else Const(0, 1)
            col = word[bgb:bgb + colb] if colb else Const(0, 1)
            bank = word[bgb + colb:bgb + colb + bkb] if bkb else Const(0, 1)
            row = word[bgb + colb + bkb:wb] if rowb else Const(0, 1)
            parts = ([word[:bgb]] if bgb else []) + ([bank] if bkb else [])
            flat = Cat(*parts) if parts else Const(0, 1)
            return bg, col, bank, row, flat

        # --- command queue ------------------------------------------------------------------
        entry = data.StructLayout({"write": 1, "id": ib, "addr": wb, "len": 8, "decerr": 1})
        m.submodules.cq = cq = Memory(shape=entry, depth=Q, init=[])
        cq_w = cq.write_port()
        cq_c = cq.read_port(domain="comb")
        cq_l = cq.read_port(domain="comb")
        head = Signal(qb)
        tail = Signal(qb)
        count = Signal(range(Q + 1))
        last_ar = Signal()

        pick_ar = Signal()
        pick_aw = Signal()
        enq = Signal()
        m.d.comb += [
            pick_ar.eq(axi.arvalid & (~axi.awvalid | ~last_ar)),
            pick_aw.eq(axi.awvalid & ~pick_ar),
            enq.eq((count != Q) & (axi.arvalid | axi.awvalid)),
            axi.arready.eq((count != Q) & pick_ar),
            axi.awready.eq((count != Q) & pick_aw),
        ]
        a_addr = Mux(pick_ar, axi.araddr, axi.awaddr)
        a_len = Mux(pick_ar, axi.arlen, axi.awlen)
        a_size = Mux(pick_ar, axi.arsize, axi.awsize)
        a_burst = Mux(pick_ar, axi.arburst, axi.awburst)
        a_word = a_addr[lb:]
        over = (a_word[wb:] != 0) if cfg.addr_bits - lb > wb else Const(0)
        m.d.comb += [
            cq_w.addr.eq(tail), cq_w.en.eq(enq),
            cq_w.data.write.eq(pick_aw), cq_w.data.id.eq(Mux(pick_ar, axi.arid, axi.awid)),
            cq_w.data.addr.eq(a_word[:wb]), cq_w.data.len.eq(a_len), cq_w.data.decerr.eq(over),
            cq_c.addr.eq(head),
        ]
        # Protocol checks of a request: full-width beats, INCR, no 4 KiB crossing.
        page_beats = 4096 >> lb
        page_off = a_addr[lb:12]
        bad_req = Signal()
        m.d.comb += bad_req.eq(enq & ((a_size != lb) | (a_burst != Burst.INCR.value)
                                      | (page_off + a_len >= page_beats)))
        with m.If(enq):
            m.d.sync += [tail.eq(tail + 1), last_ar.eq(pick_ar)]

        # --- per-bank state -----------------------------------------------------------------
        def cnt(maxval, name):
            return Signal(range(max(2, maxval + 1)), name=name)

        b_open = [Signal(name=f"open{b}") for b in range(NB)]
        b_row = [Signal(max(1, rowb), name=f"row{b}") for b in range(NB)]
        b_act = [cnt(max(t.tRP, t.tRFCpb, t.tRFC), f"act_cnt{b}") for b in range(NB)]
        b_pre = [cnt(max(t.tRAS, t.tRTP, t.tWR), f"pre_cnt{b}") for b in range(NB)]
        b_cas = [cnt(t.tRCD, f"cas_cnt{b}") for b in range(NB)]
        b_pend = [Signal(range(L + 257), name=f"pending{b}") for b in range(NB)]
        A_open, A_row = Array(b_open), Array(b_row)
        A_act, A_pre, A_cas = Array(b_act), Array(b_pre), Array(b_cas)
        A_pend = Array(b_pend)

        rrd_any = cnt(t.tRRD_S, "rrd_any")
        rrd_bg = [cnt(t.tRRD_L, f"rrd_bg{g}") for g in range(NBG)]
        faw = [cnt(t.tFAW, f"faw{k}") for k in range(4)]
        faw_ptr = Signal(2)
        rref = cnt(t.tRREFD, "rref")
        ccd_any = cnt(t.tCCD_S, "ccd_any")
        ccd_bg = [cnt(t.tCCD_L, f"ccd_bg{g}") for g in range(NBG)]
        wtr_any = cnt(t.tWTR_S, "wtr_any")
        wtr_bg = [cnt(t.tWTR_L, f"wtr_bg{g}") for g in range(NBG)]
        rtw = cnt(t.tRTW, "rtw")
        A_rrd_bg, A_ccd_bg, A_wtr_bg = Array(rrd_bg), Array(ccd_bg), Array(wtr_bg)

        # --- lookahead pointer: row commands ------------------------------------------------
        lp_idx = Signal(qb)
        lp_left = Signal(range(Q + 1))
        lp_g = Signal(max(1, bgb))      # which of the burst's bank groups is being checked
        win = Signal(range(L + 257))
        m.d.comb += cq_l.addr.eq(lp_idx)
        lp_e = cq_l.data
        lp_n = lp_e.len + 1
        lp_bg = Signal(max(1, bgb))
        lp_bank = lp_e.addr[bgb + colb:bgb + colb + bkb] if bkb else Const(0, 1)
        lp_row = lp_e.addr[bgb + colb + bkb:wb] if rowb else Const(0, 1)
        if bgb:
            m.d.comb += lp_bg.eq(lp_e.addr[:bgb] + lp_g)
        parts = ([lp_bg] if bgb else []) + ([lp_bank] if bkb else [])
        lp_b = Cat(*parts) if parts else Const(0, 1)
        # Beats of the burst in this bank: the bank groups take beats in turn.
        lp_cnt = Signal(9)
        m.d.comb += lp_cnt.eq(((lp_n - 1 - lp_g) >> bgb) + 1)
        lp_last_g = (lp_g == NBG - 1) | (lp_g == lp_e.len)

        ref_block = Signal(NB)       # per-bank refresh pending: the lookahead may not use it
        all_block = Signal()         # all-bank refresh pending
        lp_step = Signal()
        lp_hit = Signal()
        lp_act = Signal()
        lp_pre = Signal()
        lp_ok = Signal()             # this bank of the burst is (or is being made) ready
        lp_adv = Signal()            # the whole burst is admitted to the window
        act_timing = Signal()
        m.d.comb += [
            lp_step.eq((lp_left != 0) & (win < L) & ~(all_block & (lp_g == 0))),
            lp_hit.eq(A_open[lp_b] & (A_row[lp_b] == lp_row)),
            act_timing.eq((A_act[lp_b] == 0) & (rrd_any == 0) & (A_rrd_bg[lp_bg] == 0)
                          & (Array(faw)[faw_ptr] == 0) & (rref == 0)),
        ]
        usable = lp_step & ~lp_e.decerr & ~ref_block.bit_select(lp_b, 1)
        m.d.comb += [
            lp_act.eq(usable & ~A_open[lp_b] & act_timing),
            lp_pre.eq(usable & A_open[lp_b] & ~lp_hit & (A_pend[lp_b] == 0)
                      & (A_pre[lp_b] == 0)),
            lp_ok.eq(usable & (lp_hit | lp_act)),
            lp_adv.eq((lp_step & lp_e.decerr) | (lp_ok & lp_last_g)),
        ]
        with m.If(lp_adv):
            m.d.sync += [lp_g.eq(0), lp_idx.eq(lp_idx + 1)]
        with m.Elif(lp_ok):
            m.d.sync += lp_g.eq(lp_g + 1)
        m.d.sync += lp_left.eq(lp_left + enq - lp_adv)

        # --- column pointer: RD/WR in order -------------------------------------------------
        cp_beat = Signal(8)
        cp_e = cq_c.data
        cp_word = Signal(wb)
        m.d.comb += cp_word.eq(cp_e.addr + cp_beat)
        cp_bg, cp_col, _, _, cp_b = decode(cp_word)

        rd_layout = data.StructLayout({"data": cfg.data_bits, "id": ib, "resp": 2, "last": 1,
                                       "stamp": 32})
        b_layout = data.StructLayout({"id": ib, "resp": 2, "stamp": 32})
        w_layout = data.StructLayout({"data": cfg.data_bits, "strb": cfg.data_bytes,
                                      "last": 1})
        m.submodules.rq = rq = fifo.SyncFIFO(width=rd_layout.size, depth=cfg.rdata_depth)
        m.submodules.bq = bq = fifo.SyncFIFO(width=b_layout.size, depth=Q)
        m.submodules.wq = wq = fifo.SyncFIFO(width=w_layout.size, depth=cfg.wdata_depth)
        rq_in = data.View(rd_layout, rq.w_data)
        rq_out = data.View(rd_layout, rq.r_data)
        bq_in = data.View(b_layout, bq.w_data)
        bq_out = data.View(b_layout, bq.r_data)
        wq_in = data.View(w_layout, wq.w_data)
        wq_out = data.View(w_layout, wq.r_data)

        is_wr = cp_e.write
        cp_last = cp_beat == cp_e.len
        cas_timing = Signal()
        cas = Signal()
        cas_dram = Signal()
        m.d.comb += [
            cas_timing.eq(cp_e.decerr | (
                (A_cas[cp_b] == 0) & (ccd_any == 0) & (A_ccd_bg[cp_bg] == 0)
                & Mux(is_wr, rtw == 0, (wtr_any == 0) & (A_wtr_bg[cp_bg] == 0)))),
            cas.eq((win != 0) & cas_timing
                   & Mux(is_wr, wq.r_rdy & (~cp_last | bq.w_rdy), rq.w_rdy)),
            cas_dram.eq(cas & ~cp_e.decerr),
        ]
        beat_resp = Mux(cp_e.decerr, Resp.DECERR.value,
                        Mux(self.mem_err, Resp.SLVERR.value, Resp.OKAY.value))
        wacc = Signal(2)
        bresp = Signal(2)
        m.d.comb += bresp.eq(_max(wacc, beat_resp))
        m.d.comb += [
            self.mem_addr.eq(cp_word),
            self.mem_we.eq(cas_dram & is_wr & ~self.mem_err),
            self.mem_wdata.eq(wq_out.data), self.mem_wstrb.eq(wq_out.strb),
            # read return
            rq.w_en.eq(cas & ~is_wr),
            rq_in.data.eq(Mux(cp_e.decerr | self.mem_err, 0, self.mem_rdata)),
            rq_in.id.eq(cp_e.id), rq_in.resp.eq(beat_resp), rq_in.last.eq(cp_last),
            rq_in.stamp.eq(now),
            # write data consumed, write response
            wq.r_en.eq(cas & is_wr),
            bq.w_en.eq(cas & is_wr & cp_last),
            bq_in.id.eq(cp_e.id), bq_in.resp.eq(bresp), bq_in.stamp.eq(now),
        ]
        with m.If(cas & is_wr):
            m.d.sync += wacc.eq(Mux(cp_last, 0, bresp))
        with m.If(cas):
            with m.If(cp_last):
                m.d.sync += [cp_beat.eq(0), head.eq(head + 1)]
            with m.Else():
                m.d.sync += cp_beat.eq(cp_beat + 1)
        done = cas & cp_last
        m.d.sync += [count.eq(count + enq - done),
                     win.eq(win + Mux(lp_adv, lp_n, 0) - cas)]

        # AXI R, B, W
        m.d.comb += [
            axi.rvalid.eq(rq.r_rdy & ((now - rq_out.stamp)[:32] >= t.tRL)),
            axi.rdata.eq(rq_out.data), axi.rid.eq(rq_out.id), axi.rresp.eq(rq_out.resp),
            axi.rlast.eq(rq_out.last), rq.r_en.eq(axi.rvalid & axi.rready),
            axi.bvalid.eq(bq.r_rdy & ((now - bq_out.stamp)[:32] >= t.tWL)),
            axi.bid.eq(bq_out.id), axi.bresp.eq(bq_out.resp),
            bq.r_en.eq(axi.bvalid & axi.bready),
            axi.wready.eq(wq.w_rdy), wq.w_en.eq(axi.wvalid),
            wq_in.data.eq(axi.wdata), wq_in.strb.eq(axi.wstrb), wq_in.last.eq(axi.wlast),
        ]

        # --- refresh ------------------------------------------------------------------------
        ref_pre = Signal()
        ref_ref = Signal()
        ref_all = Signal()
        ref_bank = Signal(nbb)
        row_free = ~(lp_act | lp_pre)
        if cfg.refresh != "off":
            interval = t.tREFIpb if cfg.refresh == "per_bank" else t.tREFI
            timer = Signal(range(interval), init=interval - 1)
            owed = Signal(range(16))
            tick = timer == 0
            m.d.sync += timer.eq(Mux(tick, interval - 1, timer - 1))
            issued = ref_ref | ref_all
            m.d.sync += owed.eq(Mux((owed == 15) & tick & ~issued, 15, owed + tick - issued))
        if cfg.refresh == "per_bank":
            rr = Signal(nbb)
            sel = Signal(nbb)
            pend = Signal()
            urgent = owed >= MAX_POSTPONED
            refreshed = Signal(NB)       # banks refreshed in this round of NB refreshes
            # Candidates: the banks of the burst completed last (the traffic just left them).
            cand_bank = Signal(max(1, bkb))
            cand_mask = Signal(NBG)
            cp_start = cp_e.addr[:bgb] if bgb else Const(0, 1)
            with m.If(done & ~cp_e.decerr):
                m.d.sync += [
                    cand_bank.eq(cp_e.addr[bgb + colb:bgb + colb + bkb] if bkb else 0),
                    cand_mask.eq(Cat(((g - cp_start)[:max(1, bgb)] <= cp_e.len) if bgb
                                     else Const(1) for g in range(NBG))),
                ]
            elig = Signal(NBG)
            cand_flat = [Cat(Const(g, bgb), cand_bank)[:nbb] if bgb else cand_bank
                         for g in range(NBG)]
            m.d.comb += elig.eq(Cat(cand_mask[g] & ~refreshed.bit_select(cand_flat[g], 1)
                                    & (A_pend[cand_flat[g]] == 0) for g in range(NBG)))
            first = Signal(nbb)
            for g in reversed(range(NBG)):
                with m.If(elig[g]):
                    m.d.comb += first.eq(cand_flat[g])
            with m.If(~pend & (owed != 0)):
                with m.If(urgent):
                    m.d.sync += rr.eq(rr + 1)
                    with m.If(~refreshed.bit_select(rr, 1)):
                        m.d.sync += [sel.eq(rr), pend.eq(1)]
                with m.Elif(elig.any()):
                    m.d.sync += [sel.eq(first), pend.eq(1)]
            m.d.comb += [ref_block.eq(Mux(pend, 1 << sel, 0)), ref_bank.eq(sel)]
            with m.If(pend):
                with m.If(A_open[sel]):
                    m.d.comb += ref_pre.eq(row_free & (A_pend[sel] == 0) & (A_pre[sel] == 0))
                with m.Else():
                    m.d.comb += ref_ref.eq(row_free & (A_act[sel] == 0) & (rrd_any == 0)
                                           & (rref == 0))
            with m.If(ref_ref):
                nxt = refreshed | (1 << sel)
                m.d.sync += [pend.eq(0), refreshed.eq(Mux(nxt == (1 << NB) - 1, 0, nxt))]
        elif cfg.refresh == "all_bank":
            drain = Signal()
            with m.If(~drain & (owed != 0)):
                m.d.sync += drain.eq(1)
            m.d.comb += all_block.eq(drain)
            closable = Cat(b_open[b] & (b_pend[b] == 0) & (b_pre[b] == 0) for b in range(NB))
            any_open = Cat(b_open).any()
            with m.If(drain):
                with m.If(closable.any()):
                    m.d.comb += ref_pre.eq(row_free)
                    for b in reversed(range(NB)):     # lowest index wins
                        with m.If(closable[b]):
                            m.d.comb += ref_bank.eq(b)
                with m.Elif(~any_open):
                    m.d.comb += ref_all.eq(row_free & Cat(a == 0 for a in b_act).all()
                                           & (rrd_any == 0) & (rref == 0))
            with m.If(ref_all):
                m.d.sync += drain.eq(0)

        # --- state updates ------------------------------------------------------------------
        for b in range(NB):
            ev_act = lp_act & (lp_b == b)
            ev_pre = (lp_pre & (lp_b == b)) | (ref_pre & (ref_bank == b))
            ev_ref = (ref_ref & (ref_bank == b)) | ref_all
            ev_rd = cas_dram & ~is_wr & (cp_b == b)
            ev_wr = cas_dram & is_wr & (cp_b == b)
            with m.If(ev_act):
                m.d.sync += [b_open[b].eq(1), b_row[b].eq(lp_row)]
            with m.If(ev_pre):
                m.d.sync += b_open[b].eq(0)
            m.d.sync += b_act[b].eq(Mux(ev_pre, t.tRP - 1,
                                        Mux(ev_ref, (t.tRFCpb if cfg.refresh == "per_bank"
                                                     else t.tRFC) - 1, _dec(b_act[b]))))
            m.d.sync += b_cas[b].eq(Mux(ev_act, t.tRCD - 1, _dec(b_cas[b])))
            pre = _dec(b_pre[b])
            m.d.sync += b_pre[b].eq(Mux(ev_act, t.tRAS - 1,
                                        Mux(ev_rd, _max(pre, t.tRTP - 1),
                                            Mux(ev_wr, _max(pre, t.tWR - 1), pre))))
            inc = Mux(lp_ok & (lp_b == b), lp_cnt, 0)
            m.d.sync += b_pend[b].eq(b_pend[b] + inc - (cas_dram & (cp_b == b)))

        any_act = lp_act
        m.d.sync += [
            rrd_any.eq(Mux(any_act, t.tRRD_S - 1, _dec(rrd_any))),
            rref.eq(Mux(ref_ref | ref_all, t.tRREFD - 1, _dec(rref))),
            ccd_any.eq(Mux(cas_dram, t.tCCD_S - 1, _dec(ccd_any))),
            wtr_any.eq(Mux(cas_dram & is_wr, t.tWTR_S - 1, _dec(wtr_any))),
            rtw.eq(Mux(cas_dram & ~is_wr, t.tRTW - 1, _dec(rtw))),
        ]
        for g in range(NBG):
            m.d.sync += [
                rrd_bg[g].eq(Mux(any_act & (lp_bg == g), t.tRRD_L - 1, _dec(rrd_bg[g]))),
                ccd_bg[g].eq(Mux(cas_dram & (cp_bg == g), t.tCCD_L - 1, _dec(ccd_bg[g]))),
                wtr_bg[g].eq(Mux(cas_dram & is_wr & (cp_bg == g), t.tWTR_L - 1,
                                 _dec(wtr_bg[g]))),
            ]
        for k in range(4):
            m.d.sync += faw[k].eq(Mux(any_act & (faw_ptr == k), t.tFAW - 1, _dec(faw[k])))
        with m.If(any_act):
            m.d.sync += faw_ptr.eq(faw_ptr + 1)

        # --- trace and statistics -----------------------------------------------------------
        cmd = self.cmd
        with m.If(lp_act):
            m.d.comb += [cmd.row.eq(RowCmd.ACT), cmd.row_bank.eq(lp_b), cmd.row_row.eq(lp_row)]
        with m.Elif(lp_pre):
            m.d.comb += [cmd.row.eq(RowCmd.PRE), cmd.row_bank.eq(lp_b)]
        with m.Elif(ref_pre):
            m.d.comb += [cmd.row.eq(RowCmd.PRE), cmd.row_bank.eq(ref_bank)]
        with m.Elif(ref_ref):
            m.d.comb += [cmd.row.eq(RowCmd.REF), cmd.row_bank.eq(ref_bank)]
        with m.Elif(ref_all):
            m.d.comb += cmd.row.eq(RowCmd.REFAB)
        with m.If(cas_dram):
            m.d.comb += [cmd.col.eq(Mux(is_wr, ColCmd.WR, ColCmd.RD)), cmd.col_bank.eq(cp_b),
                         cmd.col_col.eq(cp_col)]
        st = self.stats
        wlast_bad = cas & is_wr & (wq_out.last != cp_last)
        m.d.sync += [
            st.rd_beats.eq(st.rd_beats + (cas & ~is_wr)),
            st.wr_beats.eq(st.wr_beats + (cas & is_wr)),
            st.acts.eq(st.acts + lp_act),
            st.pres.eq(st.pres + (lp_pre | ref_pre)),
            st.refs.eq(st.refs + (ref_ref | ref_all)),
            st.row_hits.eq(st.row_hits + (usable & lp_hit)),
            st.err_beats.eq(st.err_beats + (cas & (beat_resp != Resp.OKAY.value))),
            st.protocol_errors.eq(st.protocol_errors + bad_req + wlast_bad),
        ]
        return m
