"""Answers that cannot be scored together are refused: one line, exit code 2, nothing written.

Scripted base and tuned answers folders (conftest `folders`), edited one way at a time.
"""

import dataclasses
import json
import shutil

import pytest
from conftest import scripted_answers
from test_lmeval_tasks import SPLIT_SETTINGS

from factbench import answer_sources, consistency, knowledge, protocol, splits
from factbench.cli import main
from factbench.errors import ScoreError


def _edit_rows(path, edit):
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    edit(rows)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _copy(folders, tmp_path, role="tuned"):
    dst = tmp_path / role
    shutil.copytree(folders[role], dst)
    return dst


def _set_prompt_hash(rows):
    rows[3]["prompt_hash"] = "0" * 64


def _sampled(rows):
    for r in rows:
        r["arguments"]["gen_args_0"]["arg_1"] |= {"do_sample": True, "temperature": 0.7}


def _regraded(rows):
    rows[0]["em"] = 1.0 - rows[0]["em"]


@pytest.mark.parametrize("case, message", [
    ("other split", "answers are to questions not in that set of split"),
    ("prompt", "base and tuned saw different prompts for"),
    ("truncated", "is not a factforget sample"),
    ("sampled", "were not decoded under the question protocol: sampling"),
    ("regraded", "graded under another matching rule"),
    ("fewer questions", "base and tuned answered different heldout questions (15 vs 5"),
    ("no heldout", "no held-out answers (samples_factforget_heldout*.jsonl) from the tuned model"),
    ("two models", "holds factforget answers of several runs"),
    ("other protocol", "made under question protocol"),
    ("not a model", "is neither an answers folder"),
    ("bad log", "is not a training-log row"),
])
def test_mismatched_or_corrupted_input_is_refused(case, message, folders, scripted, split, tmp_path, capsys):
    tuned, extra = _copy(folders, tmp_path), []
    heldout_file = tuned / "samples_factforget_heldout.jsonl"
    if case == "other split":
        settings = dataclasses.replace(SPLIT_SETTINGS, seed=7)
        splits.make_split(knowledge.load_profile(scripted[0]), settings, tmp_path / "split7")
        shutil.rmtree(tuned)
        scripted_answers(tuned, splits.load_split(tmp_path / "split7"), set())
    elif case == "prompt":
        _edit_rows(heldout_file, _set_prompt_hash)
    elif case == "truncated":
        heldout_file.write_text(heldout_file.read_text()[:-40])
    elif case == "sampled":
        _edit_rows(tuned / "samples_factforget_new.jsonl", _sampled)
    elif case == "regraded":
        _edit_rows(heldout_file, _regraded)
    elif case == "fewer questions":
        shutil.rmtree(tuned)
        scripted_answers(tuned, split, set(), limit=5)
    elif case == "no heldout":
        heldout_file.unlink()
    elif case == "two models":
        shutil.move(str(tuned), str(tmp_path / "a"))
        tuned.mkdir()
        shutil.move(str(tmp_path / "a"), str(tuned / "model-a"))
        shutil.copytree(folders["base"], tuned / "model-b")
    elif case == "other protocol":
        summary = json.loads((tuned / "summary.json").read_text())
        summary["protocol"]["shots"], summary["protocol_hash"] = 5, "0123456789abcdef"
        (tuned / "summary.json").write_text(json.dumps(summary))
    elif case == "not a model":
        tuned = tmp_path / "no-such-answers"
    elif case == "bad log":
        (tmp_path / "log.jsonl").write_text('{"epoch": 0}\n')
        extra = ["--training-log", str(tmp_path / "log.jsonl")]
    out = tmp_path / "card.json"
    assert main(["score", "--base", str(folders["base"]), "--tuned", str(tuned), "--split", str(scripted[1]),
                 "--out", str(out), *extra]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()


def test_decoding_is_checked_field_by_field():
    consistency.check_decoding(protocol.generation_kwargs(), "answers")
    with pytest.raises(ScoreError, match=r"answers were not decoded under the question protocol: stop strings "
                                         r"\['\.'\] \(want \['\\n'\]\); max_gen_toks 64 \(want 16\)"):
        consistency.check_decoding(protocol.generation_kwargs() | {"until": ["."], "max_gen_toks": 64}, "answers")


def test_set_statuses_name_what_each_side_answered(folders, split, tmp_path):
    base = answer_sources.read_answers(folders["base"], "base")
    tuned_dir = scripted_answers(tmp_path / "tuned", split, set(), sets=("heldout", "new"))
    status = consistency.check_answers(base, answer_sources.read_answers(tuned_dir, "tuned"), split)
    assert status == {"heldout": "scored", "new": "scored", "known_train": "only base answered",
                      "ood": "only base answered"}
    no_heldout = answer_sources.Answers("tuned", {}, {k: v for k, v in base.sets.items() if k != "heldout"})
    with pytest.raises(ScoreError, match="no held-out answers .* from the tuned model"):
        consistency.check_answers(base, no_heldout, split)
