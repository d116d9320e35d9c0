"""The audit question set: fixed, deterministic, from the test split only, every relation."""

import pytest

from factbench import data, knowledge
from factbench.auditing import questions
from factbench.auditing.questions import AuditError


def test_small_preset_is_50_test_questions_of_every_relation():
    facts = questions.facts("small")
    assert len(facts) == 1200
    per_relation = {r: sum(f.relation == r for f in facts) for r in data.check_relations(None)}
    assert set(per_relation.values()) == {50}
    assert all(f.split == "test" for f in facts)
    assert len({f.question for f in facts}) == len(facts)


def test_draw_is_deterministic_and_versioned():
    first = questions.identity("small")
    questions._facts.cache_clear()
    assert questions.identity("small") == first
    assert first["version"] == questions.AUDIT_VERSION and first["base_prompts"] == 4
    assert questions.identity("tiny")["ids_sha256"] != first["ids_sha256"]


def test_audit_questions_never_come_from_the_pools_probes_and_splits_use():
    probe_ids = {f.id for f in knowledge.Pool(per_relation=50).facts()}
    assert probe_ids and not probe_ids & {f.id for f in questions.facts("small")}


def test_full_preset_keeps_only_unambiguous_questions():
    facts = questions.facts("full")
    rows = data.load("test")
    assert len(facts) < len(rows)  # shared question strings (several true answer sets) are left out
    assert len({f.question for f in facts}) == len(facts) == 22001


def test_docs_one_per_question_and_prompt():
    docs = questions.docs("tiny")
    assert len(docs) == 120 * 2
    assert {(d["id"], d["prompt_index"]) for d in docs} == {(f.id, p) for f in questions.facts("tiny") for p in (0, 1)}
    assert {d["audit"] for d in docs} == {f"{questions.AUDIT_VERSION}/tiny"}
    assert len(questions.docs("tiny", prompts=1)) == 120


@pytest.mark.parametrize("bad", [0, 3])
def test_prompt_counts_outside_the_preset_are_refused(bad):
    with pytest.raises(AuditError, match="prompts must be between 1 and"):
        questions.docs("tiny", bad)


def test_unknown_preset_is_one_line():
    with pytest.raises(AuditError, match="unknown audit preset 'huge'; choose one of small, standard, full, tiny"):
        questions.preset("huge")
