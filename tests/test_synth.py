"""Synthesis flow and Verilog output: statistics really come out, lint is clean."""

import pytest

from hdl.config import ArrayConfig
from scripts.synth import GATES, SynthError, synthesize
from scripts.verilog import generate, lint


def test_synth_pe_and_small_array(tmp_path):
    cfg = ArrayConfig(2, 2)
    files = generate(cfg, tmp_path / "v")
    pe = synthesize(files[0], "pe", tmp_path / "s")
    # 32-bit partial sum + 2 x 8-bit weight banks (the activation is broadcast, not stored).
    assert pe["flip_flops"] == 32 + 16
    assert pe["nand2_eq"] > 300 and set(pe["cells"]) <= set(GATES)
    arr = synthesize(files[1], "systolic_array", tmp_path / "s")
    assert arr["nand2_eq"] > 4 * pe["nand2_eq"]


def test_synth_failure_is_an_error(tmp_path):
    v = tmp_path / "bad.v"
    v.write_text("module other(input a, output b); assign b = a; endmodule\n")
    with pytest.raises(SynthError, match="yosys failed"):
        synthesize(v, "pe", tmp_path / "s")


def test_verilog_lint_clean(tmp_path, capsys):
    files = generate(ArrayConfig(3, 5), tmp_path)
    assert lint(files) == 0
    out = capsys.readouterr().out
    assert out.count(": clean") == 2
