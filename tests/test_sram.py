"""SRAM subsystem: SECDED code and decoder, golden models, RTL against the golden model.

Three levels:

* the Hsiao code and the RTL encoder/decoder in the Amaranth simulator, exhaustively (every
  single- and double-bit error of a word, check bits included) against the golden decoder;
* the direct cocotb testbench (``verif/sram_tb.py``): Python drives every port, the one
  scoreboard (``verif/sram_scoreboard.py``) checks every response against the golden functional
  model, in served order, bit for bit — random multi-client traffic, one bank, streaming rows,
  read-after-write races, ECC injection, reset in the middle of traffic, backpressure;
* the fast harness (``verif/sram_harness.py``): traffic and a shadow checker in HDL; its counters
  held to the golden cycle model exactly, its request/response log replayed through the same
  scoreboard.
"""

import json
import random
import subprocess
import sys

import numpy as np
import pytest
from amaranth.sim import Simulator

from golden.sram import Secded, SramModel, estimate, simulate_traffic
from hdl.sram import (
    POISON,
    SecdedDecoder,
    SecdedEncoder,
    Sram,
    SramBank,
    SramConfig,
    hsiao_code,
)
from scripts.cli import main as cli_main
from scripts.sram import UM2_PER_BIT, bank_modules, check_black_boxes, macro_area
from scripts.sram import main as sram_main
from verif.sram_harness import SramHarness, replay, run_traffic
from verif.sram_scoreboard import SramScoreboard
from verif.sram_tb import run_scenarios

from .conftest import require

#: Direct testbench and harness (Verilator): the default 8 banks and 6 clients, round-robin, with
#: 32-bit words and 128 words so that the model compiles in under a minute (the default 128-bit
#: configuration runs in the bench, ``splitsys sram-bench``).
CFG_A = SramConfig(word_bits=32, depth=128)
#: Icarus: 4 banks, 3 clients, 32-bit words, fixed priority, XOR-folded banks, 3-deep FIFOs.
CFG_B = SramConfig(banks=4, word_bits=32, depth=64, clients=3, arbitration="priority",
                   xor_hash=True, resp_depth=3)


# --- configuration checks ----------------------------------------------------------------------

BAD = [
    ({"banks": 6}, ValueError, "banks must be a power of two in [1, 64], not 6"),
    ({"banks": 128}, ValueError, "banks must be a power of two in [1, 64], not 128"),
    ({"banks": 8.0}, TypeError, "banks must be an integer, not 8.0"),
    ({"word_bits": 60}, ValueError, "word_bits must be a multiple of 8 in [8, 1024], not 60"),
    ({"word_bits": 2048}, ValueError, "word_bits must be a multiple of 8 in [8, 1024], not 2048"),
    ({"depth": 100}, ValueError, "depth must be a power of two in [banks, 2**24] (banks = 8), "
                                 "not 100"),
    ({"depth": 4}, ValueError, "depth must be a power of two in [banks, 2**24] (banks = 8), "
                               "not 4"),
    ({"clients": 0}, ValueError, "clients must be in [1, 16], not 0"),
    ({"clients": True}, TypeError, "clients must be an integer, not True"),
    ({"arbitration": "lottery"}, ValueError,
     "arbitration must be one of round_robin, priority, not 'lottery'"),
    ({"arbitration": 1}, TypeError, "arbitration must be a string, not 1"),
    ({"xor_hash": 1}, TypeError, "xor_hash must be a bool, not 1"),
    ({"resp_depth": 0}, ValueError, "resp_depth must be in [1, 64], not 0"),
    ({"counter_bits": 4}, ValueError, "counter_bits must be in [8, 64], not 4"),
]


@pytest.mark.parametrize("kwargs,exc,msg", BAD, ids=[str(b[0]) for b in BAD])
def test_config_errors(kwargs, exc, msg):
    with pytest.raises(exc) as e:
        SramConfig(**kwargs)
    assert str(e.value) == msg


def test_constructor_type_errors():
    with pytest.raises(TypeError, match="positional argument"):
        SramConfig(8)                                          # keyword arguments only
    for cls in (Sram, SramBank, SramModel, SramScoreboard, SramHarness):
        with pytest.raises(TypeError, match=r"^cfg must be an SramConfig, not \(8, 8\)$"):
            cls((8, 8))
    for cls in (SecdedEncoder, SecdedDecoder, Secded):
        with pytest.raises(ValueError, match=r"^data_bits must be a positive integer, not 0$"):
            cls(0)
        with pytest.raises(TypeError, match=r"^data_bits must be an integer, not 8\.0$"):
            cls(8.0)
    with pytest.raises(ValueError, match=r"^pattern must be one of stream, random, same-bank, "
                                         r"not 'zigzag'$"):
        simulate_traffic(SramConfig(), "zigzag", 10, seed=1)
    with pytest.raises(ValueError, match=r"^op must be read, write or inject, not 'erase'$"):
        SramModel(SramConfig()).apply("erase", 0)


def test_config_geometry():
    c = SramConfig()
    assert (c.banks, c.word_bits, c.depth, c.clients) == (8, 128, 4096, 6)
    assert c.client_names == ("dma_wr", "dma_rd", "weight", "act0", "act1", "drain")
    assert (c.addr_bits, c.bank_bits, c.row_bits, c.bank_depth) == (12, 3, 9, 512)
    assert (c.check_bits, c.code_bits, c.mask_bits) == (9, 137, 16)
    assert [c.bank_of(a) for a in range(10)] == [0, 1, 2, 3, 4, 5, 6, 7, 0, 1]
    x = SramConfig(xor_hash=True)
    # Bank = low 3 bits XOR the 3-bit chunks above: a bijection per row.
    assert x.bank_of(0b101_011_110) == 0b110 ^ 0b011 ^ 0b101
    for row in range(x.bank_depth):
        assert sorted(x.bank_of(row << 3 | lo) for lo in range(8)) == list(range(8))
    assert SramConfig(clients=8).client_names[6:] == ("client6", "client7")


# --- SECDED -----------------------------------------------------------------------------------

@pytest.mark.parametrize("k,r", [(8, 5), (16, 6), (32, 7), (64, 8), (128, 9), (256, 10),
                                 (512, 11), (1024, 12)])
def test_hsiao_code_properties(k, r):
    """r check bits (the minimum for Hsiao), distinct odd-weight columns, unit check columns,
    balanced rows; every single and double error pattern is told apart (vectorized)."""
    cols = hsiao_code(k)
    assert len(cols) == k + r
    assert cols[k:] == tuple(1 << j for j in range(r))
    assert len(set(cols)) == k + r and all(c and bin(c).count("1") % 2 for c in cols)
    assert all(bin(c).count("1") >= 3 for c in cols[:k])
    rows = [sum(c >> j & 1 for c in cols[:k]) for j in range(r)]
    assert max(rows) - min(rows) <= 1
    # Syndromes of all double errors: XOR of two distinct columns, never zero, never a column.
    c = np.array(cols, dtype=np.int64)
    i, j = np.triu_indices(len(cols), 1)
    dbl = c[i] ^ c[j]
    assert (dbl != 0).all() and not np.isin(dbl, c).any()


@pytest.mark.parametrize("k", [8, 32, 64, 128])
def test_secded_rtl_exhaustive(k, seed):
    """The RTL encoder and decoder (Amaranth simulator) on every error pattern of weight 0, 1 and
    2 of random codewords — data and check bits — against the golden decoder: zero and single
    errors give the data back (single: ``corrected``), double errors ``uncorrectable``. (For
    128 bits: every single error and 2000 random double errors; that no double error of any
    size aliases a column or zero is proven on the code itself, ``test_hsiao_code_properties``.)
    """
    rng = random.Random(seed)
    g = Secded(k)
    n = g.n
    enc, dec = SecdedEncoder(k), SecdedDecoder(k)
    words = [0, (1 << k) - 1] + [rng.getrandbits(k) for _ in range(2)]
    doubles = [(1 << i) | (1 << j) for i in range(n) for j in range(i + 1, n)]
    if k > 64:
        doubles = rng.sample(doubles, 2000)
    pats = [0] + [1 << i for i in range(n)] + doubles
    bad = []

    async def tb_dec(ctx):
        for data in words[2:3] if k > 32 else words:
            cw = g.encode(data)
            for e in pats:
                ctx.set(dec.codeword, cw ^ e)
                got = (ctx.get(dec.data), ctx.get(dec.corrected), ctx.get(dec.uncorrectable))
                ref = g.decode(cw ^ e)
                w = bin(e).count("1")
                want = (data if w < 2 else ref[0], int(w == 1), int(w == 2))
                if got != want or ref != (want[0], bool(want[1]), bool(want[2])):
                    bad.append((data, e, got, want, ref))

    sim = Simulator(dec)
    sim.add_testbench(tb_dec)
    sim.run()
    assert not bad, f"seed {seed}: {len(bad)} patterns wrong, first {bad[:3]}"

    async def tb_enc(ctx):
        for data in words + [rng.getrandbits(k) for _ in range(200)]:
            ctx.set(enc.data, data)
            got = data | ctx.get(enc.check) << k
            if got != g.encode(data) or g.syndrome(got):
                bad.append((data, got))

    sim = Simulator(enc)
    sim.add_testbench(tb_enc)
    sim.run()
    assert not bad, f"seed {seed}: encoder differs, first {bad[:3]}"


@pytest.mark.parametrize("k", [128, 512])
def test_secded_golden_every_single_and_double(k, seed):
    """The golden decoder on every single and (for 128) every double error of a random word."""
    rng = random.Random(seed)
    g = Secded(k)
    data = rng.getrandbits(k)
    cw = g.encode(data)
    for i in range(g.n):
        assert g.decode(cw ^ 1 << i) == (data, True, False), (seed, i)
    pairs = ([(i, j) for i in range(g.n) for j in range(i + 1, g.n)] if k <= 128 else
             [tuple(rng.sample(range(g.n), 2)) for _ in range(3000)])
    for i, j in pairs:
        assert g.decode(cw ^ (1 << i) ^ (1 << j))[1:] == (False, True), (seed, i, j)


def test_golden_model_rules(seed):
    """Directed: masked writes merge bytes and re-encode; a masked write over a single error
    scrubs it; over a double error it leaves a poisoned word (flagged until a full write);
    injections flip stored bits; an uncorrectable read returns zero data."""
    rng = random.Random(seed)
    cfg = SramConfig(word_bits=64, depth=64)
    m = SramModel(cfg)
    a, x, y = 5, rng.getrandbits(64), rng.getrandbits(64)
    m.write(a, x, 0xFF)
    m.write(a, y, 0x0F)
    want = (y & 0xFFFFFFFF) | (x & ~0xFFFFFFFF)
    assert m.read(a).as_tuple() == (want, False, False)
    assert m.ecc.syndrome(m.codeword(a)) == 0              # no stale check word
    m.inject(a, 1 << 70)                                    # check bit
    assert m.read(a).as_tuple() == (want, True, False)
    m.write(a, 0, 0x01)                                     # masked write scrubs it
    want &= ~0xFF
    assert m.read(a).as_tuple() == (want, False, False)
    assert (m.corrected, m.uncorrectable) == (2, 0)         # the read and the RMW read
    m.inject(a, 0b11 << 10)
    assert m.read(a).as_tuple() == (0, False, True)
    m.write(a, 0xAB, 0x01)                                  # masked write: poisoned
    assert m.read(a).as_tuple() == (0, False, True)
    assert m.codeword(a) >> 64 == m.ecc.encode(m.codeword(a) & (2**64 - 1)) >> 64 ^ POISON
    m.write(a, y, 0xFF)                                     # full write: clean
    assert m.read(a).as_tuple() == (y, False, False)
    assert m.read(7).as_tuple() == (0, False, False)        # never written: zero, valid
    assert (m.corrected, m.uncorrectable) == (2, 3)
    with pytest.raises(ValueError, match=r"address 64 outside \[0, 64\)"):
        m.read(64)


def test_cycle_model_expectations():
    """The cycle model against the closed-form expectations of the patterns."""
    cfg = SramConfig()
    s = simulate_traffic(cfg, "stream", 3000, seed=3)
    assert s.accesses_per_cycle >= 0.99 * estimate(cfg, "stream")["accesses_per_cycle"]
    one = simulate_traffic(cfg, "same-bank", 3000, seed=3)
    assert one.accesses_per_cycle <= 1.0
    assert one.accesses_per_cycle == pytest.approx(estimate(cfg, "same-bank")
                                                   ["accesses_per_cycle"], rel=0.05)
    rnd = simulate_traffic(cfg, "random", 3000, seed=3)
    assert 1.5 < rnd.accesses_per_cycle < estimate(cfg, "random")["accesses_per_cycle"]
    pri = simulate_traffic(SramConfig(arbitration="priority"), "same-bank", 3000, seed=3)
    # Fixed priority starves the last clients on a saturated bank; round-robin does not.
    assert pri.accesses[0] > 5 * max(pri.accesses[-1], 1)
    assert max(one.accesses) < 1.5 * min(one.accesses)


# --- direct cocotb testbench --------------------------------------------------------------------

def _check(rep, seed):
    assert rep, f"seed {seed}: no report (the simulation did not start?)"
    assert not rep["errors"], f"seed {seed}: {rep['errors'][:5]}"
    sb = rep["scoreboard"]
    assert sb["errors"] == 0 and sum(sb["responses"]) + sb["dropped_by_reset"] == sum(sb["reads"])
    return {s["kind"]: s for s in rep["scenarios"]}


def test_direct_random_traffic(seed, run_dir):
    """Random multi-client traffic with random gaps, random ready and random injections over a
    few words (read-after-write across clients all the time); all clients on one bank;
    streaming rows; directed read-after-write races (a client writes a word, full or masked,
    while the others read it and a second writer races; the writer reads its own write);
    directed corners (first/last address, mask 0, single bytes)."""
    sc = [{"kind": "random", "n": 150, "space": 12, "gap": 0.3, "stall": 0.3, "injections": 8},
          {"kind": "same_bank", "n": 60, "space": 10, "gap": 0.2, "stall": 0.3},
          {"kind": "stream", "n": 60, "gap": 0.1, "stall": 0.2},
          {"kind": "random", "n": 100, "space": CFG_A.depth, "gap": 0.0, "stall": 0.0},
          {"kind": "raw", "rounds": 24, "gap": 0.3, "stall": 0.3},
          {"kind": "corners"}]
    rep = run_scenarios(CFG_A, sc, seed, test_dir=run_dir)
    k = _check(rep, seed)
    assert k["random"]["partial_writes"] > 0 and k["corners"]["partial_writes"] > 0
    assert k["raw"]["reads"] > 0 and k["raw"]["writes"] >= 24
    assert rep["raw_across_clients_within_3_cycles"] > 20
    # Request transfer to response offered: READ_LATENCY cycles without backpressure (the
    # monitor sees each handshake the cycle before its edge: served at t, answered at t + 2).
    assert rep["scoreboard"]["latency"]["min"] == Sram.READ_LATENCY
    # One bank: conflicts on the bank every client shares.
    assert sum(k["same_bank"]["conflict_cycles"]) > sum(k["stream"]["conflict_cycles"])


def test_direct_ecc_injection(seed, run_dir):
    """Every single-bit flip of a word (32 data + 7 check bits) is corrected and counted; double
    flips (data/data, data/check, check/check, random) are flagged, counted and return zero
    data; masked writes scrub single errors and poison double ones until a full write."""
    rep = run_scenarios(CFG_A, [{"kind": "ecc", "doubles": 6, "scrubs": 6}], seed,
                        test_dir=run_dir)
    k = _check(rep, seed)["ecc"]
    want = rep["ecc_expect"]
    # 39 single flips read back corrected; 10 doubles: two reads + one after the poison.
    assert (k["corrected"], k["uncorrectable"]) == (CFG_A.code_bits, 3 * 10)
    assert (want["corrected_responses"], want["uncorrectable_responses"]) == (39, 30)
    # The SRAM's counters equal the model's (checked in the testbench after every scenario),
    # and the model counts what the scenario implies: + 6 scrubs, + 10 poisoning RMW reads.
    sb = rep["scoreboard"]
    assert (sb["ecc_corrected"], sb["ecc_uncorrectable"]) == (39 + 6, 40)
    assert (sb["ecc_corrected"], sb["ecc_uncorrectable"]) == (want["counted_corrected"],
                                                               want["counted_uncorrectable"])


def test_direct_reset_and_backpressure(seed, run_dir):
    """Reset in the middle of random traffic with reads in flight (memory kept, their responses
    dropped, traffic resumes); then one client's responses blocked 95% of the time while the
    others stream: they are not slowed down, and the blocked one loses nothing."""
    sc = [{"kind": "random", "n": 40, "space": 16, "gap": 0.2, "stall": 0.2},
          {"kind": "reset", "n": 80, "space": 16, "gap": 0.2, "stall": 0.3},
          {"kind": "backpressure", "n": 40, "client": random.Random(seed).randrange(6)},
          {"kind": "random", "n": 40, "space": 16, "gap": 0.2, "stall": 0.2}]
    rep = run_scenarios(CFG_A, sc, seed, test_dir=run_dir)
    k = _check(rep, seed)
    assert k["reset"]["dropped_by_reset"] > 0


@pytest.mark.icarus
def test_icarus_direct(seed, run_dir):
    """Every scenario, small, under Icarus on a second configuration (priority, XOR hash)."""
    require("icarus")
    sc = [{"kind": "random", "n": 50, "space": 10, "gap": 0.3, "stall": 0.3, "injections": 5},
          {"kind": "same_bank", "n": 25, "gap": 0.2, "stall": 0.2},
          {"kind": "stream", "n": 25}, {"kind": "raw", "rounds": 6},
          {"kind": "ecc", "doubles": 3, "scrubs": 3}, {"kind": "corners"},
          {"kind": "reset", "n": 30}, {"kind": "backpressure", "n": 16}]
    rep = run_scenarios(CFG_B, sc, seed, sim_name="icarus", test_dir=run_dir)
    k = _check(rep, seed)
    assert k["ecc"]["corrected"] == CFG_B.code_bits


EDGE = {
    "1bank": SramConfig(banks=1, word_bits=8, depth=8, clients=2, resp_depth=1),
    "1row": SramConfig(banks=4, word_bits=16, depth=4, clients=1, xor_hash=True,
                       counter_bits=8),
}


@pytest.mark.slow
@pytest.mark.icarus
@pytest.mark.parametrize("name", list(EDGE))
def test_icarus_edge_configs(name, seed, run_dir):
    """Degenerate shapes: one bank (no bank bits), one row per bank (no row bits), one client,
    8-bit words (more check bits than mask bits), a one-entry response FIFO, 8-bit counters."""
    require("icarus")
    cfg = EDGE[name]
    sc = [{"kind": "random", "n": 40, "space": 6, "gap": 0.3, "stall": 0.3, "injections": 4},
          {"kind": "ecc", "doubles": 2, "scrubs": 2, "all_bits": True}, {"kind": "corners"},
          {"kind": "reset", "n": 20}]
    k = _check(run_scenarios(cfg, sc, seed, sim_name="icarus", test_dir=run_dir), seed)
    assert k["ecc"]["corrected"] == cfg.code_bits


# --- fast harness -------------------------------------------------------------------------------

def _harness_vs_models(cfg, pattern, cycles, seed, gap, stall, run_dir, sim_name="verilator"):
    run = run_traffic(cfg, pattern, cycles, seed, gap, stall, sim_name=sim_name,
                      run_dir=run_dir, log=True)
    what = f"seed {seed} {pattern} gap {gap} stall {stall}"
    assert run.errors == 0 and run.lost == 0, what
    assert sum(run.counters["mismatches"]) == 0, what
    model = simulate_traffic(cfg, pattern, cycles, seed, gap, stall)
    assert run.cycles == model.cycles, what
    for k in ("accesses", "reads", "stall_cycles", "conflict_cycles", "valid_cycles"):
        assert run.counters[k] == getattr(model, k), f"{what}: {k}"
    sb = replay(cfg, run.log)
    assert sb.ok, f"{what}: {sb.errors[:3]}"
    assert sum(sb.responses) == sum(run.counters["reads"]) and sum(sb.responses) > 0, what
    return run, sb


@pytest.mark.parametrize("pattern", ["random", "same-bank"])
def test_harness_matches_models(pattern, seed, run_dir):
    """The HDL harness: counters cycle-exact against the golden cycle model (accesses, stalls,
    conflicts per client), no read lost, every read checked twice — by the HDL shadow and by the
    golden functional model replaying the served-request log — with random valid gaps and
    response backpressure (each zero half of the time). Every client on one bank: round-robin
    serves them evenly, and conflicts are the rule."""
    rng = random.Random(seed)
    gap, stall = rng.choice((0, rng.randrange(10, 120))), rng.choice((0, rng.randrange(10, 160)))
    run, _ = _harness_vs_models(CFG_A, pattern, 2000, seed, gap, stall, run_dir)
    acc = run.counters["accesses"]
    if pattern == "same-bank":
        assert run.accesses_per_cycle <= 1.0 and run.conflict_rate > 0.5, run.counters
        assert min(acc) > 0.5 * sum(acc) / len(acc), f"seed {seed}: round-robin unfair: {acc}"
    else:
        assert 1.0 < run.accesses_per_cycle < CFG_A.banks, run.counters


def test_harness_stream_target(seed, run_dir):
    """Streaming (each client sequential, clients on different rows), cycle-exact against the
    cycle model and checked like the other patterns: at least 0.9 * min(P, N) accesses per
    cycle, here 6 clients on 8 banks."""
    run, _ = _harness_vs_models(CFG_A, "stream", 3000, seed, 0, 0, run_dir)
    target = 0.9 * min(CFG_A.clients, CFG_A.banks)
    assert run.accesses_per_cycle >= target, f"seed {seed}: {run.accesses_per_cycle}"


def test_harness_checker_sees_a_corrupted_response(seed, run_dir):
    """Flip one bit of one response on its way to the checker: the HDL shadow counts exactly
    one mismatch and the golden replay reports exactly that response."""
    rng = random.Random(seed)
    c = rng.choice([1, 2, 3, 4])                      # a reading client of the stream pattern
    n = rng.randrange(1, 200)
    run = run_traffic(CFG_A, "stream", 600, seed, 0, 0, run_dir=run_dir, log=True,
                      corrupt=(c, n))
    assert run.counters["mismatches"] == [int(k == c) for k in range(CFG_A.clients)]
    sb = replay(CFG_A, run.log)
    assert sb.n_errors == 1 and f"client {c}:" in sb.errors[0], sb.errors


@pytest.mark.icarus
def test_icarus_harness(seed, run_dir):
    require("icarus")
    _harness_vs_models(CFG_B, "random", 300, seed, 40, 60, run_dir, sim_name="icarus")


# --- CLI, area ------------------------------------------------------------------------------------

SMALL = ["--word-bits", "32", "--depth", "128"]          # = CFG_A: the harness build is shared


def test_cli_sram_bench(tmp_path, capsys):
    """``splitsys sram-bench`` end to end (through the ``splitsys`` entry point): the report's
    fields, verified by the shadow and the golden replay, cycle-exact against the model."""
    rep = tmp_path / "r.json"
    assert cli_main(["sram-bench", *SMALL, "--pattern", "random", "--cycles", "800",
                     "--gap", "30", "--stall", "40", "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["verified"] is True and r["cycle_model"]["exact"]
    assert set(r["stall_cycles"]) == set(CFG_A.client_names)
    assert r["accesses_per_cycle"] == pytest.approx(r["accesses"] / r["cycles"], abs=1e-4)
    assert r["golden_replay"]["reads_checked"] == r["reads"] > 0
    out = capsys.readouterr().out
    assert "accesses/cycle" in out and "verified       : True" in out


CLI_BAD = [
    (["--clients", "0"], "clients must be in [1, 16], not 0"),
    (["--banks", "6"], "banks must be a power of two"),
    (["--pattern", "zigzag"], "invalid choice"),
    (["--cycles", "0"], "--cycles must be in"),
    (["--cycles", "many"], "invalid int value"),
    (["--gap", "300"], "--gap must be in [0, 255], not 300"),
    (["--depth", "1000"], "depth must be a power of two"),
    (["--word-bits", "12"], "word_bits must be a multiple of 8"),
    (["--sim", "xcelium"], "invalid choice"),
    (["--report", "/nonexistent/dir/r.json"], "report directory does not exist"),
    (["--report", "/"], "--report is a directory"),
    (["--depth", "16", "--banks", "8"], "--pattern stream needs --depth >= clients x banks"),
    (["--bogus"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv,msg", CLI_BAD, ids=[m for _, m in CLI_BAD])
def test_cli_bad_input(argv, msg, capsys):
    """Bad input to ``splitsys sram-bench``: one line on stderr, exit 2, nothing run."""
    assert cli_main(["sram-bench", *argv]) == 2
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and out.err.startswith("splitsys: error:"), out.err
    assert msg in out.err and out.out == "", out


def test_cli_standalone_entry_point(capsys):
    """``python -m scripts.sram`` parses like ``splitsys``: same one-line errors."""
    assert sram_main(["sram-bench", "--resp-depth", "0"]) == 2
    assert capsys.readouterr().err == "splitsys: error: resp_depth must be in [1, 64], not 0\n"


def test_cli_no_traceback():
    """In a fresh process, as the ``splitsys`` console script runs it: no traceback."""
    entry = "import sys; from scripts.cli import main; sys.exit(main())"
    proc = subprocess.run([sys.executable, "-c", entry, "sram-bench", "--banks", "3"],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "splitsys: error: banks must be a power of two in [1, 64], not 3"]


def test_verilog_lint_clean(tmp_path, capsys):
    """``verilator --lint-only -Wall`` (the project's waivers) on the SRAM's Verilog."""
    from amaranth.back import verilog

    from scripts.verilog import lint

    v = tmp_path / "sram.v"
    v.write_text(verilog.convert(Sram(CFG_B), name="sram", emit_src=False))
    assert lint([v]) == 0, capsys.readouterr().out


def test_synth_controller_with_banks_black_boxed(tmp_path):
    """Yosys statistics of a small controller: the banks are opaque cells (the memory is not
    counted as logic), the logic is real, and the macro model scales with the stored bits."""
    from amaranth.back import verilog

    from scripts.synth import SynthError, synthesize

    cfg = SramConfig(banks=2, word_bits=16, depth=32, clients=2)
    v = tmp_path / "sram.v"
    v.write_text(verilog.convert(Sram(cfg), name="sram", emit_src=False))
    r = synthesize(v, "sram", tmp_path / "s", blackbox=bank_modules(cfg))
    check_black_boxes(cfg, r)                       # one opaque cell per bank, no $mem left
    with pytest.raises(SynthError, match="2 black-box instances, expected one per bank"):
        check_black_boxes(SramConfig(banks=4, word_bits=16, depth=32, clients=2), r)
    # FIFOs (2 x 4 x 18 bits) and counters (2 x 2 x 32 + 2 x 32) at least.
    assert r["flip_flops"] >= 144 + 192 and r["nand2_eq"] > 2000
    m = macro_area(SramConfig())
    assert m["bits"] == 4096 * 137
    assert m["um2"] == pytest.approx(4096 * 137 * UM2_PER_BIT, rel=1e-6)
    assert 0.4 < m["array_efficiency"] < 0.5
