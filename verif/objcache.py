#!/usr/bin/env python3
"""Compile Verilator's runtime library once, not once per model: an ``OBJCACHE`` for Verilator.

Every Verilated model compiles the same runtime files (``verilated.cpp``, ``verilated_vpi.cpp``,
``verilated_threads.cpp``, ``verilated_timing.cpp``, …) from ``$VERILATOR_ROOT/include``: about
20 s of CPU per model, most of a small model's build. Verilator's makefiles run every compile as
``$(OBJCACHE) $(CXX) …`` (the hook meant for ccache, which pip cannot install);
:func:`verif.sim.tool_env` points ``OBJCACHE`` at this script.

For a runtime source the object is looked up by a digest of the compiler's identity, the command
line (the output name, not its directory) and the *preprocessed* source, so any change of header,
define or flag is a different entry (ccache's preprocessor mode). Any other compile — the model's
own files — runs the compiler unchanged. Standard library only: it runs under whatever
``python3`` is first on ``PATH``.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
from pathlib import Path


def _runtime_source(cmd: list[str]) -> str | None:
    root = os.environ.get("VERILATOR_ROOT")
    if not root or "-c" not in cmd or "-o" not in cmd or cmd[-1].startswith("-"):
        return None
    src = os.path.realpath(cmd[-1])
    inc = os.path.realpath(os.path.join(root, "include")) + os.sep
    return src if src.startswith(inc) and src.endswith(".cpp") else None


def _key(cmd: list[str], out: str) -> str | None:
    h = hashlib.sha256()
    version = subprocess.run([cmd[0], "--version"], capture_output=True)
    if version.returncode:
        return None
    h.update(version.stdout)
    args, skip = [], False
    for a in cmd[1:]:
        if skip:
            skip = False
            continue
        if a == "-o":
            skip = True
            continue
        args.append(a)
    h.update(repr((args, os.path.basename(out))).encode())
    pre = [cmd[0]] + [a for a in args if a not in ("-c", "-MMD", "-MD")] + ["-E"]
    p = subprocess.run(pre, capture_output=True)
    if p.returncode:
        return None
    h.update(p.stdout)
    return h.hexdigest()[:32]


def _put(src: Path, dst: Path):
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=dst.name + ".")
    os.close(fd)
    with open(src, "rb") as f, open(tmp, "wb") as g:
        g.write(f.read())
    os.replace(tmp, dst)


def main(argv: list[str]) -> int:
    cmd = argv[1:]
    if not cmd:
        print("objcache: usage: objcache.py COMPILER ARGS...", file=sys.stderr)
        return 2
    cache = os.environ.get("SPLITSYS_OBJCACHE")
    if not cache or _runtime_source(cmd) is None:
        os.execvp(cmd[0], cmd)
    out = cmd[cmd.index("-o") + 1]
    dep = os.path.splitext(out)[0] + ".d"
    key = _key(cmd, out)
    if key is None:  # the compiler itself will report what is wrong
        os.execvp(cmd[0], cmd)
    entry = Path(cache) / key
    if (entry / "obj").is_file():
        _put(entry / "obj", Path(out))
        if (entry / "dep").is_file():
            _put(entry / "dep", Path(dep))
        return 0
    rc = subprocess.run(cmd).returncode
    if rc == 0 and os.path.isfile(out):
        entry.mkdir(parents=True, exist_ok=True)
        if os.path.isfile(dep):
            _put(Path(dep), entry / "dep")
        _put(Path(out), entry / "obj")  # last: an entry with an object is complete
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
