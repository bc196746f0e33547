"""Shared pytest fixtures: replayable seeds and per-test run directories under build/."""

from __future__ import annotations

import os
import re
import shutil

import pytest

# The regression compiles many models for small jobs: gcc's time dominates, so it builds them
# without C++ optimization unless told otherwise (benches and the CLI build optimized models).
os.environ.setdefault("SPLITSYS_COMPILE", "quick")

from verif import sim  # noqa: E402
from verif.stimulus import pick_seed  # noqa: E402


@pytest.fixture
def seed(request):
    """A random seed (or ``SEED`` from the environment), printed with its replay command."""
    s = pick_seed()
    print(f"seed={s}; replay: make test TESTS='{request.node.nodeid}' SEED={s}")
    request.node.user_properties.append(("seed", s))
    return s


@pytest.fixture
def run_dir(request):
    """A fresh directory for this test only (waves and logs land here), under build/tests."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", request.node.nodeid)[-120:]
    d = sim.BUILD / "tests" / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    return d


def require(sim_name: str):
    if not sim.have_simulator(sim_name):
        pytest.skip(f"{sim_name} is not installed (Icarus: apt install iverilog)")
