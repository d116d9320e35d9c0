"""Which questions each factforget set holds (factbench.question_sets), on the scripted split."""

import json

import pytest
from conftest import SETS

from factbench import data, question_sets
from factbench.question_sets import QuestionSetError


def test_split_sets_are_the_sets_scoring_reads():
    assert question_sets.SPLIT_SETS == SETS == ("heldout", "new", "known_train", "ood")
    assert question_sets.task_name("known_train") == "factforget_known_train"
    with pytest.raises(QuestionSetError, match="unknown question set 'train'; choose one of heldout, new"):
        question_sets.task_name("train")


def test_new_and_known_train_partition_the_training_set_in_its_order(split):
    train = split.sets["train"]
    new, known = question_sets.set_rows("new", split), question_sets.set_rows("known_train", split)
    assert [r["id"] for r in new] == [r["id"] for r in train if r["kind"] == "unknown"]
    assert [r["id"] for r in known] == [r["id"] for r in train if r["kind"] == "known"]
    assert (len(question_sets.set_rows("heldout", split)), len(new), len(known),
            len(question_sets.set_rows("ood", split))) == (15, 30, 20, 5)


def test_docs_carry_the_fact_and_its_category(split):
    docs = question_sets.docs("heldout", split)
    rows = question_sets.set_rows("heldout", split)
    assert [d["id"] for d in docs] == [r["id"] for r in rows]
    fact = data.get([docs[0]["id"]])[0]
    assert docs[0] == {"id": fact.id, "relation": fact.relation, "subject": fact.subject, "question": fact.question,
                       "answers": list(fact.answers), "category": rows[0].get("category")}
    assert question_sets.fact_of(docs[0]) == fact


def test_pool_needs_no_split_and_the_others_do():
    pool = question_sets.set_rows("pool", None)
    assert len(pool) == question_sets.POOL_PER_RELATION * len(data.check_relations(None))
    with pytest.raises(QuestionSetError, match="the heldout set needs a split"):
        question_sets.set_rows("heldout", None)


def test_a_split_is_found_or_refused_in_one_line(scripted, tmp_path):
    assert question_sets.find_split(scripted[1]).path == scripted[1]
    with pytest.raises(QuestionSetError, match="give a split .* or a profile .*, not both"):
        question_sets.find_split(scripted[1], scripted[0])
    with pytest.raises(QuestionSetError, match="does not exist"):
        question_sets.find_split(tmp_path / "nowhere", split_flag="--split")
    (tmp_path / "file").write_text("x")
    with pytest.raises(QuestionSetError, match="is a file, not a split folder"):
        question_sets.find_split(tmp_path / "file")


def test_a_split_made_under_another_protocol_is_refused(scripted, tmp_path):
    import shutil

    copy = tmp_path / "split"
    shutil.copytree(scripted[1], copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["protocol_hash"] = "0123456789abcdef"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(QuestionSetError, match="was made under question protocol 0123456789abcdef"):
        question_sets.find_split(copy)


def test_a_damaged_cached_derivation_is_drawn_again(scripted, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACTBENCH_CACHE", str(tmp_path / "cache"))
    first = question_sets.find_split(profile=scripted[0])
    files = {p.name: p.read_bytes() for p in first.path.iterdir()}
    for damage in (lambda d: (d / "manifest.json").write_text("[1]"),
                   lambda d: (d / "train.jsonl").write_bytes(b"\xff\xfe"),
                   lambda d: (d / "heldout.jsonl").unlink()):
        damage(first.path)
        capsys.readouterr()
        again = question_sets.find_split(profile=scripted[0])
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "damaged" in err[0] and "drawing it again" in err[0]
        assert again.path == first.path and {p.name: p.read_bytes() for p in again.path.iterdir()} == files


def test_a_profile_with_nothing_to_draw_from_is_one_line(tmp_path, monkeypatch):
    from test_knowledge import SMOKE, ScriptedEngine

    from factbench import knowledge

    monkeypatch.setenv("FACTBENCH_CACHE", str(tmp_path / "cache"))
    gold = {f.question: f.answers[0] for f in knowledge.Pool(relations=("P17",), per_relation=3).facts()}
    # 3 facts, all known: a quarter of them (or half the Unknown, or of OOD) is 0 for every size
    out = knowledge.probe(ScriptedEngine(lambda q, ex, i: gold[q]), knowledge.Pool(relations=("P17",), per_relation=3),
                          SMOKE, tmp_path / "p")
    with pytest.raises(QuestionSetError, match="cannot derive a split from profile"):
        question_sets.find_split(profile=out)
