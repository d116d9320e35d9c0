"""`eval --sets` cut into shards and merged is the one-process answers folder (answer_shards.py)."""

import json
import shutil

import pytest

from factbench import answer_shards, answer_sources, shards
from factbench.cli import main
from factbench.errors import DataError

TIMING = ("seconds", "questions_per_second")


@pytest.fixture(scope="module")
def argv(tiny_world, scripted):
    """eval --sets on the toy world's GPT-2 (a real model folder) over the scripted split, 5 questions a set."""
    return ["eval", "--model", str(tiny_world.model_dir), "--dtype", "float32", "--sets", "heldout", "new",
            "known_train", "--split-dir", str(scripted[1]), "--limit", "5"]


@pytest.fixture(scope="module")
def one(argv, tmp_path_factory):
    out = tmp_path_factory.mktemp("one") / "one"
    assert main([*argv, "--out", str(out)]) == 0
    return out


def _rows(folder):
    """Every samples file's rows, without run_id."""
    return {p.name: [{k: v for k, v in json.loads(line).items() if k != "run_id"} for line in p.read_text().splitlines()]
            for p in sorted(folder.glob("samples_*.jsonl"))}


def _summary(folder):
    s = json.loads((folder / "summary.json").read_text())
    sets = {t: {k: v for k, v in f.items() if k not in TIMING} for t, f in s["sets"].items()}
    files = {n: f["rows"] for n, f in s["files"].items()}
    rest = {k: v for k, v in s.items() if k not in ("sets", "files", "run_id", "merged_from")}
    return sets, files, rest


def _same_folder(a, b):
    assert _rows(a) == _rows(b)
    assert _summary(a) == _summary(b)
    assert sorted(p.name for p in b.iterdir() if p.name != ".lock") == sorted(p.name for p in a.iterdir())


def test_two_shards_merge_to_the_unsharded_folder(argv, one, scripted, tmp_path, capsys):
    out = tmp_path / "two"
    assert main([*argv, "--shard", "1/2", "--out", str(out)]) == 0  # any order
    assert "shard 1/2 written to" in capsys.readouterr().out
    assert not (out / "summary.json").exists()
    first = json.loads((shards.shard_dir(out, shards.Shard(1, 2)) / "samples_factforget_heldout.jsonl")
                       .read_text().splitlines()[0])
    assert first["doc_id"] == 1  # its place in the whole set
    assert main([*argv, "--shard", "0/2", "--out", str(out)]) == 0
    assert "all 2 shards finished: merged into" in capsys.readouterr().out
    assert not (out / "shards").exists()
    _same_folder(one, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["merged_from"] == {"shards": 2} and summary["run_id"] != json.loads(
        (one / "summary.json").read_text())["run_id"]
    assert {r["run_id"] for r in map(json.loads, (out / "samples_factforget_new.jsonl").read_text().splitlines())} \
        == {summary["run_id"]}
    # the merged folder is an answers folder like any other: score gives the same card figures
    cards = {}
    for name, folder in (("one", one), ("two", out)):
        card = tmp_path / f"{name}.json"
        assert main(["score", "--base", str(one), "--tuned", str(folder), "--split", str(scripted[1]),
                     "--out", str(card)]) == 0
        cards[name] = json.loads(card.read_text())
    assert cards["one"]["sets"] == cards["two"]["sets"]
    assert cards["one"]["summary"] == cards["two"]["summary"]
    assert answer_sources.read_answers(out, "tuned").sets == answer_sources.read_answers(one, "tuned").sets


def test_two_workers_write_the_one_process_folder(argv, one, tmp_path, capsys):
    """The command line end to end: `--workers 2` (two processes) against one process."""
    out = tmp_path / "workers"
    assert main([*argv, "--workers", "2", "--out", str(out)]) == 0
    assert "answers written to" in capsys.readouterr().out
    _same_folder(one, out)


def _other_model_shard(out, split_dir, shard):
    """Shard `shard` of the same sets answered by another (scripted) model."""
    from test_knowledge import ScriptedEngine

    class Other(ScriptedEngine):
        def describe(self):
            return {"engine": "scripted", "model": {"source": "scripted", "name": "other"}, "dtype": None}

    split, sets = answer_sources.find_sets(["heldout", "new", "known_train"], split_dir, 5)
    answer_shards.answer_shard(Other(lambda q, ex, i: "no idea"), sets, split, shard, out, echo=lambda _: None)


def test_missing_damaged_and_other_model_shards_are_refused(argv, scripted, tmp_path, capsys):
    out = tmp_path / "p"
    assert main(["eval", "--merge", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "holds no finished shard" in err and err.count("\n") == 1 and not out.exists()
    assert main([*argv, "--shard", "0/2", "--out", str(out)]) == 0
    assert main(["eval", "--merge", "--out", str(out)]) == 2
    assert "shard(s) 1/2 of" in capsys.readouterr().err
    # another model's shard: refused before its model runs, and refused by the merge when copied in
    _other_model_shard(tmp_path / "elsewhere", scripted[1], shards.Shard(1, 2))
    assert main([*argv, "--shard", "1/2", "--out", str(tmp_path / "elsewhere")]) == 2
    assert "holds the answers of another model (other)" in capsys.readouterr().err
    shutil.copytree(shards.shard_dir(tmp_path / "elsewhere", shards.Shard(1, 2)), shards.shard_dir(out, shards.Shard(1, 2)))
    with pytest.raises(DataError, match="shard 1/2 was answered by another model or engine than shard 0/2"):
        answer_shards.merge(out)
    assert main(["eval", "--merge", "--out", str(out)]) == 2
    assert "another model" in capsys.readouterr().err
    summary = shards.shard_dir(out, shards.Shard(1, 2)) / "summary.json"
    summary.write_text("{trunc")
    with pytest.raises(DataError, match=r"summary.json is damaged .*rerun that shard"):
        answer_shards.merge(out)
    assert sorted(p.name for p in out.iterdir()) == [".lock", "shards"] or sorted(
        p.name for p in out.iterdir()) == ["shards"]  # nothing half-written


def test_shard_flags_exclude_each_other(argv, tmp_path, capsys):
    assert main([*argv, "--shard", "0/2", "--merge", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "give one" in err and err.count("\n") == 1
    assert main([*argv, "--shard", "0/2"]) == 2
    assert "need --out" in capsys.readouterr().err
    assert main([*argv, "--shard", "2/2", "--out", str(tmp_path / "x")]) == 2
    assert "not I/N" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
