"""cocotb side of the SRAM harness: wait for ``done`` (with a timeout), report the counters.

Python is off the per-cycle path: the clock is generated in ``sram_tb_top`` and the traffic,
the response sinks and the shadow checker are HDL. This coroutine wakes every few thousand
cycles only.
"""

import json
import os
import time

import cocotb
from cocotb.triggers import First, RisingEdge, Timer

CLOCK_NS = 10       # sram_tb_top: always #5 clk = ~clk
CHUNK = 50_000      # cycles between checks of the timeout


def _counters(dut, job):
    # The counter names come with the job: importing verif.sram_harness here (Amaranth, NumPy)
    # would add half a second to every run.
    return {k: [int(getattr(dut, f"{k}_{c}").value) for c in range(job["clients"])]
            for k in job["counters"]}


@cocotb.test()
async def run_traffic(dut):
    with open(os.environ["SPLITSYS_JOB"]) as f:
        job = json.load(f)
    t0 = time.perf_counter()
    waited = 0
    done = RisingEdge(dut.done)
    while not int(dut.done.value):
        if waited >= job["timeout_cycles"]:
            cnt = _counters(dut, job)
            raise AssertionError(f"timeout: no 'done' after {waited} cycles (cycle counter "
                                 f"{int(dut.cyc.value)}; reads {sum(cnt['reads'])}, responses "
                                 f"{sum(cnt['responses'])})")
        step = min(CHUNK, job["timeout_cycles"] - waited)
        await First(done, Timer(step * CLOCK_NS, unit="ns"))
        waited += step
    # One more edge: the top closes the log on the edge that sees done.
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    result = {"cycles": int(dut.cyc.value), "counters": _counters(dut, job),
              "errors": int(dut.errors.value), "ecc_corrected": int(dut.ecc_corrected.value),
              "ecc_uncorrectable": int(dut.ecc_uncorrectable.value),
              "sim_seconds": time.perf_counter() - t0}
    with open(job["result"], "w") as f:
        json.dump(result, f)
