"""Training-step cost of self-distillation (live teacher, cached top-k teacher) relative to SFT.

    OMP_NUM_THREADS=1 python benchmarks/train_step.py                 # SmolLM2-135M, batch 8, CPU
    python benchmarks/train_step.py --steps 10 --batch-size 16 --topk 64
    python benchmarks/train_step.py --random-init                     # same architecture, no weights needed

A step is what the Trainer runs per batch: the recipe's `compute_loss` (forward, teacher forward
for the live teacher, loss), backward, AdamW step, zero_grad. All three recipes train the same
model on the same batch of `Q: ...\\nA: ...` EntityQuestions examples, and their steps are
interleaved (SFT, live, cached, SFT, ...) so that load from other processes hits all three alike;
the median over `--steps` timed steps (after one warm-up step each) is reported.

Peak memory: each recipe runs again in a child process of its own: once the model is loaded
and the batch built, the kernel's RSS high-water mark is reset (`/proc/self/clear_refs`), and
after three full steps the peak resident set size (`VmHWM`; everything torch allocates counts)
is reported, with the RSS at the reset and the difference: so the peak covers the teacher copy,
the cache, gradients, AdamW state and activations, not the transient peak of loading weights. On CUDA the same children report `torch.cuda.max_memory_allocated` instead.
The cached teacher's one-off pass over the data (the cache) happens inside its child, before
training, as it does in the recipe; its time is reported separately, per example.

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch

from factbench import data, models
from factbench.recipes import load_config
from factbench.recipes.examples import Collator, encode_rows
from factbench.recipes.selfdistill import SelfDistillTrainer, cache_teacher
from factbench.recipes.trainer import RecipeTrainer

MODES = ("sft", "live", "cached")


def rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark (VmHWM) to the current RSS (Linux >= 4.0), so that
    the peak of loading the model does not hide the peak of training."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """VmHWM: the peak RSS since the last reset (else since the process started)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def setup(args):
    """Model, tokenizer, and one fixed batch of B training examples (with the teacher cache)."""
    if args.random_init:  # the architecture's cost without its weights: a folder with config + tokenizer will do
        from transformers import AutoModelForCausalLM

        light = models.load(args.model, weights=False)
        torch.manual_seed(0)
        model = AutoModelForCausalLM.from_config(light.config)
        tokenizer = light.tokenizer
    else:
        loaded = models.load(args.model)
        model, tokenizer = loaded.model, loaded.tokenizer
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model.to(device).train()
    facts = data.load("train", ["P17", "P19", "P26", "P69"])[: args.batch_size]
    rows = [{"question": f.question, "answer": f.answers[0], "kind": "unknown"} for f in facts]
    examples = encode_rows(tokenizer, rows, 256)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collator = Collator(pad, "answer", "answer")
    return model, tokenizer, examples, collator, device


def trainer_for(mode: str, model, teacher, out_dir: str):
    config = load_config({"output_dir": out_dir, "disable_tqdm": True, "eval_each_epoch": False,
                          "use_cpu": not torch.cuda.is_available()})
    if mode == "sft":
        return RecipeTrainer(model=model, args=config)
    return SelfDistillTrainer(model=model, args=config, teacher=teacher if mode == "live" else None,
                              lam=1.0, tau=0.5)


def batch_for(mode, examples, collator, cached, device):
    batch = collator(cached if mode == "cached" else examples)
    return {k: v.to(device) for k, v in batch.items()}


def step(trainer, model, batch, optimizer, device):
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_steps(args) -> dict:
    """All three recipes on one model, steps interleaved; median seconds per step."""
    model, tokenizer, examples, collator, device = setup(args)
    teacher = copy.deepcopy(model).eval().requires_grad_(False)
    start = time.perf_counter()
    cached = cache_teacher(teacher, examples, collator, tau=0.5, k=args.topk, batch_size=args.batch_size,
                           device=device)
    cache_seconds = time.perf_counter() - start
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    with tempfile.TemporaryDirectory() as tmp:
        trainers = {m: trainer_for(m, model, teacher, tmp) for m in MODES}
        batches = {m: batch_for(m, examples, collator, cached, device) for m in MODES}
        times = {m: [] for m in MODES}
        for i in range(args.steps + 1):
            for m in MODES:
                t = time.perf_counter()
                step(trainers[m], model, batches[m], optimizer, device)
                if i:  # the first round is warm-up
                    times[m].append(round(time.perf_counter() - t, 4))
    tokens = int(batches["sft"]["attention_mask"].sum())
    answer_tokens = int((batches["sft"]["labels"] != -100).sum())
    median = {m: statistics.median(v) for m, v in times.items()}
    return {"median_step_seconds": median, "step_seconds": times,
            "ratio_to_sft": {m: round(median[m] / median["sft"], 3) for m in MODES},
            "cache_seconds_per_example": round(cache_seconds / len(examples), 4),
            "batch": {"examples": len(examples), "tokens": tokens, "answer_tokens": answer_tokens,
                      "vocab": len(tokenizer)}}


def memory_child(args) -> dict:
    """One recipe alone in this process: peak memory over a few full steps."""
    import gc

    model, tokenizer, examples, collator, device = setup(args)
    gc.collect()
    reset = reset_peak_rss()
    base_rss = rss_mb()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        base_cuda = torch.cuda.memory_allocated() / 2**20
    teacher, batch_examples = None, examples
    if args.mode == "live":
        teacher = copy.deepcopy(model).eval().requires_grad_(False)
    elif args.mode == "cached":  # the recipe's order: cache with the model itself, then train it
        batch_examples = cache_teacher(model, examples, collator, tau=0.5, k=args.topk,
                                       batch_size=args.batch_size, device=device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-5)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = trainer_for(args.mode, model, teacher, tmp)
        batch = batch_for(args.mode, batch_examples, collator, batch_examples, device)
        for _ in range(3):
            step(trainer, model, batch, optimizer, device)
    out = {"mode": args.mode, "rss_after_load_mb": round(base_rss, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
           "peak_reset_after_load": reset}
    out["peak_rss_delta_mb"] = round(out["peak_rss_mb"] - base_rss, 1)
    if device.type == "cuda":
        out["cuda_after_load_mb"] = round(base_cuda, 1)
        out["cuda_peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=models.DEFAULT_MODEL)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--steps", type=int, default=6, help="timed steps per recipe (default 6)")
    ap.add_argument("--topk", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--random-init", action="store_true", help="random weights of the same architecture")
    ap.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # memory child
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode:
        print(json.dumps(memory_child(args)))
        return 0

    result = {"model": args.model, "random_init": args.random_init, "threads": args.threads,
              "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or "cpu",
              "torch": torch.__version__, "topk": args.topk, "timing": time_steps(args), "memory": {}}
    child = [sys.executable, __file__, "--model", args.model, "--batch-size", str(args.batch_size),
             "--topk", str(args.topk), "--threads", str(args.threads)] + (["--random-init"] if args.random_init else [])
    for m in MODES:
        done = subprocess.run([*child, "--mode", m], capture_output=True, text=True, check=True)
        result["memory"][m] = json.loads(done.stdout.strip().splitlines()[-1])
    key = "cuda_peak_mb" if torch.cuda.is_available() else "peak_rss_mb"
    result["memory_ratio_to_sft"] = {m: round(result["memory"][m][key] / result["memory"]["sft"][key], 3)
                                     for m in MODES}
    if not torch.cuda.is_available():
        result["memory_delta_ratio_to_sft"] = {
            m: round(result["memory"][m]["peak_rss_delta_mb"] / result["memory"]["sft"]["peak_rss_delta_mb"], 3)
            for m in MODES}
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
