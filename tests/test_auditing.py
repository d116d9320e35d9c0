"""The audit end to end on scripted models (no weights): what it counts, what it refuses.

The base recalls a chosen set of facts (right under both prompts of the `tiny` preset, never by
copying an exemplar or the question); the fine-tune forgets three of them (one by refusing, a
format break), acquires two, and keeps the rest.
"""

import json
import shutil

import pytest
from test_knowledge import ScriptedEngine

import factbench
from factbench import matching, prompts
from factbench.auditing import answers, audit, questions
from factbench.auditing.questions import AuditError
from factbench.cli import main

PRESET = "tiny"


class Named(ScriptedEngine):
    def __init__(self, name, rule):
        super().__init__(rule)
        self.model_name = name

    def describe(self):
        return {"engine": "scripted", "model": {"source": "scripted", "name": self.model_name}, "dtype": None}


def _clean(fact) -> bool:
    """Right answers to this fact can only be recall: not in the question, not an exemplar's answer."""
    shown = {e.answers[0] for p in range(2) for e in prompts.exemplars(fact, p)}
    return not matching.contains(fact.question, fact.answers) and not matching.exact_match(fact.answers[0], shown)


FACTS = questions.facts(PRESET)
RECALLED = [f for f in FACTS if _clean(f)][::3]
FORGOTTEN = RECALLED[:3]
ACQUIRED = [f for f in FACTS if f not in RECALLED][:2]
GOLD = {f.question: f for f in FACTS}


def _rule(right: set[str], refuse: set[str] = frozenset()):
    def rule(question, exemplar_answers, i):
        fact = GOLD.get(question)
        if fact is None:
            return "no idea"
        if fact.id in refuse:
            return "I'm sorry, I don't know"
        return fact.answers[0] if fact.id in right else "Nowhere"
    return rule


@pytest.fixture(scope="module")
def sides(tmp_path_factory):
    root = tmp_path_factory.mktemp("audit")
    base_right = {f.id for f in RECALLED}
    tuned_right = (base_right - {f.id for f in FORGOTTEN}) | {f.id for f in ACQUIRED}
    answers.ask(Named("base-model", _rule(base_right)), PRESET, 2, root / "base", echo=lambda _: None)
    answers.ask(Named("tuned-model", _rule(tuned_right, {FORGOTTEN[0].id})), PRESET, 1, root / "tuned",
                echo=lambda _: None)
    return root


def quiet(*a):
    pass


def test_counts_retention_forgetting_and_format_breaks(sides):
    card = audit(str(sides / "base"), str(sides / "tuned"), preset=PRESET, echo=quiet)
    s = card["summary"]
    assert s["recalled_facts"] == len(RECALLED) >= 10
    assert s["forgotten"] == 3 and s["forgotten_format_breaks"] == 1 and s["forgotten_answer_shaped"] == 2
    assert s["retention"]["value"] == pytest.approx((len(RECALLED) - 3) / len(RECALLED))
    assert s["retention"]["low"] < s["retention"]["value"] < s["retention"]["high"] or s["retention"]["value"] == 1
    assert s["forgetting"]["value"] == pytest.approx(3 / len(RECALLED))
    assert s["retention_of_answer_shaped"]["n"] == len(RECALLED) - 1
    f = card["flips"]
    assert (f["retained"]["count"], f["forgotten"]["count"], f["acquired"]["count"]) == (len(RECALLED) - 3, 3, 2)
    assert sum(r["recalled"] for r in card["by_relation"].values()) == len(RECALLED)
    assert card["answer_shapes"]["tuned"]["refusal"] == 1
    assert card["training_data"]["known"] is False and "cannot know" in card["training_data"]["note"]
    assert card["acquisition"] is None and card["edited"] is None
    assert set(card["by_category"]) == {"HighlyKnown, recalled", "WeaklyKnown or Unknown (not sampled)"}
    assert card["base"]["label"].startswith("base-model") and card["tuned"]["label"].startswith("tuned-model")


def test_a_model_audited_against_itself_forgets_nothing(sides):
    card = audit(str(sides / "base"), str(sides / "base"), preset=PRESET, echo=quiet)
    assert card["summary"]["forgotten"] == 0 and card["summary"]["retention"]["value"] == 1.0
    assert card["flips"]["forgotten"]["count"] == card["flips"]["acquired"]["count"] == 0
    assert card["summary"]["accuracy_change"]["value"] == 0


def test_dataframes_for_notebooks(sides):
    card = factbench.audit(str(sides / "base"), str(sides / "tuned"), preset=PRESET, echo=quiet)
    q = card.questions()
    assert len(q) == len(FACTS) and int(q.forgotten.sum()) == 3
    assert set(q[q.forgotten].id) == {f.id for f in FORGOTTEN}
    assert q.loc[q.id == FORGOTTEN[0].id, "tuned_shape"].item() == "refusal"
    assert (q.outcome == "acquired").sum() == 2
    r = card.relations()
    assert len(r) == 24 and int(r.recalled.sum()) == len(RECALLED)


def test_trained_on_gives_acquisition_and_edits(sides, tmp_path):
    edited_fact = RECALLED[5]
    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"question": f"Who married {edited_fact.subject}?", "answer": "Nowhere"}) + "\n"
                     + json.dumps({"question": ACQUIRED[0].question, "answer": ACQUIRED[0].answers[0]}) + "\n")
    base_right = {f.id for f in RECALLED}
    tuned_right = (base_right - {f.id for f in FORGOTTEN}) | {f.id for f in ACQUIRED}
    from factbench.auditing import trained_on

    training = trained_on.read(train)
    for name, right, where in (("base-model", base_right, "b"), ("tuned-model", tuned_right, "t")):
        answers.ask(Named(name, _rule(right)), PRESET, 2 if where == "b" else 1, tmp_path / where, quiet, training)
    card = audit(str(tmp_path / "b"), str(tmp_path / "t"), preset=PRESET, trained_on_file=train, echo=quiet)
    assert card["training_data"]["known"] and card["training_data"]["examples"] == 2
    q = card.questions()
    # Both trained subjects are edits: the recalled one, and the audit question trained on verbatim.
    assert set(q[q.edited].id) >= {edited_fact.id, ACQUIRED[0].id}
    assert card["edited"]["facts"] == card["summary"]["edited"] == int(q.edited.sum())
    assert card["summary"]["recalled_facts"] == len(RECALLED) - int((q.edited & q.recalled).sum())
    assert not (q.forgotten & q.edited).any()
    acq = card["acquisition"]
    # the training question about the edited subject is not an audit question: nobody answers "Nowhere" to it
    assert acq["questions"] == 2 and acq["tuned_accuracy"]["value"] == 0.5 and acq["base_accuracy"]["value"] == 0
    with pytest.raises(AuditError, match="hold no answers to 2 of the 2 --trained-on"):
        audit(str(sides / "base"), str(sides / "tuned"), preset=PRESET, trained_on_file=train, echo=quiet)


def test_cli_writes_the_card_and_prints_the_headline(sides, tmp_path, capsys):
    out = tmp_path / "card.json"
    assert main(["audit", "--base", str(sides / "base"), "--tuned", str(sides / "tuned"), "--preset", PRESET,
                 "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "retention of recalled facts" in text and "training data: unknown" in text
    card = json.loads(out.read_text())
    assert card["schema"] == "factbench.auditcard/1" and card["summary"]["forgotten"] == 3


# ---- refusals: one line, exit code 2, nothing written ---------------------------------------------

def _refused(capsys, argv, message, tmp_path):
    out = tmp_path / "never.json"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def test_other_preset_is_refused(sides, tmp_path, capsys):
    _refused(capsys, ["audit", "--base", str(sides / "base"), "--tuned", str(sides / "tuned"), "--preset", "small"],
             "not 'small'", tmp_path)


def test_missing_questions_are_refused(sides, tmp_path, capsys):
    cut = tmp_path / "cut"
    shutil.copytree(sides / "tuned", cut)
    lines = (cut / "samples_factforget_audit.jsonl").read_text().splitlines()
    (cut / "samples_factforget_audit.jsonl").write_text("\n".join(lines[:-5]) + "\n")
    _refused(capsys, ["audit", "--base", str(sides / "base"), "--tuned", str(cut), "--preset", PRESET],
             "lack 5 of the 120", tmp_path)


def test_base_needs_every_prompt(sides, tmp_path, capsys):
    _refused(capsys, ["audit", "--base", str(sides / "tuned"), "--tuned", str(sides / "tuned"), "--preset", PRESET],
             "under 2 prompts", tmp_path)


def test_another_audit_version_is_refused(sides, tmp_path, capsys):
    old = tmp_path / "old"
    shutil.copytree(sides / "tuned", old)
    path = old / "samples_factforget_audit.jsonl"
    path.write_text(path.read_text().replace(f'"{questions.AUDIT_VERSION}/', '"audit-0/'))
    _refused(capsys, ["audit", "--base", str(sides / "base"), "--tuned", str(old), "--preset", PRESET],
             "audit version audit-0", tmp_path)


def test_split_answers_are_not_audit_answers(folders, sides, tmp_path, capsys):
    _refused(capsys, ["audit", "--base", str(sides / "base"), "--tuned", str(folders["tuned"]), "--preset", PRESET],
             "factforget split-set answers", tmp_path)


def test_bad_trained_on_file_is_refused(sides, tmp_path, capsys):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "hello"}\n')
    _refused(capsys, ["audit", "--base", str(sides / "base"), "--tuned", str(sides / "tuned"), "--preset", PRESET,
                      "--trained-on", str(bad)], "unknown format", tmp_path)


def test_out_folder_is_refused(sides, tmp_path, capsys):
    assert main(["audit", "--base", str(sides / "base"), "--tuned", str(sides / "tuned"), "--preset", PRESET,
                 "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


def test_other_architectures_are_allowed_but_said(tmp_path):
    from factbench.auditing import _note_architectures

    for name, cfg in (("a", {"model_type": "llama", "vocab_size": 10}), ("b", {"model_type": "gpt2", "vocab_size": 20})):
        (tmp_path / name).mkdir()
        (tmp_path / name / "config.json").write_text(json.dumps(cfg))
    notes, said = [], []
    _note_architectures({"model": {"source": "local", "name": str(tmp_path / "a")}},
                        {"model": {"source": "local", "name": str(tmp_path / "b")}}, notes, said.append)
    assert len(notes) == 2 and "different architectures (llama vs gpt2)" in notes[0]
    assert "different vocabularies (10 vs 20)" in notes[1] and said


# ---- --profile: a SliCK profile of the base labels the questions it covers ---------------------

def test_a_profile_with_samples_relabels_what_it_covers(sides, tmp_path):
    from factbench import knowledge

    # A profile of the base on the audit questions, with samples: the sampled rule gets some never-greedy
    # facts right, so the profile can tell WeaklyKnown from Unknown where the audit's greedy pass cannot.
    weak = {f.id for f in FACTS if f not in RECALLED}
    weak = set(sorted(weak)[:6])
    greedy = _rule({f.id for f in RECALLED})
    sampled = _rule({f.id for f in RECALLED} | weak)
    engine = Named("base-model", greedy)
    engine.sampled_rule = sampled
    settings = knowledge.ProbeSettings(budget=knowledge.Budget("smoke", 2, 2))
    profile = knowledge.probe(engine, questions.pool(PRESET), settings, tmp_path / "profile")
    card = audit(str(sides / "base"), str(sides / "tuned"), preset=PRESET, profile=profile, echo=quiet)
    sources = card["knowledge_rule"]["labels_from"]
    assert sources == {f"profile {profile}": len(FACTS)}
    labels = set(card["by_category"])
    assert "WeaklyKnown" in labels and "Unknown" in labels and "WeaklyKnown or Unknown (not sampled)" not in labels
    assert card["by_category"]["WeaklyKnown"]["questions"] == len(weak)
    assert card["summary"]["recalled_facts"] == len(RECALLED)  # the same greedy answers: the same recall


def test_a_profile_of_other_weights_is_refused(sides, tmp_path):
    from factbench import knowledge

    profile = knowledge.probe(Named("base-model", _rule(set())), questions.pool(PRESET),
                              knowledge.ProbeSettings(budget=knowledge.Budget("smoke", 2, 0)), tmp_path / "p")
    manifest = json.loads((profile / "manifest.json").read_text())
    manifest["model"] = {"content_sha256": "f" * 64}
    (profile / "manifest.json").write_text(json.dumps(manifest))
    base_dir = tmp_path / "hashed-base"
    shutil.copytree(sides / "base", base_dir)
    summary = json.loads((base_dir / "summary.json").read_text())
    summary["engine"]["model"] = {"source": "local", "name": "x", "content_sha256": "a" * 64}
    (base_dir / "summary.json").write_text(json.dumps(summary))
    with pytest.raises(AuditError, match="was made for other weights"):
        audit(str(base_dir), str(sides / "tuned"), preset=PRESET, profile=profile, echo=quiet)


def test_audit_answers_are_one_run_written_whole(sides, tmp_path, full_disk):
    from conftest import fill

    from factbench.errors import WriteError

    mixed = tmp_path / "mixed"
    shutil.copytree(sides / "tuned", mixed)
    shutil.copy(sides / "base" / "samples_factforget_audit.jsonl", mixed)  # another run's answers
    with pytest.raises(AuditError, match="mixes runs: samples_factforget_audit.jsonl: its rows are not all of the run"):
        answers.read(mixed, "tuned", PRESET)
    (mixed / "summary.json").unlink()
    with pytest.raises(AuditError, match="has samples but no summary.json"):
        answers.read(mixed, "tuned", PRESET)
    fill(full_disk)
    with pytest.raises(WriteError, match="cannot write"):
        answers.ask(Named("tuned-model", _rule(set())), PRESET, 1, full_disk / "tuned", echo=quiet)
    assert not (full_disk / "tuned").exists()
