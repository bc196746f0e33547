"""Shared cocotb stream drivers, monitors and payload packing for every testbench.

Timing discipline (the same on Verilator and Icarus): every endpoint drives its signals right
after the falling clock edge and samples the handshake in the ``ReadOnly`` phase that follows, when
all combinational ``ready``/``valid`` logic has settled; a transfer then happens at the next rising
edge exactly when ``valid & ready`` was sampled high.

Sources keep AMBA-style stream rules: once ``valid`` is up it stays up with the payload unchanged
until the transfer. Sinks check the same rules on the DUT's outputs and fail on any violation.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable

from amaranth.hdl import Shape
from amaranth.lib import data
from cocotb.triggers import FallingEdge, ReadOnly

__all__ = ["StreamSink", "StreamSource", "pack", "unpack"]


def _shape(s):
    if isinstance(s, data.Layout):
        return s
    return Shape.cast(s)


def pack(layout, value) -> int:
    """Pack a Python value into the integer of an Amaranth shape/layout.

    ArrayLayout takes a sequence, StructLayout a mapping, plain shapes an int (two's complement).
    """
    layout = _shape(layout)
    if isinstance(layout, data.ArrayLayout):
        es = _shape(layout.elem_shape)
        w = es.size if isinstance(es, data.Layout) else es.width
        if len(value) != layout.length:
            raise ValueError(f"expected {layout.length} elements, got {len(value)}")
        out = 0
        for i, v in enumerate(value):
            out |= pack(es, v) << (i * w)
        return out
    if isinstance(layout, data.StructLayout):
        out = 0
        for name, field in layout:
            out |= pack(field.shape, value.get(name, 0)) << field.offset
        return out
    return int(value) & ((1 << layout.width) - 1)


def unpack(layout, raw: int):
    """Inverse of :func:`pack`: lists for arrays, dicts for structs, ints for plain shapes."""
    layout = _shape(layout)
    if isinstance(layout, data.ArrayLayout):
        es = _shape(layout.elem_shape)
        w = es.size if isinstance(es, data.Layout) else es.width
        mask = (1 << w) - 1
        return [unpack(es, (raw >> (i * w)) & mask) for i in range(layout.length)]
    if isinstance(layout, data.StructLayout):
        out = {}
        for name, field in layout:
            fs = _shape(field.shape)
            w = fs.size if isinstance(fs, data.Layout) else fs.width
            out[name] = unpack(fs, (raw >> field.offset) & ((1 << w) - 1))
        return out
    raw &= (1 << layout.width) - 1
    if layout.signed and raw >> (layout.width - 1):
        raw -= 1 << layout.width
    return raw


class StreamSource:
    """Drives ``<prefix>__valid``/``__payload`` from a queue, with random valid gaps.

    Items are raw payload integers, or callables returning the integer or ``None`` while the item
    is not available yet (e.g. a partial sum whose result row has not come back).

    Parameters
    ----------
    dut, prefix, clk
        The DUT handle, the stream's port prefix (``act`` for ``act__valid``…) and the clock.
    gap : float
        Probability that the source withholds ``valid`` in a cycle where it could offer an item.
    rng : random.Random
    """

    def __init__(self, dut, prefix: str, clk, gap: float = 0.0, rng: random.Random | None = None):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clk = clk
        self.gap = gap
        self.rng = rng or random.Random(0)
        self.queue: deque = deque()
        self.sent = 0
        self.name = prefix
        self.valid.value = 0

    def put(self, item: int | Callable[[], int | None]):
        self.queue.append(item)

    @property
    def idle(self) -> bool:
        return not self.queue and not int(self.valid.value)

    async def run(self):
        holding = False
        while True:
            await FallingEdge(self.clk)
            if not holding:
                offer = None
                if self.queue and not (self.gap and self.rng.random() < self.gap):
                    head = self.queue[0]
                    offer = head() if callable(head) else head
                if offer is None:
                    self.valid.value = 0
                else:
                    self.queue.popleft()
                    self.payload.value = offer
                    self.valid.value = 1
                    holding = True
            await ReadOnly()
            if holding and int(self.ready.value):
                holding = False          # transferred at the coming rising edge
                self.sent += 1


class StreamSink:
    """Accepts a DUT output stream with random ``ready``; checks the stream rules.

    ``on_item(raw)`` is called for every transfer, in order. Violations (valid dropped before the
    transfer, payload changed while waiting) are collected in :attr:`errors`.
    """

    def __init__(self, dut, prefix: str, clk, stall: float = 0.0,
                 rng: random.Random | None = None, on_item: Callable[[int], None] | None = None):
        self.valid = getattr(dut, f"{prefix}__valid")
        self.ready = getattr(dut, f"{prefix}__ready")
        self.payload = getattr(dut, f"{prefix}__payload")
        self.clk = clk
        self.stall = stall
        self.rng = rng or random.Random(0)
        self.items: list[int] = []
        self.on_item = on_item
        self.errors: list[str] = []
        self.cycle = 0
        self.last_cycle = -1          # cycle of the last transfer (rising edge index)
        self.stalled = 0
        self.name = prefix
        self.ready.value = 0

    async def run(self):
        pending = None                 # payload seen valid but not taken last cycle
        while True:
            await FallingEdge(self.clk)
            self.ready.value = 0 if (self.stall and self.rng.random() < self.stall) else 1
            await ReadOnly()
            v = int(self.valid.value)
            raw = int(self.payload.value) if v else None
            if pending is not None:
                if not v:
                    self.errors.append(f"{self.name}: valid dropped without a transfer at cycle "
                                       f"{self.cycle}")
                elif raw != pending:
                    self.errors.append(f"{self.name}: payload changed while waiting at cycle "
                                       f"{self.cycle}")
            pending = None
            if v:
                if int(self.ready.value):
                    self.items.append(raw)
                    self.last_cycle = self.cycle
                    if self.on_item:
                        self.on_item(raw)
                else:
                    pending = raw
                    self.stalled += 1
            self.cycle += 1
