"""PE: Amaranth-simulator unit tests against the golden MAC, and constructor checks."""

import random

import pytest
from amaranth.sim import Simulator

from hdl.config import ArrayConfig
from hdl.pe import PE


def _wrap(x):
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >> 31 else x


def test_pe_random_against_model(seed):
    rng = random.Random(seed)
    dut = PE(ArrayConfig())
    sim = Simulator(dut)
    sim.add_clock(1e-6)

    async def tb(ctx):
        w = [0, 0]
        p_reg = None
        for step in range(400):
            en = rng.random() < 0.8
            a = rng.choice([-128, 127, rng.randint(-128, 127)])
            p = rng.choice([-(2**31), 2**31 - 1, rng.randint(-(2**31), 2**31 - 1)])
            sel = rng.randint(0, 1)
            we = rng.randint(0, 3)
            wv = rng.choice([-128, 127, rng.randint(-128, 127)])
            ctx.set(dut.en, en)
            ctx.set(dut.a_in, a)
            ctx.set(dut.p_in, p)
            ctx.set(dut.sel, sel)
            ctx.set(dut.w_in, wv)
            ctx.set(dut.w_we, we)
            if en:
                p_reg = _wrap(p + a * w[sel])
            for b in range(2):
                if we >> b & 1:
                    w[b] = wv
            await ctx.tick()
            if p_reg is not None:
                assert ctx.get(dut.p_out) == p_reg, f"step {step} seed {seed}"

    sim.add_testbench(tb)
    sim.run()


def test_pe_rejects_bad_config():
    with pytest.raises(TypeError, match="cfg must be an ArrayConfig"):
        PE("16x16")
