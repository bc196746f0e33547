"""The ``splitsys`` command line: the matmul contract, reports, one-line errors with exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from scripts.cli import main
from verif.stimulus import random_int8, random_shape

REPORT_KEYS = {"engine", "dtype", "array", "shape", "cycles", "macs", "pes", "utilization",
               "wall_seconds"}


def _save(d, **arrays):
    paths = {}
    for k, v in arrays.items():
        paths[k] = str(d / f"{k}.npy")
        np.save(paths[k], v)
    return paths


@pytest.mark.parametrize("engine", ["golden", "rtl"])
def test_matmul_random(engine, seed, tmp_path):
    rng = np.random.default_rng(seed)
    b, m, k, n = random_shape(rng, 16, 16, max_batch=3)
    a3 = random_int8(rng, (b, m, k)).astype(np.int64)
    b3 = random_int8(rng, (b, k, n)).astype(np.int16)
    two_d = b == 1 and rng.random() < 0.5
    a, bm = (a3[0], b3[0]) if two_d else (a3, b3)
    p = _save(tmp_path, A=a, B=bm)
    out, rep = tmp_path / "C.npy", tmp_path / "run.json"
    rc = main(["matmul", p["A"], p["B"], "-o", str(out), "--engine", engine,
               "--report", str(rep)])
    assert rc == 0
    c = np.load(out)
    assert c.dtype == np.int32
    np.testing.assert_array_equal(c, np.matmul(a.astype(np.int64), bm.astype(np.int64)),
                                  err_msg=f"seed {seed} shape {(b, m, k, n)}")
    r = json.loads(rep.read_text())
    assert REPORT_KEYS <= set(r)
    assert r["engine"] == engine and r["array"] == "16x16" and r["pes"] == 256
    assert r["macs"] == b * m * k * n
    assert r["utilization"] == pytest.approx(r["macs"] / (r["cycles"] * 256), abs=1e-6)
    if engine == "rtl":
        assert r["verified"] and r["cycle_model"] == "exact"
        assert r["cycles"] == r["predicted_cycles"]


def test_matmul_rtl_with_gaps_and_small_array(seed, tmp_path):
    rng = np.random.default_rng(seed)
    a, b = random_int8(rng, (2, 9, 7)), random_int8(rng, (2, 7, 10))
    p = _save(tmp_path, A=a, B=b)
    out = tmp_path / "C.npy"
    assert main(["matmul", p["A"], p["B"], "-o", str(out), "--array", "4x4", "--gaps", "100",
                 "--seed", str(seed)]) == 0
    np.testing.assert_array_equal(np.load(out), np.matmul(a.astype(int), b.astype(int)))


@pytest.mark.parametrize("split", ["2x2", "1x2", "auto"])
def test_matmul_split_modes(split, seed, tmp_path):
    """Any mode from the CLI on random operands: C exact, the report names the mode and gives
    per-group busy cycles equal to the cycle model's."""
    rng = np.random.default_rng(seed)
    b, m, k, n = int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 150)), \
        int(rng.integers(1, 300))
    a, bm = random_int8(rng, (b, m, k)), random_int8(rng, (b, k, n))
    p = _save(tmp_path, A=a, B=bm)
    rep = tmp_path / "r.json"
    assert main(["matmul", p["A"], p["B"], "-o", str(tmp_path / "C.npy"), "--split", split,
                 "--report", str(rep)]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "C.npy"),
                                  np.matmul(a.astype(np.int64), bm.astype(np.int64)))
    r = json.loads(rep.read_text())
    assert r["split_requested"] == split
    assert r["split"] in ("1x1", "1x2", "2x1", "2x2") and (split == "auto" or r["split"] == split)
    assert len(r["groups"]) == {"1x1": 1, "1x2": 2, "2x1": 2, "2x2": 4}[r["split"]]
    for g in r["groups"]:
        assert g["busy_cycles"] == g["predicted_busy_cycles"]
    assert max(g["busy_cycles"] for g in r["groups"]) == r["cycles"]
    assert r["sram_demand_per_cycle"]["streams"] == 4 * len(r["groups"])


def test_split_auto_chooses_fastest(tmp_path):
    """auto picks the mode the cycle model predicts fastest (golden engine: no simulation)."""
    a = np.ones((8, 4, 64), np.int8)
    b = np.ones((8, 64, 512), np.int8)
    p = _save(tmp_path, A=a, B=b)
    cycles = {}
    for split in ("1x1", "1x2", "2x1", "2x2", "auto"):
        rep = tmp_path / f"{split}.json"
        assert main(["matmul", p["A"], p["B"], "-o", str(tmp_path / "C.npy"), "--engine",
                     "golden", "--split", split, "--report", str(rep)]) == 0
        cycles[split] = json.loads(rep.read_text())
    assert cycles["auto"]["cycles"] == min(cycles[s]["cycles"] for s in cycles)
    assert cycles["auto"]["cycles"] * 1.95 < cycles["1x1"]["cycles"]


@pytest.mark.parametrize("dtype", ["fp8_e4m3", "fp8_e5m2", "bf16", "mxfp8_e4m3", "mxfp8_e5m2"])
def test_matmul_float_formats(dtype, seed, tmp_path):
    """Float inputs on a 4x4 array: the RTL result (float32) equals the golden model's and a
    straightforward K loop of the contract's fused steps."""
    from golden.numerics import f32_bits, fma_f32, get_format

    rng = np.random.default_rng(seed)
    f = get_format(dtype)
    k = 32 * int(rng.integers(1, 3)) if f.is_mx else int(rng.integers(1, 40))
    a = rng.standard_normal((2, int(rng.integers(1, 7)), k)) * 3
    b = rng.standard_normal((2, k, int(rng.integers(1, 9))))
    if not f.is_mx:
        a[0, 0, 0] = np.nan
        b[-1, -1, -1] = np.inf
    p = _save(tmp_path, A=a, B=b)
    rep = tmp_path / "r.json"
    assert main(["matmul", p["A"], p["B"], "-o", str(tmp_path / "C.npy"), "--dtype", dtype,
                 "--array", "4x4", "--sub", "2x2", "--split", "auto", "--report", str(rep)]) == 0
    c = np.load(tmp_path / "C.npy")
    assert c.dtype == np.float32 and c.shape == (2, a.shape[1], b.shape[2])
    aw, bw = f.quantize(a, axis=-1), f.quantize(b, axis=-2)
    av, bv = f.values(aw), f.values(bw)
    acc = np.zeros(c.shape, np.float32)
    with np.errstate(invalid="ignore", over="ignore"):
        for kk in range(k):
            acc = fma_f32(acc, av[:, :, kk, None] * bv[:, None, kk, :])
    np.testing.assert_array_equal(f32_bits(c), f32_bits(acc), err_msg=f"seed {seed}")
    assert json.loads(rep.read_text())["verified"]


def _bad_inputs(d):
    np.save(d / "ok_a.npy", np.ones((2, 3), np.int8))
    np.save(d / "ok_b.npy", np.ones((3, 4), np.int8))
    np.save(d / "float.npy", np.array([[0.5, 1, 2], [1, 2, 3]]))
    np.save(d / "big.npy", np.array([[128, 1, 2], [1, 2, 3]]))
    np.save(d / "neg.npy", np.array([[-129, 1, 2], [1, 2, 3]]))
    np.save(d / "nan.npy", np.array([[np.nan, 1, 2], [1, 2, 3]]))
    np.save(d / "vec.npy", np.ones(3))
    np.save(d / "four.npy", np.ones((1, 1, 2, 3)))
    np.save(d / "empty.npy", np.ones((0, 3)))
    np.save(d / "b_mismatch.npy", np.ones((4, 4), np.int8))
    np.save(d / "bool.npy", np.ones((2, 3), bool))
    np.save(d / "klong_a.npy", np.ones((1, 65537), np.int8))
    np.save(d / "klong_b.npy", np.ones((65537, 1), np.int8))
    (d / "text.npy").write_text("not numpy\n")
    return d


BAD = [
    (["{d}/missing.npy", "{d}/ok_b.npy"], "no such file"),
    (["{d}/text.npy", "{d}/ok_b.npy"], "not a .npy file"),
    (["{d}/float.npy", "{d}/ok_b.npy"], "non-integer"),
    (["{d}/big.npy", "{d}/ok_b.npy"], "outside int8"),
    (["{d}/neg.npy", "{d}/ok_b.npy"], "outside int8"),
    (["{d}/nan.npy", "{d}/ok_b.npy"], "NaN"),
    (["{d}/bool.npy", "{d}/ok_b.npy"], "must hold integers"),
    (["{d}/vec.npy", "{d}/ok_b.npy"], "2-D or 3-D"),
    (["{d}/four.npy", "{d}/ok_b.npy"], "2-D or 3-D"),
    (["{d}/empty.npy", "{d}/ok_b.npy"], "empty"),
    (["{d}/ok_a.npy", "{d}/b_mismatch.npy"], "inner dimensions differ"),
    (["{d}/klong_a.npy", "{d}/klong_b.npy"], "exceeds"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--array", "16"], "RxC"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--array", "0x16"], "positive"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--array", "300x16"], "rows must be in"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--engine", "fpga"], "invalid choice"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--sim", "xcelium"], "invalid choice"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--dtype", "int4"], "invalid choice"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--gaps", "999"], "gaps"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--split", "3x1"], "not a mode"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--split", "two"], "RxC"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--sub", "5x8"], "divisor"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--orient", "sideways"], "invalid choice"),
    (["{d}/nan.npy", "{d}/ok_b.npy", "--dtype", "mxfp8_e4m3"], "finite"),
    (["{d}/ok_a.npy", "{d}/ok_b.npy", "--dtype", "mxfp8_e5m2"], "multiple of 32"),
    (["{d}/bool.npy", "{d}/ok_b.npy", "--dtype", "bf16"], "real numbers"),
    (["{d}/ok_a.npy"], "required"),
]


@pytest.mark.parametrize("argv,msg", BAD, ids=[b[1] + str(i) for i, b in enumerate(BAD)])
def test_bad_input_one_line_exit_2(argv, msg, tmp_path, capsys):
    d = _bad_inputs(tmp_path)
    args = ["matmul"] + [a.format(d=d) for a in argv]
    if "-o" not in args and "required" not in msg:
        args += ["-o", str(d / "C.npy")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("splitsys: error:"), err
    assert msg in err
    assert not (d / "C.npy").exists()


def test_console_script_no_traceback(tmp_path):
    """The installed entry point: a bad file gives one line and exit 2, nothing else."""
    proc = subprocess.run([sys.executable, "-m", "scripts.cli", "matmul", "nope.npy", "nope.npy",
                           "-o", str(tmp_path / "c.npy")], capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["splitsys: error: A: no such file: nope.npy"]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
