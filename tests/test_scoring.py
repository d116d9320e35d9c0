"""`factbench score` as a whole (factbench.scoring.score_fine_tune and the CLI around it).

Scripted base and tuned answers folders on the scripted split (conftest); the lm-eval round trip
is in test_answer_sources, the refusals in test_consistency.
"""

import pytest
from conftest import fill

from factbench import scoring
from factbench.cli import main
from factbench.errors import FactbenchError, ScoreError


def test_score_fine_tune_is_the_card_the_command_writes(card, folders, scripted):
    got = scoring.score_fine_tune(str(folders["base"]), str(folders["tuned"]), split=str(scripted[1]))
    made = ("created", "checksum", "provenance")  # when and how this card was written, not what it says
    assert {k: v for k, v in got.items() if k not in made} == {k: v for k, v in card.items() if k not in made}
    assert [k for k in got if k not in made] == [k for k in card if k not in made]


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


def _score(folders, scripted, out):
    return main(["score", "--base", str(folders["base"]), "--tuned", str(folders["tuned"]), "--split", str(scripted[1]),
                 "--out", str(out)])


def _one_error(capsys, message):
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in captured.err, captured.err
    return captured


def test_out_replaces_a_score_card_but_never_another_file(folders, scripted, tmp_path, capsys):
    out = tmp_path / "card.json"
    assert _score(folders, scripted, out) == 0 and _score(folders, scripted, out) == 0
    capsys.readouterr()
    for content in ("my notes\n", '{"schema": "factbench.comparison/1"}'):
        out.write_text(content)
        assert _score(folders, scripted, out) == 2
        _one_error(capsys, "exists and is not a score card: refusing to overwrite it")
        assert out.read_text() == content


def test_an_out_that_cannot_be_written_fails_in_one_line_before_or_after_the_work(folders, scripted, full_disk,
                                                                                 capsys, monkeypatch):
    fill(full_disk)
    assert _score(folders, scripted, full_disk / "x" / "card.json") == 2
    assert _one_error(capsys, "cannot write").out == ""  # refused before anything was scored
    # The disk fills up while scoring: the card is not printed and then lost, and nothing half-written is left.
    monkeypatch.setattr("factbench.sample_logs.check_writable", lambda target: None)
    assert _score(folders, scripted, full_disk / "card.json") == 2
    captured = _one_error(capsys, "cannot write")
    assert "retention" not in captured.out.lower()
    assert sorted(p.name for p in full_disk.iterdir()) in (["filler"], [])
