"""`factbench score`: score cards from answers of either source, checked against hand counts.

Most tests use a scripted split (test_lmeval_tasks.make_scripted_split: 15 held-out, 30 new,
20 known-train, 5 OOD facts) and scripted "models" that answer exactly a chosen set of facts
right, run through the same code path as `factbench eval --sets`. The last test runs lm-eval
itself (`--model hf`, `--log_samples`) on SmolLM2 and a stand-in fine-tune of it.
"""

import dataclasses
import json
import shutil

import numpy as np
import pytest
from test_knowledge import ScriptedEngine
from test_lmeval_tasks import SPLIT_SETTINGS, make_scripted_split

from factbench import evaluation, knowledge, protocol, question_sets, scorecard, scoring, splits
from factbench.cli import main

SETS = question_sets.SPLIT_SETS


class NamedScriptedEngine(ScriptedEngine):
    def __init__(self, rule, name):
        super().__init__(rule)
        self.model_name = name

    def describe(self):
        return {"engine": "scripted", "model": {"source": "scripted", "name": self.model_name}, "dtype": None}


def scripted_answers(folder, split, right, name="scripted", sets=SETS, limit=None):
    """A `factbench eval --sets` folder whose model answers exactly the fact ids in `right` correctly."""
    gold = {d["question"]: (d["id"], d["answers"][0]) for s in SETS for d in question_sets.docs(s, split)}
    engine = NamedScriptedEngine(lambda q, ex, i: gold[q][1] if gold[q][0] in right else "no idea", name)
    evaluation.answer_sets(engine, evaluation.set_docs(sets, split, limit), split, out=folder, echo=lambda _: None)
    return folder


def ids(split, name):
    return [r["id"] for r in question_sets.set_rows(name, split)]


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    return make_scripted_split(tmp_path_factory.mktemp("scripted"))


@pytest.fixture(scope="module")
def split(scripted):
    return splits.load_split(scripted[1])


def base_right(split):
    """Base: 12 of 15 held-out, 1 of 30 new, all known-train and OOD facts."""
    h, n, k, o = (ids(split, s) for s in SETS)
    return set(h[:12]) | {n[0]} | set(k) | set(o)


def tuned_right(split):
    """Tuned: held-out 0-8 kept, 9-11 forgotten, 12 acquired; new 0-19; known-train 0-17; OOD 0-3."""
    h, n, k, o = (ids(split, s) for s in SETS)
    return set(h[:9]) | {h[12]} | set(n[:20]) | set(k[:18]) | set(o[:4])


@pytest.fixture(scope="module")
def folders(split, tmp_path_factory):
    root = tmp_path_factory.mktemp("answers")
    return {"base": scripted_answers(root / "base", split, base_right(split), "base-model"),
            "tuned": scripted_answers(root / "tuned", split, tuned_right(split), "tuned-model")}


@pytest.fixture(scope="module")
def card(folders, scripted, tmp_path_factory):
    out = tmp_path_factory.mktemp("card") / "card.json"
    assert main(["score", "--base", str(folders["base"]), "--tuned", str(folders["tuned"]),
                 "--split", str(scripted[1]), "--out", str(out)]) == 0
    return json.loads(out.read_text())


def _flips(card, name):
    f = card["sets"][name]["flips"]["all"]
    return tuple(f[k]["count"] for k in scoring.FLIPS)


def test_flip_table_and_rates_match_hand_counts(card):
    # (retained, forgotten, acquired, never known), counted by hand from base_right / tuned_right
    assert _flips(card, "heldout") == (9, 3, 1, 2)
    assert _flips(card, "new") == (1, 0, 19, 10)
    assert _flips(card, "known_train") == (18, 2, 0, 0)
    assert _flips(card, "ood") == (4, 1, 0, 0)
    s = card["summary"]
    assert s["retention"]["value"] == pytest.approx(10 / 15)
    assert s["forgetting"]["value"] == pytest.approx(5 / 15)
    assert s["base_heldout_accuracy"]["value"] == pytest.approx(12 / 15)
    assert s["heldout_drop"]["value"] == pytest.approx(2 / 15)
    assert s["retained_of_base_right"]["value"] == pytest.approx(9 / 12)
    assert s["acquisition"]["value"] == pytest.approx(20 / 30)
    assert s["known_train_accuracy"]["value"] == pytest.approx(18 / 20)
    assert s["ood_retention"]["value"] == pytest.approx(4 / 5)
    assert s["forgotten_per_acquired"] == {"forgotten": 3, "heldout_questions": 15, "acquired": 19,
                                           "new_questions": 30, "ratio": pytest.approx(3 / 19)}
    assert s["peak_relative_forgetting"] is None
    # forgetting's interval is retention's, mirrored
    assert s["forgetting"]["low"] == pytest.approx(1 - s["retention"]["high"])
    # containment is reported beside exact match (here they agree: the scripted answers are exact)
    assert card["sets"]["heldout"]["contains"]["tuned_accuracy"]["value"] == pytest.approx(10 / 15)


def test_flips_per_relation_and_category_match_an_independent_count(card, split):
    h = ids(split, "heldout")
    b, t = base_right(split), tuned_right(split)
    expected = {}
    for fid in h:
        cell = {(True, True): 0, (True, False): 1, (False, True): 2, (False, False): 3}[(fid in b, fid in t)]
        counts = expected.setdefault(fid.split("/")[0], [0, 0, 0, 0])
        counts[cell] += 1
    by_relation = card["sets"]["heldout"]["flips"]["by_relation"]
    assert {r: [f[k]["count"] for k in scoring.FLIPS] for r, f in by_relation.items()} == expected
    assert list(card["sets"]["heldout"]["flips"]["by_category"]) == ["HighlyKnown"]
    assert card["sets"]["new"]["flips"]["by_category"]["Unknown"]["acquired"]["count"] == 19


def test_card_records_identities_hashes_and_compact_outcomes(card, split, scripted):
    assert card["schema"] == "factbench.scorecard/1"
    assert card["protocol_hash"] == split.manifest["protocol_hash"]
    assert card["base"]["source"] == "factbench" and card["base"]["model"]["name"] == "base-model"
    assert card["tuned"]["label"].startswith("tuned-model")
    assert card["base"]["decoding"] == protocol.generation_kwargs()
    assert card["split"]["files"] == split.manifest["files"]
    for name in SETS:
        o = card["outcomes"][name]
        assert sorted(o["ids"]) == sorted(ids(split, name))
        assert card["sets"][name]["ids_sha256"] == evaluation.ids_sha256(ids(split, name))
        assert o["tuned"] == "".join("1" if i in tuned_right(split) else "0" for i in o["ids"])
    assert card["guessable"]["questions"] == 0 and card["guessable"]["note"].startswith("none")
    assert card["notes"] == []


def test_every_interval_contains_its_estimate(card):
    def walk(x):
        if isinstance(x, dict):
            if {"value", "low", "high", "n"} <= set(x) and x["value"] is not None:
                yield x
            for v in x.values():
                yield from walk(v)

    rates = list(walk(card))
    assert len(rates) > 100
    for r in rates:
        assert r["low"] - 1e-12 <= r["value"] <= r["high"] + 1e-12


def test_intervals_shrink_with_more_questions():
    def metrics(n):  # a quarter of the facts forgotten, whatever n
        base = np.ones(n, dtype=bool)
        tuned = np.arange(n) % 4 != 0
        o = scoring.Outcomes([f"P17/train/{i}" for i in range(n)], ["P17"] * n, ["HighlyKnown"] * n, base, tuned,
                             base, tuned, np.zeros(n, dtype=bool))
        return scoring.set_metrics(o, scoring.Bootstrap())

    small, large = metrics(40), metrics(4000)
    for key in ("tuned_accuracy", "change"):
        assert small[key]["value"] == pytest.approx(large[key]["value"])
        assert (large[key]["high"] - large[key]["low"]) < (small[key]["high"] - small[key]["low"]) / 5


def test_text_summary_says_what_the_card_says(card, capsys):
    text = scorecard.render(card)
    assert "retention 66.7% [" in text and "forgetting 33.3% [" in text
    assert "forgotten ÷ acquired: 3 ÷ 19 = 0.158" in text
    assert "the base itself answers 80.0% [" in text
    assert "guessable facts: none" in text


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
    with pytest.raises(scoring.ScoreError, match=message):
        scoring.read_training_log(log)


def test_guessable_facts_are_scored_apart(scripted, tmp_path):
    profile_dir = scripted[0]
    settings = dataclasses.replace(SPLIT_SETTINGS, include_guessable=True)
    splits.make_split(knowledge.load_profile(profile_dir), settings, tmp_path / "split")
    split = splits.load_split(tmp_path / "split")
    guessable = {r["id"] for r in knowledge.load_profile(profile_dir).rows if r["guessable"]}
    held = ids(split, "heldout")
    in_heldout = guessable & set(held)
    assert 0 < len(in_heldout) < len(held)  # the scripted profile has some: exemplar copies
    everything = {i for s in SETS for i in ids(split, s)}
    scripted_answers(tmp_path / "base", split, everything)
    scripted_answers(tmp_path / "tuned", split, everything - in_heldout)  # forgets only guessable facts
    card = scoring.score(scoring.read_answers(tmp_path / "base", "base"),
                         scoring.read_answers(tmp_path / "tuned", "tuned"), split)
    assert card["sets"]["heldout"]["questions"] == len(held) - len(in_heldout)
    assert card["summary"]["forgetting"]["value"] == 0  # the headline is on recalled facts only
    g = card["guessable"]["sets"]["heldout"]
    assert g["questions"] == len(in_heldout) and g["tuned_accuracy"]["value"] == 0
    assert card["outcomes"]["heldout"]["guessable"].count("1") == len(in_heldout)


def test_card_schema_rejects_broken_cards(card, tmp_path):
    scorecard.validate(card)
    broken = json.loads(json.dumps(card))
    del broken["summary"]["retention"]
    with pytest.raises(scorecard.CardError, match="card.summary: missing 'retention'"):
        scorecard.validate(broken)
    broken = json.loads(json.dumps(card))
    broken["outcomes"]["heldout"]["tuned"] = broken["outcomes"]["heldout"]["tuned"][:-1]
    with pytest.raises(scorecard.CardError, match="one entry per question"):
        scorecard.validate(broken)
    broken = json.loads(json.dumps(card))
    broken["sets"]["new"]["base_accuracy"]["value"] = 1.5
    with pytest.raises(scorecard.CardError, match="above 1"):
        scorecard.validate(broken)
    path = tmp_path / "truncated.json"
    path.write_text(json.dumps(card)[:500])
    with pytest.raises(scorecard.CardError, match="not valid JSON"):
        scorecard.load_card(path)


def test_hand_written_validator_agrees_with_jsonschema(card):
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.Draft202012Validator.check_schema(scorecard.SCHEMA)
    jsonschema.validate(card, scorecard.SCHEMA)
    broken = json.loads(json.dumps(card))
    broken["sets"]["heldout"]["status"] = "maybe"
    assert scorecard.schema_errors(broken, scorecard.SCHEMA)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(broken, scorecard.SCHEMA)


# ---- refusals: one line, exit code 2, nothing written ------------------------------------------

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
    assert card["base"]["task_versions"] == {"heldout": 1.0, "new": 1.0}
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
    assert list(_flips(card, "heldout")) == expected
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


def test_a_mistyped_folder_is_not_taken_for_a_hub_id(folders, scripted, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    assert main(["score", "--base", str(folders["base"]), "--tuned", "runs/sft", "--split", str(scripted[1])]) == 2
    assert "--tuned runs/sft: no such folder (runs exists, runs/sft does not)" in capsys.readouterr().err
