"""SFT step time of SmolLM2-135M under 2-process DDP (torchrun, gloo, CPU) vs one process, same global batch.

    python benchmarks/ddp_step.py                    # 3 runs of each setting, 6 timed steps each
    python benchmarks/ddp_step.py --runs 1 --steps 4 --global-batch 8

Settings (every one trains on the same global batch of `--global-batch` EntityQuestions examples):

    one-1t    one process, 1 thread, batch G
    one-2t    one process, 2 threads, batch G
    ddp-2x1t  torchrun --nproc_per_node 2, 1 thread each (OMP_NUM_THREADS=1), batch G/2 per rank, gloo

A step is the recipes' SFT step: answer-token cross-entropy (RecipeTrainer.compute_loss on the real
recipe config, which under torchrun turns on use_cpu + gloo), backward (under DDP: the gradient
all-reduce), AdamW step. Each run times `--steps` steps after one warm-up step and reports its
median; the table gives the median of the runs' medians and the ratio to one-1t. The settings run by
turns (one-1t, one-2t, ddp-2x1t, one-1t, ...) so that load from other processes hits all alike.
Prints one JSON object; BENCHMARKS.md keeps the results.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time

SETTINGS = {"one-1t": (1, 1), "one-2t": (1, 2), "ddp-2x1t": (2, 1)}  # processes, threads each


def child(args) -> None:
    """One run (one process, or one rank under torchrun): print the median step time on rank 0."""
    import torch

    from factbench import data, models
    from factbench.recipes import load_config
    from factbench.recipes.examples import Collator, encode_rows
    from factbench.recipes.trainer import RecipeTrainer

    torch.set_num_threads(args.threads)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    with tempfile.TemporaryDirectory() as tmp:
        config = load_config({"output_dir": tmp, "disable_tqdm": True, "eval_each_epoch": False, "use_cpu": True})
        loaded = models.load(args.model)
        model, tokenizer = loaded.model, loaded.tokenizer
        facts = data.load("train", ["P17", "P19", "P26", "P69"])[: args.global_batch]
        mine = facts[rank * args.global_batch // world:(rank + 1) * args.global_batch // world]
        rows = [{"question": f.question, "answer": f.answers[0], "kind": "unknown"} for f in mine]
        pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        batch = Collator(pad, "answer")(encode_rows(tokenizer, rows, 256))
        trainer = RecipeTrainer(model=model, args=config)  # its compute_loss: the recipes' SFT loss
        if world > 1:
            wrapped = torch.nn.parallel.DistributedDataParallel(model, find_unused_parameters=False)
        else:
            wrapped = model
        wrapped.train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
        times = []
        for i in range(args.steps + 1):
            if world > 1:
                torch.distributed.barrier()  # every rank starts the step together
            t = time.perf_counter()
            loss = trainer.compute_loss(wrapped, dict(batch))
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if world > 1:
                torch.distributed.barrier()  # the step ends when the slower rank is done
            if i:
                times.append(time.perf_counter() - t)
    if rank == 0:
        print("RESULT " + json.dumps({"median": statistics.median(times), "steps": times,
                                      "tokens_per_rank": int(batch["attention_mask"].sum())}), flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_once(name: str, args) -> dict:
    processes, threads = SETTINGS[name]
    common = ["--child", "--threads", str(threads), "--steps", str(args.steps), "--global-batch",
              str(args.global_batch), "--model", args.model]
    env = os.environ | {"OMP_NUM_THREADS": str(threads)}
    if processes == 1:
        cmd = [sys.executable, __file__, *common]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
               "--master_addr", "127.0.0.1", "--master_port", str(free_port()), __file__, *common]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}")
    return json.loads(lines[-1].removeprefix("RESULT "))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--global-batch", type=int, default=8)
    p.add_argument("--model", default="smollm2-135m")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        return child(args)
    runs = {name: [] for name in SETTINGS}
    for _ in range(args.runs):
        for name in SETTINGS:
            runs[name].append(run_once(name, args))
    medians = {name: statistics.median(r["median"] for r in rs) for name, rs in runs.items()}
    print(json.dumps({
        "model": args.model, "global_batch": args.global_batch, "steps": args.steps, "runs": args.runs,
        "median_step_seconds": {k: round(v, 3) for k, v in medians.items()},
        "ratio_to_one_1t": {k: round(v / medians["one-1t"], 2) for k, v in medians.items()},
        "run_medians": {k: [round(r["median"], 3) for r in rs] for k, rs in runs.items()},
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "loadavg_at_end": os.getloadavg()},
        "when": time.strftime("%Y-%m-%d %H:%M:%S"),
    }, indent=2))


if __name__ == "__main__":
    main()
