"""Where a side's answers come from (factbench.answer_sources): lm-eval and factbench folders, models.

The last test runs lm-eval itself (`--model hf`, `--log_samples`) on SmolLM2 and a stand-in
fine-tune of it, and scores the folders it writes.
"""

import json
import shutil

import pytest
from conftest import SETS, fill, flip_counts, ids, scripted_answers

from factbench import answer_sources, identities, question_sets, scorecard
from factbench.cli import main
from factbench.errors import FactbenchError, ScoreError, WriteError


def test_a_factbench_folder_reads_back_as_it_was_answered(folders, split):
    base = answer_sources.read_answers(folders["base"], "base")
    assert base.identity["source"] == "factbench" and base.identity["model"]["name"] == "base-model"
    assert set(base.sets) == set(SETS) and base.notes == []
    assert sorted(base.sets["heldout"]) == sorted(ids(split, "heldout"))
    summary = json.loads((folders["base"] / "summary.json").read_text())
    assert summary["question_sets"]["factforget_heldout"] == identities.ids_sha256(ids(split, "heldout"))


def test_model_args_are_read_in_both_spellings():
    assert answer_sources._model_args("pretrained=/m, dtype=float32,revision=r1") == {
        "pretrained": "/m", "dtype": "float32", "revision": "r1"}
    assert answer_sources._model_args({"pretrained": "/m", "batch_size": 8}) == {"pretrained": "/m", "batch_size": "8"}
    assert answer_sources._model_args(None) == {}


def test_answers_folders_and_model_specs(tmp_path, folders):
    assert answer_sources.is_answers_folder(folders["base"])
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "config.json").write_text("{}")
    assert not answer_sources.is_answers_folder(tmp_path / "model")
    with pytest.raises(ScoreError, match="holds no factforget answers"):
        answer_sources.read_answers(tmp_path, "base")
    (tmp_path / "card.json").write_text("{}")
    with pytest.raises(ScoreError, match="is a file; give an answers folder or a model"):
        answer_sources.check_model_spec(str(tmp_path / "card.json"), "tuned")


def test_a_limit_below_one_is_refused(split):
    with pytest.raises(ScoreError, match="--limit must be at least 1, got 0"):
        answer_sources.answer_with_model("no-model", "base", split, limit=0)


# ---- an answers folder is one model's one run --------------------------------------------------

def test_a_folder_is_written_whole_and_bound_to_its_run(folders):
    summary = json.loads((folders["base"] / "summary.json").read_text())
    assert sorted(summary["files"]) == sorted(f"samples_{question_sets.task_name(s)}.jsonl" for s in SETS)
    for name, entry in summary["files"].items():
        rows = [json.loads(line) for line in (folders["base"] / name).read_text().splitlines()]
        assert len(rows) == entry["rows"] and {r["run_id"] for r in rows} == {summary["run_id"]}
    assert answer_sources.read_answers(folders["base"], "base").identity["run_id"] == summary["run_id"]


def test_another_model_is_refused_into_an_existing_folder_and_the_same_model_replaces_it(folders, split, tmp_path):
    out = tmp_path / "answers"
    shutil.copytree(folders["base"], out)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    with pytest.raises(FactbenchError, match="holds the answers of another model .base-model., not other-model: "
                                             ".*choose another --out, or remove"):
        scripted_answers(out, split, set(), "other-model")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    scripted_answers(out, split, set(), "base-model", sets=("heldout",))  # a re-run of the same model
    assert sorted(p.name for p in out.iterdir()) == ["samples_factforget_heldout.jsonl", "summary.json"]


def test_a_folder_holding_other_files_is_not_replaced(split, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FactbenchError, match="holds other files than one run's answers .notes.txt."):
        scripted_answers(tmp_path, split, set())
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


def _mix_in_another_run(folders, split, tmp_path):
    mixed = tmp_path / "mixed"
    shutil.copytree(folders["tuned"], mixed)
    shutil.copy(folders["base"] / "samples_factforget_heldout.jsonl", mixed)
    return mixed


def test_a_folder_mixing_runs_is_refused(folders, split, tmp_path):
    with pytest.raises(ScoreError, match="mixes runs: samples_factforget_heldout.jsonl: its rows are not all of the "
                                         "run its summary.json describes"):
        answer_sources.read_answers(_mix_in_another_run(folders, split, tmp_path), "tuned")
    part = scripted_answers(tmp_path / "part", split, set(), "tuned-model", sets=("heldout", "new"))
    shutil.copy(folders["base"] / "samples_factforget_ood.jsonl", part)
    with pytest.raises(ScoreError, match="samples_factforget_ood.jsonl: its summary.json does not list it"):
        answer_sources.read_answers(part, "tuned")


def test_samples_without_summary_are_refused(folders, tmp_path):
    shutil.copytree(folders["tuned"], tmp_path / "t")
    (tmp_path / "t" / "summary.json").unlink()
    with pytest.raises(ScoreError, match="has samples but no summary.json"):
        answer_sources.read_answers(tmp_path / "t", "tuned")


def test_an_older_summary_without_a_file_list_still_catches_another_runs_file(folders, split, tmp_path):
    mixed = _mix_in_another_run(folders, split, tmp_path)
    summary = json.loads((mixed / "summary.json").read_text())
    for key in ("files", "run_id"):
        summary.pop(key)
    (mixed / "summary.json").write_text(json.dumps(summary))
    for path in mixed.glob("samples_*.jsonl"):  # rows without run ids, as an older factbench wrote them
        rows = [json.loads(line) for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "run_id"}) + "\n" for r in rows))
    with pytest.raises(ScoreError, match="mixes runs: samples_factforget_heldout.jsonl: em 0.8 here, 0.6667 in summary.json"):
        answer_sources.read_answers(mixed, "tuned")
    shutil.copy(folders["tuned"] / "samples_factforget_heldout.jsonl", mixed)  # its own file back: readable
    answer_sources.read_answers(mixed, "tuned")


def test_lmeval_runs_of_two_models_in_one_folder_are_refused(folders, tmp_path):
    run = tmp_path / "lm"
    run.mkdir()
    for date, model in (("2025-01-02T10-00-00.1", "/models/a"), ("2025-03-04T10-00-00.1", "/models/b")):
        for s in ("heldout", "new"):
            shutil.copy(folders["base"] / f"samples_factforget_{s}.jsonl", run / f"samples_factforget_{s}_{date}.jsonl")
        (run / f"results_{date}.json").write_text(json.dumps({"config": {"model": "hf",
                                                                          "model_args": f"pretrained={model}"}}))
    (run / "samples_factforget_new_2025-01-02T10-00-00.1.jsonl").unlink()  # new from b, heldout from a (the newest)
    (run / "samples_factforget_heldout_2025-03-04T10-00-00.1.jsonl").unlink()
    with pytest.raises(ScoreError, match=r"holds lm-eval runs of different models \(hf /models/a; hf /models/b\)"):
        answer_sources.read_answers(run, "base")


def test_a_full_disk_leaves_no_half_folder_and_is_checked_before_the_model_runs(split, full_disk, monkeypatch):
    fill(full_disk)
    with pytest.raises(WriteError, match="cannot write .*x: .*nothing was changed there"):
        scripted_answers(full_disk / "x", split, set())
    assert not (full_disk / "x").exists()

    def no_model(*a, **k):
        raise AssertionError("a model was loaded for an --out that cannot be written")

    monkeypatch.setattr("factbench.engines.make_engine", no_model)
    with pytest.raises(WriteError, match="cannot write"):
        answer_sources.evaluate_sets("toy:tiny", ["heldout"], split_dir=split.path, out=full_disk / "x")


# ---- a real lm-eval run, round trip to a score card ----------------------------------------------

@pytest.fixture(scope="module")
def stand_in_finetune(smollm2_dir, tmp_path_factory):
    """SmolLM2 with seeded noise on its MLP weights: forgets some facts, keeps others (a stand-in fine-tune)."""
    import torch

    from factbench import models

    loaded = models.load(str(smollm2_dir))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in loaded.model.named_parameters():
            if ".mlp." in name:
                p.add_(torch.randn(p.shape, generator=generator) * p.std() * 0.15)
    folder = tmp_path_factory.mktemp("stand-in-finetune")
    loaded.model.save_pretrained(folder)
    loaded.tokenizer.save_pretrained(folder)
    return folder


def test_lm_eval_round_trip_to_a_score_card(smollm2_dir, stand_in_finetune, scripted, tmp_path, capsys):
    from conftest import run_lm_eval

    from factbench import models

    split_dir, tasks, limit = scripted[1], [question_sets.task_name(s) for s in ("heldout", "new")], 10
    results = {role: run_lm_eval(model, tasks, tmp_path / role, limit, {"split": str(split_dir)}, batch_size=8)
               for role, model in (("base", smollm2_dir), ("tuned", stand_in_finetune))}
    card_path = tmp_path / "card.json"
    assert main(["score", "--base", str(tmp_path / "base"), "--tuned", str(tmp_path / "tuned"),
                 "--split", str(split_dir), "--out", str(card_path)]) == 0
    printed = capsys.readouterr().out
    card = scorecard.load_card(card_path)

    # identities: lm-eval's model and args from its results JSON, weights hashed by factbench
    assert card["base"]["source"] == "lm-eval" and card["base"]["lm_eval_model"] == "hf"
    assert card["base"]["model"]["name"] == str(smollm2_dir)
    assert card["base"]["model"]["content_sha256"] == models.folder_hash(smollm2_dir)
    assert card["tuned"]["model"]["content_sha256"] == models.folder_hash(stand_in_finetune)
    assert card["base"]["task_versions"] == {"heldout": 2.0, "new": 2.0}  # lm-eval task version 2.0
    assert card["base"]["engine"]["dtype"] == "float32"

    # lm-eval's own aggregate scores are the card's accuracies
    for name in ("heldout", "new"):
        task = question_sets.task_name(name)
        for role in ("base", "tuned"):
            lm = results[role]["results"][task]
            assert card["sets"][name][f"{role}_accuracy"]["value"] == pytest.approx(lm["em,none"])
            assert card["sets"][name]["contains"][f"{role}_accuracy"]["value"] == pytest.approx(lm["contains,none"])
    assert card["sets"]["known_train"]["status"] == card["sets"]["ood"]["status"] == "not answered"
    assert card["sets"]["heldout"]["questions"] == limit and card["sets"]["heldout"]["in_split"] == 15
    assert any("10 of the split's 15" in n for n in card["notes"])

    # the flip table is the per-question join of lm-eval's sample logs
    def em_by_id(role, task):
        (path,) = (tmp_path / role).rglob(f"samples_{task}_*.jsonl")
        return {r["doc"]["id"]: bool(r["em"]) for r in map(json.loads, path.read_text().splitlines())}

    b, t = em_by_id("base", "factforget_heldout"), em_by_id("tuned", "factforget_heldout")
    expected = [sum(b[i] == x and t[i] == y for i in b) for x, y in ((1, 1), (1, 0), (0, 1), (0, 0))]
    assert list(flip_counts(card, "heldout")) == expected
    assert "retention" in printed and f"wrote score card {card_path}" in printed

    # factbench's own engine, run by `score` on the base model (asked only the questions the tuned
    # folder answered), gives the base the same answers
    card2_path = tmp_path / "card2.json"
    assert main(["score", "--base", str(smollm2_dir), "--tuned", str(tmp_path / "tuned"), "--split", str(split_dir),
                 "--dtype", "float32", "--out", str(card2_path)]) == 0
    card2 = scorecard.load_card(card2_path)
    assert card2["base"]["source"] == "factbench"
    assert card2["base"]["model"]["content_sha256"] == card["base"]["model"]["content_sha256"]
    assert card2["outcomes"] == card["outcomes"]
    assert card2["sets"]["known_train"]["status"] == "not answered"
    print(printed)  # shown with pytest -s: the numbers of this round trip
