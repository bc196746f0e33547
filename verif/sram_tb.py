"""Direct cocotb testbench of :class:`hdl.sram.Sram`: Python drives every port, cycle by cycle.

Slower than the harness (``verif/sram_harness.py``) but it sees everything: the stream rules on
every response port (``verif/stream.py`` sinks), every request and injection as it is served and
every response as it leaves, all checked through the one scoreboard
(``verif/sram_scoreboard.py``) against the golden functional model, bit for bit and in
per-client order; the SRAM's ECC and stall counters against the model's and the monitor's.

Scenarios (each a dict; they run back to back in one simulation, memory contents carried over):

* ``random`` — random reads/writes/masks over a small address space (read-after-write across
  clients all the time), random valid gaps and response ready, optional random injections;
* ``same_bank`` — the same, every address on one bank;
* ``stream`` — each client sequential from its own row (the array's access pattern);
* ``raw`` — directed read-after-write races: one client writes a word while others read it;
* ``ecc`` — injections: every single-bit flip of one word (data and check bits) corrected;
  double flips (data/data, data/check, check/check) flagged; scrub by a masked write over a
  single error; poison by a masked write over a double error, cleared by a full write (each
  injection in a phase of its own, so the expected counts are exact: ``ecc_expect``);
* ``reset`` — random traffic with reset asserted in the middle (memory kept, responses in
  flight dropped, traffic resumes);
* ``backpressure`` — one client's responses blocked for a long time: the others finish;
* ``corners`` — first/last address, mask 0 (a scrub), single-byte masks, same-client
  write-then-read and read-then-write of one word.

The model is the fast harness's (``verif/sram_harness.py``) in its ``direct`` mode — its top
exposes the SRAM's ports under their own names and makes the clock — so both testbenches share
one compiled model. The launcher (:func:`run_scenarios`) runs in pytest; :func:`scenarios` runs
inside the simulator.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

JOB_ENV = "SPLITSYS_SRAM_JOB"


def run_scenarios(cfg, scenarios: list[dict], seed: int, sim_name: str = "verilator",
                  test_dir: Path | None = None, waves: bool | None = None) -> dict:
    """Build the model (cached) and run ``scenarios`` in one simulation; return the report.

    The model is the fast harness's (``verif/sram_harness.py``) in its ``direct`` mode: its
    top exposes the SRAM's ports under their own names, with the clock made in HDL; one
    compiled model serves both testbenches.
    """
    import tempfile

    from . import sim, sram_harness

    sim.check_sim(sim_name)
    waves = sim.waves_requested() if waves is None else waves
    bdir = sram_harness.build_model(cfg, sim_name, waves)
    if test_dir is None:
        (sim.BUILD / "runs").mkdir(parents=True, exist_ok=True)
        test_dir = Path(tempfile.mkdtemp(prefix="sramtb_", dir=sim.BUILD / "runs"))
    test_dir = Path(test_dir).resolve()        # the simulator runs inside it
    test_dir.mkdir(parents=True, exist_ok=True)
    spec = {"cfg": cfg.as_dict(), "scenarios": scenarios, "seed": seed,
            "report": str(test_dir / "report.json")}
    (test_dir / "job.json").write_text(json.dumps(spec))
    rep = Path(spec["report"])
    rep.unlink(missing_ok=True)
    try:
        sim.run(bdir, sram_harness.TOP, sim_name, "verif.sram_tb", test_dir,
                plusargs=["+direct=1"], env={JOB_ENV: str(test_dir / "job.json")},
                waves=waves)
    except sim.SimError:
        # A failed check still writes its report: return it, so the caller shows the
        # scoreboard's messages; without one the simulation itself broke.
        if not rep.exists() or not json.loads(rep.read_text()).get("errors"):
            raise
    return json.loads(rep.read_text())


# --------------------------------------------------------------------------------------------
# Inside the simulator
# --------------------------------------------------------------------------------------------

try:
    import cocotb
    from cocotb.triggers import ClockCycles, FallingEdge, RisingEdge
except ImportError:  # pragma: no cover - only the launcher is used outside a simulator
    cocotb = None

if cocotb is not None and os.environ.get(JOB_ENV):
    import random

    from amaranth.lib import data

    from hdl.sram import SramConfig, inject_layout, request_layout

    from .sram_scoreboard import SramMonitor, SramScoreboard
    from .stream import StreamSink, StreamSource, pack, unpack

    class SramTB:
        """Clock, reset, one source/sink per client, the injection source, the scoreboard."""

        def __init__(self, dut, cfg: SramConfig, seed: int):
            self.dut = dut
            self.cfg = cfg
            self.rng = random.Random(seed)
            self.rl, self.il = request_layout(cfg), inject_layout(cfg)
            self.sb = SramScoreboard(cfg)
            self.mon = SramMonitor(dut, cfg, self.sb, dut.clk)
            self.errors: list[str] = []
            self.full = (1 << cfg.mask_bits) - 1

        async def start(self):
            d, cfg = self.dut, self.cfg
            # The top makes the clock (always #5) and holds reset until released here.
            # Undriven inputs are X under Icarus: drive every input from time 0.
            d.rst.value = 1
            d.inject__valid.value = 0
            d.inject__payload.value = 0
            for c in range(cfg.clients):
                getattr(d, f"req__{c}__valid").value = 0
                getattr(d, f"req__{c}__payload").value = 0
                getattr(d, f"resp__{c}__ready").value = 0
            await ClockCycles(d.clk, 3)
            await FallingEdge(d.clk)
            d.rst.value = 0
            cocotb.start_soon(self.mon.run())

        # --- stimulus helpers --------------------------------------------------------------
        def req(self, op, addr, data=0, mask=None):
            mask = self.full if mask is None else mask
            return pack(self.rl, {"op": op, "addr": addr, "mask": mask, "data": data})

        def rand_req(self, addrs, write_frac, partial_frac):
            a = self.rng.choice(addrs)
            if self.rng.random() < write_frac:
                mask = (self.rng.getrandbits(self.cfg.mask_bits)
                        if self.rng.random() < partial_frac else self.full)
                return self.req(1, a, self.rng.getrandbits(self.cfg.word_bits), mask)
            return self.req(0, a)

        def counters(self):
            d = self.dut
            per_client = data.ArrayLayout(self.cfg.counter_bits, self.cfg.clients)
            st = unpack(per_client, int(d.stall_cycles.value))
            cf = unpack(per_client, int(d.conflict_cycles.value))
            return (int(d.ecc_corrected.value), int(d.ecc_uncorrectable.value), st, cf)

        # --- one phase: queues in, everything answered ------------------------------------
        async def phase(self, name, queues, gap=0.0, stall=0.0, injections=(), inj_gap=0.5,
                        budget=None, during=None):
            """Offer ``queues[c]`` on each client, ``injections`` on the inject port; wait until
            every request was served and every read answered (timeout: ``budget`` cycles)."""
            d, cfg = self.dut, self.cfg
            stalls = stall if isinstance(stall, list) else [stall] * cfg.clients
            srcs = [StreamSource(d, f"req__{c}", d.clk, gap, self.rng) for c in range(cfg.clients)]
            sinks = [StreamSink(d, f"resp__{c}", d.clk, stalls[c], self.rng)
                     for c in range(cfg.clients)]
            inj = StreamSource(d, "inject", d.clk, inj_gap, self.rng)
            for s, q in zip(srcs, queues, strict=True):
                for item in q:
                    s.put(item)
            for a, flip in injections:
                inj.put(pack(self.il, {"addr": a, "flip": flip}))
            tasks = [cocotb.start_soon(x.run()) for x in (*srcs, *sinks, inj)]
            n = sum(len(q) for q in queues) + len(injections)
            budget = budget or int(20 * n / max(1, cfg.banks) / (1 - max(gap, *stalls))
                                   + 4 * n + 500)
            extra = None
            if during is not None:
                extra = cocotb.start_soon(during(self, srcs, sinks, tasks))
            waited = 0
            while waited < budget:
                await RisingEdge(d.clk)
                waited += 1
                if (all(s.idle for s in srcs) and inj.idle and self.sb.pending == 0
                        and (extra is None or extra.done())):
                    break
            else:
                left = [len(s.queue) + int(s.valid.value) for s in srcs]
                self.errors.append(f"{name}: timeout after {budget} cycles; requests left per "
                                   f"client {left}, reads unanswered {self.sb.pending}")
            for t in tasks:
                t.cancel()
            await FallingEdge(d.clk)
            for s in (*srcs, inj):
                s.valid.value = 0
            for s in sinks:
                s.ready.value = 1
                self.errors += [f"{name}: {e}" for e in s.errors]
            # Idle with ready high: anything still coming out now is an extra response.
            await ClockCycles(d.clk, 8)
            return waited

        async def reset(self, cycles=2):
            d = self.dut
            await FallingEdge(d.clk)
            d.rst.value = 1
            await ClockCycles(d.clk, cycles)
            await FallingEdge(d.clk)
            d.rst.value = 0
            self.sb.reset()
            self.mon.stalls = [0] * self.cfg.clients

        def check_counters(self, name):
            corr, unc, st, _ = self.counters()
            top = (1 << self.cfg.counter_bits) - 1            # the counters saturate
            if max(corr, unc) < top:
                self.sb.check_counters(corr, unc)
            if st != [min(x, top) for x in self.mon.stalls]:
                self.errors.append(f"{name}: stall counters {st}, the monitor saw "
                                   f"{self.mon.stalls}")

    # --- scenarios ---------------------------------------------------------------------------

    def _addrs(tb, space, bank=None):
        cfg = tb.cfg
        if bank is None:
            pool = list(range(cfg.depth))
        else:
            pool = [a for a in range(cfg.depth) if cfg.bank_of(a) == bank]
        tb.rng.shuffle(pool)
        picked = pool[:space]
        # Corners in the pool when they qualify: the first and last address.
        for a in (0, cfg.depth - 1):
            if (bank is None or cfg.bank_of(a) == bank) and a not in picked:
                picked[-1 if a else 0] = a
        return picked

    async def sc_random(tb, s, name):
        cfg = tb.cfg
        addrs = _addrs(tb, s.get("space", 16), s.get("bank"))
        queues = [[tb.rand_req(addrs, s.get("write_frac", 0.5), s.get("partial_frac", 0.3))
                   for _ in range(s["n"])] for _ in range(cfg.clients)]
        inj = []
        for _ in range(s.get("injections", 0)):
            bits = tb.rng.sample(range(cfg.code_bits), tb.rng.choice((1, 1, 2)))
            inj.append((tb.rng.choice(addrs), sum(1 << b for b in bits)))
        return await tb.phase(name, queues, s.get("gap", 0.0), s.get("stall", 0.0), inj)

    async def sc_stream(tb, s, name):
        cfg = tb.cfg
        n = s["n"]
        step = cfg.depth // cfg.clients
        queues = []
        for c in range(cfg.clients):
            base = c * step
            writer = cfg.client_names[c] in ("dma_wr", "drain")
            queues.append([tb.req(1, (base + i) % cfg.depth, tb.rng.getrandbits(cfg.word_bits))
                           if writer else tb.req(0, (base + i) % cfg.depth) for i in range(n)])
        return await tb.phase(name, queues, s.get("gap", 0.0), s.get("stall", 0.0))

    async def sc_raw(tb, s, name):
        """Write-then-read races across clients on a handful of words."""
        cfg = tb.cfg
        P = cfg.clients
        rounds = s.get("rounds", 12)
        for r in range(rounds):
            a = tb.rng.randrange(cfg.depth)
            w = r % P
            queues = [[] for _ in range(P)]
            mask = tb.full if r % 3 else tb.rng.getrandbits(cfg.mask_bits) | 1
            queues[w] = [tb.req(1, a, tb.rng.getrandbits(cfg.word_bits), mask),
                         tb.req(0, a)]                       # same client: must see its write
            for c in range(P):
                if c != w:
                    queues[c] = [tb.req(0, a)] * tb.rng.randint(1, 3)
                    if tb.rng.random() < 0.3:              # a second writer races too
                        queues[c].insert(1, tb.req(1, a, tb.rng.getrandbits(cfg.word_bits)))
            await tb.phase(f"{name} round {r}", queues, s.get("gap", 0.2), s.get("stall", 0.2))

    async def sc_ecc(tb, s, name):
        """Injections, each in a phase of its own so that it lands before the accesses that
        must see it (the expected counts are then exact, see ``ecc_expect``)."""
        cfg = tb.cfg
        P, W, K, MB = cfg.clients, cfg.word_bits, cfg.code_bits, cfg.mask_bits
        rnd = tb.rng

        async def one(label, reqs, injections=()):
            q = [[] for _ in range(P)]
            q[rnd.randrange(P)] = reqs
            await tb.phase(f"{name} {label}", q, injections=list(injections), inj_gap=0.0)

        a = rnd.randrange(cfg.depth)
        await one("write", [tb.req(1, a, rnd.getrandbits(W))])
        # Every single-bit flip of the word, data and check bits: read back corrected (data
        # and count), then flipped back.
        bits = range(K) if s.get("all_bits", True) else rnd.sample(range(K), 8)
        for bit in bits:
            await one(f"bit {bit} flip", [], [(a, 1 << bit)])
            await one(f"bit {bit} read", [tb.req(0, a)])
            await one(f"bit {bit} unflip", [], [(a, 1 << bit)])
        # Double flips: data/data, data/check, check/check, random — flagged; read twice.
        pairs = [(0, 1), (W - 1, W), (W, K - 1), (rnd.randrange(W), rnd.randrange(W, K))]
        pairs += [tuple(rnd.sample(range(K), 2)) for _ in range(s.get("doubles", 6))]
        for i, (x, y) in enumerate(pairs):
            b = rnd.randrange(cfg.depth)
            await one(f"double {i} write", [tb.req(1, b, rnd.getrandbits(W))])
            await one(f"double {i} flip", [], [(b, 1 << x | 1 << y)])
            await one(f"double {i} read", [tb.req(0, b), tb.req(0, b)])
            # Masked write over the double error: poisoned, still flagged; a full write clears.
            await one(f"double {i} poison", [tb.req(1, b, rnd.getrandbits(W), 1), tb.req(0, b),
                                             tb.req(1, b, rnd.getrandbits(W)), tb.req(0, b)])
        # Masked write (never all bytes) over a single error: the read-modify-write corrects and
        # counts it and re-encodes the merged word (scrubbed: the next read is clean).
        for i in range(s.get("scrubs", 6)):
            b = rnd.randrange(cfg.depth)
            await one(f"scrub {i} write", [tb.req(1, b, rnd.getrandbits(W))])
            await one(f"scrub {i} flip", [], [(b, 1 << rnd.randrange(K))])
            mask = rnd.getrandbits(MB) & ~(1 << rnd.randrange(MB))
            await one(f"scrub {i}", [tb.req(1, b, rnd.getrandbits(W), mask), tb.req(0, b)])
        tb.report["ecc_expect"] = {"corrected_responses": len(bits),
                                   "uncorrectable_responses": 3 * len(pairs),
                                   "counted_corrected": len(bits) + s.get("scrubs", 6),
                                   "counted_uncorrectable": 3 * len(pairs) + len(pairs)}

    async def sc_reset(tb, s, name):
        cfg = tb.cfg
        addrs = _addrs(tb, s.get("space", 16))
        at = s.get("at", tb.rng.randint(20, 60))

        async def during(tb, srcs, sinks, tasks):
            await ClockCycles(tb.dut.clk, at)
            for _ in range(200):              # reset with reads in flight, when there are any
                if tb.sb.pending:
                    break
                await RisingEdge(tb.dut.clk)
            # Responses in flight are discarded by the reset: the sinks must start afresh.
            for t in tasks[cfg.clients:2 * cfg.clients]:
                t.cancel()
            await tb.reset(s.get("length", 2))
            for k, sk in enumerate(sinks):
                new = StreamSink(tb.dut, f"resp__{k}", tb.dut.clk, sk.stall, tb.rng)
                sinks[k] = new
                tasks[cfg.clients + k] = cocotb.start_soon(new.run())

        queues = [[tb.rand_req(addrs, 0.5, 0.3) for _ in range(s["n"])]
                  for _ in range(cfg.clients)]
        return await tb.phase(name, queues, s.get("gap", 0.2), s.get("stall", 0.3),
                              during=during)

    async def sc_backpressure(tb, s, name):
        """Client ``k``'s responses blocked (ready low 95% of the time)."""
        cfg = tb.cfg
        k = s.get("client", 1)
        n = s["n"]
        queues = [[tb.req(0, (c * 37 + i) % cfg.depth) for i in range(n)]
                  for c in range(cfg.clients)]
        stall = [0.95 if c == k else 0.0 for c in range(cfg.clients)]
        served_before = [len(x) for x in _served(tb)]
        await tb.phase(name, queues, 0.0, stall)
        # The other clients were not slowed down by k: each of their n reads was served in
        # about n cycles (at most a few conflicts), while k took far longer.
        spans = []
        for c, log in enumerate(_served(tb)):
            cyc = [x for x in log[served_before[c]:]]
            spans.append(cyc[-1] - cyc[0] + 1 if cyc else 0)
        tb.report.setdefault("backpressure_spans", []).append(spans)
        for c in range(cfg.clients):
            if c != k and spans[c] > 2 * n + 20:
                tb.errors.append(f"{name}: client {c} took {spans[c]} cycles for {n} reads "
                                 f"while client {k} was blocked")
        if spans[k] < 4 * n:
            tb.errors.append(f"{name}: the blocked client finished in {spans[k]} cycles: "
                             f"backpressure did not happen")

    def _served(tb):
        out = [[] for _ in range(tb.cfg.clients)]
        for cyc, c, _op, _a in tb.sb.served_log:
            if c >= 0:
                out[c].append(cyc)
        return out

    async def sc_corners(tb, s, name):
        cfg = tb.cfg
        P, W = cfg.clients, cfg.word_bits
        rnd = tb.rng
        last = cfg.depth - 1
        q = [[] for _ in range(P)]
        c0, c1 = 0, P - 1
        q[c0] = [tb.req(1, 0, rnd.getrandbits(W)), tb.req(0, 0),            # write then read
                 tb.req(1, 0, rnd.getrandbits(W), 0), tb.req(0, 0),          # mask 0: scrub
                 tb.req(0, last), tb.req(1, last, (1 << W) - 1), tb.req(0, last)]
        for byte in range(cfg.mask_bits):                                    # one byte each
            q[c1].append(tb.req(1, last, rnd.getrandbits(W), 1 << byte))
            q[c1].append(tb.req(0, last))
        q[c1] += [tb.req(1, last, 0), tb.req(0, last)]
        await tb.phase(name, q, 0.0, 0.0)
        q = [[] for _ in range(P)]
        q[c0] = [tb.req(1, 0, rnd.getrandbits(W), m) for m in (0x55, 0xAA, 0x0F, 0xF0)]
        q[c0] = [x for pair in zip(q[c0], [tb.req(0, 0)] * 4, strict=True) for x in pair]
        await tb.phase(name + " alternating masks", q, 0.3, 0.5)

    SCENARIOS = {"random": sc_random, "same_bank": sc_random, "stream": sc_stream,
                 "raw": sc_raw, "ecc": sc_ecc, "reset": sc_reset,
                 "backpressure": sc_backpressure, "corners": sc_corners}

    @cocotb.test()
    async def scenarios(dut):
        spec = json.loads(Path(os.environ[JOB_ENV]).read_text())
        cfg = SramConfig(**spec["cfg"])
        seed = spec["seed"]
        dut._log.info("seed %d", seed)
        tb = SramTB(dut, cfg, seed)
        tb.report = {"seed": seed, "scenarios": []}
        await tb.start()
        for i, s in enumerate(spec["scenarios"]):
            name = f"scenario {i} ({s['kind']})"
            before = tb.sb.summary()
            conf0 = tb.counters()[3]
            start = tb.mon.cycle
            if s["kind"] == "same_bank":
                s = dict(s, bank=s.get("bank", tb.rng.randrange(cfg.banks)))
            await SCENARIOS[s["kind"]](tb, s, name)
            tb.check_counters(name)
            after = tb.sb.summary()
            rec = {"kind": s["kind"], "cycles": tb.mon.cycle - start,
                   "reads": sum(after["reads"]) - sum(before["reads"]),
                   "writes": sum(after["writes"]) - sum(before["writes"]),
                   "partial_writes": sum(after["partial_writes"])
                   - sum(before["partial_writes"]),
                   "injections": after["injections"] - before["injections"],
                   "corrected": after["flags"]["corrected"] - before["flags"]["corrected"],
                   "uncorrectable": after["flags"]["uncorrectable"]
                   - before["flags"]["uncorrectable"],
                   "dropped_by_reset": after["dropped_by_reset"] - before["dropped_by_reset"]}
            conf1 = tb.counters()[3]
            # (The reset scenario restarts the counters: then count from zero.)
            rec["conflict_cycles"] = [b - a if b >= a else b
                                      for a, b in zip(conf0, conf1, strict=True)]
            tb.report["scenarios"].append(rec)
            if tb.errors or not tb.sb.ok:
                break
        tb.sb.finish()
        errors = tb.errors + tb.sb.errors
        tb.report["errors"] = errors
        tb.report["scoreboard"] = tb.sb.summary()
        # RAW coverage: reads served 1..3 cycles after a write of the same address elsewhere.
        last_write, close = {}, 0
        for cyc, c, op, a in tb.sb.served_log:
            if op == "write":
                last_write[a] = (cyc, c)
            elif op == "read" and a in last_write:
                wc, who = last_write[a]
                close += who != c and 1 <= cyc - wc <= 3
        tb.report["raw_across_clients_within_3_cycles"] = close
        Path(spec["report"]).write_text(json.dumps(tb.report, indent=1))
        assert not errors, "; ".join(errors[:5]) + f" (seed {seed})"
