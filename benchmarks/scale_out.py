"""Threads chosen from the free cores, and sharded probing, measured by whole commands on this machine.

    python benchmarks/scale_out.py threads      # eval --limit 120: idle, beside one busy process (auto, forced 2)
    python benchmarks/scale_out.py workers      # probe: --workers 2 (1 thread each) vs one process x 2 threads
    python benchmarks/scale_out.py all --runs 3

Every configuration runs --runs times by turns (so slow drift of the machine hits all alike);
the table gives each one's median, min and max wall time, and the ratio of medians to the named
baseline. "Busy" is one other process spinning on one core for the whole run (`python -c 'while
True: pass'`), the situation issue 17 measured. Prints a JSON object; BENCHMARKS.md keeps the results.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

FACTBENCH = [sys.executable, "-m", "factbench.cli"]
EVAL = [*FACTBENCH, "eval", "--model", "smollm2-135m", "--split", "dev", "--limit", "120"]
PROBE = [*FACTBENCH, "probe", "--model", "smollm2-135m", "--budget", "smoke", "--relations", "P17", "P19",
         "--per-relation", "64"]


@contextmanager
def busy_core(on: bool):
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        time.sleep(0.5 if on else 0)
        yield
    finally:
        if spinner:
            spinner.kill()
            spinner.wait()


def timed(cmd: list[str], env: dict, out: Path | None) -> tuple[float, str]:
    full = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "FACTBENCH_THREADS")} | env
    start = time.perf_counter()
    done = subprocess.run([*cmd, *(["--out", str(out)] if out else [])], env=full, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip().splitlines()[-1:]}")
    said = [ln for ln in done.stderr.splitlines() if "CPU thread" in ln]
    return seconds, (said[-1] if said else "")


def measure(configs: dict[str, tuple[list[str], dict, bool, bool]], runs: int, baseline: str) -> dict:
    """configs: name -> (command, env, busy, needs a fresh --out)."""
    times: dict[str, list[float]] = {name: [] for name in configs}
    said: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(runs):
            for name, (cmd, env, busy, fresh_out) in configs.items():
                out = Path(tmp) / f"{name}-{r}" if fresh_out else None
                with busy_core(busy):
                    seconds, line = timed(cmd, env, out)
                times[name].append(seconds)
                said[name] = line
                print(f"{name} run {r + 1}: {seconds:.1f} s {line}", file=sys.stderr, flush=True)
    base = statistics.median(times[baseline])
    return {name: {"median_s": round(statistics.median(t), 1), "min_s": round(min(t), 1), "max_s": round(max(t), 1),
                   "runs": len(t), f"ratio_to_{baseline}": round(statistics.median(t) / base, 2),
                   "threads_said": said[name]}
            for name, t in times.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("what", choices=["threads", "workers", "all"])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args(argv)
    result = {"machine": {"cpus": os.cpu_count(), "affinity": len(os.sched_getaffinity(0))}}
    if args.what in ("threads", "all"):
        result["threads (eval --limit 120, SmolLM2)"] = measure({
            "idle, auto": (EVAL, {}, False, False),
            "busy, auto": (EVAL, {}, True, False),
            "busy, 2 threads forced": (EVAL, {"OMP_NUM_THREADS": "2"}, True, False),
        }, args.runs, "idle, auto")
    if args.what in ("workers", "all"):
        result["workers (probe smoke, P17+P19 x 64, SmolLM2)"] = measure({
            "1 process x 2 threads": (PROBE, {"OMP_NUM_THREADS": "2"}, False, True),
            "2 workers x 1 thread": ([*PROBE, "--workers", "2"], {}, False, True),
        }, args.runs, "1 process x 2 threads")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
