import json

import pytest
from test_knowledge import SMOKE, ScriptedEngine

from factbench import knowledge, splits
from factbench.errors import BusyError, FactbenchError, WriteError


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


# ---- nothing lost, nothing false ------------------------------------------------------------------

def test_sizes_that_select_no_question_are_refused_before_any_work(tmp_path, capsys):
    from factbench.cli import main

    with pytest.raises(FactbenchError, match="all 0: such a split holds no question"):
        splits.SplitSettings(known=0, unknown=0, heldout=0, ood=0)
    splits.SplitSettings(known=0, unknown=0, heldout=1, ood=0)  # one set is enough
    # refused before the profile is even read (this one does not exist)
    argv = ["split", "--profile", str(tmp_path / "nope"), "--known", "0", "--unknown", "0", "--heldout", "0",
            "--ood", "0", "--out", str(tmp_path / "s")]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "no question at all" in err[0]
    assert not (tmp_path / "s").exists()


def test_a_split_into_a_full_disk_is_one_line_and_leaves_the_old_folder(profile, full_disk, capsys):
    import os

    from conftest import fill

    from factbench.cli import main

    mounted = os.path.ismount(full_disk)  # a small tmpfs (root); else a read-only folder
    if mounted:
        made = splits.make_split(profile, SETTINGS, full_disk / "s")
        before = {p.name: p.read_bytes() for p in (full_disk / "s").iterdir()}
    fill(full_disk)
    if mounted:  # replacing a split on a full disk: refused, the old folder whole
        fewer = splits.load_split(full_disk / "s").sets | {"ood": []}
        with pytest.raises(WriteError, match="no space left on the device; nothing was changed there"):
            splits.write_split(full_disk / "s", fewer, made, keep_identical=True)
        assert {p.name: p.read_bytes() for p in (full_disk / "s").iterdir()} == before
    argv = ["split", "--profile", str(profile.path), "--known", "20", "--unknown", "30", "--heldout", "15",
            "--ood", "5", "--min-known-share", "0.1", "--out", str(full_disk / "x")]
    assert main(argv) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and f"cannot write {full_disk / 'x'}" in err[0]
    assert not (full_disk / "x").exists()
    assert not [p for p in full_disk.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_second_split_into_the_same_folder_is_refused_at_once(profile, tmp_path):
    from factbench import files

    with files.output_lock(tmp_path / "s"), pytest.raises(BusyError, match="another factbench process"):
        splits.make_split(profile, SETTINGS, tmp_path / "s")
    assert [p.name for p in (tmp_path / "s").iterdir()] == [".lock"]
    splits.make_split(profile, SETTINGS, tmp_path / "s")  # the lock file alone is no obstacle
    assert splits.load_split(tmp_path / "s").manifest["counts"]


def test_an_output_that_is_a_file_is_refused(profile, tmp_path):
    (tmp_path / "s").write_text("mine")
    with pytest.raises(FactbenchError, match="is a file, not a folder"):
        splits.make_split(profile, SETTINGS, tmp_path / "s")
    assert (tmp_path / "s").read_text() == "mine"


@pytest.mark.parametrize("damage, message", [
    (lambda m: [m], "not a factbench split manifest"),
    (lambda m: {k: v for k, v in m.items() if k != "files"}, "damaged .*under 'files'"),
    (lambda m: m | {"files": ["train.jsonl"]}, "damaged .*under 'files'"),
    (lambda m: m | {"files": {"train.jsonl": m["files"]["train.jsonl"]}}, "damaged .*under 'files'"),
    (lambda m: b"\xff\xfe" + json.dumps(m).encode(), "not UTF-8 JSON"),
])
def test_a_split_manifest_of_the_wrong_shape_is_refused(profile, tmp_path, damage, message):
    splits.make_split(profile, SETTINGS, tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    damaged = damage(manifest)
    (tmp_path / "s" / "manifest.json").write_bytes(damaged if isinstance(damaged, bytes) else json.dumps(damaged).encode())
    with pytest.raises(FactbenchError, match=message + ".*rerun factbench split"):
        splits.load_split(tmp_path / "s")


@pytest.mark.parametrize("rows", [b"\xff\xfe\n", b"[1, 2]\n", b'{"no": "id"}\n', b"{trunc\n"])
def test_split_rows_that_are_not_rows_are_refused_even_with_a_matching_checksum(profile, tmp_path, rows):
    import hashlib

    splits.make_split(profile, SETTINGS, tmp_path / "s")
    manifest = json.loads((tmp_path / "s" / "manifest.json").read_text())
    (tmp_path / "s" / "ood.jsonl").write_bytes(rows)
    manifest["files"]["ood.jsonl"] = hashlib.sha256(rows).hexdigest()
    (tmp_path / "s" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(FactbenchError, match="ood.jsonl is not valid split JSON Lines .*rerun factbench split"):
        splits.load_split(tmp_path / "s")


def test_known_training_facts_from_guessable_ones_free_every_recalled_fact_for_the_held_out_set(tmp_path):
    p17 = knowledge.load_profile(knowledge.bundled_profile_dir("smollm2-135m-p17"))
    recalled = {r["id"] for r in p17.rows if r["known"]}
    guessable = {r["id"] for r in p17.rows if r["category"] == "HighlyKnown" and not r["known"]}
    settings = splits.SplitSettings(known=150, unknown=150, heldout=None, ood=0, relations=("P17",),
                                    min_known_share=0, train_known="guessable")  # heldout None: all of them
    manifest = splits.make_split(p17, settings, tmp_path / "s")
    s = splits.load_split(tmp_path / "s")
    assert {r["id"] for r in s.sets["heldout"]} == recalled  # every recalled fact is held out
    known_train = [r for r in s.sets["train"] if r["kind"] == "known"]
    assert len(known_train) == 150 and {r["id"] for r in known_train} <= guessable
    assert not {r["subject"] for r in s.sets["train"]} & {r["subject"] for r in s.sets["heldout"]}
    assert manifest["settings"]["train_known"] == "guessable"
    # the default takes Known training facts from the recalled ones, so they cannot all be held out
    with pytest.raises(FactbenchError, match="known training facts"):
        splits.make_split(p17, splits.SplitSettings(**{**settings.__dict__, "train_known": "known",
                                                       "heldout": len(recalled)}), tmp_path / "d")
    with pytest.raises(FactbenchError, match="cannot be combined"):
        splits.SplitSettings(train_known="guessable", include_guessable=True)
    # maybe: MaybeKnown facts that are not guessable, also leaving every recalled fact held out
    maybe = {r["id"] for r in p17.rows if r["category"] == "MaybeKnown" and not r["guessable"]}
    splits.make_split(p17, splits.SplitSettings(**{**settings.__dict__, "train_known": "maybe"}), tmp_path / "m")
    m = splits.load_split(tmp_path / "m")
    assert {r["id"] for r in m.sets["heldout"]} == recalled
    assert {r["id"] for r in m.sets["train"] if r["kind"] == "known"} <= maybe
    assert {r["category"] for r in m.sets["train"] if r["kind"] == "known"} == {"MaybeKnown"}
