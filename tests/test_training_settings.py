"""`factbench train`: settings that mean something, and an output folder that appears whole or not at all.

Meaningless settings (0 epochs, a negative or NaN learning rate, a batch of 0, ...) are refused in
one line before any model is loaded; a run that fails for any reason (a full disk, an error in a
recipe, an interrupt) leaves no output folder, no temporary folder and any earlier run untouched.
"""

import dataclasses
import json

import pytest
from conftest import fill
from test_recipes import FAST, tiny_world

from factbench import models
from factbench.cli import main
from factbench.errors import FactbenchError, WriteError
from factbench.recipes import RECIPES, load_config, train


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("settings"))


def config(world, out, **extra):
    return {"output_dir": str(out), "model": str(world["model"]), "split_dir": str(world["split"]), **FAST, **extra}


def leftovers(folder):
    """Everything in `folder` but the files a test put there itself."""
    return sorted(p.name for p in folder.iterdir() if p.name not in ("filler", "keep"))


@pytest.mark.parametrize(("setting", "message"), [
    ("num_train_epochs=0", "num_train_epochs must be a finite number > 0 (or set max_steps >= 1), got 0"),
    ("num_train_epochs=-2", "num_train_epochs must be"),
    ("max_steps=0", "max_steps must be -1"),
    ("learning_rate=-1", "learning_rate must be a finite number > 0, got -1"),
    ("learning_rate=0", "learning_rate must be"),
    ("learning_rate=nan", "learning_rate must be a finite number > 0, got nan"),
    ("learning_rate=.inf", "learning_rate must be"),
    ("learning_rate=true", "learning_rate: True is not a valid float"),
    ("per_device_train_batch_size=0", "per_device_train_batch_size must be a whole number >= 1, got 0"),
    ("per_device_eval_batch_size=-1", "per_device_eval_batch_size must be a whole number >= 1"),
    ("gradient_accumulation_steps=0", "gradient_accumulation_steps must be a whole number >= 1, got 0"),
    ("eval_batch_size=0", "eval_batch_size must be"),
    ("eval_limit=0", "eval_limit must be a whole number >= 1"),
    ("distill_lambda=-0.5", "distill_lambda must be a finite number >= 0"),
    ("distill_lambda=nan", "distill_lambda must be"),
    ("distill_tau=0", "distill_tau must be a finite number > 0"),
    ("distill_tau=.inf", "distill_tau must be"),
    ("teacher_epochs=0", "teacher_epochs must be"),
    ("teacher_topk=0", "teacher_topk must be"),
    ("l2_lambda=-1e-3", "l2_lambda must be a finite number >= 0"),
    ("weight_decay=-0.1", "weight_decay must be"),
    ("warmup_steps=-5", "warmup_steps must be"),
    ("max_grad_norm=-1", "max_grad_norm must be"),
    ("adam_beta1=1", "adam_beta1 must be a finite number in [0, 1)"),
    ("label_smoothing_factor=1.5", "label_smoothing_factor must be"),
    ("max_length=0", "max_length must be"),
    ("trainable=mlp", "unknown trainable preset 'mlp'"),
    ("trainable=[]", "one or more non-empty strings"),
    ("trainable=['re:(']", "not a valid regular expression"),
    ("eval_sets=7", "eval_sets"),
])
def test_meaningless_settings_are_refused_before_the_model_loads(world, tmp_path, monkeypatch, setting, message):
    def no_model(*a, **k):
        raise AssertionError("the model was loaded before the settings were checked")

    monkeypatch.setattr(models, "load", no_model)
    with pytest.raises(FactbenchError, match=message.replace("[", r"\[").replace("(", r"\(").replace(")", r"\)")
                       .replace(".", r"\.").replace("+", r"\+")) as e:
        train("sft", config(world, tmp_path / "out"), [setting])
    assert "\n" not in str(e.value)
    assert leftovers(tmp_path) == []  # not even an empty output folder


def test_max_steps_stands_in_for_epochs():
    cfg = load_config({"output_dir": "x"}, ["num_train_epochs=0", "max_steps=3"])
    assert (cfg.num_train_epochs, cfg.max_steps) == (0, 3)


def test_trainable_patterns_must_select_a_parameter_before_encoding(world, tmp_path, monkeypatch):
    from factbench.recipes import trainer

    def no_examples(*a, **k):
        raise AssertionError("examples were encoded before the trainable patterns were checked")

    monkeypatch.setattr(trainer, "encode_rows", no_examples)
    with pytest.raises(FactbenchError, match="match no parameter"):
        train("freeze", config(world, tmp_path / "out", trainable=["*.self_attn.*"]))
    assert leftovers(tmp_path) == []


def test_cli_refuses_a_bad_setting_in_one_line(world, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text("".join(f"{k}: {json.dumps(v)}\n" for k, v in config(world, tmp_path / "out").items()))
    assert main(["train", "--recipe", "sft", "--config", str(path), "learning_rate=-1"]) == 2
    errors = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("factbench: error")]
    assert len(errors) == 1 and "learning_rate must be a finite number > 0" in errors[0]
    assert not (tmp_path / "out").exists()


# ---- the output folder ---------------------------------------------------------------------------

def test_a_run_writes_one_whole_folder_and_nothing_beside_it(world, tmp_path):
    result = train("sft", config(world, tmp_path / "runs" / "a"))
    out = tmp_path / "runs" / "a"
    assert result.output_dir == out
    assert {"recipe_card.json", "training_log.jsonl", "config.json"} <= {p.name for p in out.iterdir()}
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["a"]  # no temporary folder left beside it
    card = json.loads((out / "recipe_card.json").read_text())
    assert card["config"]["output_dir"] == str(out)  # the card names where the run is, not where it was made


def test_a_failing_run_leaves_no_folder_and_keeps_the_earlier_run(world, tmp_path, monkeypatch):
    out = tmp_path / "runs" / "a"
    train("sft", config(world, out))
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}

    def broken(run, *a, **k):
        (run.out_dir / "training_log.jsonl").write_text("half")  # a recipe that got somewhere, then failed
        raise KeyboardInterrupt

    monkeypatch.setitem(RECIPES, "sft", dataclasses.replace(RECIPES["sft"], run=broken))
    with pytest.raises(KeyboardInterrupt):
        train("sft", config(world, out, overwrite=True))
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["a"]
    # a new folder, whose parents the run had to create: nothing of it is left
    with pytest.raises(KeyboardInterrupt):
        train("sft", config(world, tmp_path / "new" / "deeper" / "b"))
    assert not (tmp_path / "new").exists()


def test_overwrite_replaces_an_earlier_run_only(world, tmp_path):
    out = tmp_path / "a"
    train("known-only", config(world, out))
    train("sft", config(world, out, overwrite=True))
    assert json.loads((out / "recipe_card.json").read_text())["recipe"] == "sft"
    other = tmp_path / "notes"
    other.mkdir()
    (other / "keep").write_text("mine")
    with pytest.raises(FactbenchError, match="not a training run"):
        train("sft", config(world, other, overwrite=True))
    assert leftovers(other) == [] and (other / "keep").read_text() == "mine"
    (tmp_path / "file").write_text("x")
    with pytest.raises(FactbenchError, match="is a file"):
        train("sft", config(world, tmp_path / "file", overwrite=True))


def test_full_disk_is_one_line_before_training(world, full_disk, monkeypatch):
    fill(full_disk)

    def no_model(*a, **k):
        raise AssertionError("trained although nothing can be written")

    monkeypatch.setattr(models, "load", no_model)
    with pytest.raises(WriteError, match=r"cannot write .*full/x: .*nothing was changed there") as e:
        train("sft", config(world, full_disk / "x"))
    assert "\n" not in str(e.value) and ".x." not in str(e.value)
    assert leftovers(full_disk) == []


def test_a_save_that_fails_for_lack_of_space_is_a_write_error(world, tmp_path, monkeypatch):
    from transformers import Trainer

    def full(self, *a, **k):  # what safetensors raises on a full disk (not an OSError)
        raise Exception("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(Trainer, "save_model", full)
    with pytest.raises(WriteError, match=r"cannot write .*/out: no space left on the device"):
        train("sft", config(world, tmp_path / "out"))
    assert leftovers(tmp_path) == []


def test_a_log_write_failure_names_the_output_folder(world, tmp_path, monkeypatch):
    from factbench.recipes import callbacks

    def full(path, rows):
        raise WriteError(f"cannot write {path}: no space left on the device; nothing was changed there")

    monkeypatch.setattr(callbacks, "write_jsonl", full)
    with pytest.raises(WriteError) as e:
        train("sft", config(world, tmp_path / "out"))
    assert str(e.value).startswith(f"cannot write {tmp_path / 'out' / 'training_log.jsonl'}:")
    assert leftovers(tmp_path) == []
