"""DMA + AXI4 masters (``hdl/dma.py``, ``hdl/axi.py``) against the golden functional model.

* configuration checks, the AXI4 burst rules, and the golden model's cuts (bursts legal, every
  byte of a descriptor in exactly one burst, channel interleave invertible);
* the RTL in the fast harness (Verilator, ``verif/dma_harness.py``): DMA, HBM model, SRAM port
  models, protocol monitors, random valid/ready on every stream and on all five AXI channels and
  out-of-order read data (per-ID queues, random pick: ``RShuffle``) in HDL. Every byte of the
  SRAM and of every HBM channel and every status is compared with ``golden.dma.run``: random
  descriptors (1 B to 64 KiB, any alignment, strides, 4 KiB and interleave crossings, SLVERR
  beats, DECERR ranges) and a directed set with errors on chosen beats, SRAM-side backpressure
  and the number of reads in flight;
* the protocol check against an independent slave: cocotbext-axi's ``AxiRam`` (with SLVERR and
  DECERR injected and random pauses on all five channels);
* ``hbm-bench`` (CLI contract, sequential-read efficiency target, timing-model agreement), the
  Verilog lint and the Yosys area flow.
"""

import json
import subprocess
import sys

import numpy as np
import pytest

from golden import dma as gd
from golden.dma import Descriptor
from hdl.axi import AxiSignature, check_burst
from hdl.dma import Dma, DmaConfig
from scripts.hbm import main as hbm_main
from verif.dma_harness import Gaps, hbm_config, random_job, run_dma, run_dma_axiram

#: The regression's harness build: default DMA (2 channels x 256 bits, 8 read IDs), 1 MiB SRAM,
#: HBM model with 16 rows per bank (256 KiB per channel), throttles on the AXI links.
CFG = DmaConfig(sram_addr_bits=20)
HCFG = hbm_config(CFG, rows=16)

BAD = [
    ({"data_bits": 48}, ValueError, "data_bits must be a power of two in [32, 1024], not 48"),
    ({"channels": 3}, ValueError, "channels must be a power of two in [1, 16], not 3"),
    ({"ids": 0}, ValueError, "ids must be a power of two in [1, 256], not 0"),
    ({"max_burst": 512}, ValueError, "max_burst must be a power of two in [1, 256], not 512"),
    ({"interleave": 16}, ValueError, "interleave must be a power of two in [32, 1048576], not 16"),
    ({"rob_beats": 16}, ValueError, "rob_beats must be a power of two in [max_burst, 4096]"),
    ({"addr_bits": 64}, ValueError, "addr_bits must be in [16, 48], not 64"),
    ({"sram_addr_bits": 4}, ValueError, "sram_addr_bits must be in [6, 32], not 4"),
    ({"write_outstanding": 0}, ValueError, "write_outstanding must be in [1, 64], not 0"),
    ({"channels": 2.0}, TypeError, "channels must be an integer, not 2.0"),
    ({"ids": True}, TypeError, "ids must be an integer, not True"),
]


@pytest.mark.parametrize("kwargs,exc,msg", BAD, ids=[str(b[0]) for b in BAD])
def test_config_errors(kwargs, exc, msg):
    with pytest.raises(exc) as e:
        DmaConfig(**kwargs)
    assert msg in str(e.value)


def test_constructor_and_signature_errors():
    with pytest.raises(TypeError, match="cfg must be a DmaConfig"):
        Dma({"channels": 2})
    with pytest.raises(ValueError, match=r"data_width must be a power of two in \[8, 1024\], "
                                         r"not 24"):
        AxiSignature(addr_width=32, data_width=24, id_width=4)
    with pytest.raises(TypeError, match="id_width must be an integer"):
        AxiSignature(addr_width=32, data_width=256, id_width="4")
    with pytest.raises(ValueError, match="descriptor rows must be in"):
        gd.pack_desc(CFG, Descriptor(False, 0, 0, 1 << 16, 1))


def test_axi_burst_rules():
    assert check_burst(0x0, 128, 32) is None
    assert check_burst(0xFE0, 1, 32) is None
    assert "crosses a 4 KiB boundary" in check_burst(0xFE0, 2, 32)
    assert "257 beats" in check_burst(0, 257, 4)
    assert "0 beats" in check_burst(0, 0, 4)


def test_golden_cuts_are_legal_and_complete(seed):
    """Random descriptors: every burst is a legal AXI4 INCR burst (<= max_burst beats, never
    across 4 KiB) in one channel; the bursts cover each row's bytes exactly once; the channel
    interleave maps global addresses one to one."""
    rng = np.random.default_rng(seed)
    for cfg in (CFG, DmaConfig(channels=4, interleave=4096, max_burst=256, rob_beats=256),
                DmaConfig(channels=1, data_bits=64, max_burst=8, rob_beats=64)):
        gb, cb = cfg.interleave.bit_length() - 1, cfg.chan_bits
        for _ in range(40):
            rows = int(rng.integers(1, 6))
            n = int(rng.integers(1, 70_000))
            d = Descriptor(bool(rng.random() < 0.5), int(rng.integers(0, 1 << 24)), 0, rows, n,
                           int(rng.integers(0, 1 << 20)), 0)
            covered = []
            for ch, addr, beats, first, nbytes in gd.bursts(cfg, d):
                assert check_burst(addr, beats, cfg.data_bytes) is None
                assert beats <= cfg.max_burst and addr % cfg.data_bytes == 0
                assert addr <= first < addr + beats * cfg.data_bytes
                assert first + nbytes <= addr + beats * cfg.data_bytes
                loc = np.arange(first, first + nbytes, dtype=np.int64)
                covered.append(((loc >> gb) << (gb + cb)) | (ch << gb)
                               | (loc & (cfg.interleave - 1)))
            want = ((d.hbm_addr + np.arange(rows, dtype=np.int64)[:, None] * d.hbm_stride
                     + np.arange(n)[None, :]) % (1 << cfg.addr_bits)).reshape(-1)
            assert np.array_equal(np.concatenate(covered), want)
        a = rng.integers(0, 1 << cfg.addr_bits, 1000)
        for x in a:
            assert cfg.global_of(*cfg.channel_of(int(x))) == int(x)


def _memories(rng, cfg=CFG, hcfg=HCFG):
    hbm = [rng.integers(0, 256, (hcfg.words, cfg.data_bytes), dtype=np.uint8)
           for _ in range(cfg.channels)]
    err = [np.zeros(hcfg.words, bool) for _ in range(cfg.channels)]
    sram = rng.integers(0, 256, 1 << cfg.sram_addr_bits, dtype=np.uint8)
    return hbm, err, sram


def _compare(cfg, hcfg, descs, hbm, err, sram, run):
    """Every byte of SRAM and HBM and every status against the golden model; no protocol
    violation seen by the monitors; nothing lost or duplicated."""
    g_hbm, g_sram, g_st = gd.run(cfg, descs, hbm, err, sram, hcfg.words)
    assert run.violations(cfg) == []
    assert len(run.statuses) == len(descs)
    for k, (a, b) in enumerate(zip(run.statuses, g_st, strict=True)):
        assert a == b, f"descriptor {k} ({descs[k]}): RTL {a}, golden {b}"
    bad = np.flatnonzero(run.sram != g_sram)
    assert bad.size == 0, f"{bad.size} SRAM bytes differ, first at {bad[:8]}"
    for c in range(cfg.channels):
        bad = np.flatnonzero(run.hbm[c].reshape(-1) != g_hbm[c].reshape(-1))
        assert bad.size == 0, f"channel {c}: {bad.size} HBM bytes differ, first at {bad[:8]}"
    # Nothing lost or duplicated: exactly the golden bursts and beats on every AXI link, and
    # each byte a read moved written once into the SRAM.
    want = {(c, w): [0, 0] for c in range(cfg.channels) for w in (False, True)}
    for d in descs:
        for ch, _a, beats, _f, _n in gd.bursts(cfg, d):
            want[ch, bool(d.write)][0] += 1
            want[ch, bool(d.write)][1] += beats
    for c in range(cfg.channels):
        got = {False: [run.stats[f"ar_{c}"], run.stats[f"rd_beats_{c}"]],
               True: [run.stats[f"aw_{c}"], run.stats[f"wr_beats_{c}"]]}
        for w in (False, True):
            assert got[w] == want[c, w], (c, w, got[w], want[c, w])
    assert run.stats["sram_wr_bytes"] == sum(s.bytes for s in g_st if not s.write)
    return g_st


#: Random valid/ready everywhere (probabilities in 1/256 per cycle).
HEAVY = Gaps(desc=60, status=120, sram_wr=150, sram_rd=120, axi=90)


@pytest.mark.parametrize("gaps", [Gaps(), HEAVY], ids=["no-gaps", "gaps"])
def test_rtl_random_descriptors(gaps, seed, run_dir):
    """Random descriptors 1 B .. 64 KiB (any alignment, 1-8 rows with strides, 4 KiB and
    interleave crossings, reads and writes in flight together), 0.5% of the HBM beats SLVERR and
    some descriptors beyond the capacity (DECERR): RTL == golden, byte for byte."""
    rng = np.random.default_rng(seed)
    while True:
        try:
            job = random_job(CFG, HCFG, rng, 20, max_bytes=65536, err_rate=0.005, decerr=0.05)
            break
        except ValueError:          # the reads' SRAM destinations did not fit: draw again
            continue
    run = run_dma(CFG, HCFG, job.descs, job.hbm, job.err, job.sram, seed=seed, gaps=gaps,
                  throttle=True, run_dir=run_dir)
    st = _compare(CFG, HCFG, job.descs, job.hbm, job.err, job.sram, run)
    assert sum(s.bytes for s in st) <= sum(d.nbytes for d in job.descs)
    if gaps.axi:        # read data really came back out of order (interleaved across IDs)
        assert sum(run.stats[f"interleaves_{c}"] for c in range(CFG.channels)) > 0


def _directed(rng):
    """Hazard-free directed descriptors: reads from the HBM's lower half into disjoint SRAM
    ranges, writes from the SRAM's upper half to the HBM's upper half; SLVERR on chosen beats."""
    hbm, err, sram = _memories(rng)
    cap = HCFG.capacity * CFG.channels           # 512 KiB
    M = (1 << 32) - 1

    def mark(addr):                              # SLVERR on the beat holding global byte addr
        ch, local = CFG.channel_of(addr)
        err[ch][local // CFG.data_bytes] = True

    R = [
        Descriptor(False, 0x1003, 0x11, 1, 1),                     # one byte
        Descriptor(False, 0x0FF0, 0x1005, 1, 4196),                # across 4 KiB + interleave
        Descriptor(False, 0x5011, 0x3001, 3, 700, 5000, 777),      # strided, unaligned
        Descriptor(False, 0x10005, 0x20000 + 31, 1, 65536),        # 64 KiB, many reads in flight
        Descriptor(False, 0x30000, 0x40000, 1, 2000),              # SLVERR on chosen beats
        Descriptor(False, cap + 100, 0x41000, 1, 300),             # beyond capacity: DECERR
        Descriptor(False, 0x38000, 0x42000, 4, 100, (-300) & M, 128),   # negative stride
        Descriptor(False, 0x100, 0x50000, 0, 100),                 # no rows: nothing, OKAY
        Descriptor(False, 0x100, 0x50000, 7, 0),                   # empty rows: nothing, OKAY
    ]
    mark(0x30000 + 64)
    mark(0x30000 + 1999)
    W = [
        Descriptor(True, 0x40003, 0x80001, 1, 1),
        Descriptor(True, 0x41000 - 13, 0x80107, 1, 5000),
        Descriptor(True, 0x44001, 0x83000, 5, 333, 4096 + 17, 401),
        Descriptor(True, 0x50000 + 5, 0x86000, 1, 3000),           # SLVERR on one beat
        Descriptor(True, cap + 0x2000, 0x88000, 2, 700, 1024, 700),  # DECERR
        Descriptor(True, 0x60003, 0x90000, 1, 65536),
    ]
    mark(0x50000 + 1500)
    descs = [Descriptor(d.write, d.hbm_addr, d.sram_addr, d.rows, d.row_bytes, d.hbm_stride,
                        d.sram_stride, tag=k) for k, d in enumerate(R + W)]
    return descs, hbm, err, sram


@pytest.mark.parametrize("gaps", [Gaps(), Gaps(sram_wr=200, sram_rd=200),
                                  Gaps(desc=100, status=200, sram_wr=120, sram_rd=120, axi=120)],
                         ids=["no-gaps", "sram-backpressure", "all-gaps"])
def test_rtl_directed(gaps, seed, run_dir):
    """Unaligned starts and ends, 4 KiB crossings, strides (also negative), 1 B and 64 KiB,
    empty descriptors, SLVERR on chosen beats and DECERR ranges, with and without SRAM-side
    backpressure: RTL == golden byte for byte; errors are reported (the worst response, the
    error count, fewer bytes moved) and no byte of an errored read beat reaches the SRAM."""
    rng = np.random.default_rng(seed)
    descs, hbm, err, sram = _directed(rng)
    run = run_dma(CFG, HCFG, descs, hbm, err, sram, seed=seed, gaps=gaps, throttle=True,
                  run_dir=run_dir)
    st = _compare(CFG, HCFG, descs, hbm, err, sram, run)
    resp = [s.resp for s in st]
    assert resp == [0, 0, 0, 0, 2, 3, 0, 0, 0, 0, 0, 0, 2, 3, 0]
    assert [s.tag for s in run.statuses] == list(range(len(descs)))
    assert st[4].errors == 2 and st[4].bytes == 2000 - 32 - 16   # two beats withheld
    assert st[5].bytes == 0 and st[5].errors == 10               # ten 32-byte beats, DECERR
    assert st[12].errors == 1 and st[12].bytes < 3000            # one burst answered SLVERR
    assert st[13].bytes == 0 and st[13].errors >= 2
    assert st[7].bytes == st[8].bytes == 0
    # The bytes of the SLVERR read beats kept their old SRAM value.
    s0 = 0x40000
    assert np.array_equal(run.sram[s0 + 64:s0 + 96], sram[s0 + 64:s0 + 96])
    assert np.array_equal(run.sram[s0 + 1984:s0 + 2000], sram[s0 + 1984:s0 + 2000])
    if gaps.axi:        # read data really came back out of order (interleaved across IDs)
        assert sum(run.stats[f"interleaves_{c}"] for c in range(CFG.channels)) > 0
    if gaps == Gaps():
        # Reads in flight: the 64 KiB read fills every one of the 8 IDs of each channel.
        assert all(run.stats[f"max_rd_out_{c}"] == CFG.ids for c in range(CFG.channels)), \
            run.stats


def test_axiram_protocol(seed, run_dir):
    """The DMA against cocotbext-axi's AxiRam, an independent AXI4 slave that asserts burst
    rules itself: random valid and ready on all five channels (HDL throttle, both directions,
    plus AxiRam pauses), SLVERR on marked words and DECERR beyond the capacity, SRAM and status
    backpressure; RTL == golden byte for byte. Small: cocotbext-axi costs ~150 us per beat."""
    cfg = DmaConfig(sram_addr_bits=16)
    hcfg = hbm_config(cfg, rows=2)                   # 32 KiB per channel
    rng = np.random.default_rng(seed)
    job = random_job(cfg, hcfg, rng, 10, max_bytes=2048, err_rate=0.02, decerr=0.15)
    job.descs.append(Descriptor(False, 0x2F0, 0x7000, 2, 100, 4096 - 40, 100, tag=200))
    job.err[0][0x300 // 32] = True                   # one SLVERR beat we know is read
    run = run_dma_axiram(cfg, job.descs, job.hbm, job.err, job.sram, hcfg.capacity,
                         seed=seed, gaps=Gaps(desc=40, status=80, sram_wr=80, sram_rd=80,
                                              axi=80), pause=0.25, run_dir=run_dir)
    st = _compare(cfg, hcfg, job.descs, job.hbm, job.err, job.sram, run)
    assert st[-1].resp == 2 and st[-1].errors >= 1
    r = run.extra["responses"]
    assert r.get("r2", 0) >= 1, r                    # SLVERR seen on R


def test_axiram_decerr(run_dir):
    """Directed DECERR through AxiRam: a read and a write beyond the capacity are reported
    (resp 3, nothing moved), the neighbouring good descriptors are unaffected."""
    cfg = DmaConfig(sram_addr_bits=16)
    hcfg = hbm_config(cfg, rows=2)
    rng = np.random.default_rng(7)
    hbm, err, sram = _memories(rng, cfg, hcfg)
    cap = hcfg.capacity * cfg.channels
    descs = [Descriptor(False, 0x10, 0x100, 1, 500, tag=0),
             Descriptor(False, cap + 0x40, 0x1000, 1, 100, tag=1),
             Descriptor(True, cap + 0x1000, 0x8000, 1, 64, tag=2),
             Descriptor(True, 0x4000 + 3, 0x9000, 1, 300, tag=3)]
    run = run_dma_axiram(cfg, descs, hbm, err, sram, hcfg.capacity, seed=3, run_dir=run_dir)
    st = _compare(cfg, hcfg, descs, hbm, err, sram, run)
    assert [s.resp for s in st] == [0, 3, 3, 0]
    assert st[1].bytes == st[2].bytes == 0 and st[0].bytes == 500 and st[3].bytes == 300
    r = run.extra["responses"]
    assert r.get("r3", 0) >= 1 and r.get("b3", 0) >= 1, r


# --- hbm-bench, lint, area --------------------------------------------------------------------

def test_hbm_bench_seq_read(tmp_path, capsys):
    """``hbm-bench`` end to end: verified, the issue's efficiency target for sequential reads,
    and the HBM timing model's cycle prediction within 1% of the RTL."""
    rep = tmp_path / "r.json"
    assert hbm_main(["hbm-bench", "--pattern", "seq-read", "--bytes", str(256 << 10),
                     "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["verified"] is True and r["checks"]["statuses"]
    assert r["bytes"] == 256 << 10 and r["peak_bytes_per_cycle"] == 64
    assert r["efficiency"] == pytest.approx(r["bytes"] / (r["cycles"] * 64), abs=1e-4)
    assert r["efficiency"] >= 0.90 and r["target"]["met"]
    assert abs(r["timing_model"]["error"]) <= 0.01, r["timing_model"]
    assert r["beats_per_second"] > 0 and r["axi_beats"] == 8192
    out = capsys.readouterr().out
    assert "efficiency" in out and "verified       : True" in out


@pytest.mark.parametrize("pattern", ["seq-write", "strided", "random"])
def test_hbm_bench_patterns(pattern, tmp_path):
    """The other patterns are verified byte for byte and predicted within 5%."""
    rep = tmp_path / "r.json"
    assert hbm_main(["hbm-bench", "--pattern", pattern, "--bytes", str(96 << 10),
                     "--report", str(rep)]) == 0
    r = json.loads(rep.read_text())
    assert r["verified"] is True and r["limits"]
    assert abs(r["timing_model"]["error"]) <= 0.05, r["timing_model"]


CLI_BAD = [
    (["--pattern", "zigzag"], "invalid choice"),
    (["--bytes", "0"], "--bytes must be in [1, 67108864], not 0"),
    (["--bytes", "lots"], "invalid int value"),
    (["--channels", "3"], "channels must be a power of two in [1, 16], not 3"),
    (["--seed", "-1"], "--seed must be in"),
    (["--sim", "xcelium"], "invalid choice"),
    (["--report", "/nonexistent/dir/r.json"], "report directory does not exist"),
    (["--report", "/"], "--report is a directory"),
    (["--bogus"], "unrecognized arguments"),
]


@pytest.mark.parametrize("argv,msg", CLI_BAD, ids=[m for _, m in CLI_BAD])
def test_cli_bad_input(argv, msg, capsys):
    """Bad input to ``hbm-bench``: one line on stderr, exit 2, nothing run."""
    assert hbm_main(["hbm-bench", *argv]) == 2
    out = capsys.readouterr()
    assert out.err.count("\n") == 1 and out.err.startswith("splitsys: error:"), out.err
    assert msg in out.err and out.out == "", out


def test_cli_no_traceback():
    """In a fresh process: one line, exit 2, no traceback."""
    proc = subprocess.run([sys.executable, "-m", "scripts.hbm", "hbm-bench", "--channels",
                           "5"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip().splitlines() == [
        "splitsys: error: --channels must be a power of two in [1, 16], not 5"]


def test_verilog_lint_clean(tmp_path, capsys):
    """``verilator --lint-only -Wall`` (the project's waivers) on the DMA's Verilog."""
    from scripts.hbm import write_verilog
    from scripts.verilog import lint

    v = write_verilog(tmp_path, DmaConfig(channels=1, data_bits=64, ids=4, rob_beats=64))
    assert lint([v]) == 0, capsys.readouterr().out


@pytest.mark.slow
def test_synth_dma():
    """``make synth``'s DMA section: the reorder buffers are opaque cells, the logic is real
    (default configuration; minutes of Yosys, hence slow; cached by the Verilog's content)."""
    from scripts.hbm import synth
    from verif.sim import BUILD

    r = synth(BUILD / "tests" / "hbm_synth")
    assert r["logic"]["blackboxes"] == 2 and r["logic"]["flip_flops"] > 1000
    assert r["rob_bits"] == 2 * 256 * 258 and "NAND2-eq" in r["markdown"]


@pytest.mark.slow
def test_rtl_random_sweep(seed, run_dir):
    """Longer random sweep on the regression build: 5 jobs of 60 descriptors, all gaps."""
    rng = np.random.default_rng(seed)
    for k in range(5):
        while True:
            try:
                job = random_job(CFG, HCFG, rng, 60, max_bytes=16384, err_rate=0.003,
                                 decerr=0.03)
                break
            except ValueError:
                continue
        run = run_dma(CFG, HCFG, job.descs, job.hbm, job.err, job.sram, seed=seed + k,
                      gaps=HEAVY, throttle=True, run_dir=run_dir / str(k))
        _compare(CFG, HCFG, job.descs, job.hbm, job.err, job.sram, run)


@pytest.mark.slow
def test_rtl_other_configuration(seed, run_dir):
    """A second configuration (its own build): one 64-bit channel, 4 read IDs, 16-beat bursts,
    a 64-beat reorder buffer, 4 descriptors in flight."""
    cfg = DmaConfig(channels=1, data_bits=64, ids=4, max_burst=16, rob_beats=64, max_desc=4,
                    sram_addr_bits=18)
    hcfg = hbm_config(cfg, rows=8, columns=128)
    rng = np.random.default_rng(seed)
    while True:
        try:
            job = random_job(cfg, hcfg, rng, 30, max_bytes=8192, err_rate=0.005, decerr=0.05)
            break
        except ValueError:
            continue
    run = run_dma(cfg, hcfg, job.descs, job.hbm, job.err, job.sram, seed=seed, gaps=HEAVY,
                  throttle=True, run_dir=run_dir)
    _compare(cfg, hcfg, job.descs, job.hbm, job.err, job.sram, run)
