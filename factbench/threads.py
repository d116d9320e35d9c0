"""How many CPU threads a factbench run uses: the cores actually free, unless the user says.

PyTorch starts one OpenMP thread per core. When another process keeps a core busy, those threads
wait on each other at every parallel region: on a 2-core machine inference ran 3x slower with 2
threads beside one busy process, and 1.3x slower with 1 thread (BENCHMARKS.md, "Threads"). So
factbench counts the cores it may use (CPU affinity and a cgroup CPU quota), subtracts what other
processes are using right now (a short sample of /proc/stat: the load average lags by minutes),
and uses what is left, at least one. OMP_NUM_THREADS or FACTBENCH_THREADS, when set, win.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

SAMPLE_SECONDS = 0.25
# A core counts as busy from 60% use: a lightly used core still gives an OpenMP thread most of its time.
BUSY_AT = 0.6


@dataclass(frozen=True)
class Choice:
    threads: int
    allowed: int          # cores this process may run on (affinity, cgroup quota)
    busy: float | None    # cores other processes kept busy during the sample (None: not measured)
    source: str           # "OMP_NUM_THREADS", "FACTBENCH_THREADS", or "free cores"

    def describe(self) -> str:
        if self.source != "free cores":
            return f"{self.threads} CPU thread(s), as {self.source} says"
        busy = "" if self.busy is None else f", {self.busy:.1f} busy with other processes"
        return (f"{self.threads} CPU thread(s): {self.allowed} core(s) allowed{busy} "
                f"(set OMP_NUM_THREADS to choose)")


def allowed_cores() -> int:
    """Cores this process may run on: its affinity mask, capped by a cgroup v2 CPU quota."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        if quota != "max":
            cores = min(cores, max(1, math.floor(int(quota) / int(period))))
    except (OSError, ValueError):
        pass
    return max(1, cores)


def _cpu_times() -> dict[int, tuple[int, int]]:
    """Per-CPU (busy, total) jiffies from /proc/stat."""
    times = {}
    for line in Path("/proc/stat").read_text().splitlines():
        name, *fields = line.split()
        if name.startswith("cpu") and name != "cpu":
            values = [int(v) for v in fields[:8]]
            idle = values[3] + values[4]  # idle + iowait
            times[int(name[3:])] = (sum(values) - idle, sum(values))
    return times


def busy_cores(seconds: float = SAMPLE_SECONDS) -> float | None:
    """Cores of this process's affinity that other processes used during a short sample.

    This process sleeps during the sample, so what it sees busy is someone else's work.
    None where /proc/stat cannot be read (not Linux).
    """
    try:
        cpus = os.sched_getaffinity(0)
        before = _cpu_times()
        time.sleep(seconds)
        after = _cpu_times()
    except (AttributeError, OSError, ValueError):
        return None
    used = 0.0
    for cpu in cpus:
        if cpu in before and cpu in after:
            busy = after[cpu][0] - before[cpu][0]
            total = after[cpu][1] - before[cpu][1]
            used += busy / total if total > 0 else 0.0
    return used


def choose(env: dict[str, str] | None = None, busy: float | None = ...) -> Choice:
    """The thread count for this run (see the module docstring). `busy` is for tests."""
    env = os.environ if env is None else env
    for name in ("FACTBENCH_THREADS", "OMP_NUM_THREADS"):
        value = env.get(name, "").strip()
        if value.isdigit() and int(value) >= 1:
            return Choice(int(value), allowed_cores(), None, name)
    allowed = allowed_cores()
    if busy is ...:
        busy = busy_cores() if allowed > 1 else None
    taken = 0 if busy is None else _whole_cores(busy)
    return Choice(max(1, allowed - taken), allowed, busy, "free cores")


def _whole_cores(busy: float) -> int:
    """Busy cores counted whole from BUSY_AT of a core: 0.5 -> 0, 0.7 -> 1, 1.6 -> 2."""
    whole = math.floor(busy)
    return whole + (1 if busy - whole >= BUSY_AT else 0)


_announcement: list = []  # (echo, line) waiting for the first piece of real work
_configured: list = []  # the Choice configure() made, for workers that share it out


def configure(echo=None) -> Choice:
    """Choose the thread count and apply it to torch (and to child processes).

    factbench's own choice is said (through `echo`) when the first real work starts (`announce`, called by the
    engines and the trainer), not here: a command refused for bad input still prints one line only.
    """
    choice = choose()
    _configured[:] = [choice]
    os.environ["OMP_NUM_THREADS"] = str(choice.threads)  # for workers and torchrun children
    import torch

    torch.set_num_threads(choice.threads)
    # Said only when factbench chose: a user who set the count knows it (and tests stay quiet).
    _announcement[:] = [(echo, f"factbench: {choice.describe()}")] if echo and choice.source == "free cores" else []
    return choice


def chosen() -> Choice:
    """The choice this process made (configure), else a fresh one: what `--workers` shares out."""
    return _configured[0] if _configured else choose()


def announce() -> None:
    """Say the thread choice once, at the start of the first generation or training step."""
    if _announcement:
        echo, line = _announcement.pop()
        echo(line)
