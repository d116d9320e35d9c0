"""`factbench score` as a whole (factbench.scoring.score_fine_tune and the CLI around it).

Scripted base and tuned answers folders on the scripted split (conftest); the lm-eval round trip
is in test_answer_sources, the refusals in test_consistency.
"""

import pytest

from factbench import scoring
from factbench.cli import main
from factbench.errors import FactbenchError, ScoreError


def test_score_fine_tune_is_the_card_the_command_writes(card, folders, scripted):
    got = scoring.score_fine_tune(str(folders["base"]), str(folders["tuned"]), split=str(scripted[1]))
    assert {k: v for k, v in got.items() if k != "created"} == {k: v for k, v in card.items() if k != "created"}
    assert list(got) == list(card)


def test_options_for_models_are_refused_on_two_folders(folders, scripted):
    with pytest.raises(FactbenchError, match="--limit and --save-answers apply only when --base or --tuned is a model"):
        scoring.score_fine_tune(str(folders["base"]), str(folders["tuned"]), split=str(scripted[1]), limit=3)


def test_a_bad_training_log_fails_before_any_side_is_read(scripted, tmp_path):
    (tmp_path / "log.jsonl").write_text("{}\n")
    with pytest.raises(ScoreError, match="log.jsonl:1 is not a training-log row"):
        scoring.score_fine_tune(str(tmp_path / "no-base"), str(tmp_path / "no-tuned"), split=str(scripted[1]),
                                training_log=tmp_path / "log.jsonl")


def test_a_mistyped_folder_is_not_taken_for_a_hub_id(folders, scripted, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert main(["score", "--base", str(folders["base"]), "--tuned", "runs/sft", "--split", str(scripted[1])]) == 2
    assert "--tuned runs/sft: no such folder (runs exists, runs/sft does not)" in capsys.readouterr().err
