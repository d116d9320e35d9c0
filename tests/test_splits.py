import json

import pytest
from test_knowledge import SMOKE, ScriptedEngine

from factbench import knowledge, splits
from factbench.errors import FactbenchError


@pytest.fixture(scope="module")
def profile(tmp_path_factory):
    """A scripted profile: the 'model' knows facts with an even index and nothing else."""
    pool = knowledge.Pool(relations=("P17", "P19", "P36", "P50"), per_relation=60)
    gold = {f.question: (f.answers[0], f.index) for f in pool.facts()}

    def rule(q, ex, i):
        answer, index = gold[q]
        return answer if index % 2 == 0 else "no idea"

    out = knowledge.probe(ScriptedEngine(rule), pool, SMOKE, tmp_path_factory.mktemp("p") / "profile")
    return knowledge.load_profile(out)


SETTINGS = splits.SplitSettings(known=20, unknown=30, heldout=15, ood=5, seed=1, min_known_share=0.1)


def test_same_profile_and_seed_give_byte_identical_files(profile, tmp_path):
    splits.make_split(profile, SETTINGS, tmp_path / "a")
    splits.make_split(profile, SETTINGS, tmp_path / "b")
    for name in ("train.jsonl", "heldout.jsonl", "ood.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    splits.make_split(profile, splits.SplitSettings(**{**SETTINGS.__dict__, "seed": 2}), tmp_path / "c")
    assert (tmp_path / "a" / "train.jsonl").read_bytes() != (tmp_path / "c" / "train.jsonl").read_bytes()


def test_sets_are_disjoint_in_question_and_subject(profile, tmp_path):
    splits.make_split(profile, SETTINGS, tmp_path / "s")
    s = splits.load_split(tmp_path / "s")
    train, heldout, ood = s.sets["train"], s.sets["heldout"], s.sets["ood"]
    assert (sum(r["kind"] == "known" for r in train), sum(r["kind"] == "unknown" for r in train)) == (20, 30)
    assert (len(heldout), len(ood)) == (15, 5)
    for other in (heldout, ood):
        assert not {r["subject"] for r in train} & {r["subject"] for r in other}
        assert not {r["question"] for r in train} & {r["question"] for r in other}
    known_ids = {r["id"] for r in profile.rows if r["known"]}
    assert all(r["id"] in known_ids for r in heldout + ood + [t for t in train if t["kind"] == "known"])
    assert all(r["category"] == "Unknown" for r in train if r["kind"] == "unknown")
    assert {r["relation"] for r in ood} == {"P50"}  # the OOD relation of the pool
    assert {r["relation"] for r in train} == {"P17", "P19", "P36"}
    # stratified: known training facts spread evenly over the three relations
    per_relation = [sum(r["relation"] == rel and r["kind"] == "known" for r in train) for rel in ("P17", "P19", "P36")]
    assert max(per_relation) - min(per_relation) <= 1


@pytest.mark.parametrize("change, message", [
    ({"known": 10_000}, r"asked for 10000 known training facts .* but only \d+ exist"),
    ({"unknown": 10_000}, r"only \d+ exist"),
    ({"min_known_share": 0.9}, r"no relation has at least 90% known facts \(best: P\d+ with"),
    ({"relations": ("P26",)}, "not in the profile"),
])
def test_impossible_requests_are_refused_and_write_nothing(profile, tmp_path, change, message):
    with pytest.raises(FactbenchError, match=message):
        splits.make_split(profile, splits.SplitSettings(**{**SETTINGS.__dict__, **change}), tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_a_pool_with_no_known_facts_is_refused(tmp_path):
    pool = knowledge.Pool(relations=("P17",), per_relation=10)
    empty = knowledge.load_profile(knowledge.probe(ScriptedEngine(lambda q, ex, i: "?"), pool, SMOKE, tmp_path / "p"))
    with pytest.raises(FactbenchError, match="no relation has at least 30% known facts"):
        splits.make_split(empty, splits.SplitSettings(), tmp_path / "x")


def test_existing_output_is_never_overwritten(profile, tmp_path):
    out = tmp_path / "s"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(FactbenchError, match="not empty"):
        splits.make_split(profile, SETTINGS, out)
    assert (out / "notes.txt").read_text() == "mine"


def test_tampered_split_is_refused(profile, tmp_path):
    splits.make_split(profile, SETTINGS, tmp_path / "s")
    with open(tmp_path / "s" / "heldout.jsonl", "a") as f:
        f.write(json.dumps({"id": "P17/train/0"}) + "\n")
    with pytest.raises(FactbenchError, match="does not match its manifest"):
        splits.load_split(tmp_path / "s")


def test_write_split_is_what_load_split_reads_and_keeps_an_identical_folder(profile, tmp_path):
    """The one writer of split folders: make_split's sets rewritten by it give the same bytes."""
    made = splits.make_split(profile, SETTINGS, tmp_path / "a")
    loaded = splits.load_split(tmp_path / "a")
    rest = {k: v for k, v in made.items() if k != "files"}
    again = splits.write_split(tmp_path / "b", loaded.sets, rest)
    assert again == made
    for name in ("train.jsonl", "heldout.jsonl", "ood.jsonl", "manifest.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    # same files: kept as they are (the manifest too, even when the new one would say more)
    kept = splits.write_split(tmp_path / "b", loaded.sets, rest | {"note": "new"}, keep_identical=True)
    assert kept == made and "note" not in json.loads((tmp_path / "b" / "manifest.json").read_text())
    # other files: replaced in one step
    fewer = loaded.sets | {"ood": []}
    replaced = splits.write_split(tmp_path / "b", fewer, rest, keep_identical=True)
    assert splits.load_split(tmp_path / "b").sets == fewer and replaced["files"] != made["files"]
