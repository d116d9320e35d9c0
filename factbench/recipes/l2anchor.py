"""L2-to-anchor SFT (METHOD.md §4, baseline): SFT + λ·‖θ − θ_a‖², a pull in weight space to anchor weights θ_a.

    factbench train --recipe l2anchor --config toy.yaml l2_lambda=1e-3 output_dir=runs/toy-l2
    factbench train --recipe l2anchor --config toy.yaml l2_lambda=matched l2_anchor=stage1 output_dir=runs/toy-l2m

The weight-space counterpart of self-distillation's output-space pull. The paper's baseline is
*gradient-matched* and pulls to the *same anchor* as self-distillation: "a gradient-matched L2 pull
towards the same anchor weights leaves about 10 points of forgetting (self-distillation about 3,
plain SFT about 15)". Here that is `l2_lambda=matched l2_anchor=stage1`; the defaults
(`l2_lambda: 1e-3`, `l2_anchor: base`) are today's fixed-λ pull to the base model, unchanged.

**Anchor** (`l2_anchor`). `base` (default): θ_a = the trainable parameters as training starts (the
base model); one stage. `stage1`: first self-distillation's stage 1, exactly (selfdistill.teacher_stage:
`teacher_epochs` of plain SFT on the Known facts, same settings and seed, into `stage1/`), then stage 2
on Known + Unknown from those weights with θ_a = them; stage 2's log starts from stage 1's last
evaluation point, as self-distillation's student does. (`teacher` and `student_init` are
self-distillation's settings and are not read here.)

**Matched λ** (`l2_lambda: matched`). Every `l2_match_every` optimizer steps (default 1), on the
step's batch (its first micro-batch under gradient accumulation), the recipe computes the gradient
norm of the distillation term self-distillation would add there,

    G_kl = ‖∇θ λ_d · τ² · KL(p_a,τ ‖ q_θ,τ)‖      (over the trainable parameters)

with the anchor model (a frozen copy of θ_a) as the teacher, at the positions `kl_on` names,
λ_d = distill_lambda, τ = distill_tau, via losses.self_distillation_loss (the top-k KL of
losses.py when teacher_cache=topk, its top-k taken from the live anchor), by torch.autograd.grad on
the same forward pass the loss uses; then sets

    λ_t = G_kl / (2·‖θ − θ_a‖)

so that the L2 term's gradient 2λ_t(θ − θ_a) has norm G_kl at that step. λ_t is held until the next
match. While θ = θ_a (stage 2's first step: it starts at its anchor) the L2 gradient is 0 whatever
λ, so λ_t = 0 and the next step matches again. Under DDP, G_kl is the mean of the ranks' norms, so
every rank uses one λ_t. λ_t and G_kl are loss terms of the log lines (`l2_lambda`, `g_kl`, beside
`ce` and `l2` = ‖θ − θ_a‖²), and the recipe card's `l2` entry records the rule, the matches, and
the mean and last λ_t.

**Cost.** Fixed λ: one copy of the trainable weights (θ_a). Matched: a frozen copy of the whole
anchor model in memory (θ_a is read from it, no second copy), and per match step one anchor forward
pass plus one extra backward pass (of the KL term, torch.autograd.grad); steps between matches cost
as fixed λ. `l2_match_every` trades that cost for how closely λ_t follows the gradients.
Under FSDP each rank sums its own shard, so the fixed-λ penalty is per shard (its gradient is
still exact); `matched` refuses fsdp and ZeRO-3 (config.check_l2). `l2_lambda` numbers are ours:
sweep them, and compare at matched acquisition (METHOD.md §7).

Path through `run` below: [stage 1, selfdistill.teacher_stage] → examples of the Known + Unknown
facts (`run.examples`) → trainable parameters (parameters.py) → the loss, `L2AnchorTrainer.loss_terms`
(cross-entropy + λ·penalty, losses.l2_anchor_penalty; the match, `_match`) → the shared loop
(`train_stage`, trainer.py) → one or two stages, the L2 settings as the card's `l2` entry.
"""

from __future__ import annotations

import copy
import math
import time

import torch

from . import losses, parameters, selfdistill
from .trainer import RecipeOutput, RecipeTrainer, stage_summary, train_stage

DEFAULT_TRAINABLE = "all"
MATCH_RULE = ("λ_t = G_kl / (2·||θ − θ_a||), G_kl = ||∇θ distill_lambda·τ²·KL(p_anchor,τ || q_θ,τ)|| over the "
              "trainable parameters on the step's (first micro-)batch, every l2_match_every optimizer steps, "
              "held between; λ_t = 0 while θ = θ_a (the L2 gradient is then 0 whatever λ)")


class L2AnchorTrainer(RecipeTrainer):
    """CE + λ·||θ − θ_a||²: λ fixed, or (`l2_lambda="matched"`, `anchor_model` given) matched to the KL term."""

    def __init__(self, *args, l2_lambda: float | str, anchor_model=None, match_every: int = 1,
                 distill_lambda: float = 1.0, distill_tau: float = 0.5, teacher_topk: int | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.l2_lambda = l2_lambda
        self.anchors = None
        self.matched = l2_lambda == "matched"
        if self.matched:
            if anchor_model is None:
                raise ValueError("l2_lambda='matched' needs the anchor model")
            self.anchor_model = anchor_model.to(self.args.device).eval().requires_grad_(False)
            self.match_every, self.lam, self.tau, self.topk = match_every, distill_lambda, distill_tau, teacher_topk
            self.lambda_t = 0.0
            self.next_match = 0  # the optimizer step of the next match
            self.matches: list[dict] = []  # {"step", "lambda", "g_kl", "distance"} per match
            self.match_seconds = 0.0

    def loss_terms(self, model, inputs, logits, targets, extras):
        if not self.matched:
            params = [p for p in model.parameters() if p.requires_grad]
            if self.anchors is None:
                # Taken at the first step, before any update, on the device the Trainer chose.
                self.anchors = [p.detach().clone() for p in params]
            terms = super().loss_terms(model, inputs, logits, targets, extras)
            ce = terms["loss"]
            l2 = losses.l2_anchor_penalty(params, self.anchors)
            return {"loss": ce + self.l2_lambda * l2, "ce": ce, "l2": l2}
        named = [(n, p) for n, p in self.model.named_parameters() if p.requires_grad]
        params = [p for _, p in named]
        if self.anchors is None:  # θ_a is the anchor model's own weights: no second copy
            anchor = dict(self.anchor_model.named_parameters())
            self.anchors = [anchor[n].detach() for n, _ in named]
        terms = super().loss_terms(model, inputs, logits, targets, extras)
        ce = terms["loss"]
        l2 = losses.l2_anchor_penalty(params, self.anchors)
        out = {"ce": ce, "l2": l2}
        if model.training and self.state.global_step >= self.next_match:
            out["g_kl"] = self._match(params, inputs, logits, targets, extras, l2)
        out["l2_lambda"] = torch.tensor(self.lambda_t)
        out["loss"] = ce + self.lambda_t * l2
        return out

    def _match(self, params, inputs, logits, targets, extras, l2) -> torch.Tensor:
        """Set λ_t from this batch's KL-term gradient norm (module docstring); returns G_kl."""
        started = time.perf_counter()
        step = self.state.global_step
        ce_mask, kl_mask = targets != -100, extras["distill_mask"][:, 1:]
        with torch.no_grad():
            anchor_logits = self.anchor_model(**inputs, use_cache=False).logits[:, :-1][kl_mask]
        teacher = losses.teacher_topk(anchor_logits, self.tau, self.topk) if self.topk else anchor_logits
        distill = losses.self_distillation_loss(logits[ce_mask], targets[ce_mask], logits[kl_mask], teacher,
                                                lam=self.lam, tau=self.tau)
        kl_term = self.lam * self.tau ** 2 * distill.kl  # what self-distillation adds to the cross-entropy
        grads = torch.autograd.grad(kl_term, params, retain_graph=True, allow_unused=True)
        g_kl = math.sqrt(sum(float(g.float().pow(2).sum()) for g in grads if g is not None))
        if self.args.world_size > 1:  # one λ_t on every rank (a collective: every rank matches at this step)
            g_kl = self.sum_across_ranks([g_kl])[0] / self.args.world_size
        distance = math.sqrt(float(l2.detach()))
        self.lambda_t = g_kl / (2 * distance) if distance > 0 else 0.0
        self.next_match = step + (self.match_every if distance > 0 else 1)
        self.matches.append({"step": step, "lambda": self.lambda_t, "g_kl": g_kl, "distance": distance})
        self.match_seconds += time.perf_counter() - started
        return torch.tensor(g_kl)

    def match_summary(self) -> dict:
        """The card's record of the matches: the rule, how many, mean and last λ_t (and G_kl)."""
        moved = [m for m in self.matches if m["distance"] > 0]
        mean = (lambda key: sum(m[key] for m in moved) / len(moved)) if moved else (lambda key: None)
        return {"rule": MATCH_RULE, "match_every": self.match_every, "matches": len(self.matches),
                "matches_at_anchor": len(self.matches) - len(moved), "lambda_mean": mean("lambda"),
                "lambda_last": self.matches[-1]["lambda"] if self.matches else None,
                "g_kl_mean": mean("g_kl"), "match_seconds": round(self.match_seconds, 3)}


def run(run) -> RecipeOutput:
    config = run.config
    stages, first_point = [], None
    run.trainable = parameters.apply(run.model, config.trainable, default=DEFAULT_TRAINABLE)
    if config.l2_anchor == "stage1":  # self-distillation's stage 1, the same function
        run.model, first_point, summary = selfdistill.teacher_stage(run)
        stages.append(summary)
    examples = run.examples()
    matched = config.l2_lambda == "matched"
    kwargs = {"l2_lambda": config.l2_lambda}
    if matched:
        kwargs |= {"anchor_model": copy.deepcopy(run.model), "match_every": config.l2_match_every,
                   "distill_lambda": config.distill_lambda, "distill_tau": config.distill_tau,
                   "teacher_topk": config.teacher_topk if config.teacher_cache == "topk" else None}
    name = "l2anchor" if config.l2_anchor == "base" else "stage2-l2anchor"
    started = time.perf_counter()
    trainer, evaluation = train_stage(run, run.model, examples, out_dir=run.out_dir, trainer_cls=L2AnchorTrainer,
                                      kl_on=config.kl_on if matched else None, stage=name, first_point=first_point,
                                      **kwargs)
    stages.append(stage_summary(name, trainer, examples, time.perf_counter() - started, evaluation.rows))
    l2 = {"anchor": config.l2_anchor, "lambda": config.l2_lambda,
          "teacher_epochs": config.teacher_epochs if config.l2_anchor == "stage1" else None}
    if matched:
        l2 |= {"distill_lambda": config.distill_lambda, "distill_tau": config.distill_tau, "kl_on": config.kl_on,
               "teacher": "the anchor model (frozen copy of θ_a)", "teacher_cache": config.teacher_cache,
               "teacher_topk": config.teacher_topk if config.teacher_cache == "topk" else None,
               **trainer.match_summary()}
    else:
        l2["rule"] = "fixed λ = l2_lambda"
    return RecipeOutput(trainer, stages, evaluation.rows, {"l2_lambda": config.l2_lambda, "l2": l2})
