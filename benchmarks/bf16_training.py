"""bf16 autocast vs fp32 for SmolLM2-135M fine-tuning on this CPU: step time, losses, answers.

    OMP_NUM_THREADS=1 python benchmarks/bf16_training.py              # 40 steps, 100 + 100 questions
    OMP_NUM_THREADS=1 python benchmarks/bf16_training.py --steps 10 --questions 20   # a quick look

Two copies of the bundled SmolLM2-135M(-Instruct) train side by side from the same initial weights
on the same batches in the same order (the demo's split of the bundled profile `smollm2-135m-p17`,
`factbench/demo.py` WORLDS['smollm2'], built in a temporary folder; batch 8, lr 1e-4, loss on the
answer tokens + eos): one in fp32, one with bf16 autocast. Their steps alternate (fp32, bf16, fp32,
bf16, ...) so that load from other processes hits both alike; the step-time median skips the first
`--warmup` steps of each.

The training step is factbench's SFT step written out, not `factbench.recipes.train`: one Trainer
run cannot be interleaved step by step with another. It does what the Trainer does with the
smollm2 settings (`RecipeTrainer.compute_loss` + the stock Trainer step): the model's forward is
wrapped in `torch.autocast("cpu", torch.bfloat16)` and its outputs cast back to fp32, as accelerate
does for `bf16=True` (the script checks that a `RecipeTrainer` with `bf16=True` gets that
autocast); fp32 master weights; `losses.answer_cross_entropy` on the fp32 logits; gradient
clipping at 1.0; fused AdamW (the Trainer's default `adamw_torch_fused`, weight decay 0) with the
linear schedule to 0 over `--steps`.

Then both final models answer, in fp32 with factbench's hf engine (greedy, 4-shot, as the per-epoch
evaluation in recipes/callbacks.py), the first `--questions` held-out questions and `--questions`
training questions (half from the `new` set, half from `known_train`): accuracy of each and the
share of questions whose greedy answer differs.

Prints a Markdown block and writes it, with every number, to benchmarks/results/bf16_training.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from factbench import asking, knowledge, models, question_sets, splits
from factbench.demo import WORLDS
from factbench.engines import engine_for
from factbench.engines.hf import cpu_has_amx
from factbench.protocol import generation_params
from factbench.recipes import load_config, losses
from factbench.recipes.examples import Collator, encode_rows, training_rows
from factbench.stats import rate_with_ci

MODES = ("fp32", "bf16")
RESULT = Path(__file__).parent / "results" / "bf16_training.json"


def cpu_name() -> str:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown"


def cpu_flags() -> dict:
    """The /proc/cpuinfo flags that decide which bf16 kernels torch can use (oneDNN needs AVX512 or AMX)."""
    try:
        flags = set(next(line for line in open("/proc/cpuinfo") if line.startswith("flags")).split(":", 1)[1].split())
    except (OSError, StopIteration):
        flags = set()
    return {f: f in flags for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16")}


def demo_split(tmp: Path) -> splits.Split:
    world = WORLDS["smollm2"]
    profile = knowledge.load_profile(knowledge.bundled_profile_dir(world.profile))
    splits.make_split(profile, splits.SplitSettings(**world.split), tmp / "split")
    return splits.load_split(tmp / "split")


def trainer_autocast(model, tmp: Path) -> dict:
    """What a RecipeTrainer with bf16=True does on this machine (the run this script stands for)."""
    from factbench.recipes.trainer import RecipeTrainer

    config = load_config({"output_dir": str(tmp / "trainer"), "disable_tqdm": True, "eval_each_epoch": False,
                          "bf16": True, "use_cpu": True})
    trainer = RecipeTrainer(model=model, args=config)
    acc = trainer.accelerator
    return {"mixed_precision": str(acc.mixed_precision), "native_amp": bool(acc.native_amp),
            "optim": str(config.optim), "max_grad_norm": config.max_grad_norm,
            "weight_decay": config.weight_decay, "lr_scheduler_type": str(config.lr_scheduler_type)}


def batches(n_examples: int, batch_size: int, steps: int, seed: int) -> list[list[int]]:
    """Example indices of each step: a fresh seeded permutation every epoch (same for both modes)."""
    g = torch.Generator().manual_seed(seed)
    out, order = [], []
    while len(out) < steps:
        if len(order) < batch_size:
            order += torch.randperm(n_examples, generator=g).tolist()
        out.append(order[:batch_size])
        order = order[batch_size:]
    return out


class Run:
    """One training run: model, optimizer, schedule, precision."""

    def __init__(self, model, mode: str, lr: float, steps: int):
        from transformers import get_linear_schedule_with_warmup

        self.model, self.mode = model.train(), mode
        self.optimizer = make_adamw(model.parameters(), lr)
        self.schedule = get_linear_schedule_with_warmup(self.optimizer, 0, steps)
        self.losses: list[float] = []
        self.seconds: list[float] = []

    def step(self, batch: dict) -> None:
        start = time.perf_counter()
        labels = batch["labels"]
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if self.mode == "bf16" else nullcontext()
        with ctx:  # the forward only, as accelerate wraps model.forward; logits back to fp32 after
            logits = self.model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                use_cache=False).logits
        logits, targets = logits.float()[:, :-1], labels[:, 1:]
        mask = targets != -100
        loss = losses.answer_cross_entropy(logits[mask], targets[mask])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.optimizer.step()
        self.schedule.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.seconds.append(time.perf_counter() - start)
        self.losses.append(float(loss.detach()))


def make_adamw(params, lr: float):
    try:
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, fused=True)
    except (RuntimeError, TypeError):  # no fused kernel on this build
        return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)


def l2(tensors) -> float:
    return math.sqrt(sum(float(t.double().pow(2).sum()) for t in tensors))


def weight_distances(a, b, init: dict) -> dict:
    pa, pb = dict(a.named_parameters()), dict(b.named_parameters())
    diff = l2(pb[k].detach() - pa[k].detach() for k in pa)
    norm = l2(p.detach() for p in pa.values())
    update = l2(pa[k].detach() - init[k] for k in pa)
    update_b = l2(pb[k].detach() - init[k] for k in pb)
    return {"l2_fp32_minus_bf16": diff, "l2_fp32_weights": norm, "relative_to_weights": diff / norm,
            "l2_fp32_update": update, "l2_bf16_update": update_b, "relative_to_fp32_update": diff / update}


def evaluate(model, tokenizer, facts_by_set: dict) -> dict:
    model.eval()
    engine = engine_for(model, tokenizer, batch_size=32, dtype="float32", device="cpu")
    params = generation_params()
    return {name: asking.answer(engine, facts, params=params).records for name, facts in facts_by_set.items()}


def pct(x: float) -> str:
    return f"{100 * x:.2f}%"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=40, help="training steps per mode (default 40)")
    ap.add_argument("--warmup", type=int, default=2, help="first steps of each mode left out of the timing")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--questions", type=int, default=100, help="held-out and training questions each (default 100)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--loss-tolerance", type=float, default=0.01,
                    help="largest acceptable per-step relative loss difference (default 0.01)")
    ap.add_argument("--agreement-tolerance", type=float, default=0.97,
                    help="smallest acceptable share of identical greedy answers (default 0.97)")
    ap.add_argument("--max-ratio", type=float, default=1.0,
                    help="bf16 must take less than this share of the fp32 step time to be worth it (default 1.0)")
    ap.add_argument("--out", type=Path, default=RESULT)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    command = "OMP_NUM_THREADS=1 python benchmarks/bf16_training.py" + "".join(f" {a}" for a in sys.argv[1:])
    started = time.perf_counter()

    loaded = models.load(models.DEFAULT_MODEL)
    tokenizer = loaded.tokenizer
    base = loaded.model.float()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        split = demo_split(tmp)
        trainer_check = trainer_autocast(base, tmp)
    rows = training_rows(split)
    examples = encode_rows(tokenizer, rows, 256, "eos")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    collate = Collator(pad, "answer")
    order = batches(len(examples), args.batch_size, args.steps, args.seed)

    init = {k: p.detach().clone() for k, p in base.named_parameters()}
    runs = {"fp32": Run(base, "fp32", args.lr, args.steps),
            "bf16": Run(copy.deepcopy(base), "bf16", args.lr, args.steps)}
    tokens = answer_tokens = 0
    for i, idx in enumerate(order):
        batch = collate([examples[j] for j in idx])
        tokens += int(batch["attention_mask"].sum())
        answer_tokens += int((batch["labels"] != -100).sum())
        for mode in MODES:  # ABAB...: the same batch, fp32 then bf16
            runs[mode].step(batch)
        print(f"step {i + 1}/{args.steps}: " + ", ".join(
            f"{m} loss {runs[m].losses[-1]:.4f} {runs[m].seconds[-1]:.2f} s" for m in MODES), file=sys.stderr)
    train_seconds = time.perf_counter() - started

    timed = {m: runs[m].seconds[args.warmup:] for m in MODES}
    median = {m: statistics.median(v) for m, v in timed.items()}
    ratio = median["bf16"] / median["fp32"]
    lf, lb = runs["fp32"].losses, runs["bf16"].losses
    rel = [abs(b - f) / f for f, b in zip(lf, lb)]
    last = min(5, args.steps)
    final_rel = abs(statistics.mean(lb[-last:]) - statistics.mean(lf[-last:])) / statistics.mean(lf[-last:])
    weights = weight_distances(runs["fp32"].model, runs["bf16"].model, init)
    del init

    n_train = args.questions // 2
    facts_by_set = {"heldout": question_sets.facts("heldout", split)[:args.questions],
                    "new": question_sets.facts("new", split)[:n_train],
                    "known_train": question_sets.facts("known_train", split)[:args.questions - n_train]}
    eval_start = time.perf_counter()
    answers = {m: evaluate(runs[m].model, tokenizer, facts_by_set) for m in MODES}
    eval_seconds = time.perf_counter() - eval_start

    per_set, all_same, all_em = {}, [], {m: [] for m in MODES}
    for name in facts_by_set:
        fa, fb = answers["fp32"][name], answers["bf16"][name]
        same = [a["completion"] == b["completion"] for a, b in zip(fa, fb, strict=True)]
        per_set[name] = {"questions": len(same), "fp32_em": sum(r["em"] for r in fa) / len(fa),
                         "bf16_em": sum(r["em"] for r in fb) / len(fb), "answers_differ": 1 - sum(same) / len(same),
                         "em_differs": sum(a["em"] != b["em"] for a, b in zip(fa, fb)) / len(fa)}
        all_same += same
        for m in MODES:
            all_em[m] += [r["em"] for r in answers[m][name]]
    differ = [not s for s in all_same]
    differ_ci = rate_with_ci(differ)
    heldout_n = len(facts_by_set["heldout"])
    sections = {"heldout": (0, heldout_n), "train": (heldout_n, len(differ))}
    acc = {m: {k: sum(all_em[m][a:b]) / (b - a) for k, (a, b) in sections.items()} for m in MODES}
    differ_by = {k: sum(differ[a:b]) / (b - a) for k, (a, b) in sections.items()}
    agreement = 1 - sum(differ) / len(differ)
    losses_ok = max(rel) <= args.loss_tolerance
    answers_ok = agreement >= args.agreement_tolerance
    speed_ok = ratio < args.max_ratio
    total_seconds = time.perf_counter() - started

    result = {
        "command": command, "machine": cpu_name(), "amx": cpu_has_amx(),
        "cpu_flags": cpu_flags(), "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkldnn_bf16_supported": bool(getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", lambda: None)()),
        "threads": torch.get_num_threads(), "torch": torch.__version__,
        "transformers": __import__("transformers").__version__, "model": models.DEFAULT_MODEL,
        "training_path": ("plain loop of factbench's SFT step (encode_rows, Collator, answer_cross_entropy, "
                          "autocast around the forward as accelerate does, fp32 logits, clip 1.0, fused AdamW, "
                          "linear schedule); not recipes.train, which cannot interleave two runs step by step"),
        "trainer_with_bf16_true": trainer_check,
        "data": {"split": "demo split of smollm2-135m-p17 (WORLDS['smollm2'])", "training_examples": len(examples),
                 "steps": args.steps, "batch_size": args.batch_size, "lr": args.lr, "seed": args.seed,
                 "epochs": args.steps * args.batch_size / len(examples), "tokens": tokens,
                 "answer_tokens": answer_tokens},
        "timing": {"warmup_steps_skipped": args.warmup, "timed_steps_each": len(timed["fp32"]),
                   "median_step_seconds": median, "bf16_over_fp32": ratio,
                   "step_seconds": {m: [round(s, 4) for s in runs[m].seconds] for m in MODES}},
        "losses": {"fp32": lf, "bf16": lb, "relative_difference": rel, "max_relative_difference": max(rel),
                   "mean_relative_difference": statistics.mean(rel), "first_step_relative_difference": rel[0],
                   f"last_{last}_steps_mean_relative_difference": final_rel},
        "weights": weights,
        "answers": {"per_set": per_set, "accuracy": acc, "answers_differ": differ_by,
                    "answers_differ_all": differ_ci, "agreement": agreement, "questions": len(differ)},
        "tolerance": {"max_relative_loss_difference": args.loss_tolerance,
                      "min_answer_agreement": args.agreement_tolerance,
                      "max_step_time_ratio": args.max_ratio, "speed_ok": speed_ok, "losses_ok": losses_ok,
                      "answers_ok": answers_ok, "faithful": losses_ok and answers_ok,
                      "acceptable": speed_ok and losses_ok and answers_ok},
        "seconds": {"training_both_modes": round(train_seconds, 1), "evaluation_both_models": round(eval_seconds, 1),
                    "total": round(total_seconds, 1), "process_cpu": round(time.process_time(), 1)},
    }
    md = markdown(result)
    result["markdown"] = md
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(md)
    print(f"(written to {args.out})")
    return 0


def markdown(r: dict) -> str:
    t, lo, w, a, tol = r["timing"], r["losses"], r["weights"], r["answers"], r["tolerance"]
    med, d = t["median_step_seconds"], r["data"]
    ci = a["answers_differ_all"]
    last_key = next(k for k in lo if k.startswith("last_"))
    n_last = int(last_key.split("_")[1])
    flags = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in r["cpu_flags"].items())
    lines = [
        "```bash", r["command"], "```", "",
        f"Machine: {r['machine']} (/proc/cpuinfo: {flags}; torch CPU capability {r['torch_cpu_capability']}, "
        f"oneDNN bf16 {'usable' if r['mkldnn_bf16_supported'] else 'not usable'}), {r['threads']} thread, "
        f"torch {r['torch']}, transformers {r['transformers']}. {r['model']}, {d['training_examples']} training "
        f"examples, batch {d['batch_size']}, lr {d['lr']:g}, {d['steps']} steps per mode ({d['epochs']:.1f} epochs), "
        f"seed {d['seed']}; same initial weights and batches; steps alternate fp32, bf16, fp32, ...",
        f"Training path: {r['training_path']}. A RecipeTrainer with bf16=True here gets mixed_precision="
        f"{r['trainer_with_bf16_true']['mixed_precision']}, native_amp={r['trainer_with_bf16_true']['native_amp']}.",
        "",
        "| | fp32 | bf16 autocast | bf16 / fp32 |",
        "|---|---:|---:|---:|",
        f"| median step time ({t['timed_steps_each']} steps each, first {t['warmup_steps_skipped']} skipped) | "
        f"{med['fp32']:.2f} s | {med['bf16']:.2f} s | **{t['bf16_over_fp32']:.2f}×** |",
        f"| mean loss, {last_key.replace('_', ' ')[:-len(' mean relative difference')]} | "
        f"{statistics.mean(lo['fp32'][-n_last:]):.4f} | {statistics.mean(lo['bf16'][-n_last:]):.4f} | "
        f"{lo[last_key]:.2%} apart |",
        f"| held-out accuracy ({a['per_set']['heldout']['questions']} q, fp32 eval) | {a['accuracy']['fp32']['heldout']:.1%} | "
        f"{a['accuracy']['bf16']['heldout']:.1%} | |",
        f"| training-question accuracy ({a['questions'] - a['per_set']['heldout']['questions']} q: new + known_train) | "
        f"{a['accuracy']['fp32']['train']:.1%} | {a['accuracy']['bf16']['train']:.1%} | |",
        "",
        f"- per-step loss, |bf16 − fp32| / fp32 over {len(lo['fp32'])} steps: max **{pct(lo['max_relative_difference'])}**, "
        f"mean {pct(lo['mean_relative_difference'])} (step 1, same weights: {pct(lo['first_step_relative_difference'])})",
        f"- final weights: ‖θ_bf16 − θ_fp32‖ / ‖θ_fp32‖ = {w['relative_to_weights']:.2e}; "
        f"= {w['relative_to_fp32_update']:.1%} of the fp32 run's own update ‖θ_fp32 − θ_0‖",
        f"- greedy answers that differ (fp32 evaluation of both): **{pct(1 - a['agreement'])}** of {a['questions']} "
        f"(95% bootstrap {pct(ci['low'])} – {pct(ci['high'])}); held-out {pct(a['answers_differ']['heldout'])}, "
        f"training {pct(a['answers_differ']['train'])}",
        f"- tolerance: bf16 step time < {tol['max_step_time_ratio']:g}× fp32 ({'met' if tol['speed_ok'] else 'NOT met'}), "
        f"every step's loss within {tol['max_relative_loss_difference']:.0%} "
        f"({'met' if tol['losses_ok'] else 'NOT met'}), answers agree on ≥ {tol['min_answer_agreement']:.0%} "
        f"({'met' if tol['answers_ok'] else 'NOT met'}) → **{'acceptable' if tol['acceptable'] else 'not acceptable'}**",
        f"- CPU time: training {r['seconds']['training_both_modes']:.0f} s, evaluation "
        f"{r['seconds']['evaluation_both_models']:.0f} s, total {r['seconds']['total']:.0f} s wall, "
        f"{r['seconds']['process_cpu']:.0f} s CPU",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
