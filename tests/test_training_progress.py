"""The training console (recipes/progress.py): one bar per stage, one readable line per evaluation row,
never the Trainer's raw {'loss': ...} dictionaries, never the evaluation engine's "generating" bars."""

import json

import pytest
from test_recipes import FAST, tiny_world

from factbench.recipes import train
from factbench.recipes.progress import epoch_line


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("progress"))


def config(world, out, **extra):
    # logging_steps 1: the Trainer logs a loss dict every step, which the console must not show.
    return {"output_dir": str(out), "model": str(world["model"]), "split_dir": str(world["split"]),
            **FAST, "logging_steps": 1, "disable_tqdm": False, **extra}


def test_epoch_line_with_and_without_zero_shot():
    row = {"epoch": 2, "heldout_accuracy": 0.912, "new_accuracy": 0.42, "known_train_accuracy": 0.97, "step": 150,
           "loss": 0.8312, "heldout_questions": 227, "new_questions": 50, "protocol": "4-shot",
           "zero_shot": {"heldout_accuracy": 0.88, "new_accuracy": 0.4}}
    assert epoch_line(row, 4) == ("  epoch 2/4 · step 150 · loss 0.831 · 4-shot: held-out 91.2% new 42.0% "
                                  "known-train 97.0% · 0-shot: held-out 88.0% new 40.0%")
    del row["zero_shot"], row["protocol"]
    assert epoch_line(row, 4.0) == ("  epoch 2/4 · step 150 · loss 0.831 · 4-shot: held-out 91.2% new 42.0% "
                                    "known-train 97.0%")


def test_epoch_line_fractional_before_training_missing_values():
    mid = {"epoch": 1.5, "heldout_accuracy": 0.5, "new_accuracy": None, "step": 6, "loss": None}
    assert epoch_line(mid, 3) == "  epoch 1.5/3 · step 6 · 4-shot: held-out 50.0% new n/a"
    assert epoch_line({"epoch": 0.3333, "heldout_accuracy": 1.0, "step": 2}, 1) == \
        "  epoch 0.3333/1 · step 2 · 4-shot: held-out 100.0%"
    first = {"epoch": 0, "heldout_accuracy": 0.25, "step": 0, "loss": None, "protocol": "0-shot",
             "four_shot": {"heldout_accuracy": 0.75}}
    assert epoch_line(first, 0.5) == "  epoch 0/0.5 · before training · 0-shot: held-out 25.0% · 4-shot: held-out 75.0%"
    assert epoch_line({"epoch": 1, "step": 5, "loss": 1.0}) == "  epoch 1 · step 5 · loss 1.000"


def _lines(text):
    return [line for line in text.splitlines() if line.startswith("  epoch ")]


def test_a_training_run_prints_one_line_per_row_and_no_raw_dicts(world, tmp_path, capfd):
    out = train("sft", config(world, tmp_path / "sft", num_train_epochs=2, eval_every_steps=2, eval_limit=2,
                              eval_protocols=["4-shot", "0-shot"])).output_dir
    captured = capfd.readouterr()
    text = captured.out + captured.err
    for raw in ("{'loss'", "'grad_norm'", "'learning_rate'", "'train_runtime'", "generating"):
        assert raw not in text, raw
    rows = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
    assert len(rows) == 7  # epoch 0, steps 2, 4, 5 (epoch 1), 6, 8, 10 (epoch 2)
    assert "sft: 10 steps\n" in captured.out  # the test's stderr is no terminal: no bar, a line names the stage
    assert _lines(text) == [epoch_line(r, 2) for r in rows]
    assert _lines(text)[0].startswith("  epoch 0/2 · before training · 4-shot: held-out ")
    assert " · 0-shot: held-out " in _lines(text)[-1] and "loss " in _lines(text)[-1]
    assert any(line.startswith("  epoch 0.4/2 · step 2 · ") for line in _lines(text))
    card = json.loads((out / "recipe_card.json").read_text())
    assert card["stages"][0]["steps"] == 10


def test_bar_per_stage_and_log_history_kept(world, tmp_path, capfd, monkeypatch):
    """selfdistill: one bar per stage named after it (forced on: the test's stderr is no terminal);
    the Trainer's own log dicts still reach state.log_history."""
    from factbench.recipes.progress import TrainingProgress

    bars, histories = [], []
    init, end = TrainingProgress.__init__, TrainingProgress.on_train_end

    def forced(self, stage, evaluation, bar=None):
        init(self, stage, evaluation, bar=True)
        bars.append(self)

    def spy(self, args, state, control, **kwargs):
        histories.append(list(state.log_history))
        return end(self, args, state, control, **kwargs)

    monkeypatch.setattr(TrainingProgress, "__init__", forced)
    monkeypatch.setattr(TrainingProgress, "on_train_end", spy)
    result = train("selfdistill", config(world, tmp_path / "sd", eval_limit=2))
    captured = capfd.readouterr()
    assert [b.stage for b in bars] == ["stage1-teacher", "stage2-student"]
    assert "stage1-teacher: 100%" in captured.err and "stage2-student: 100%" in captured.err
    assert "loss=" in captured.err
    assert "{'loss'" not in captured.out + captured.err
    # one line per row of each stage: stage 1 (epochs 0, 1), stage 2 (epoch 0 = stage 1's last row, 1)
    assert len(_lines(captured.out)) == 4
    assert len(result.log) == 2
    assert all(any("loss" in h and "grad_norm" in h for h in history) for history in histories)
    assert all("train_runtime" in history[-1] for history in histories)


def test_disable_tqdm_or_no_terminal_prints_lines_only(world, tmp_path, capfd):
    train("known-only", config(world, tmp_path / "ko", disable_tqdm=True, eval_before_training=False))
    captured = capfd.readouterr()
    assert "known-only" not in captured.err and "{'loss'" not in captured.out + captured.err
    assert captured.out.splitlines()[0] == "known-only: 3 steps"  # no bar to name the stage: a line does
    assert len(_lines(captured.out)) == 1 and _lines(captured.out)[0].startswith("  epoch 1/1 · step ")
