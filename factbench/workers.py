"""`--workers N`: N local processes, each one shard of the work, the free CPU threads shared among them.

Each worker is the same factbench command with `--shard i/N` instead of `--workers N`, so a worker
is exactly what a user would run by hand on another machine (shards.py), and a failed worker is
rerun by rerunning the command: every probe shard resumes (an `eval --sets` shard is answered again,
and shards already finished are kept). On 2 cores, 2 workers x 1 thread against
1 process x 2 threads is measured in BENCHMARKS.md ("Sharded probing").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from . import shards, threads
from .errors import FactbenchError
from .files import make_dirs


def worker_argv(argv: list[str], index: int, count: int) -> list[str]:
    """The command's own arguments with --workers N replaced by --shard index/count."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
            continue
        if a == "--workers":
            skip = True
            continue
        if a.startswith("--workers="):
            continue
        out.append(a)
    return [*out, "--shard", f"{index}/{count}"]


def last_error(log: Path) -> str:
    """The line of a failed process's log that says why: its last line naming an error, else its last line."""
    lines = log.read_text(encoding="utf-8", errors="replace").splitlines()
    return next((ln for ln in reversed(lines) if "error" in ln.lower()), lines[-1] if lines else "no output").strip()


def run(argv: list[str], count: int, out_dir: Path) -> None:
    """Run `factbench <argv>` as `count` shard processes; each one's stderr goes to a log beside its shard."""
    choice = threads.chosen()
    per_worker = max(1, choice.threads // count)
    logs = make_dirs(Path(out_dir) / shards.SHARDS)
    print(f"factbench: {count} workers x {per_worker} CPU thread(s) ({choice.describe()}); "
          f"their logs: {logs}/I-of-{count}.log", file=sys.stderr)
    env = {**os.environ, "OMP_NUM_THREADS": str(per_worker), "TQDM_MININTERVAL": "5"}
    procs = []
    for i in range(count):
        log = open(logs / f"{i}-of-{count}.log", "w", encoding="utf-8")  # noqa: SIM115 - closed below
        procs.append((i, log, subprocess.Popen([sys.executable, "-m", "factbench.cli", *worker_argv(argv, i, count)],
                                               env=env, stdout=log, stderr=subprocess.STDOUT)))
    failed = []
    try:
        for i, log, proc in procs:
            if proc.wait() != 0:
                failed.append(i)
            log.close()
    except KeyboardInterrupt:
        for _, _, proc in procs:
            proc.terminate()
        raise
    if failed:
        i = failed[0]
        last = last_error(logs / f"{i}-of-{count}.log")
        raise FactbenchError(f"worker(s) {', '.join(f'{j}/{count}' for j in failed)} failed (shard {i}/{count}: "
                             f"{last}); rerun the same command: finished work resumes")


def probe(count: int, out_dir: Path | str, argv: list[str]):
    """`factbench probe ... --workers N`: the shards in N local processes, then the merged profile."""
    from .knowledge import load_profile

    out_dir = Path(out_dir)
    if (out_dir / "manifest.json").exists():
        raise FactbenchError(f"{out_dir} already holds a finished profile; choose another --out")
    run(["probe", *argv], count, out_dir)
    if not (out_dir / "manifest.json").exists():
        shards.merge(out_dir)
    return load_profile(out_dir)


def eval_sets(count: int, out_dir: Path | str, argv: list[str]) -> dict:
    """`factbench eval --sets ... --workers N`: the shards in N local processes, then the merged folder's summary."""
    from . import answer_shards

    out_dir = Path(out_dir)
    run(["eval", *argv], count, out_dir)  # the caller checked the sets and --out (answer_sources.evaluate_sets)
    if not answer_shards.is_merged(out_dir):
        return answer_shards.merge(out_dir)
    return json.loads((out_dir / "summary.json").read_text(encoding="utf-8"))
