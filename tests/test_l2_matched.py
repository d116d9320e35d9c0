"""The paper's L2 baseline: a pull to self-distillation's anchor, λ matched to the distillation term's gradient.

Tiny GPT-2 and split of tests/test_recipes.py (its helpers), so everything trains for real, in seconds.
"""

import json
import math

import pytest
import torch
from test_recipes import config, make_model, make_split

from factbench import splits
from factbench.errors import FactbenchError
from factbench.recipes import examples as recipe_examples
from factbench.recipes import l2anchor, load_config, selfdistill, train
from factbench.recipes.examples import Collator, encode_rows
from factbench.recipes.l2anchor import L2AnchorTrainer
from factbench.recipes.selfdistill import SelfDistillTrainer
from factbench.recipes.trainer import RecipeTrainer


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("l2")
    split = make_split(root / "split")
    return {"root": root, "split": split, "model": make_model(root / "model", split)}


def _no_dropout(path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(path, resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)


def _grad_norm(loss, params):
    grads = torch.autograd.grad(loss, params, retain_graph=True, allow_unused=True)
    return math.sqrt(sum(float(g.pow(2).sum()) for g in grads if g is not None))


@pytest.mark.parametrize("kl_on", ["answer", "all"])
def test_at_a_match_step_the_l2_gradient_norm_is_the_kl_gradient_norm(world, kl_on):
    """(a) ||∇ λ_t·||θ − θ_a||²|| = ||∇ λ_d τ² KL|| at the match step, θ ≠ θ_a; λ_t held between matches."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(world["model"])
    anchor, student = _no_dropout(world["model"]), _no_dropout(world["model"])
    with torch.no_grad():  # θ ≠ θ_a
        for p in student.parameters():
            p.add_(0.02 * torch.randn_like(p))
    rows = recipe_examples.training_rows(splits.load_split(world["split"]))[:6]
    batch = Collator(tokenizer.pad_token_id, "answer", kl_on)(encode_rows(tokenizer, rows, 128))
    args = load_config(config(world, "unused", l2_lambda="matched", kl_on=kl_on, distill_lambda=0.7, distill_tau=0.5))
    trainer = L2AnchorTrainer(model=student, args=args, l2_lambda="matched", anchor_model=anchor, match_every=3,
                              distill_lambda=0.7, distill_tau=0.5)
    device = trainer.args.device
    student.train()

    def on_device():
        return {k: v.to(device) for k, v in batch.items()}

    trainer.compute_loss(student, on_device())
    lam_t = trainer.lambda_t
    params = [p for p in student.parameters() if p.requires_grad]
    anchors = [p.detach() for p in anchor.parameters()]
    l2 = sum((p - a).pow(2).sum() for p, a in zip(params, anchors, strict=True))
    l2_grad = _grad_norm(lam_t * l2, params)
    # The KL term's gradient, independently: self-distillation's loss minus plain SFT's, on this batch.
    sd = SelfDistillTrainer(model=student, args=args, teacher=anchor, lam=0.7, tau=0.5)
    plain = RecipeTrainer(model=student, args=args)
    kl_grad = _grad_norm(sd.compute_loss(student, on_device()) - plain.compute_loss(student, on_device()), params)
    assert lam_t > 0 and kl_grad > 0
    assert l2_grad == pytest.approx(kl_grad, rel=1e-4)
    assert trainer.matches[-1]["g_kl"] == pytest.approx(kl_grad, rel=1e-4)
    assert trainer._window["l2_lambda"][0] == pytest.approx(lam_t) and "g_kl" in trainer._window
    # Between matches λ_t is held (match_every=3: steps 1 and 2 do not match, step 3 does).
    trainer.state.global_step = 2
    trainer.compute_loss(student, on_device())
    assert len(trainer.matches) == 1 and trainer.lambda_t == lam_t
    trainer.state.global_step = 3
    with torch.no_grad():
        for p in params:
            p.mul_(1.01)
    trainer.compute_loss(student, on_device())
    assert len(trainer.matches) == 2 and trainer.lambda_t != lam_t


def test_at_the_anchor_lambda_is_zero_and_the_next_step_matches_again(world):
    anchor, student = _no_dropout(world["model"]), _no_dropout(world["model"])
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(world["model"])
    rows = recipe_examples.training_rows(splits.load_split(world["split"]))[:4]
    batch = Collator(tokenizer.pad_token_id, "answer", "answer")(encode_rows(tokenizer, rows, 128))
    args = load_config(config(world, "unused", l2_lambda="matched"))
    trainer = L2AnchorTrainer(model=student, args=args, l2_lambda="matched", anchor_model=anchor, match_every=5)
    student.train()
    trainer.compute_loss(student, {k: v.to(trainer.args.device) for k, v in batch.items()})
    assert trainer.lambda_t == 0.0 and trainer.matches[0]["distance"] == 0.0
    assert trainer.next_match == 1  # not held for 5 steps: the pull would be off for no reason


def _capture(monkeypatch):
    """Record the stage-1 teacher's weights and each l2anchor stage-2 trainer, as the recipes run."""
    seen = {"teachers": [], "trainers": [], "stage2_start": []}
    real_teacher, real_train = selfdistill.teacher_stage, l2anchor.train_stage

    def teacher_stage(run):
        model, point, summary = real_teacher(run)
        seen["teachers"].append({k: v.detach().clone() for k, v in model.state_dict().items()})
        return model, point, summary

    def train_stage(run, model, *args, **kwargs):
        seen["stage2_start"].append({k: v.detach().clone() for k, v in model.state_dict().items()})
        trainer, evaluation = real_train(run, model, *args, **kwargs)
        seen["trainers"].append(trainer)
        return trainer, evaluation

    monkeypatch.setattr(selfdistill, "teacher_stage", teacher_stage)
    monkeypatch.setattr(l2anchor, "train_stage", train_stage)
    return seen


def _log(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_stage1_anchor_is_self_distillations_teacher_and_stage2_starts_from_it(world, tmp_path, monkeypatch):
    """(b) l2_anchor=stage1: the same teacher as selfdistill (weights, log), and stage 2 starts from it."""
    seen = _capture(monkeypatch)
    sd = train("selfdistill", config(world, tmp_path / "sd"))
    l2 = train("l2anchor", config(world, tmp_path / "l2", l2_anchor="stage1"))
    sd_teacher, l2_teacher = seen["teachers"]
    assert sd_teacher.keys() == l2_teacher.keys()
    for name in sd_teacher:
        assert torch.equal(sd_teacher[name], l2_teacher[name]), name
    for name, tensor in seen["stage2_start"][0].items():  # stage 2 starts at the teacher ...
        assert torch.equal(tensor, l2_teacher[name]), name
    trainer = seen["trainers"][0]
    for a, (name, _) in zip(trainer.anchors, [(n, p) for n, p in trainer.model.named_parameters() if p.requires_grad],
                            strict=True):  # ... and is pulled to it
        assert torch.equal(a.cpu(), l2_teacher[name].cpu()), name
    # how the rows were made differs between runs: timings, and the base's answers (the second run reads them back)
    drop = ("seconds", "wall_seconds", "eval_seconds", "base_answers")
    sd1, l21 = _log(tmp_path / "sd" / "stage1" / "training_log.jsonl"), _log(tmp_path / "l2" / "stage1" /
                                                                            "training_log.jsonl")
    assert [{k: v for k, v in r.items() if k not in drop} for r in sd1] == \
           [{k: v for k, v in r.items() if k not in drop} for r in l21]
    stage2 = _log(tmp_path / "l2" / "training_log.jsonl")
    acc = [k for k in stage2[0] if k.endswith("_accuracy")]
    assert acc and {k: stage2[0][k] for k in acc} == {k: l21[-1][k] for k in acc}  # first row = teacher's last
    assert stage2[0]["step"] == 0 and stage2[0]["epoch"] == 0
    assert [s["stage"] for s in l2.card["stages"]] == ["stage1-teacher", "stage2-l2anchor"]
    assert l2.card["stages"][0]["unknown"] == 0 and l2.card["stages"][1]["unknown"] == 12
    assert [s["stage"] for s in sd.card["stages"]] == ["stage1-teacher", "stage2-student"]
    assert l2.card["l2"] == {"anchor": "stage1", "lambda": 1e-3, "teacher_epochs": 1.0, "rule": "fixed λ = l2_lambda"}


def test_matched_stage1_trains_end_to_end_and_cards_the_rule(world, tmp_path, monkeypatch):
    """(c) l2_lambda=matched l2_anchor=stage1: trains, logs λ_t and G_kl, cards the rule and λ values."""
    seen = _capture(monkeypatch)
    result = train("l2anchor", config(world, tmp_path / "m", l2_lambda="matched", l2_anchor="stage1",
                                      num_train_epochs=2, logging_steps=2, eval_limit=2))
    d = result.card["l2"]
    assert d["anchor"] == "stage1" and d["lambda"] == "matched" and d["rule"] == l2anchor.MATCH_RULE
    assert d["match_every"] == 1 and d["matches"] == result.card["stages"][-1]["steps"] == 10
    assert d["matches_at_anchor"] == 1  # the first step: stage 2 starts at its anchor
    assert d["lambda_mean"] > 0 and d["lambda_last"] > 0 and d["g_kl_mean"] > 0
    assert (d["distill_lambda"], d["distill_tau"], d["kl_on"]) == (1.0, 0.5, "answer")
    assert result.card["l2_lambda"] == "matched" and result.card["config"]["l2_lambda"] == "matched"
    lines = [x for x in seen["trainers"][0].state.log_history if "loss" in x]
    assert lines and all({"ce", "l2", "l2_lambda", "g_kl"} <= set(x) for x in lines)
    assert lines[-1]["l2_lambda"] > 0
    assert (tmp_path / "m" / "stage1" / "training_log.jsonl").is_file()


def test_matched_with_the_base_anchor_and_a_cached_teacher(world, tmp_path, monkeypatch):
    seen = _capture(monkeypatch)
    result = train("l2anchor", config(world, tmp_path / "b", l2_lambda="matched", l2_match_every=2,
                                      teacher_cache="topk", teacher_topk=8, eval_limit=2))
    d = result.card["l2"]
    assert d["anchor"] == "base" and d["teacher_topk"] == 8 and d["match_every"] == 2
    assert [s["stage"] for s in result.card["stages"]] == ["l2anchor"] and not seen["teachers"]
    # 5 steps: step 0 at the anchor (λ 0, match again at 1), then 1 and 3 (held over 2 and 4)
    assert [m["step"] for m in seen["trainers"][0].matches] == [0, 1, 3]


def test_defaults_unchanged(world, tmp_path):
    """(d) l2_lambda a number (1e-3), anchor = base, one stage; YAML's 1e-3 string is still a number."""
    cfg = load_config({"output_dir": "x"})
    assert (cfg.l2_lambda, cfg.l2_anchor, cfg.l2_match_every) == (1e-3, "base", 1)
    assert load_config({"output_dir": "x"}, ["l2_lambda=1e-2"]).l2_lambda == 0.01
    assert load_config({"output_dir": "x"}, ["l2_lambda=0"]).l2_lambda == 0.0
    assert load_config({"output_dir": "x"}, ["l2_lambda=Matched"]).l2_lambda == "matched"
    result = train("l2anchor", config(world, tmp_path / "d", eval_limit=2))
    assert [s["stage"] for s in result.card["stages"]] == ["l2anchor"]
    assert result.card["l2_lambda"] == 1e-3 and result.card["l2"]["anchor"] == "base"


@pytest.mark.parametrize(("overrides", "message"), [
    (["l2_lambda=auto"], "l2_lambda must be a finite number >= 0 or 'matched', got 'auto'"),
    (["l2_lambda=-1e-3"], "l2_lambda must be a finite number >= 0, got -0.001"),
    (["l2_lambda=nan"], "l2_lambda must be a finite number >= 0"),
    (["l2_anchor=teacher"], "l2_anchor must be one of base, stage1"),
    (["l2_match_every=0"], "l2_match_every must be a whole number >= 1"),
    (["l2_match_every=1.5"], "l2_match_every"),
    (["l2_lambda=matched", "distill_lambda=0"], "distill_lambda=0"),
    (["l2_lambda=matched", "fsdp=full_shard"], "not fsdp"),
    (["l2_lambda=matched", "deepspeed={zero_optimization: {stage: 3}}"], "not DeepSpeed ZeRO-3"),
    (["l2_lambda=matched", "gradient_checkpointing=true", "gradient_checkpointing_kwargs={use_reentrant: true}"],
     "reentrant"),
])
def test_bad_l2_settings_are_one_line_errors(overrides, message):
    """(e) nonsense refused in one line, before any model loads."""
    with pytest.raises(FactbenchError, match=message.replace("(", r"\(").replace(")", r"\)")) as e:
        load_config({"output_dir": "x"}, overrides)
    assert "\n" not in str(e.value)


def test_bad_l2_combination_fails_before_the_model_loads(world, tmp_path):
    with pytest.raises(FactbenchError, match="distill_lambda=0"):
        train("l2anchor", config(world, tmp_path / "x", model=str(tmp_path / "no-such-model"),
                                 l2_lambda="matched", distill_lambda=0))
    assert not (tmp_path / "x").exists()
