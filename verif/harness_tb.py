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
SLOT_COUNTERS = ("out_rows", "w_beats", "a_rows", "p_rows", "stall_cycles", "done_cycle")


def _slots(dut, n):
    return [{k: int(getattr(dut, f"{k}_{s}").value) for k in SLOT_COUNTERS} for s in range(n)]


@cocotb.test()
async def run_job(dut):
    job = json.loads(open(os.environ["SPLITSYS_JOB"]).read())
    t0 = time.perf_counter()
    waited = 0
    done = RisingEdge(dut.done)
    while not int(dut.done.value):
        if waited >= job["timeout_cycles"]:
            out = sum(s["out_rows"] for s in _slots(dut, job["slots"]))
            raise AssertionError(f"timeout: no 'done' after {waited} cycles; "
                                 f"{out} of {job['n_out']} result rows out")
        step = min(CHUNK, job["timeout_cycles"] - waited)
        await First(done, Timer(step * CLOCK_NS, unit="ns"))
        waited += step
        out = sum(s["out_rows"] for s in _slots(dut, job["slots"]))
        with open(job["progress"], "w") as f:
            f.write(f"{out} {job['n_out']}\n")
    # Two more edges: tb_top dumps the result memory on the first edge that sees done.
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    sim_seconds = time.perf_counter() - t0
    slots = _slots(dut, job["slots"])
    counters = {k: sum(s[k] for s in slots) for k in SLOT_COUNTERS if k != "done_cycle"}
    result = {"cycles": int(dut.cycles.value), "counters": counters, "slots": slots,
              "mode_error": int(dut.mode_error.value), "sim_seconds": sim_seconds}
    with open(job["result"], "w") as f:
        json.dump(result, f)
    assert not result["mode_error"], "the array refused the split mode"
    assert counters["out_rows"] == job["n_out"], \
        f"{counters['out_rows']} result rows, expected {job['n_out']}"
