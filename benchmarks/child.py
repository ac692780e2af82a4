"""Run a job's entrypoint in this process, then write the process's peak memory to a file.

`python -m benchmarks.child MEMORY_FILE MODULE ARG...` runs `MODULE.main(ARG...)`, as
`python -m MODULE ARG...` would. The peak is VmHWM of /proc/self/status, the high-water mark
of this program's own memory. `ru_maxrss` would not do: Linux carries the parent's peak over
into a child started by fork and exec, so every child would report the benchmark's own size.
"""

from __future__ import annotations

import importlib
import resource
import sys
from pathlib import Path

from rpa.cli import run_program


def peak_memory_kib() -> int:
    """Return this process's peak resident memory in KiB: VmHWM, or ru_maxrss without /proc."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii").splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def main(argv: list[str]) -> int:
    memory_file, module, *arguments = argv
    try:
        entrypoint = importlib.import_module(module)
        # As `python -m MODULE` runs it, so the measured exit is the production one.
        status = run_program(lambda: int(entrypoint.main(arguments)))
    finally:
        Path(memory_file).write_text(str(peak_memory_kib()), encoding="ascii")
    return status


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
