"""The recipes' per-epoch training log (factbench.training_log): peak-relative forgetting, bad rows."""

import json

import pytest

from factbench.cli import main
from factbench.errors import ScoreError
from factbench.training_log import epoch_row, read_training_log


def test_training_log_gives_peak_relative_forgetting(folders, scripted, tmp_path, capsys):
    log = tmp_path / "log.jsonl"
    log.write_text("".join(json.dumps(r) + "\n" for r in [
        {"epoch": 0, "heldout_accuracy": 0.8}, {"epoch": 1, "heldout_accuracy": 0.9, "new_accuracy": 0.3},
        {"epoch": 2, "heldout_accuracy": 0.75}, {"epoch": 3, "heldout_accuracy": 0.7, "loss": 1.2}]))
    out = tmp_path / "card.json"
    assert main(["score", "--base", str(folders["base"]), "--tuned", str(folders["tuned"]), "--split", str(scripted[1]),
                 "--training-log", str(log), "--out", str(out)]) == 0
    card = json.loads(out.read_text())
    assert card["summary"]["peak_relative_forgetting"] == pytest.approx((0.9 - 0.7) / 0.9)
    assert card["training_log"]["peak"] == {"epoch": 1, "heldout_accuracy": 0.9}
    assert card["training_log"]["epochs"][1] == {"epoch": 1, "heldout_accuracy": 0.9, "new_accuracy": 0.3}
    assert "peak-relative forgetting: 22.2% (held-out accuracy 0.900 at epoch 1" in capsys.readouterr().out


@pytest.mark.parametrize("rows, message", [
    (['{"epoch": 0}'], "log.jsonl:1 is not a training-log row"),
    (['{"epoch": 0, "heldout_accuracy": 1.5}'], "log.jsonl:1 is not a training-log row"),
    (['{"epoch": 1, "heldout_accuracy": 0.5}', '{"epoch": 1, "heldout_accuracy": 0.4}'], "epochs must increase"),
    (["not json"], "log.jsonl:1"),
    ([], "has no rows"),
])
def test_bad_training_log(rows, message, tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_text("\n".join(rows))
    with pytest.raises(ScoreError, match=message):
        read_training_log(log)


def test_the_rows_the_recipes_write_are_rows_score_reads(tmp_path):
    accuracies = {"heldout_accuracy": 0.5, "heldout_questions": 10, "new_accuracy": None, "new_questions": 0}
    row = epoch_row(2, accuracies, 40, 0.25)
    assert list(row) == ["epoch", "heldout_accuracy", "new_accuracy", "step", "loss", "heldout_questions",
                         "new_questions"]
    log = tmp_path / "training_log.jsonl"
    log.write_text(json.dumps(epoch_row(0, {"heldout_accuracy": 1.0}, 0, None)) + "\n" + json.dumps(row) + "\n")
    read = read_training_log(log)
    assert read["epochs"][1] == {"epoch": 2, "heldout_accuracy": 0.5, "new_accuracy": None, "heldout_questions": 10}
    assert read["peak_relative_forgetting"] == pytest.approx(0.5)


def test_a_log_that_is_not_utf8_is_refused_naming_the_line(tmp_path):
    log = tmp_path / "log.jsonl"
    log.write_bytes(b'{"epoch": 0, "heldout_accuracy": 0.5}\n{"epoch": 1, "heldout_accuracy": 0.4, "x": "\xff"}\n')
    with pytest.raises(ScoreError, match=r"log.jsonl:2 is not UTF-8 text"):
        read_training_log(log)
