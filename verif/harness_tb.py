"""cocotb side of the fast harness: wait for ``done`` (with a timeout), report the counters.

Python is off the per-cycle path: the clock is generated in ``tb_top`` and the stimulus is in its
memories. This coroutine only wakes every few thousand cycles to write progress.
"""

import json
import os
import time

import cocotb
from cocotb.triggers import First, RisingEdge, Timer

CLOCK_NS = 10       # tb_top: always #5 clk = ~clk
CHUNK = 20_000      # cycles between progress updates

COUNTERS = ("out_rows", "w_beats", "a_rows", "p_rows", "stall_cycles")


@cocotb.test()
async def run_job(dut):
    job = json.loads(open(os.environ["SPLITSYS_JOB"]).read())
    t0 = time.perf_counter()
    waited = 0
    done = RisingEdge(dut.done)
    while not int(dut.done.value):
        if waited >= job["timeout_cycles"]:
            raise AssertionError(
                f"timeout: no 'done' after {waited} cycles; "
                f"{int(dut.out_rows.value)} of {job['n_out']} result rows out")
        step = min(CHUNK, job["timeout_cycles"] - waited)
        await First(done, Timer(step * CLOCK_NS, unit="ns"))
        waited += step
        with open(job["progress"], "w") as f:
            f.write(f"{int(dut.out_rows.value)} {job['n_out']}\n")
    # Two more edges: tb_top dumps the result memory on the first edge that sees done.
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    sim_seconds = time.perf_counter() - t0
    counters = {k: int(getattr(dut, k).value) for k in COUNTERS}
    result = {"cycles": int(dut.cycles.value), "counters": counters, "sim_seconds": sim_seconds}
    with open(job["result"], "w") as f:
        json.dump(result, f)
    assert counters["out_rows"] == job["n_out"], \
        f"{counters['out_rows']} result rows, expected {job['n_out']}"
