"""teacher_dir (recipes/shared_teacher.py): stage 1's teacher kept by one run and loaded by the next with
the same stage 1, on the tiny recipe world: the run with a loaded teacher ends exactly where the run that
trained it would have."""

import json

import pytest
import torch
from test_recipes import config, tiny_world

from factbench.errors import FactbenchError
from factbench.recipes import load_config, train
from factbench.recipes.shared_teacher import WEIGHTS


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return tiny_world(tmp_path_factory.mktemp("shared-teacher"))


def weights(folder):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder).state_dict()


def entries(folder):
    return [p for p in folder.iterdir() if not p.name.startswith(".")]


def test_a_loaded_teacher_gives_the_same_run_as_a_trained_one(world, tmp_path):
    kept = tmp_path / "teachers"
    # the published loss keeps its teacher; a deviation (KL on every token) loads it
    first = train("selfdistill", config(world, tmp_path / "sd", teacher_dir=str(kept)))
    assert len(entries(kept)) == 1 and "reused" not in first.card["stages"][0]
    loaded = train("selfdistill", config(world, tmp_path / "kl-all", kl_on="all", teacher_dir=str(kept)))
    trained = train("selfdistill", config(world, tmp_path / "kl-all-own", kl_on="all"))
    s1 = loaded.card["stages"][0]
    assert s1["reused"]["from"] == str(entries(kept)[0]) and s1["reused"]["trained_seconds"] > 0
    a, b = weights(loaded.output_dir), weights(trained.output_dir)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)  # bit for bit
    def rows(out, name):  # timings apart
        return [{k: v for k, v in json.loads(line).items() if "seconds" not in k}
                for line in (out / name).read_text().splitlines()]

    for name in ("training_log.jsonl", "eval_outcomes.jsonl", "stage1/eval_outcomes.jsonl"):
        assert rows(loaded.output_dir, name) == rows(trained.output_dir, name), name
    # the L2 anchor's stage 1 is the same stage: it loads the kept teacher too
    l2 = train("l2anchor", config(world, tmp_path / "l2", l2_anchor="stage1", teacher_dir=str(kept)))
    assert "reused" in l2.card["stages"][0] and len(entries(kept)) == 1


def test_a_different_stage_1_trains_its_own_teacher(world, tmp_path):
    kept = tmp_path / "teachers"
    train("selfdistill", config(world, tmp_path / "a", teacher_dir=str(kept), eval_limit=2))
    other = train("selfdistill", config(world, tmp_path / "b", teacher_dir=str(kept), eval_limit=2, seed=7))
    assert "reused" not in other.card["stages"][0] and len(entries(kept)) == 2
    # a stage-2 setting is not part of the key: this one loads the first teacher
    again = train("selfdistill", config(world, tmp_path / "c", teacher_dir=str(kept), eval_limit=2,
                                         distill_lambda=0.5, student_init="base"))
    assert "reused" in again.card["stages"][0] and len(entries(kept)) == 2


def test_a_teacher_trained_without_evaluation_points_is_kept_and_loaded(world, tmp_path):
    kept, quiet = tmp_path / "teachers", {"eval_each_epoch": False, "eval_before_training": False}
    train("selfdistill", config(world, tmp_path / "a", teacher_dir=str(kept), **quiet))
    again = train("selfdistill", config(world, tmp_path / "b", teacher_dir=str(kept), kl_on="all", **quiet))
    assert "reused" in again.card["stages"][0] and again.log == []


def test_a_damaged_teacher_is_trained_again(world, tmp_path):
    kept = tmp_path / "teachers"
    train("selfdistill", config(world, tmp_path / "a", teacher_dir=str(kept), eval_limit=2))
    (entry,) = entries(kept)
    (entry / WEIGHTS).write_bytes(b"not a checkpoint")
    again = train("selfdistill", config(world, tmp_path / "b", teacher_dir=str(kept), eval_limit=2))
    assert "reused" not in again.card["stages"][0]
    assert len(torch.load(entry / WEIGHTS, weights_only=True)) > 0  # replaced by a whole one


def test_an_unusable_teacher_dir_costs_only_the_time(world, tmp_path, capsys):
    (tmp_path / "a-file").write_text("")
    kept = tmp_path / "a-file" / "teachers"  # cannot be made, for root too
    result = train("selfdistill", config(world, tmp_path / "a", teacher_dir=str(kept), eval_limit=2))
    assert (result.output_dir / "recipe_card.json").is_file() and "reused" not in result.card["stages"][0]
    err = capsys.readouterr().err
    assert f"teacher_dir {kept} cannot be used" in err and "training stage 1 here" in err


def test_teacher_dir_is_refused_under_torchrun(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(FactbenchError, match="teacher_dir works with one training process per run"):
        load_config({"output_dir": str(tmp_path / "x"), "teacher_dir": str(tmp_path / "t")})


def test_the_demo_shares_a_teacher_only_where_a_world_has_two_two_stage_fine_tunes(tmp_path):
    from factbench import demo

    def overrides(world, name):
        variant = next(v for v in demo.VARIANTS if v.name == name)
        return demo.plan(demo.WORLDS[world], variant, tmp_path / "split", tmp_path, echo=lambda *a: None)[1].overrides

    kept = f"teacher_dir={tmp_path / 'teachers'}"
    for name in ("sd-published", "sd-kl-all", "sd-student-base", "l2-matched"):
        assert kept in overrides("frontier", name)
    assert not [o for o in overrides("frontier", "sft") if o.startswith("teacher_dir=")]
    # the 15-minute demo has one two-stage fine-tune: nothing to share, nothing kept on disk
    assert not [o for o in overrides("smollm2", "self-distillation") if o.startswith("teacher_dir=")]


def test_a_run_waits_for_the_teacher_another_run_is_training(world, tmp_path, capsys):
    import fcntl
    import threading

    kept = tmp_path / "teachers"
    train("selfdistill", config(world, tmp_path / "a", teacher_dir=str(kept), eval_limit=2))
    (entry,) = entries(kept)
    lock = open(kept / f".{entry.name}.lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)  # as a run training it would hold it
    released = []

    def release():
        released.append(True)
        lock.close()

    timer = threading.Timer(2.0, release)
    timer.start()
    result = train("selfdistill", config(world, tmp_path / "b", teacher_dir=str(kept), eval_limit=2))
    assert released and "reused" in result.card["stages"][0]  # it waited, then loaded the kept one
    assert "another run is training this stage-1 teacher" in capsys.readouterr().err


def test_a_kept_teacher_that_does_not_fit_leaves_the_model_as_it_was(world, tmp_path):
    from types import SimpleNamespace

    from transformers import AutoModelForCausalLM

    from factbench.recipes import shared_teacher

    model = AutoModelForCausalLM.from_pretrained(world["model"])
    before = {k: t.clone() for k, t in model.state_dict().items()}
    entry = tmp_path / "entry"
    (entry / shared_teacher.LOGS).mkdir(parents=True)
    (entry / shared_teacher.ENTRY).write_text(json.dumps({"schema": shared_teacher.SCHEMA, "summary": {}}))
    (entry / shared_teacher.POINT).write_text(json.dumps({"point": None}))
    zeros = {k: torch.zeros_like(t) for k, t in before.items()}
    zeros.pop(next(iter(zeros)))  # one tensor short: every other one would fit
    torch.save(zeros, entry / shared_teacher.WEIGHTS)
    assert shared_teacher._load(SimpleNamespace(model=model, out_dir=tmp_path / "run"), entry) is None
    after = model.state_dict()
    assert all(torch.equal(after[k], before[k]) for k in before)
