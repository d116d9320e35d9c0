"""Several fine-tunes at once: each one a `factbench train` process with its share of the CPU threads.

On a CPU a 135M-parameter model uses its threads poorly: one SmolLM2 training step took 1.87 s
with 2 threads and 3.26 s with 1 (BENCHMARKS.md, "`factbench demo` wall time"), so two fine-tunes
side by side, one thread each, get through 1.15 times the steps (about 1.26 times over the whole
demo, an estimate). `factbench demo`
trains its fine-tunes this way (`--jobs`). Each job is exactly the `factbench train` command a user
would run by hand (same recipe, config and settings), so its results do not depend on how many run
beside it, beyond what the number of threads changes in floating-point sums.

Each job's whole output goes to a log file; the console gets, per job, the lines a person reads
(its stage, `epoch N/M` lines, errors) prefixed with the job's name, and on a terminal one bar per
running job, advanced at each evaluation point. A failed job does not stop the others; the
command then fails in one line naming the job and its log, and a rerun trains only what is missing.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from .errors import FactbenchError
from .files import make_dirs
from .workers import last_error

STAGE_LINE = re.compile(r"^(\S+): (\d+) steps$")  # progress.TrainingProgress without a bar
STEP = re.compile(r"· step (\d+) ·")


@dataclass(frozen=True)
class Job:
    name: str             # what the console calls it: `sft`, `sft (seed 1)`
    recipe: str
    config: str
    overrides: tuple[str, ...]

    def argv(self) -> list[str]:
        return [sys.executable, "-m", "factbench.cli", "train", "--recipe", self.recipe, "--config", self.config,
                *self.overrides]


def log_name(job: Job) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", job.name).strip("-") + ".log"


def _shown(line: str) -> bool:
    """The lines of a `factbench train` run a person reads; the rest (warnings, loading bars) stay in the log."""
    text = line.strip()
    return bool(STAGE_LINE.match(text) or text.startswith("epoch ") or "error" in text.lower())


def _run_one(job: Job, threads: int, log: Path, slot: int, bars: bool, lock: threading.Lock, echo) -> int:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "FACTBENCH_THREADS": str(threads)}
    bar = None
    with open(log, "w", encoding="utf-8") as sink, subprocess.Popen(
            job.argv(), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1,
            errors="replace") as proc:
        for line in proc.stdout:
            sink.write(line)
            sink.flush()
            text = line.strip()
            if not _shown(line):
                continue
            with lock:
                stage = STAGE_LINE.match(text)
                if stage and bars:
                    if bar is not None:
                        bar.close()
                    bar = tqdm(total=int(stage[2]), desc=f"{job.name}: {stage[1]}", unit="step", position=slot,
                               leave=False, dynamic_ncols=True, file=sys.stderr)
                    continue
                step = STEP.search(text)
                if bar is not None and step:
                    bar.update(int(step[1]) - bar.n)
                (tqdm.write if bars else echo)(f"  [{job.name}] {text}")
        code = proc.wait()
    if bar is not None:
        with lock:
            bar.close()
    return code


def run(jobs: list[Job], count: int, threads: int, logs: Path, echo=print) -> None:
    """Run `jobs`, `count` at a time, each with `threads` CPU threads; output logged in `logs`/<name>.log."""
    if not jobs:
        return
    make_dirs(logs)
    bars = sys.stderr.isatty()
    lock = threading.Lock()
    echo(f"  {len(jobs)} fine-tunes, {count} at a time x {threads} CPU thread(s) each; "
         f"their whole output: {logs}/<name>.log")
    slots = list(range(count))
    slot_lock = threading.Lock()

    def one(job: Job) -> int:
        with slot_lock:
            slot = slots.pop(0)
        try:
            return _run_one(job, threads, logs / log_name(job), slot, bars, lock, echo)
        finally:
            with slot_lock:
                slots.append(slot)

    with ThreadPoolExecutor(max_workers=count) as pool:
        try:
            codes = list(pool.map(one, jobs))
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise
    failed = [job for job, code in zip(jobs, codes, strict=True) if code != 0]
    if failed:
        log = logs / log_name(failed[0])
        raise FactbenchError(f"fine-tune(s) {', '.join(j.name for j in failed)} failed ({failed[0].name}: "
                             f"{last_error(log)}; log {log}); rerun the same command: finished fine-tunes are kept")
