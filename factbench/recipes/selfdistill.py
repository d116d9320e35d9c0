"""Self-distillation (METHOD.md §4, recipe 3): learn new facts while a frozen teacher holds the
output distribution in place.

    factbench train --recipe selfdistill --config toy.yaml output_dir=runs/toy-sd
    factbench train --recipe selfdistill --config toy.yaml teacher_cache=topk teacher_topk=64 ...

Stage 1 (teacher): `teacher_epochs` (1) epoch of plain SFT on the **Known** training facts only:
the model learns the answer format without new facts. That model is frozen as the teacher
(`teacher: base` skips stage 1 and uses the base model).

Stage 2 (student, starting from the teacher unless `student_init: base`): Known + Unknown facts with

    L = CE(y | x) + λ · τ² · KL(p_T,τ ‖ q_θ,τ)

over the full vocabulary at each answer position (`kl_on: all`: every token), averaged over the
non-padded answer tokens; λ = 1, τ = 0.5 by default (losses.py has the loss and its gradient).
The teacher is off-policy: it reads the same teacher-forced `Q: ...\\nA: ...` inputs.

Teacher in memory (`teacher_cache: none`): one extra forward pass per step and a second copy of
the weights. Cached teacher (`teacher_cache: topk`): the teacher runs once over the stage-2 data
before training, its top-k log-probabilities (plus the log-mass of the rest) are kept per answer
position, and the teacher is dropped, so training holds a single model; the KL is then over k + 1
outcomes (losses.py), exact when k is the vocabulary size. Under DDP each rank computes the whole
cache in its own memory (no file, nothing shared): the teachers are identical, so are the caches.

Path through `run` below: examples (`run.examples`) → trainable parameters (parameters.py) →
stage 1 (`teacher_stage`: `train_stage` with the plain cross-entropy) → the teacher, in memory or cached
(`cache_teacher`) → stage 2 with `SelfDistillTrainer.loss_terms` (losses.self_distillation_loss)
→ two stages and the stage-2 rows, the distillation settings as the card's `distillation` entry.
"""

from __future__ import annotations

import copy
import time

import torch

from . import losses, parameters, shared_teacher
from .examples import Collator
from .trainer import RecipeOutput, RecipeTrainer, stage_summary, train_stage

DEFAULT_TRAINABLE = "all"


class SelfDistillTrainer(RecipeTrainer):
    """CE + λτ²·KL to a teacher held in memory (`teacher`) or cached in the batches (`teacher=None`)."""

    def __init__(self, *args, teacher=None, lam: float, tau: float, **kwargs):
        super().__init__(*args, **kwargs)
        self.lam, self.tau = lam, tau
        self.teacher = teacher
        if teacher is not None:
            self.teacher = teacher.to(self.args.device).eval().requires_grad_(False)

    def loss_terms(self, model, inputs, logits, targets, extras):
        ce_mask = targets != -100
        kl_mask = extras["distill_mask"][:, 1:]
        kl_logits = logits[kl_mask]
        same_positions = self.args.loss_on == self.args.kl_on
        ce_logits = kl_logits if same_positions else logits[ce_mask]
        if self.teacher is None:
            teacher = losses.TopKTeacher(extras["teacher_ids"], extras["teacher_logprobs"], extras["teacher_other"])
        else:
            with torch.no_grad():
                teacher = self.teacher(**inputs, use_cache=False).logits[:, :-1][kl_mask]
        result = losses.self_distillation_loss(ce_logits, targets[ce_mask], kl_logits, teacher,
                                               lam=self.lam, tau=self.tau)
        return {"loss": result.total, "ce": result.ce, "kl": result.kl}


@torch.no_grad()
def cache_teacher(teacher, examples: list[dict], collator: Collator, *, tau: float, k: int, batch_size: int,
                  device, autocast_bf16: bool = False) -> list[dict]:
    """`examples` with the teacher's top-k at their KL positions attached (as CPU tensors)."""
    was_training = teacher.training
    teacher.eval()
    out = []
    for start in range(0, len(examples), batch_size):
        chunk = examples[start:start + batch_size]
        batch = collator(chunk)
        mask = batch["distill_mask"][:, 1:].to(device)
        with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16, enabled=autocast_bf16):
            logits = teacher(input_ids=batch["input_ids"].to(device),
                             attention_mask=batch["attention_mask"].to(device), use_cache=False).logits
        top = losses.teacher_topk(logits[:, :-1][mask], tau, k)
        counts = mask.sum(1).tolist()
        for e, ids, logprobs, other in zip(chunk, top.ids.cpu().split(counts), top.logprobs.float().cpu().split(counts),
                                           top.other_logprob.float().cpu().split(counts), strict=True):
            out.append(e | {"teacher_ids": ids, "teacher_logprobs": logprobs, "teacher_other": other})
    teacher.train(was_training)
    return out


def teacher_stage(run) -> tuple[object, object, dict]:
    """Stage 1: `teacher_epochs` of plain SFT of `run.model` (in place) on the Known training facts.

    Returns the trained model (`run.model` itself), the evaluation point stage 2 starts from
    (callbacks.EpochEvaluation.last_point: pass it to `train_stage(..., first_point=point)`) and
    the stage's card entry, `stage1-teacher`. The stage trains into `run.out_dir / "stage1"` (its
    own training_log.jsonl). Shared by self-distillation and the L2 anchor's `l2_anchor: stage1`, so
    that both recipes anchor to the same weights (same data, settings and seed). With `teacher_dir`
    set, a teacher an earlier run kept there for the same stage 1 is loaded instead, and this one is
    kept there otherwise (shared_teacher.py).
    """
    config = run.config
    known = run.examples(("known",))

    def train():
        started = time.perf_counter()
        trainer, evaluation = train_stage(run, run.model, known, out_dir=run.out_dir / "stage1",
                                          epochs=config.teacher_epochs, stage="stage1-teacher")
        summary = stage_summary("stage1-teacher", trainer, known, time.perf_counter() - started, evaluation.rows)
        return run.model, evaluation.last_point(), summary  # stage 1's trainer and optimizer state go here

    return shared_teacher.reuse_or_train(run, known, train) if config.teacher_dir else train()


def run(run) -> RecipeOutput:
    config = run.config
    everything = run.examples()
    run.trainable = parameters.apply(run.model, config.trainable, default=DEFAULT_TRAINABLE)
    stages, extra = [], {"distillation": {
        "lambda": config.distill_lambda, "tau": config.distill_tau, "teacher": config.teacher,
        "teacher_epochs": config.teacher_epochs if config.teacher == "stage1" else None,
        "student_init": config.student_init, "kl_on": config.kl_on, "teacher_cache": config.teacher_cache,
        "teacher_topk": config.teacher_topk if config.teacher_cache == "topk" else None,
        "divergence": "forward KL(teacher || student), full vocabulary" if config.teacher_cache == "none" else
                      f"forward KL over the teacher's top-{config.teacher_topk} tokens + one 'other' bucket"}}
    teacher_point = None

    # ---- stage 1: the teacher ----------------------------------------------------------------------
    if config.teacher == "stage1":  # only stage 1 needs Known facts: `teacher: base` trains without any
        _, teacher_point, summary = teacher_stage(run)
        stages.append(summary)
    teacher_model = run.model

    # ---- stage 2: the student ----------------------------------------------------------------------
    if config.student_init == "base" and config.teacher == "stage1":
        student = run.load_base()
        parameters.apply(student, config.trainable, default=DEFAULT_TRAINABLE)
        teacher_point = None  # the student does not start where the teacher is
    elif config.teacher_cache == "none":
        student = run.model
        teacher_model = copy.deepcopy(run.model)
    else:
        student = run.model  # cached: the teacher's numbers are taken before the student moves

    if config.teacher_cache == "topk":
        started = time.perf_counter()
        device = config.device  # the device this process trains on
        teacher_model.to(device)
        pad = run.tokenizer.pad_token_id if run.tokenizer.pad_token_id is not None else run.tokenizer.eos_token_id
        everything = cache_teacher(teacher_model, everything, Collator(pad, config.loss_on, config.kl_on),
                                   tau=config.distill_tau, k=config.teacher_topk,
                                   batch_size=config.per_device_train_batch_size, device=device,
                                   autocast_bf16=config.bf16)
        extra["distillation"]["cache_seconds"] = round(time.perf_counter() - started, 2)
        teacher_model = run.model = None  # the student trains alone
    run.model = student
    started = time.perf_counter()
    trainer, evaluation = train_stage(
        run, student, everything, out_dir=run.out_dir, trainer_cls=SelfDistillTrainer, kl_on=config.kl_on,
        first_point=teacher_point, teacher=teacher_model, lam=config.distill_lambda, tau=config.distill_tau)
    stages.append(stage_summary("stage2-student", trainer, everything, time.perf_counter() - started, evaluation.rows))
    return RecipeOutput(trainer, stages, evaluation.rows, extra)
