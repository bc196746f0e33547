"""cocotb side of the HBM and DMA harnesses: wait for ``done`` (with a timeout), report.

Python is off the per-cycle path: the clock, the traffic and the checks are in the generated
Verilog top (``verif/hbm_harness.py``, ``verif/dma_harness.py``). This coroutine sleeps in
chunks of simulated time (no value-change callback on ``done``: with Verilator a callback is
checked on every time step), polls ``done`` between them, and at the end reads the counters named
in the job file. ``sim_seconds`` is the wall time from the start of the test to the chunk in
which ``done`` was seen (the memories are dumped after it, outside the measurement);
``sim_cpu_seconds`` is the simulator process' CPU time over the same span (robust to other load
on the machine).
"""

import json
import os
import time

import cocotb
from cocotb.triggers import RisingEdge, Timer

CLOCK_NS = 10       # tb_top: always #5 clk = ~clk
JOB_ENV = "SPLITSYS_HBM_JOB"
FIRST_CHUNK = 256
MAX_CHUNK = 20_000


@cocotb.test()
async def run_job(dut):
    job = json.loads(open(os.environ[JOB_ENV]).read())
    t0 = time.perf_counter()
    c0 = time.process_time()
    waited = 0
    step = FIRST_CHUNK
    # Short runs finish in a few hundred cycles: start with small chunks, then grow (the
    # overshoot past done is at most one chunk, a few per cent of the run's wall time).
    while not int(dut.done.value):
        if waited >= job["timeout_cycles"]:
            raise AssertionError(f"timeout: no 'done' after {waited} cycles "
                                 f"({job.get('what', 'harness')})")
        step = min(step, job["timeout_cycles"] - waited)
        await Timer(step * CLOCK_NS, unit="ns")
        waited += step
        step = min(2 * step, MAX_CHUNK)
    sim_seconds = time.perf_counter() - t0
    cpu_seconds = time.process_time() - c0
    # The top dumps its memories on the first edge that sees dump_now; give it two edges.
    dut.dump_now.value = 1
    await RisingEdge(dut.clk)
    await RisingEdge(dut.clk)
    result = {name: int(getattr(dut, name).value) for name in job["report"]}
    result["sim_seconds"] = sim_seconds
    result["sim_cpu_seconds"] = cpu_seconds       # CPU time of the simulator process
    result["waited_cycles"] = waited
    with open(job["result"], "w") as f:
        json.dump(result, f)
