import json

import pytest
from conftest import tiny_random_model

from factbench import data, knowledge, prompts
from factbench.engines.base import GenerationParams
from factbench.engines.hf import HFEngine
from factbench.errors import DataError, FactbenchError

SMOKE = knowledge.ProbeSettings(budget=knowledge.BUDGETS["smoke"])


class ScriptedEngine:
    """Answers from a rule on the question (rule tests only: no model)."""

    name = "scripted"

    def __init__(self, rule, sampled_rule=None):
        self.rule, self.sampled_rule, self.calls = rule, sampled_rule or rule, 0

    def generate(self, texts, params: GenerationParams):
        self.calls += 1
        out = []
        for t in texts:
            question = t.rsplit("Q: ", 1)[1].removesuffix("\nA:")
            exemplar_answers = [line[3:] for line in t.splitlines() if line.startswith("A: ")]
            rule = self.rule if params.greedy else self.sampled_rule
            out.append([rule(question, exemplar_answers, i) for i in range(params.n)])
        return out

    def describe(self):
        return {"engine": self.name, "model": {"name": "scripted"}, "dtype": None}


def test_category_rules():
    assert knowledge.category([True, True], 0) == "HighlyKnown"
    assert knowledge.category([True, False], 0) == "MaybeKnown"
    assert knowledge.category([False, False], 3) == "WeaklyKnown"
    assert knowledge.category([False, False], 0) == "Unknown"


def _pool(n=12, relations=("P36", "P17")):
    return knowledge.Pool(relations=relations, per_relation=n)


def _rows(out):
    return {r["id"]: r for r in knowledge.load_profile(out).rows}


def test_true_recall_that_changes_with_the_subject_is_known(tmp_path):
    gold = {f.question: f.answers[0] for f in _pool().facts()}
    out = knowledge.probe(ScriptedEngine(lambda q, ex, i: gold[q]), _pool(), SMOKE, tmp_path / "p")
    rows = _rows(out)
    assert all(r["category"] == "HighlyKnown" for r in rows.values())
    # subject-specific answers: controls (other subjects, other gold answers) never give them
    assert all(r["guess_rate"] == 0 for r in rows.values())
    recall = [r for r in rows.values() if not r["answer_in_question"] and r["exemplar_copies"] == 0]
    assert len(recall) > len(rows) / 2 and all(r["known"] for r in recall)
    # Conservative by design: a right answer that is also an exemplar's answer under every
    # prompt cannot be told apart from a copy, so it is not counted as known.
    assert all(not r["known"] for r in rows.values() if r["exemplar_copies"] == 2)


def test_copy_from_question_is_guessable(tmp_path):
    facts = [f for f in data.load("train", ["P36"]) if f.answers[0] in f.question][:3]
    assert facts, "EntityQuestions has capitals named in the question"
    rows = knowledge.label(facts, {(f.id, p): f.answers[0] for f in facts for p in range(2)}, {}, SMOKE)
    assert all(r["answer_in_question"] and r["guessable"] and not r["known"] for r in rows)
    assert all(r["category"] == "HighlyKnown" for r in rows)


def test_copy_from_exemplar_is_guessable(tmp_path):
    # Answer every question with the first exemplar's answer: right only where the gold answer
    # happens to be that exemplar's, and then a copy.
    out = knowledge.probe(ScriptedEngine(lambda q, ex, i: ex[0]), _pool(40, ("P17",)), SMOKE, tmp_path / "p")
    right = [r for r in _rows(out).values() if r["p_greedy"] > 0]
    assert right, "some P17 answers match an exemplar's country"
    for r in right:
        assert r["exemplar_copies"] == round(r["p_greedy"] * 2) and r["recalled_prompts"] == 0
        assert r["guessable"] and not r["known"]


def test_constant_answer_across_subjects_is_guessable(tmp_path):
    out = knowledge.probe(ScriptedEngine(lambda q, ex, i: "United States of America"), _pool(40, ("P17",)),
                          SMOKE, tmp_path / "p")
    rows = _rows(out)
    usa = [r for r in rows.values() if r["category"] == "HighlyKnown"]
    assert usa and all(r["guess_rate"] == 1.0 and r["guessable"] and not r["known"] for r in usa)
    assert all(r["category"] == "Unknown" for r in rows.values() if r not in usa)


def test_samples_separate_weakly_known_from_unknown(tmp_path):
    gold = {f.question: f.answers[0] for f in _pool().facts()}
    engine = ScriptedEngine(lambda q, ex, i: "nothing", lambda q, ex, i: gold[q] if i == 0 else "nothing")
    rows = _rows(knowledge.probe(engine, _pool(), SMOKE, tmp_path / "p"))
    assert {r["category"] for r in rows.values()} == {"WeaklyKnown"}
    assert all(r["p_sampled"] == 0.5 for r in rows.values())  # 1 right of 2 samples, under both prompts


class Interrupted(Exception):
    pass


class Flaky:
    """An engine that dies after `calls` generate calls, like a killed process."""

    def __init__(self, engine, calls):
        self.engine, self.left, self.name = engine, calls, engine.name

    def generate(self, texts, params):
        if self.left == 0:
            raise Interrupted
        self.left -= 1
        return self.engine.generate(texts, params)

    def describe(self):
        return self.engine.describe()


def test_killed_and_resumed_probe_equals_an_uninterrupted_one(tmp_path, smol_tokenizer, monkeypatch):
    monkeypatch.setattr(knowledge, "CHUNK", 5)  # many small resumable units
    engine = HFEngine(tiny_random_model("llama", len(smol_tokenizer)), smol_tokenizer, progress=False,
                      dtype="float32", model_identity={"name": "tiny"})
    pool = _pool(8)
    uninterrupted = Flaky(engine, 10_000)
    whole = knowledge.probe(uninterrupted, pool, SMOKE, tmp_path / "whole")
    with pytest.raises(Interrupted):
        knowledge.probe(Flaky(engine, 5), pool, SMOKE, tmp_path / "resumed")
    assert not (tmp_path / "resumed" / "manifest.json").exists()
    assert not (tmp_path / "resumed" / "profile.jsonl").exists()
    with pytest.raises(DataError, match="not a finished profile"):
        knowledge.load_profile(tmp_path / "resumed")
    counting = Flaky(engine, 10_000)
    knowledge.probe(counting, pool, SMOKE, tmp_path / "resumed")
    assert (tmp_path / "resumed" / "profile.jsonl").read_bytes() == (whole / "profile.jsonl").read_bytes()
    # the 5 chunks finished before the kill were reused, not generated again
    assert 10_000 - counting.left == (10_000 - uninterrupted.left) - 5


def test_resume_under_another_protocol_is_refused(tmp_path):
    engine = ScriptedEngine(lambda q, ex, i: "x")
    with pytest.raises(Interrupted):
        knowledge.probe(Flaky(engine, 1), _pool(), SMOKE, tmp_path / "p")
    other = knowledge.ProbeSettings(budget=knowledge.BUDGETS["smoke"], exemplar_seed=3)
    with pytest.raises(FactbenchError, match="another protocol.*exemplar_seed"):
        knowledge.probe(engine, _pool(), other, tmp_path / "p")


def test_finished_profile_is_never_overwritten(tmp_path):
    engine = ScriptedEngine(lambda q, ex, i: "x")
    out = knowledge.probe(engine, _pool(4), SMOKE, tmp_path / "p")
    before = (out / "manifest.json").read_bytes()
    with pytest.raises(FactbenchError, match="already holds a finished profile"):
        knowledge.probe(engine, _pool(4), SMOKE, out)
    assert (out / "manifest.json").read_bytes() == before


def test_corrupted_profile_is_refused(tmp_path):
    out = knowledge.probe(ScriptedEngine(lambda q, ex, i: "x"), _pool(4), SMOKE, tmp_path / "p")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["counts"]["P17"]["Unknown"] == 4 and manifest["protocol_hash"]
    with open(out / "profile.jsonl", "a") as f:
        f.write("{}\n")
    with pytest.raises(DataError, match="does not match the checksum"):
        knowledge.load_profile(out)
    (out / "manifest.json").write_text("{not json")
    with pytest.raises(DataError, match="unreadable"):
        knowledge.load_profile(out)


def test_prompts_share_one_prefix_per_relation_and_prompt_index():
    a, b = data.load("train", ["P17"])[:2]
    pa, pb = prompts.build_prompt(a, 3), prompts.build_prompt(b, 3)
    assert pa.rsplit("Q: ", 1)[0] == pb.rsplit("Q: ", 1)[0]
    assert pa.rsplit("Q: ", 1)[0] != prompts.build_prompt(a, 4).rsplit("Q: ", 1)[0]
    assert pa.count("\nA: ") == 4 and pa.endswith(f"Q: {a.question}\nA:")
