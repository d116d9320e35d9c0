import json

import pytest
from conftest import fill, tiny_random_model

from factbench import data, knowledge, prompts
from factbench.engines.base import GenerationParams
from factbench.engines.hf import HFEngine
from factbench.errors import BusyError, DataError, FactbenchError, WriteError

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


# ---- damaged state, full disks, a second writer ----------------------------------------------------

def _toy_engine(tiny_world):
    from factbench.engines import make_engine

    return make_engine("hf", str(tiny_world.model_dir), dtype="float32", progress=False)


def test_damaged_chunks_are_recomputed_and_the_profile_is_identical(tmp_path, tiny_world, monkeypatch, capsys):
    """Every kind of damage a chunk can have is found, said in one line, and recomputed: the resumed
    probe of the toy world ends with the very bytes of an undamaged run."""
    monkeypatch.setattr(knowledge, "CHUNK", 3)
    engine = _toy_engine(tiny_world)
    pool = knowledge.Pool(relations=("P17", "P19"), per_relation=6)
    whole = knowledge.probe(engine, pool, SMOKE, tmp_path / "whole")
    with pytest.raises(Interrupted):
        knowledge.probe(Flaky(engine, 8), pool, SMOKE, tmp_path / "resumed")
    work = tmp_path / "resumed" / ".probe-work"
    chunks = sorted(p for p in work.glob("*.json") if p.name not in ("protocol.json", "elapsed.json"))
    assert len(chunks) == 8
    saved = [json.loads(p.read_text()) for p in chunks]
    chunks[0].write_bytes(chunks[0].read_bytes()[:40])  # truncated
    chunks[1].write_text("{not json")
    chunks[2].write_bytes(b"\xff\xfe" + chunks[2].read_bytes())  # not UTF-8
    chunks[3].write_text(json.dumps(saved[3] | {"answers": saved[3]["answers"][:-1]}))  # a row short
    chunks[4].write_text(json.dumps(saved[4] | {"ids": saved[4]["ids"][::-1]}))  # other ids
    chunks[5].write_text(json.dumps([saved[5]]))  # valid JSON, wrong shape
    chunks[6].write_text(json.dumps(saved[6] | {"answers": [[1]] * len(saved[6]["ids"])}))  # not strings
    (work / "elapsed.json").write_text("[3]")
    capsys.readouterr()
    counting = Flaky(engine, 10_000)
    knowledge.probe(counting, pool, SMOKE, tmp_path / "resumed")
    err = capsys.readouterr().err.splitlines()
    damaged = [line for line in err if "damaged" in line]
    assert len(damaged) == 7 and all(line.endswith(": recomputing") for line in damaged)
    assert {p.name for p in chunks[:7]} == {line.split("chunk ")[1].split(" ")[0] for line in damaged}
    assert (tmp_path / "resumed" / "profile.jsonl").read_bytes() == (whole / "profile.jsonl").read_bytes()
    assert not work.exists()


def test_a_damaged_protocol_state_is_refused_with_what_to_do(tmp_path):
    engine = ScriptedEngine(lambda q, ex, i: "x")
    with pytest.raises(Interrupted):
        knowledge.probe(Flaky(engine, 1), _pool(), SMOKE, tmp_path / "p")
    state = tmp_path / "p" / ".probe-work" / "protocol.json"
    for damaged in (b"[1, 2]", b"{trunc", b"\xff\xfe{}"):
        state.write_bytes(damaged)
        with pytest.raises(DataError, match=r"protocol.json is damaged .*remove .*\.probe-work and rerun"):
            knowledge.probe(engine, _pool(), SMOKE, tmp_path / "p")
        assert state.read_bytes() == damaged
    (tmp_path / "q").mkdir()
    (tmp_path / "q" / ".probe-work").write_text("x")
    with pytest.raises(DataError, match="not a folder .*remove it and rerun"):
        knowledge.probe(engine, _pool(), SMOKE, tmp_path / "q")


class FillsTheDisk:
    """An engine that fills `folder`'s filesystem after `calls` generate calls."""

    def __init__(self, engine, calls, folder):
        self.engine, self.left, self.folder, self.name = engine, calls, folder, engine.name

    def generate(self, texts, params):
        if self.left == 0:
            fill(self.folder)
        self.left -= 1
        return self.engine.generate(texts, params)

    def describe(self):
        return self.engine.describe()


def test_a_disk_that_fills_mid_probe_keeps_the_finished_chunks(full_disk, tmp_path, monkeypatch):
    import os

    if not os.path.ismount(full_disk):
        pytest.skip("needs a small tmpfs (root)")
    monkeypatch.setattr(knowledge, "CHUNK", 3)
    engine = ScriptedEngine(lambda q, ex, i: "x")
    pool = _pool(6, ("P17",))
    whole = knowledge.probe(engine, pool, SMOKE, tmp_path / "whole")
    calls = engine.calls
    with pytest.raises(WriteError, match="no space left on the device; nothing was changed there"):
        knowledge.probe(FillsTheDisk(engine, 2, full_disk), pool, SMOKE, full_disk / "p")
    work = full_disk / "p" / ".probe-work"
    assert len(list(work.glob("greedy-*.json"))) == 2 and not (full_disk / "p" / "manifest.json").exists()
    assert not [p for p in full_disk.rglob("*") if p.name.startswith(".") and p.name not in (".probe-work", ".lock")]
    (full_disk / "filler").unlink()
    counting = Flaky(engine, 10_000)
    knowledge.probe(counting, pool, SMOKE, full_disk / "p")
    assert (full_disk / "p" / "profile.jsonl").read_bytes() == (whole / "profile.jsonl").read_bytes()
    assert 10_000 - counting.left == calls - 2  # the two chunks written before the disk filled were kept


def test_probe_into_a_full_disk_is_one_line_before_the_model_loads(full_disk, monkeypatch, capsys):
    from factbench import engines
    from factbench.cli import main

    fill(full_disk)
    monkeypatch.setattr(engines, "make_engine", lambda *a, **k: pytest.fail("the model was loaded"))
    argv = ["probe", "--model", "toy:tiny", "--relations", "P17", "--per-relation", "2", "--budget", "smoke"]
    assert main([*argv, "--out", str(full_disk / "p")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and f"cannot write {full_disk / 'p'}" in err[0]
    assert not (full_disk / "p").exists() or not any(p.name != ".lock" for p in (full_disk / "p").iterdir())


def test_a_second_probe_into_the_same_folder_is_refused_at_once(tmp_path, monkeypatch, capsys):
    import subprocess
    import sys

    from factbench import engines
    from factbench.cli import main

    out = tmp_path / "p"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom factbench.files import output_lock\n"
         "with output_lock(sys.argv[1]):\n    print('locked', flush=True); time.sleep(60)\n", str(out)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        engine = ScriptedEngine(lambda q, ex, i: "x")
        with pytest.raises(BusyError, match="another factbench process"):
            knowledge.probe(engine, _pool(), SMOKE, out)
        assert engine.calls == 0
        monkeypatch.setattr(engines, "make_engine", lambda *a, **k: pytest.fail("the model was loaded"))
        argv = ["probe", "--model", "toy:tiny", "--relations", "P17", "--per-relation", "2", "--budget", "smoke"]
        assert main([*argv, "--out", str(out)]) == 2
        err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
        assert len(err) == 1 and "being written by another factbench process" in err[0]
    finally:
        holder.kill()
        holder.wait()
    assert [p.name for p in out.iterdir()] == [".lock"]


def test_probe_of_a_hub_id_offline_is_one_line_and_makes_no_folder(tmp_path, monkeypatch, capsys):
    from factbench.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    argv = ["probe", "--model", "nobody/nothing", "--relations", "P17", "--per-relation", "2", "--budget", "smoke"]
    assert main([*argv, "--out", str(tmp_path / "p")]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "cannot reach the Hugging Face hub for 'nobody/nothing'" in err[0]
    assert not (tmp_path / "p").exists()


@pytest.mark.parametrize("manifest, message", [
    (b"[1, 2, 3]", "not a factbench profile manifest"),
    (b'{"kind": "factbench knowledge profile"}', "not a factbench profile manifest"),
    (b"\xff\xfe{}", "not UTF-8 JSON"),
])
def test_a_manifest_of_the_wrong_shape_is_refused(tmp_path, manifest, message):
    out = knowledge.probe(ScriptedEngine(lambda q, ex, i: "x"), _pool(4), SMOKE, tmp_path / "p")
    (out / "manifest.json").write_bytes(manifest)
    with pytest.raises(DataError, match=message + ".*probe the model again"):
        knowledge.load_profile(out)


def test_a_manifest_missing_keys_or_rows_of_the_wrong_shape_are_refused(tmp_path):
    out = knowledge.probe(ScriptedEngine(lambda q, ex, i: "x"), _pool(4), SMOKE, tmp_path / "p")
    manifest = json.loads((out / "manifest.json").read_text())
    (out / "manifest.json").write_text(json.dumps({k: v for k, v in manifest.items() if k != "protocol_hash"}))
    with pytest.raises(DataError, match=r"is damaged \(no protocol_hash\)"):
        knowledge.load_profile(out)
    for rows in (b"[1]\n", b"\xff\n", b'{"id": "P17/train/0"}\n'):
        (out / "profile.jsonl").write_bytes(rows)
        import hashlib

        (out / "manifest.json").write_text(json.dumps(manifest | {"profile_sha256": hashlib.sha256(rows).hexdigest()}))
        with pytest.raises(DataError, match="is not a valid profile"):
            knowledge.load_profile(out)


def test_a_damaged_cached_audit_base_profile_is_not_taken_for_one(tmp_path, monkeypatch):
    from factbench.auditing import base

    monkeypatch.setenv("FACTBENCH_CACHE", str(tmp_path))
    want = base.expected_protocol({"source": "local", "name": "m", "content_sha256": "ab" * 32}, "hf", "float32",
                                  "small")
    folder = base.cache_folder(want)
    folder.mkdir(parents=True)
    for damaged in (b"[1, 2]", b'{"probe_protocol": [1]}', b'{"probe_protocol": {"model": "m"}}', b"\xff\xfe"):
        (folder / "manifest.json").write_bytes(damaged)
        assert base.find_cached(want) is None  # asked again, never a crash
