"""A probe cut into shards and merged is byte for byte the one-process probe (shards.py, workers.py)."""

import json

import pytest

from factbench import data, knowledge, shards, workers
from factbench.cli import main
from factbench.errors import DataError, FactbenchError

SMOKE = knowledge.ProbeSettings(budget=knowledge.BUDGETS["smoke"])
TIMING = ("wall_seconds", "created")


def _toy_engine(tiny_world):
    from factbench.engines import make_engine

    return make_engine("hf", str(tiny_world.model_dir), dtype="float32", progress=False)


def _same_profile(a, b):
    assert (a / "profile.jsonl").read_bytes() == (b / "profile.jsonl").read_bytes()
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    assert {k: v for k, v in ma.items() if k not in TIMING} == {k: v for k, v in mb.items() if k not in TIMING}


@pytest.mark.parametrize("model", ["toy", "scripted"])
def test_shards_merge_to_the_unsharded_profile(model, tmp_path, tiny_world, monkeypatch):
    """The toy world's GPT-2 (real batched generation) and a scripted engine that knows every other
    question (so lazy sampling leaves blocks with part of their questions to sample)."""
    from test_knowledge import ScriptedEngine

    monkeypatch.setattr(knowledge, "CHUNK", 3)  # 3 blocks per relation, the last one short
    pool = knowledge.Pool(relations=("P17", "P19"), per_relation=7)
    gold = {f.question: f.answers[0] for f in pool.facts()}
    engine = _toy_engine(tiny_world) if model == "toy" else ScriptedEngine(
        lambda q, ex, i: gold[q] if len(q) % 2 else "x")
    whole = knowledge.probe(engine, pool, SMOKE, tmp_path / "whole")
    if model == "scripted":
        rows = knowledge.load_profile(whole).rows
        assert 0 < sum(r["p_greedy"] > 0 for r in rows) < len(rows)
    out = tmp_path / "sharded"
    for i in (2, 0, 1):  # any order
        shard = shards.Shard(i, 3)
        knowledge.probe(engine, pool, SMOKE, shards.shard_dir(out, shard), shard=shard)
        assert not (out / "manifest.json").exists()
    assert shards.ready(out)
    shards.merge(out)
    _same_profile(whole, out)
    assert not (out / "shards").exists() and not (out / ".probe-work").exists()


def test_every_question_is_in_exactly_one_shard(monkeypatch):
    monkeypatch.setattr(knowledge, "CHUNK", 5)
    facts = knowledge.Pool(relations=("P17", "P19", "P36"), per_relation=23).facts()
    units = knowledge.blocks(facts)
    per_shard = [[f.id for _, _, fs in shards.Shard(i, 4).select(units) for f in fs] for i in range(4)]
    assert sorted(sum(per_shard, [])) == sorted(f.id for f in facts)
    assert max(map(len, per_shard)) - min(map(len, per_shard)) <= 5  # within one block


def test_merge_refuses_missing_mixed_and_other_protocol_shards(tmp_path):
    from test_knowledge import ScriptedEngine

    engine, pool = ScriptedEngine(lambda q, ex, i: "x"), knowledge.Pool(relations=("P17",), per_relation=300)
    out = tmp_path / "p"
    with pytest.raises(DataError, match="holds no finished shard"):
        shards.merge(out)
    knowledge.probe(engine, pool, SMOKE, shards.shard_dir(out, shards.Shard(0, 2)), shard=shards.Shard(0, 2))
    with pytest.raises(DataError, match=r"shard\(s\) 1/2 of .* are not finished"):
        shards.merge(out)
    other = knowledge.ProbeSettings(budget=knowledge.BUDGETS["smoke"], sample_seed=9)
    knowledge.probe(engine, pool, other, shards.shard_dir(out, shards.Shard(1, 2)), shard=shards.Shard(1, 2))
    with pytest.raises(DataError, match="another protocol"):
        shards.merge(out)
    (shards.shard_dir(out, shards.Shard(1, 2)) / "shard.json").write_text("{trunc")
    with pytest.raises(DataError, match="shard.json is damaged .*rerun that shard"):
        shards.merge(out)


@pytest.mark.parametrize("text", ["2/2", "1", "-1/3", "a/b", "1/0"])
def test_bad_shard_is_one_line(text):
    with pytest.raises(FactbenchError, match="not I/N"):
        shards.parse(text)


def test_worker_argv_swaps_workers_for_a_shard():
    assert workers.worker_argv(["--model", "m", "--workers", "3", "--out", "o"], 1, 3) == [
        "--model", "m", "--out", "o", "--shard", "1/3"]
    assert workers.worker_argv(["--workers=3", "--out", "o"], 0, 3) == ["--out", "o", "--shard", "0/3"]


def test_two_workers_write_the_one_process_profile(tmp_path, tiny_world, capsys):
    """The command line end to end: `--workers 2` (two processes) against one process."""
    args = ["probe", "--model", str(tiny_world.model_dir), "--dtype", "float32", "--budget", "smoke",
            "--relations", "P17", "P19", "--per-relation", "7"]
    assert main([*args, "--out", str(tmp_path / "one")]) == 0
    assert main([*args, "--workers", "2", "--out", str(tmp_path / "two")]) == 0
    assert "profile written to" in capsys.readouterr().out
    _same_profile(tmp_path / "one", tmp_path / "two")
    assert data.IN_DISTRIBUTION  # the pool relations are real EntityQuestions relations


def test_shard_flags_exclude_each_other(tmp_path, capsys):
    assert main(["probe", "--shard", "0/2", "--workers", "2", "--out", str(tmp_path / "x")]) == 2
    assert "give one" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
