"""The training losses of the reference recipes, as pure functions of tensors (METHOD.md §4).

Every function takes logits already *aligned* with their targets: row i of `logits` predicts
`targets[i]`. The trainers do the causal shift and pick the positions (answer tokens, or every
real token); keeping that out of here lets the unit tests check the arithmetic on its own.

Self-distillation (stage 2), per answer position with student logits z and target y:

    ℓ = CE(y | z) + λ · τ² · KL(p_T,τ ‖ q_τ),    p_T,τ = softmax(z_T / τ),  q_τ = softmax(z / τ)

averaged over the positions (CE over the CE positions, KL over the KL positions; by default both
are the non-padded answer tokens, so the loss is one mean). The gradient of one position's ℓ with
respect to its logits is

    ∂ℓ/∂z = q_1 − onehot(y) + λ · τ · (q_τ − p_T,τ)

(∂/∂z of KL(p ‖ softmax(z/τ)) is (q_τ − p)/τ, and the τ² factor leaves one τ), and the batch loss
divides it by the number of positions. tests/test_recipes_losses.py checks this numerically.

**Cached teacher (top-k).** Holding the teacher in memory doubles the model memory, so the teacher
can instead be run once over the training data, keeping at each KL position only its k most likely
tokens' log-probabilities at temperature τ plus the log-mass of everything else. The KL is then
taken over k + 1 outcomes: the k tokens, and one "other" bucket holding the rest of the
vocabulary for teacher and student alike:

    KL_k = Σ_{i ∈ top-k} p_i (log p_i − log q_i)  +  p_other (log p_other − log q_other)

We chose the bucket over renormalising the top-k probabilities because it is still an exact KL
divergence (between the two distributions coarsened to k + 1 outcomes): it never exceeds the full
KL, it still charges the student for mass it puts outside the teacher's top-k, and it is the full
KL exactly when k is the vocabulary size (the bucket is then empty). What it drops is how the
student spreads the "other" mass over the tail, which at τ = 0.5 (a sharpened teacher) holds
little probability. Renormalising instead would stop penalising mass on tail tokens altogether.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F


class TopKTeacher(NamedTuple):
    """A cached teacher at some positions: top-k token ids, their log-probabilities at τ, and the
    log of the probability mass on all other tokens (−inf when k covers the vocabulary)."""

    ids: torch.Tensor  # (N, k) int64
    logprobs: torch.Tensor  # (N, k) float, log p_T,τ of those ids
    other_logprob: torch.Tensor  # (N,) float


class DistillLoss(NamedTuple):
    total: torch.Tensor
    ce: torch.Tensor
    kl: torch.Tensor


def safe_mean(values: torch.Tensor) -> torch.Tensor:
    """Mean that is 0 (not NaN) for an empty tensor: a batch whose answers were all cut off."""
    return values.sum() / max(values.numel(), 1)


def answer_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the given positions (N, V) and targets (N,).

    Computed in float32 at least: bf16 log-softmax over a 50k-150k vocabulary loses the small
    probabilities that the loss is about.
    """
    logits = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    return safe_mean(F.cross_entropy(logits, targets, reduction="none"))


def distillation_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, tau: float) -> torch.Tensor:
    """KL(p_T,τ ‖ q_τ) per position (N,), over the full vocabulary (forward KL)."""
    log_q = F.log_softmax(_upcast(student_logits) / tau, dim=-1)
    log_p = F.log_softmax(_upcast(teacher_logits) / tau, dim=-1)
    return F.kl_div(log_q, log_p, log_target=True, reduction="none").sum(-1)


def teacher_topk(teacher_logits: torch.Tensor, tau: float, k: int) -> TopKTeacher:
    """What the cached teacher keeps of its logits at each position (see the module docstring)."""
    log_p = F.log_softmax(_upcast(teacher_logits) / tau, dim=-1)
    k = min(k, log_p.shape[-1])
    logprobs, ids = log_p.topk(k, dim=-1)
    return TopKTeacher(ids, logprobs, _other_logmass(log_p, ids))


def topk_distillation_kl(student_logits: torch.Tensor, teacher: TopKTeacher, tau: float) -> torch.Tensor:
    """KL over the teacher's top-k tokens plus one "other" bucket, per position (N,)."""
    log_q = F.log_softmax(_upcast(student_logits) / tau, dim=-1)
    log_p = teacher.logprobs.to(log_q.dtype)
    kl = (log_p.exp() * (log_p - log_q.gather(-1, teacher.ids))).sum(-1)
    if teacher.ids.shape[-1] < log_q.shape[-1]:
        p_other = teacher.other_logprob.to(log_q.dtype).exp()
        # xlogy: an "other" bucket the teacher gives no mass to contributes exactly 0.
        kl = kl + torch.xlogy(p_other, p_other) - p_other * _other_logmass(log_q, teacher.ids)
    return kl


def self_distillation_loss(ce_logits: torch.Tensor, targets: torch.Tensor, kl_logits: torch.Tensor,
                           teacher: torch.Tensor | TopKTeacher, *, lam: float, tau: float) -> DistillLoss:
    """L = CE(y | x) + λ · τ² · KL(p_T,τ ‖ q_θ,τ), each term a mean over its own positions.

    `ce_logits` (N, V) / `targets` (N,) are the student at the cross-entropy positions; `kl_logits`
    (M, V) the student at the KL positions (the same tensor when KL is on answer tokens only);
    `teacher` is the teacher's logits there (M, V), or a cached `TopKTeacher`.
    """
    ce = answer_cross_entropy(ce_logits, targets)
    per_position = (topk_distillation_kl(kl_logits, teacher, tau) if isinstance(teacher, TopKTeacher)
                    else distillation_kl(kl_logits, teacher, tau))
    kl = safe_mean(per_position)
    return DistillLoss(ce + lam * tau ** 2 * kl, ce, kl)


def l2_anchor_penalty(params, anchors) -> torch.Tensor:
    """||θ − θ_0||² summed over the trainable parameters and their starting copies."""
    total = None
    for p, a in zip(params, anchors, strict=True):
        term = (p - a).float().pow(2).sum()
        total = term if total is None else total + term
    if total is None:
        raise ValueError("no trainable parameters to anchor")
    return total


def _upcast(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def _other_logmass(log_p: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
    """log Σ_{j ∉ ids} p_j, from log-probabilities; accurate even when that mass is 1e-12.

    Computed as a logsumexp over the masked tail, not log(1 − Σ top-k), which cancels
    catastrophically in float32 exactly when the teacher is confident. −inf when ids cover all.
    """
    if ids.shape[-1] >= log_p.shape[-1]:
        return torch.full(log_p.shape[:-1], -torch.inf, dtype=log_p.dtype, device=log_p.device)
    tail = log_p.scatter(-1, ids, -torch.inf)
    return torch.logsumexp(tail, dim=-1)
