"""The one SRAM scoreboard: every testbench with an :class:`hdl.sram.Sram` in it checks through it.

The SRAM's contract is "responses equal what the golden model predicts from the order in which
the arbiter served the requests". So the scoreboard is fed events, not stimulus:

* :meth:`SramScoreboard.served` — a request transferred (cycle, client, payload), in served
  order (requests of the same cycle go to different banks, so their order within a cycle does
  not matter). Reads get their expected response from :class:`golden.sram.SramModel` at once.
* :meth:`SramScoreboard.injected` — an error injection transferred.
* :meth:`SramScoreboard.response` — a response transferred: compared with the client's oldest
  expected response (data and both ECC flags, bit for bit; per-client order).
* :meth:`SramScoreboard.reset` — the SRAM was reset: expected responses in flight are dropped
  (the contract discards them), memory contents and the model stay.
* :meth:`SramScoreboard.finish` — reads never answered are errors (lost requests).

Sources of events: :class:`SramMonitor` (cocotb, samples the ports of a DUT every cycle — a
tile testbench can point it at the SRAM's ports inside the tile), or a log replayed from the
fast harness (:func:`verif.sram_harness.replay`).
"""

from __future__ import annotations

from collections import deque

from golden.sram import Response, SramModel
from hdl.sram import SramConfig

__all__ = ["SramMonitor", "SramScoreboard"]


class SramScoreboard:
    """Golden-model scoreboard of one SRAM.

    Parameters
    ----------
    cfg : SramConfig
    name : str
        Prefix of the error messages.
    max_errors : int
        Errors kept (the count goes on).
    """

    def __init__(self, cfg: SramConfig, name: str = "sram", max_errors: int = 20):
        if not isinstance(cfg, SramConfig):
            raise TypeError(f"cfg must be an SramConfig, not {cfg!r}")
        self.cfg = cfg
        self.name = name
        self.model = SramModel(cfg)
        self.max_errors = max_errors
        P = cfg.clients
        self.expected: list[deque] = [deque() for _ in range(P)]
        self.errors: list[str] = []
        self.n_errors = 0
        self.reads = [0] * P
        self.writes = [0] * P
        self.partial_writes = [0] * P
        self.responses = [0] * P
        self.injections = 0
        self.dropped = 0                 # expected responses discarded by resets
        self.flags = {"corrected": 0, "uncorrectable": 0}   # responses seen with each flag
        self.served_log: list[tuple] = []                   # (cycle, client, op, addr)
        self.latency = {"min": None, "max": None}           # served -> answered, cycles
        self._ecc_base = (0, 0)          # model ECC counts at the last reset
        self.finished = False

    # --- events ----------------------------------------------------------------------------
    def _error(self, msg: str):
        self.n_errors += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(f"{self.name}: {msg}")

    def served(self, cycle: int, client: int, req: dict):
        """Request ``req`` (``op``, ``addr``, ``mask``, ``data``) of ``client`` transferred."""
        op = "write" if int(req["op"]) == 1 else "read"
        addr = int(req["addr"])
        self.served_log.append((cycle, client, op, addr))
        if op == "read":
            self.reads[client] += 1
            r = self.model.read(addr)
            self.expected[client].append((cycle, addr, r))
        else:
            self.writes[client] += 1
            mask = int(req["mask"])
            self.partial_writes[client] += mask != (1 << self.cfg.mask_bits) - 1
            self.model.write(addr, int(req["data"]), mask)

    def injected(self, cycle: int, addr: int, flip: int):
        self.injections += 1
        self.served_log.append((cycle, -1, "inject", addr))
        self.model.inject(addr, flip)

    def response(self, cycle: int, client: int, resp: dict):
        """Response ``resp`` (``data``, ``corrected``, ``uncorrectable``) of ``client``."""
        self.responses[client] += 1
        got = Response(int(resp["data"]), bool(resp["corrected"]), bool(resp["uncorrectable"]))
        self.flags["corrected"] += got.corrected
        self.flags["uncorrectable"] += got.uncorrectable
        if not self.expected[client]:
            self._error(f"client {client}: response at cycle {cycle} without a pending read "
                        f"(data {got.data:#x})")
            return
        at, addr, want = self.expected[client].popleft()
        lat = cycle - at
        lo, hi = self.latency["min"], self.latency["max"]
        self.latency = {"min": lat if lo is None else min(lo, lat),
                        "max": lat if hi is None else max(hi, lat)}
        if got.as_tuple() != want.as_tuple():
            self._error(
                f"client {client}: read of address {addr} served at cycle {at}, answered at "
                f"{cycle}: got data {got.data:#x} corrected={int(got.corrected)} "
                f"uncorrectable={int(got.uncorrectable)}, the golden model predicts "
                f"{want.data:#x} corrected={int(want.corrected)} "
                f"uncorrectable={int(want.uncorrectable)}")

    def reset(self):
        """The SRAM was reset: in-flight responses are discarded, storage is kept."""
        self.dropped += sum(len(q) for q in self.expected)
        for q in self.expected:
            q.clear()
        self._ecc_base = (self.model.corrected, self.model.uncorrectable)

    def check_counters(self, corrected: int, uncorrectable: int):
        """Compare the SRAM's ECC counters (since its last reset) with the model's."""
        want = (self.model.corrected - self._ecc_base[0],
                self.model.uncorrectable - self._ecc_base[1])
        if (corrected, uncorrectable) != want:
            self._error(f"ECC counters corrected={corrected} uncorrectable={uncorrectable}, "
                        f"the golden model counts {want[0]} and {want[1]}")

    def finish(self):
        """Every read served must have been answered."""
        for c, q in enumerate(self.expected):
            if q:
                at, addr, _ = q[0]
                self._error(f"client {c}: {len(q)} read(s) never answered (first: address "
                            f"{addr}, served at cycle {at})")
        self.finished = True

    # --- summary ---------------------------------------------------------------------------
    @property
    def pending(self) -> int:
        return sum(len(q) for q in self.expected)

    @property
    def ok(self) -> bool:
        return self.n_errors == 0

    def summary(self) -> dict:
        return {"reads": list(self.reads), "writes": list(self.writes),
                "partial_writes": list(self.partial_writes), "responses": list(self.responses),
                "injections": self.injections, "dropped_by_reset": self.dropped,
                "flags": dict(self.flags),
                "ecc_corrected": self.model.corrected,
                "ecc_uncorrectable": self.model.uncorrectable,
                "latency": dict(self.latency), "errors": self.n_errors,
                "first_errors": self.errors[:5]}


class SramMonitor:
    """Samples an SRAM's ports every cycle (cocotb) and feeds a :class:`SramScoreboard`.

    Ports are found as ``<prefix>req__<c>__valid`` etc. (Amaranth's flattened names). The
    monitor samples in the ``ReadOnly`` phase after each falling edge — the phase in which the
    shared stream drivers (``verif/stream.py``) sample — so a handshake seen there is the
    transfer at the next rising edge. It also counts, per client, the cycles a request waited
    (``stalls``), to be compared with the SRAM's own counters.
    """

    def __init__(self, dut, cfg: SramConfig, scoreboard: SramScoreboard, clk, prefix: str = ""):
        from .stream import unpack  # noqa: F401 - fail early outside cocotb setups

        self.dut = dut
        self.cfg = cfg
        self.sb = scoreboard
        self.clk = clk
        P = cfg.clients
        g = lambda n: getattr(dut, prefix + n)  # noqa: E731
        self.req = [(g(f"req__{c}__valid"), g(f"req__{c}__ready"), g(f"req__{c}__payload"))
                    for c in range(P)]
        self.resp = [(g(f"resp__{c}__valid"), g(f"resp__{c}__ready"),
                      g(f"resp__{c}__payload")) for c in range(P)]
        self.inj = (g("inject__valid"), g("inject__ready"), g("inject__payload"))
        self.cycle = 0
        self.stalls = [0] * P

    async def run(self):
        from cocotb.triggers import FallingEdge, ReadOnly

        from hdl.sram import inject_layout, request_layout, response_layout

        from .stream import unpack

        rl, sl, il = (request_layout(self.cfg), response_layout(self.cfg),
                      inject_layout(self.cfg))
        while True:
            await FallingEdge(self.clk)
            await ReadOnly()
            for c, (v, r, p) in enumerate(self.req):
                if int(v.value):
                    if int(r.value):
                        self.sb.served(self.cycle, c, unpack(rl, int(p.value)))
                    else:
                        self.stalls[c] += 1
            v, r, p = self.inj
            if int(v.value) and int(r.value):
                x = unpack(il, int(p.value))
                self.sb.injected(self.cycle, x["addr"], x["flip"])
            for c, (v, r, p) in enumerate(self.resp):
                if int(v.value) and int(r.value):
                    self.sb.response(self.cycle, c, unpack(sl, int(p.value)))
            self.cycle += 1
