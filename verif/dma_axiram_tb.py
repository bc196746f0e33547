"""cocotb side of the DMA against cocotbext-axi's ``AxiRam``: an independent AXI4 slave.

The simulation top is the throttled DMA harness with its AXI masters left open
(``verif/dma_harness.py``, ``external=True``): descriptors, SRAM and the status log stay in HDL,
each channel's AXI4 port is served by one ``AxiRam`` here, and the clock is driven from here.
Errors are injected on chosen beats: a read of a word listed in the job's error map, or a write
with a strobed byte in it, answers
SLVERR (``AxiRam`` turns an exception of its backing store into SLVERR: the beat's bytes are not
written); any address at or beyond ``cap_bytes`` answers DECERR (``AxiRam`` has no DECERR of its
own: the response is rewritten on its way out). Every AxiRam channel also pauses at random
(``set_pause_generator``: ready of AR/AW/W, valid of R/B), on top of the harness' own random
valid/ready in HDL. ``AxiRam`` asserts the AXI4 rules it checks (4 KiB crossings, WLAST).
"""

import json
import logging
import os
import random
import time

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import RisingEdge, Timer
from cocotbext.axi import AxiBus, AxiRam, AxiResp

CLOCK_NS = 10
JOB_ENV = "SPLITSYS_AXIRAM_JOB"
CHUNK = 200


class _SlaveError(Exception):
    pass


def _pauses(rng: random.Random, p: float):
    while True:
        yield rng.random() < p


def _attach(dut, c: int, ch: dict, job: dict, counts: dict) -> AxiRam:
    bus = AxiBus.from_prefix(dut, f"m{c}")
    # No reset: the AxiRam starts serving at once (the DMA only drives its masters after reset).
    ram = AxiRam(bus, dut.clk, size=ch["size"])
    ram.write(0, np.load(ch["mem"]).astype(np.uint8).tobytes())
    bad = {int(w) for w in np.load(ch["err"])}
    cap, B = job["cap_bytes"], job["data_bytes"]
    dec = {"r": False, "b": False}
    rd, wr = ram.read_if, ram.write_if

    async def _read(address, length):
        if address >= cap:
            dec["r"] = True
            raise _SlaveError("DECERR")
        if address // B in bad:
            raise _SlaveError("SLVERR")
        return ram.read(address, length)

    async def _write(address, data):
        if address >= cap:
            dec["b"] = True
            raise _SlaveError("DECERR")
        if address // B in bad:
            raise _SlaveError("SLVERR")
        ram.write(address, data)

    r_send, b_send = rd.r_channel.send, wr.b_channel.send

    async def send_r(r):
        if dec["r"]:
            r.rresp = AxiResp.DECERR
            dec["r"] = False
        counts[f"r{int(r.rresp)}"] = counts.get(f"r{int(r.rresp)}", 0) + 1
        await r_send(r)

    async def send_b(b):
        if dec["b"]:
            b.bresp = AxiResp.DECERR
            dec["b"] = False
        counts[f"b{int(b.bresp)}"] = counts.get(f"b{int(b.bresp)}", 0) + 1
        await b_send(b)

    rd._read, wr._write = _read, _write
    rd.r_channel.send, wr.b_channel.send = send_r, send_b
    if job["pause"]:
        rng = random.Random(job["seed"] * 101 + c)
        for chan in (wr.aw_channel, wr.w_channel, wr.b_channel, rd.ar_channel, rd.r_channel):
            chan.set_pause_generator(_pauses(rng, job["pause"]))
    for name in ("cocotb.tb_top", f"cocotb.tb_top.m{c}"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return ram


@cocotb.test()
async def run_axiram(dut):
    with open(os.environ[JOB_ENV]) as f:
        job = json.load(f)
    counts: dict = {}
    cocotb.start_soon(Clock(dut.clk, CLOCK_NS, unit="ns").start())
    rams = [_attach(dut, c, ch, job, counts) for c, ch in enumerate(job["channels"])]
    t0 = time.perf_counter()
    waited = 0
    while not int(dut.done.value):
        if waited >= job["timeout_cycles"]:
            state = {n: int(getattr(dut, n).value) for n in job["report"]}
            state.update({f"m{c}_{ch}{s}": int(getattr(dut, f"m{c}_{ch}{s}").value)
                          for c in range(len(rams)) for ch in ("ar", "aw", "w", "r", "b")
                          for s in ("valid", "ready")})
            raise AssertionError(f"timeout: no 'done' after {waited} cycles ({job['what']}); "
                                 f"counters {state}, responses {counts}")
        await Timer(CHUNK * CLOCK_NS, unit="ns")
        waited += CHUNK
    sim_seconds = time.perf_counter() - t0
    for ram, ch in zip(rams, job["channels"], strict=True):
        np.save(ch["out"], np.frombuffer(ram.read(0, ch["size"]), np.uint8))
    dut.dump_now.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    result = {name: int(getattr(dut, name).value) for name in job["report"]}
    result["sim_seconds"] = sim_seconds
    result["responses"] = counts
    with open(job["result"], "w") as f:
        json.dump(result, f)
