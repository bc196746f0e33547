"""AXI4 interface definitions shared by the DMA (a master) and the HBM model (a slave).

The signals carry the names of the AMBA AXI4 specification (ARM IHI 0022, "AMBA AXI and ACE
Protocol Specification"): ``awaddr``, ``wstrb``, ``rlast``… rather than per-channel stream
payloads, so that the generated Verilog binds by name to other AXI IP and to verification
components such as cocotbext-axi (``AxiBus.from_prefix(dut, "m0_")`` finds ``m0__awaddr``).

Only what the DMA and the HBM model use is carried: ID, address, length, size and burst type on
the address channels, data, strobes and last on W, ID, response and last on R and B. The
optional signals (``AxCACHE``, ``AxPROT``, ``AxLOCK``, ``AxQOS``…) are left out; a slave sees
them at their reset values (normal, non-secure, non-exclusive accesses).
"""

from __future__ import annotations

from amaranth.lib import enum, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["BOUNDARY", "MAX_BEATS", "AxiSignature", "Burst", "Resp", "check_burst"]

#: AXI4: an INCR burst must not cross a 4 KiB address boundary (IHI 0022, A3.4.1).
BOUNDARY = 4096
#: AXI4: at most 256 beats in an INCR burst (AxLEN is 8 bits).
MAX_BEATS = 256


class Resp(enum.Enum, shape=2):
    """``RRESP``/``BRESP`` codes."""

    OKAY = 0
    EXOKAY = 1
    SLVERR = 2
    DECERR = 3


class Burst(enum.Enum, shape=2):
    """``AxBURST`` codes."""

    FIXED = 0
    INCR = 1
    WRAP = 2


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


class AxiSignature(wiring.Signature):
    """An AXI4 interface seen from the master (``Out(AxiSignature(...))`` on a master,
    ``In(...)`` on a slave).

    Parameters
    ----------
    addr_width : int
        Address bits, in [12, 64] (at least one 4 KiB page).
    data_width : int
        Data bits: a power of two in [8, 1024].
    id_width : int
        ID bits, in [1, 16].

    Members
    -------
    awid, awaddr, awlen, awsize, awburst, awvalid, awready
        Write address channel.
    wdata, wstrb, wlast, wvalid, wready
        Write data channel (``wstrb`` bit i enables byte i).
    bid, bresp, bvalid, bready
        Write response channel.
    arid, araddr, arlen, arsize, arburst, arvalid, arready
        Read address channel.
    rid, rdata, rresp, rlast, rvalid, rready
        Read data channel.

    Raises
    ------
    TypeError
        If a parameter is not an integer.
    ValueError
        If a parameter is out of range.
    """

    def __init__(self, *, addr_width: int, data_width: int, id_width: int):
        for name, v in (("addr_width", addr_width), ("data_width", data_width),
                        ("id_width", id_width)):
            if not _is_int(v):
                raise TypeError(f"{name} must be an integer, not {v!r}")
        if not 12 <= addr_width <= 64:
            raise ValueError(f"addr_width must be in [12, 64], not {addr_width}")
        if not 8 <= data_width <= 1024 or data_width & (data_width - 1):
            raise ValueError(f"data_width must be a power of two in [8, 1024], not {data_width}")
        if not 1 <= id_width <= 16:
            raise ValueError(f"id_width must be in [1, 16], not {id_width}")
        self._aw, self._dw, self._iw = addr_width, data_width, id_width
        members = {}
        for ch in ("aw", "ar"):
            members.update({
                f"{ch}id": Out(id_width), f"{ch}addr": Out(addr_width), f"{ch}len": Out(8),
                f"{ch}size": Out(3), f"{ch}burst": Out(2), f"{ch}valid": Out(1),
                f"{ch}ready": In(1),
            })
        members.update({
            "wdata": Out(data_width), "wstrb": Out(data_width // 8), "wlast": Out(1),
            "wvalid": Out(1), "wready": In(1),
            "bid": In(id_width), "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "rid": In(id_width), "rdata": In(data_width), "rresp": In(2), "rlast": In(1),
            "rvalid": In(1), "rready": Out(1),
        })
        super().__init__(members)

    @property
    def addr_width(self) -> int:
        return self._aw

    @property
    def data_width(self) -> int:
        return self._dw

    @property
    def id_width(self) -> int:
        return self._iw

    def __eq__(self, other):
        return (isinstance(other, AxiSignature) and (self._aw, self._dw, self._iw)
                == (other._aw, other._dw, other._iw))

    def __hash__(self):
        return hash((self._aw, self._dw, self._iw))

    def __repr__(self):
        return (f"AxiSignature(addr_width={self._aw}, data_width={self._dw}, "
                f"id_width={self._iw})")


def check_burst(addr: int, beats: int, size_bytes: int) -> str | None:
    """Why an INCR burst is illegal in AXI4, or ``None`` if it is legal.

    ``addr`` is the byte address, ``beats`` the number of transfers (AxLEN + 1) and
    ``size_bytes`` the bytes per transfer (2**AxSIZE). Shared by the protocol monitors.
    """
    if not 1 <= beats <= MAX_BEATS:
        return f"{beats} beats (AXI4 INCR allows 1..{MAX_BEATS})"
    start = addr - addr % size_bytes
    if start // BOUNDARY != (start + beats * size_bytes - 1) // BOUNDARY:
        return f"burst at {addr:#x} of {beats}x{size_bytes} B crosses a 4 KiB boundary"
    return None
