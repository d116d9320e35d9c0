"""The training recipes end to end on a tiny model, in seconds: outputs, logs, cards, bad input.

The base model is a randomly initialised 2-layer GPT-2 with a word-level tokenizer covering the
split's questions and the prompts' exemplars (toyworld.build_tokenizer), so everything (data,
training, per-epoch evaluation through the HF engine, saving) runs for real, just small.
"""

import json
import shutil
from pathlib import Path

import pytest
import torch

from factbench import data, prompts, splits, toyworld
from factbench.cli import main
from factbench.errors import FactbenchError
from factbench.knowledge import Profile
from factbench.protocol import protocol_hash, question_protocol
from factbench.recipes import RECIPES, bundled_configs, load_config, train
from factbench.recipes import examples as recipe_examples
from factbench.recipes.examples import Collator, encode_rows
from factbench.training_log import read_training_log

FAST = {"num_train_epochs": 1, "per_device_train_batch_size": 8, "learning_rate": 1e-3, "eval_limit": 4,
        "disable_tqdm": True, "logging_steps": 100, "eval_batch_size": 16}


def make_split(out: Path, n_known=24, n_unknown=12, heldout=8) -> Path:
    """A real split folder over P19 facts, from a hand-made profile (every other fact 'known')."""
    facts, seen = [], set()
    for f in data.load("train", ["P19"])[:150]:
        if f.subject not in seen and f.question not in seen:
            seen |= {f.subject, f.question}
            facts.append(f)
    rows = [{"id": f.id, "relation": f.relation, "category": "HighlyKnown" if i % 2 == 0 else "Unknown",
             "known": i % 2 == 0} for i, f in enumerate(facts[:100])]
    manifest = {"protocol_hash": protocol_hash(question_protocol()), "profile_sha256": "0" * 64,
                "model": {"name": "test"}}
    splits.make_split(Profile(out.parent, manifest, rows),
                      splits.SplitSettings(known=n_known, unknown=n_unknown, heldout=heldout, ood=0,
                                           min_known_share=0), out)
    return out


def make_model(out: Path, split_dir: Path, eos: bool = True) -> Path:
    from transformers import GPT2Config, GPT2LMHeadModel

    split = splits.load_split(split_dir)
    texts = [prompts.format_example(r["question"], a) + "\n" for s in ("train", "heldout")
             for r in split.sets[s] for a in r["answers"]]
    texts += [prompts.format_example(f.question, f.answers[0]) + "\n" for f in data.load("dev", ["P19"])]
    tokenizer = toyworld.build_tokenizer(texts, 128)
    if not eos:
        tokenizer.eos_token = None
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128,
                                       pad_token_id=tokenizer.pad_token_id))
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


def tiny_world(root: Path) -> dict:
    """A split and a tiny model over it in `root`: what every recipe test trains (module fixtures call this)."""
    split = make_split(root / "split")
    return {"root": root, "split": split, "model": make_model(root / "model", split)}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("recipes"))


def config(world, out, **extra):
    return {"output_dir": str(out), "model": str(world["model"]), "split_dir": str(world["split"]), **FAST, **extra}


@pytest.mark.parametrize("recipe", list(RECIPES))
def test_every_recipe_trains_logs_saves_and_cards(world, tmp_path, recipe):
    result = train(recipe, config(world, tmp_path / recipe))
    out = result.output_dir
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in log] == [0, 1]
    assert list(log[1])[:6] == ["epoch", "heldout_accuracy", "new_accuracy", "known_train_accuracy", "step", "loss"]
    assert log[1]["step"] > 0 and log[1]["loss"] > 0 and log[1]["heldout_questions"] == 4
    assert read_training_log(out / "training_log.jsonl")["final"]["epoch"] == 1  # what `score` reads
    card = json.loads((out / "recipe_card.json").read_text())
    assert card["recipe"] == recipe and card["config"]["learning_rate"] == 1e-3 and card["seed"] == 42
    assert card["split"]["protocol_hash"] == protocol_hash(question_protocol())
    assert set(card["split"]["files"]) == {"train.jsonl", "heldout.jsonl", "ood.jsonl"}
    assert {"factbench", "transformers", "torch"} <= set(card["versions"]) and card["wall_seconds"] > 0
    trained = {s["stage"]: s for s in card["stages"]}
    final_stage = card["stages"][-1]
    assert final_stage["known"] == 24 and final_stage["unknown"] == (0 if recipe == "known-only" else 12)
    if recipe == "selfdistill":
        assert trained["stage1-teacher"]["unknown"] == 0
        assert (out / "stage1" / "training_log.jsonl").is_file()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    AutoModelForCausalLM.from_pretrained(out)
    AutoTokenizer.from_pretrained(out)


def test_freeze_recipe_changes_only_attention(world, tmp_path):
    from transformers import AutoModelForCausalLM

    result = train("freeze", config(world, tmp_path / "attn", eval_each_epoch=False))
    before = AutoModelForCausalLM.from_pretrained(world["model"]).state_dict()
    after = AutoModelForCausalLM.from_pretrained(result.output_dir).state_dict()
    for name, tensor in after.items():
        changed = not torch.equal(tensor, before[name])
        assert changed == (".attn.c_" in name), name
    assert result.card["trainable"]["trainable"] == "attention"


def test_selfdistill_options_run(world, tmp_path):
    for i, extra in enumerate([{"teacher_cache": "topk", "teacher_topk": 8},
                               {"teacher": "base", "kl_on": "all"},
                               {"student_init": "base", "teacher_cache": "topk"}]):
        result = train("selfdistill", config(world, tmp_path / str(i), eval_limit=2, **extra))
        d = result.card["distillation"]
        assert d["teacher_cache"] == extra.get("teacher_cache", "none")
        assert [s["stage"] for s in result.card["stages"]][-1] == "stage2-student"
    assert result.card["distillation"]["student_init"] == "base"


def test_cached_teacher_with_whole_vocabulary_gives_the_live_loss(world):
    """teacher_topk = vocabulary size: the cached loss is the live-teacher loss, on a real batch."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from factbench.recipes.selfdistill import SelfDistillTrainer, cache_teacher

    tokenizer = AutoTokenizer.from_pretrained(world["model"])
    student = AutoModelForCausalLM.from_pretrained(world["model"])
    teacher = AutoModelForCausalLM.from_pretrained(world["model"])
    with torch.no_grad():  # make the teacher differ from the student
        for p in teacher.parameters():
            p.add_(0.05 * torch.randn_like(p))
    rows = recipe_examples.training_rows(splits.load_split(world["split"]))[:6]
    examples = encode_rows(tokenizer, rows, 128)
    collator = Collator(tokenizer.pad_token_id, "answer", "answer")
    cached = cache_teacher(teacher, examples, collator, tau=0.5, k=len(tokenizer), batch_size=4, device="cpu")
    args = load_config(config(world, "unused"))
    live = SelfDistillTrainer(model=student, args=args, teacher=teacher, lam=1.0, tau=0.5)
    offline = SelfDistillTrainer(model=student, args=args, teacher=None, lam=1.0, tau=0.5)
    device = live.args.device  # the Trainer moved the student there (a GPU, where there is one)
    loss_live = live.compute_loss(student, {k: v.to(device) for k, v in collator(examples).items()})
    loss_cached = offline.compute_loss(student, {k: v.to(device) for k, v in collator(cached).items()})
    torch.testing.assert_close(loss_cached, loss_live, rtol=1e-5, atol=1e-6)


def test_answer_only_labels(world):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(world["model"])
    row = recipe_examples.training_rows(splits.load_split(world["split"]))[0]
    batch = Collator(tokenizer.pad_token_id, "answer")(encode_rows(tokenizer, [row], 128))
    labelled = batch["labels"][0][batch["labels"][0] != -100].tolist()
    assert tokenizer.decode(labelled) == " " + row["answer"] + tokenizer.eos_token
    text = tokenizer.decode(batch["input_ids"][0])
    assert text == prompts.format_example(row["question"], row["answer"]) + tokenizer.eos_token
    everything = Collator(tokenizer.pad_token_id, "all")(encode_rows(tokenizer, [row], 128))["labels"][0]
    assert (everything[1:] != -100).all() and everything[0] == -100
    # answer_end=newline: the answer ends as in a few-shot prompt, with no eos anywhere.
    newline = Collator(tokenizer.pad_token_id, "answer")(encode_rows(tokenizer, [row], 128, "newline"))
    labelled = newline["labels"][0][newline["labels"][0] != -100].tolist()
    assert tokenizer.decode(labelled) == " " + row["answer"] + "\n"
    assert tokenizer.eos_token_id not in newline["input_ids"][0].tolist()


def test_packing_keeps_each_answer_under_its_own_loss(world, tmp_path):
    from transformers import AutoTokenizer

    from factbench.recipes.examples import pack

    tokenizer = AutoTokenizer.from_pretrained(world["model"])
    rows = recipe_examples.training_rows(splits.load_split(world["split"]))[:5]
    single = encode_rows(tokenizer, rows, 128)
    packed = pack(single, 128)
    assert len(packed) < len(single) and [k for p in packed for k in p["kinds"]] == [r["kind"] for r in rows]
    labels = Collator(tokenizer.pad_token_id, "answer")(packed)["labels"]
    answers = tokenizer.decode(labels[labels != -100].tolist())
    assert answers == "".join(" " + r["answer"] + tokenizer.eos_token for r in rows)
    result = train("selfdistill", config(world, tmp_path / "packed", packing=True, teacher_cache="topk",
                                         eval_limit=2))
    assert result.card["stages"][-1]["examples"] == 36 and result.card["stages"][-1]["sequences"] < 36


# ---- settings -------------------------------------------------------------------------------------

def test_yaml_config_with_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("output_dir: x\nlearning_rate: 5e-5\ndistill_lambda: 1\ntrainable: [\"*.mlp.*\"]\n")
    cfg = load_config(path, ["distill_tau=0.25", "num_train_epochs=2", "eval_limit=10", "trainable=ffn"])
    assert cfg.learning_rate == 5e-5 and isinstance(cfg.distill_lambda, float)
    assert (cfg.distill_tau, cfg.num_train_epochs, cfg.eval_limit, cfg.trainable) == (0.25, 2.0, 10, "ffn")
    assert load_config(path).trainable == ["*.mlp.*"]
    assert load_config({"output_dir": "x"}).learning_rate == 5e-5  # METHOD.md's default


@pytest.mark.parametrize(("overrides", "message"), [
    (["distill_lambda=-0.1"], "distill_lambda"),
    (["distill_tau=0"], "distill_tau"),
    (["loss_on=question"], "loss_on must be one of"),
    (["teacher_cache=disk"], "teacher_cache must be one of"),
    (["answer_end=tab"], "answer_end must be one of"),
    (["learning_rte=1e-4"], "did you mean 'learning_rate'"),
    (["eval_sets=[pool]"], "eval_sets"),
    (["learning_rate=fast"], "learning_rate"),
    (["nokeyvalue"], "key=value"),
])
def test_bad_settings_are_one_line_errors(overrides, message):
    with pytest.raises(FactbenchError, match=message):
        load_config({"output_dir": "x"}, overrides)


def test_bundled_configs_load_and_say_how_to_run():
    names = bundled_configs()
    assert {"toy.yaml", "smollm2_demo.yaml", "qwen2.5_1.5b.yaml", "llama3.1_8b.yaml"} <= set(names)
    from importlib import resources

    for name in names:
        text = resources.files("factbench.recipes").joinpath("configs", name).read_text()
        assert text.startswith("# ") and "factbench" in text and " train --recipe" in text, name
        # bf16 and DeepSpeed are validated against the hardware and installed packages: not here
        cfg = load_config(name, ["bf16=false", "deepspeed=null"])
        assert cfg.learning_rate > 0


def test_the_recipe_table_names_each_recipe_its_file_and_default():
    from factbench.recipes import freeze, known_only, l2anchor, selfdistill, sft

    assert list(RECIPES) == ["sft", "freeze", "selfdistill", "known-only", "l2anchor"]
    assert [r.run for r in RECIPES.values()] == [sft.run, freeze.run, selfdistill.run, known_only.run, l2anchor.run]
    assert {n: r.default_trainable for n, r in RECIPES.items()} == {
        "sft": "all", "freeze": "attention", "selfdistill": "all", "known-only": "all", "l2anchor": "all"}
    assert all(r.name == n and r.description for n, r in RECIPES.items())


# ---- bad input fails before training ---------------------------------------------------------------

def test_unknown_recipe(world, tmp_path):
    with pytest.raises(FactbenchError, match="unknown recipe 'dpo'"):
        train("dpo", config(world, tmp_path / "x"))


def test_unknown_preset_fails_before_training(world, tmp_path):
    with pytest.raises(FactbenchError, match="unknown trainable preset"):
        train("freeze", config(world, tmp_path / "x", trainable="mlp"))
    with pytest.raises(FactbenchError, match="match no parameter"):
        train("sft", config(world, tmp_path / "y", trainable=["*.self_attn.*"]))
    assert not (tmp_path / "x" / "training_log.jsonl").exists()


def _broken_split(world, tmp_path, train_text: str) -> Path:
    from factbench.files import sha256_file

    broken = tmp_path / "broken"
    shutil.copytree(world["split"], broken)
    (broken / "train.jsonl").write_text(train_text)
    manifest = json.loads((broken / "manifest.json").read_text())
    manifest["files"]["train.jsonl"] = sha256_file(broken / "train.jsonl")
    (broken / "manifest.json").write_text(json.dumps(manifest))
    return broken


@pytest.mark.parametrize(("text", "message"), [
    ("", "holds no training examples"),
    # (the split loader may refuse a row without an id before the training checks see it)
    ('{"question": "Where?", "answer": "", "kind": "known"}\n', "is not a training row|not a split row"),
    ('{"question": "Where?", "answer": "Here", "kind": "maybe"}\n', "is not a training row|not a split row"),
    ("{not json\n", "not valid JSON|not valid split JSON|unreadable|malformed"),
])
def test_empty_or_malformed_training_file(world, tmp_path, text, message):
    with pytest.raises(FactbenchError, match=message):
        train("sft", config(world, tmp_path / "x", split_dir=str(_broken_split(world, tmp_path, text))))


def test_known_only_needs_known_facts(world, tmp_path):
    unknown_only = "".join(json.dumps(r) + "\n" for r in splits.load_split(world["split"]).sets["train"]
                           if r["kind"] == "unknown")
    with pytest.raises(FactbenchError, match="no known facts"):
        train("known-only", config(world, tmp_path / "x", split_dir=str(_broken_split(world, tmp_path, unknown_only))))


def test_tokenizer_without_eos(world, tmp_path):
    no_eos = make_model(tmp_path / "no-eos", world["split"], eos=False)
    with pytest.raises(FactbenchError, match="no eos token"):
        train("sft", config(world, tmp_path / "x", model=str(no_eos)))


def test_missing_split_and_busy_output_dir(world, tmp_path):
    with pytest.raises(FactbenchError, match="does not exist"):
        train("sft", config(world, tmp_path / "x", split_dir=str(tmp_path / "nowhere")))
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "file").write_text("x")
    with pytest.raises(FactbenchError, match="already holds files"):
        train("sft", config(world, tmp_path / "busy"))


def test_cli_train(world, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in config(world, tmp_path / "cli").items()))
    assert main(["train", "--recipe", "known-only", "--config", str(path), "eval_before_training=false"]) == 0
    assert "recipe_card.json" in capsys.readouterr().out
    assert [json.loads(r)["epoch"] for r in (tmp_path / "cli" / "training_log.jsonl").read_text().splitlines()] == [1]
    assert main(["train", "--recipe", "sft", "--config", str(path), "distill_tau=-1"]) == 2
    assert "distill_tau" in capsys.readouterr().err
    assert main(["train", "--recipe", "nope", "--config", str(path)]) == 2


def test_outcomes_of_every_question_under_both_protocols_at_every_point(world, tmp_path):
    """eval_outcomes.jsonl: one row per point and protocol, whose bits give the row's accuracies."""
    from factbench.recipes.callbacks import protocol_of

    out = train("selfdistill", config(world, tmp_path / "sd", num_train_epochs=2, eval_every_steps=2,
                                       eval_protocols=["4-shot", "0-shot"])).output_dir
    log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    # 36 examples / batch 8 = 5 steps an epoch: mid-epoch points at steps 2, 4, 6, 8 besides the epoch ends
    assert [r["step"] for r in log] == [0, 2, 4, 5, 6, 8, 10]
    assert [r["epoch"] for r in log][3] == 1 and log[-1]["epoch"] == 2 and log[1]["loss"] is None
    outcomes = [json.loads(line) for line in (out / "eval_outcomes.jsonl").read_text().splitlines()]
    assert [(o["step"], o["protocol"]) for o in outcomes[:2]] == [(0, "4-shot"), (0, "0-shot")]
    assert all(r["eval_seconds"] > 0 for r in log[1:])
    assert len(outcomes) == 2 * len(log)
    assert {o["protocol_hash"] for o in outcomes if o["protocol"] == "0-shot"} == {protocol_hash(protocol_of("0-shot"))}
    assert protocol_of("0-shot")["shots"] == 0 and protocol_of("4-shot") == question_protocol()
    questions = json.loads((out / "eval_questions.json").read_text())
    assert len(questions["sets"]["heldout"]["ids"]) == 4 and questions["sets"]["heldout"]["guessable"] == "0000"  # the split excludes guessable facts
    for row, four, zero in zip(log, outcomes[::2], outcomes[1::2], strict=True):
        for name in ("heldout", "new", "known_train"):
            assert row[f"{name}_accuracy"] == four["sets"][name].count("1") / 4
            assert row["zero_shot"][f"{name}_accuracy"] == zero["sets"][name].count("1") / 4
        assert row["protocol"] == "4-shot"
    # stage 2 starts from the teacher's last point, outcomes included
    stage1 = [json.loads(line) for line in (out / "stage1" / "eval_outcomes.jsonl").read_text().splitlines()]
    assert stage1[-2]["sets"] == outcomes[0]["sets"] and stage1[-1]["sets"] == outcomes[1]["sets"]
    # the base model's point is marked (the frontier leaves it out under 0-shot); the teacher's is not
    assert stage1[0]["base"] is True and stage1[1]["base"] is True and "base" not in outcomes[0]
    assert questions["split_manifest_sha256"] and questions["protocols"]["0-shot"]["protocol"]["shots"] == 0


def test_zero_shot_prompt_is_the_training_format():
    fact = data.load("dev", ["P19"])[0]
    assert prompts.build_prompt(fact, k=0) == f"Q: {fact.question}\nA:"


def test_eval_guessable_false_asks_only_the_recalled_held_out_facts(monkeypatch, world):
    from factbench import scorecard
    from factbench.recipes.callbacks import EpochEvaluation

    split = splits.load_split(world["split"])
    held = [r["id"] for r in split.sets["heldout"]]
    monkeypatch.setattr(scorecard, "guessable_ids", lambda s: ({held[0], held[2]}, "test"))
    cfg = load_config(config(world, "x", eval_guessable=False, eval_limit=None))
    ev = EpochEvaluation(split, None, cfg, Path("x") / "training_log.jsonl")
    assert [f.id for f in ev.sets["heldout"]] == [h for i, h in enumerate(held) if i not in (0, 2)]
    assert len(ev.sets["new"]) == sum(r["kind"] == "unknown" for r in split.sets["train"])  # other sets whole
