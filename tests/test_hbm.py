"""HBM device model (``hdl/hbm.py``): parameters, address map, golden models, RTL exactness.

* configuration checks and the HBM3 defaults scaled to the model clock;
* the golden controller model (``golden.hbm.HbmChannelModel``) on random traffic against the
  timing rules themselves (``check_trace``: tRCD, tRP, tRAS, tCCD_S/L, tRRD_S/L, tFAW, tRTP,
  write recovery, turnarounds, refresh) and against the timeless functional model;
* the RTL channel (Verilator, ``verif/hbm_harness.py``: traffic, channel and logs in HDL) against
  the golden model cycle for cycle: every DRAM command with its cycle, every R beat and B
  response with its cycle, data, final memory, counters — and the RTL's own command trace
  against the timing rules.
"""

import numpy as np
import pytest

from golden import hbm as gh
from hdl.hbm import HBM3_NS, HBM3_SOURCES, HbmChannel, HbmConfig, HbmTiming
from verif.hbm_harness import run_traffic

#: The harness build of the regression (8 rows per bank keep the backing store small).
CFG = HbmConfig(channels=2, id_bits=4, addr_bits=20, rows=8)

BAD = [
    ({"channels": 3}, ValueError, "channels must be a power of two in [1, 32], not 3"),
    ({"data_bits": 48}, ValueError, "data_bits must be a power of two in [64, 1024], not 48"),
    ({"bank_groups": 2.0}, TypeError, "bank_groups must be an integer, not 2.0"),
    ({"banks": 0}, ValueError, "banks must be a power of two in [1, 16], not 0"),
    ({"gbps": "fast"}, TypeError, "gbps must be a number, not 'fast'"),
    ({"gbps": 0.0}, ValueError, "gbps must be in [0.1, 100], not 0.0"),
    ({"refresh": "never"}, ValueError, "refresh must be one of per_bank, all_bank, off, "
                                       "not 'never'"),
    ({"lookahead": 0}, ValueError, "lookahead must be in [1, 255], not 0"),
    ({"columns": 8}, ValueError, "must be at least 4096"),
    ({"addr_bits": 16}, ValueError, "addr_bits must be in [17, 48] (the capacity needs 17), "
                                    "not 16"),
    ({"timing": {"tRCD": 3}}, TypeError, "timing must be an HbmTiming"),
]


@pytest.mark.parametrize("kwargs,exc,msg", BAD, ids=[str(b[0]) for b in BAD])
def test_config_errors(kwargs, exc, msg):
    base = {"addr_bits": 20, "rows": 8}
    with pytest.raises(exc) as e:
        HbmConfig(**{**base, **kwargs})
    assert msg in str(e.value)


def test_timing_and_constructor_errors():
    with pytest.raises(ValueError, match=r"timing tRCD must be in \[1, 65535\] cycles, not 0"):
        HbmTiming(tRCD=0)
    with pytest.raises(TypeError, match="timing tRP must be an integer, not 1.5"):
        HbmTiming(tRP=1.5)
    with pytest.raises(TypeError, match="cfg must be an HbmConfig"):
        HbmChannel({"channels": 2})


def test_hbm3_defaults_scaled_to_the_clock():
    """6.4 Gb/s x 32 DQ = 25.6 GB/s per pseudo-channel; one 32-byte beat per cycle gives a
    1.25 ns (800 MHz) model clock; delays round up, refresh intervals down."""
    c = HbmConfig()
    assert c.clock_ns == pytest.approx(1.25) and c.clock_mhz == pytest.approx(800)
    assert c.peak_bytes_per_cycle == 64 and c.peak_gbytes_per_s == pytest.approx(51.2)
    t = c.timing
    assert (t.tRCD, t.tRP, t.tRAS, t.tCCD_S, t.tCCD_L, t.tRRD_S, t.tRRD_L, t.tFAW) == \
        (12, 12, 28, 1, 2, 1, 2, 24)
    assert (t.tREFI, t.tRFC, t.tREFIpb, t.tRFCpb) == (3120, 280, 195, 160)
    for k, ns in HBM3_NS.items():
        cyc = getattr(t, k)
        if k.startswith("tREFI"):
            assert cyc * 1.25 <= ns < (cyc + 1) * 1.25
        else:
            assert (cyc - 1) * 1.25 < ns <= cyc * 1.25 + 1e-9
    assert "Ramulator" in HBM3_SOURCES and "JESD238" in HBM3_SOURCES
    # A slower clock (a 512-bit beat) halves every delay in cycles, roughly.
    s = HbmConfig(data_bits=512, addr_bits=21, rows=8).timing
    assert s.tRCD == 6 and s.tFAW == 12
    d = c.as_dict()
    assert d["peak_bytes_per_cycle"] == 64 and d["timing_cycles"]["tRCD"] == 12


def test_address_map():
    """row | bank | column | bank group | byte: consecutive beats alternate bank groups, a
    4 KiB AXI page is one row in each bank group of one bank, the next page the next bank."""
    c = CFG
    assert c.page_bytes == 1024 and c.words == 4 * 4 * 32 * 8
    assert [c.decode(w)[0] for w in range(6)] == [0, 1, 2, 3, 0, 1]
    page = {c.decode(w)[2:] for w in range(128)}           # (bank, row) of the first 4 KiB
    assert page == {(0, 0)}
    assert {c.decode(w)[1] for w in range(128)} == set(range(32))
    assert c.decode(128)[2:] == (1, 0) and c.decode(4 * 128)[2:] == (0, 1)
    seen = {c.decode(w) for w in range(c.words)}
    assert len(seen) == c.words                             # a bijection


def _traffic(rng, cfg, n, err_rate=0.01):
    bursts = []
    pages = cfg.capacity // 4096
    for i in range(n):
        w = bool(rng.random() < 0.4)
        beats = int(rng.choice([1, 2, 3, 8, 16, 32, int(rng.integers(1, 129))]))
        page = int(rng.integers(0, pages + 2)) if rng.random() < 0.05 else \
            int(rng.integers(0, pages))                   # a few beyond capacity: DECERR
        off = int(rng.integers(0, 4096 // cfg.data_bytes - beats + 1))
        bursts.append(gh.Burst(w, i % (1 << cfg.id_bits), page * 4096 + off * cfg.data_bytes,
                               beats))
    # At least one read beyond the capacity (DECERR) and one read of a marked word (SLVERR).
    bursts.insert(n // 2, gh.Burst(False, 1, pages * 4096 + 64, 3))
    bursts.insert(n // 3, gh.Burst(False, 2, 5 * 4096, 4))
    mem = rng.integers(0, 256, (cfg.words, cfg.data_bytes), dtype=np.uint8)
    err = rng.random(cfg.words) < err_rate
    err[5 * 4096 // cfg.data_bytes + 2] = True
    return bursts, mem, err


def _check_functional(cfg, bursts, mem, err, res, seed, strobes):
    reads, writes, fmem = gh.functional(cfg, bursts, mem, err, seed=seed, strobes=strobes)
    assert np.array_equal(fmem, res.mem)
    assert [(i, r) for _, i, r in res.bresps] == writes
    assert len(res.rbeats) == len(reads)
    for (_, i, r, last, d), (fi, fr, flast, fd) in zip(res.rbeats, reads, strict=True):
        assert (i, r, last) == (fi, fr, flast) and np.array_equal(d, fd)


@pytest.mark.parametrize("refresh", ["per_bank", "all_bank", "off"])
def test_golden_model_obeys_timing_rules(refresh, seed):
    """The controller model on random traffic (reads, writes, row misses, errors, stalls):
    no timing rule broken, the data an in-order AXI slave must return, refresh really issued."""
    rng = np.random.default_rng(seed)
    t = HbmTiming(tRCD=4, tRP=3, tRAS=9, tCCD_S=1, tCCD_L=2, tRRD_S=1, tRRD_L=2, tFAW=8,
                  tRTP=2, tWR=5, tWTR_S=3, tWTR_L=4, tRTW=3, tRL=5, tWL=2, tREFI=300,
                  tRFC=40, tREFIpb=40, tRFCpb=20, tRREFD=2)
    cfg = HbmConfig(channels=1, addr_bits=20, rows=8, refresh=refresh, timing=t, lookahead=24,
                    queue=8)
    bursts, mem, err = _traffic(rng, cfg, 120)
    res = gh.simulate(cfg, bursts, mem, err, max_out=6, seed=seed, stall=40, strobes=1,
                      trace=True)
    assert gh.check_trace(cfg, res.trace) == []
    _check_functional(cfg, bursts, mem, err, res, seed, 1)
    if refresh != "off":
        assert res.stats["refs"] >= res.cycles // (t.tREFIpb if refresh == "per_bank"
                                                    else t.tREFI) - 8
    else:
        assert res.stats["refs"] == 0


def test_check_trace_catches_violations():
    """The rule checker is not vacuous: each broken rule is named."""
    t = CFG.timing
    assert any("tRCD" in e for e in gh.check_trace(CFG, [(0, "ACT", 0, 0, None, 0, 0),
                                                        (t.tRCD - 1, None, 0, 0, "RD", 0, 0)]))
    assert any("tFAW" in e for e in gh.check_trace(
        CFG, [(k * t.tRRD_L, "ACT", k, 0, None, 0, 0) for k in range(5)]))
    assert any("closed bank" in e for e in gh.check_trace(CFG, [(5, None, 0, 0, "WR", 3, 0)]))
    assert any("tCCD_L" in e for e in gh.check_trace(
        CFG, [(0, "ACT", 0, 0, None, 0, 0), (20, "ACT", 4, 0, "RD", 0, 0),
              (40, None, 0, 0, "RD", 0, 1), (41, None, 0, 0, "RD", 4, 0)]))


@pytest.mark.parametrize("stall,strobes", [(0, 0), (60, 1)])
def test_rtl_matches_golden_exactly(stall, strobes, seed, run_dir):
    """RTL channel vs golden model on the same traffic: identical command trace (every ACT,
    PRE, REF, RD, WR on the same cycle), R beats and B responses on the same cycles with the
    same data and responses (SLVERR on marked beats, DECERR beyond capacity), same memory,
    same counters; the RTL's trace obeys every timing rule; the data is the functional model's.
    """
    rng = np.random.default_rng(seed)
    bursts, mem, err = _traffic(rng, CFG, 400)
    r = run_traffic(CFG, bursts, mem, err, max_out=8, seed=seed, stall=stall, strobes=strobes,
                    run_dir=run_dir)
    g = gh.simulate(CFG, bursts, mem, err, max_out=8, seed=seed, stall=stall, strobes=strobes,
                    trace=True)
    assert r.cycles == g.cycles
    first = next((k for k, (a, b) in enumerate(zip(r.trace, g.trace, strict=False)) if a != b),
                 None)
    assert first is None and len(r.trace) == len(g.trace), (
        f"command traces differ at {first}: RTL {r.trace[first] if first is not None else '-'}"
        f", model {g.trace[first] if first is not None else '-'}")
    assert len(r.rbeats) == len(g.rbeats)
    for a, b in zip(r.rbeats, g.rbeats, strict=True):
        assert a[:4] == b[:4] and np.array_equal(a[4], b[4])
    assert r.bresps == g.bresps
    assert np.array_equal(r.mem, g.mem)
    assert r.stats == g.stats
    assert gh.check_trace(CFG, r.trace) == []
    _check_functional(CFG, bursts, mem, err, r, seed, strobes)
    s = r.stats
    assert s["refs"] > 0 and s["acts"] > 0 and s["row_hits"] > 0 and s["err_beats"] > 0
    assert s["protocol_errors"] == 0
    assert {b[2] for b in r.rbeats} == {0, 2, 3}            # OKAY, SLVERR and DECERR seen


def test_rtl_sequential_reads_at_peak(seed, run_dir):
    """Back-to-back 32-beat reads over the whole store: one beat per cycle, refresh and row
    misses hidden (at least 97% of the cycles carry data), as the golden model predicts."""
    bursts = [gh.Burst(False, i % 16, i * 1024, 32) for i in range(CFG.capacity // 1024)] * 2
    mem = np.zeros((CFG.words, CFG.data_bytes), np.uint8)
    err = np.zeros(CFG.words, bool)
    r = run_traffic(CFG, bursts, mem, err, max_out=8, seed=seed, run_dir=run_dir)
    beats = sum(b.beats for b in bursts)
    assert r.cycles == gh.simulate(CFG, bursts, mem, err, max_out=8, seed=seed).cycles
    assert beats / r.cycles >= 0.97, (beats, r.cycles)
    assert r.stats["refs"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("refresh", ["all_bank", "off"])
def test_rtl_matches_golden_refresh_modes(refresh, seed, run_dir):
    """The other refresh modes (their own builds): RTL == golden, cycle for cycle."""
    cfg = HbmConfig(channels=2, id_bits=4, addr_bits=20, rows=8, refresh=refresh)
    rng = np.random.default_rng(seed)
    bursts, mem, err = _traffic(rng, cfg, 600)
    r = run_traffic(cfg, bursts, mem, err, max_out=8, seed=seed, stall=30, strobes=1,
                    run_dir=run_dir)
    g = gh.simulate(cfg, bursts, mem, err, max_out=8, seed=seed, stall=30, strobes=1,
                    trace=True)
    assert r.cycles == g.cycles and r.trace == g.trace and r.bresps == g.bresps
    assert np.array_equal(r.mem, g.mem) and r.stats == g.stats
    assert gh.check_trace(cfg, r.trace) == []
    assert (r.stats["refs"] > 0) == (refresh != "off")
