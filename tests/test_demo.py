"""`factbench demo` end to end on the tiny toy world: every stage, its outputs, reuse, refusals.

The real worlds' settings (SmolLM2, the demo toy world) are the same code with other numbers;
their measured results are in BENCHMARKS.md and the README.
"""

import json

import pytest

from factbench import demo, fine_tune_jobs, scorecard
from factbench.cli import main
from factbench.errors import FactbenchError

TINY = demo.World(name="toy", model="toy:tiny", config="toy", split={"toy": "tiny"},
                  overrides=("num_train_epochs=1", "eval_limit=4", "disable_tqdm=true", "eval_batch_size=16",
                             "per_device_train_batch_size=16"))


@pytest.fixture(scope="module")
def finished(tmp_path_factory, tiny_world_module):
    """One finished tiny demo run shared by the tests that only read it."""
    out = tmp_path_factory.mktemp("demo") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setitem(demo.WORLDS, "toy", TINY)
        summary = demo.run("toy", out, echo=lambda *a: None)
    return out, summary


@pytest.fixture(scope="module")
def tiny_world_module(factbench_cache):
    from factbench import toyworld

    return toyworld.toy_world(toyworld.ToyWorldConfig.tiny(), cache_dir=factbench_cache)


def test_demo_writes_every_stage(finished):
    out, summary = finished
    names = list(TINY.variants)
    assert names == ["sft", "attention-only", "self-distillation", "known-only"]
    for name in names:
        assert (out / "models" / name / "recipe_card.json").is_file()
        card = scorecard.load_card(out / "cards" / f"{name}.json")  # valid against the schema
        assert card["sets"]["heldout"]["status"] == "scored" and card["training_log"]["epochs"]
    recipes = {json.loads((out / "models" / n / "recipe_card.json").read_text())["recipe"] for n in names}
    assert recipes == {"sft", "freeze", "selfdistill", "known-only"}
    for f in ("README.md", "leaderboard.csv", "index.html"):
        assert (out / "leaderboard" / f).is_file()
    assert len(list((out / "leaderboard" / "cards").glob("*.json"))) == 4
    # each card says how its fine-tune was made (from the recipe card), and the leaderboard shows it
    card = scorecard.load_card(out / "cards" / "attention-only.json")
    assert card["tuned"]["recipe"]["recipe"] == "freeze" and card["tuned"]["recipe"]["settings"]["learning_rate"]
    assert "freeze (trainable=attention)" in (out / "leaderboard" / "README.md").read_text()
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    assert all(f"| {n} |" in table for n in names)
    assert [r["fine_tune"] for r in summary["results"]] == names
    assert set(summary["stage_seconds"]) == {"split", "train", "score", "leaderboard", "report"}
    # the frontier of the same runs, from their per-point outcomes
    front = json.loads((out / "frontier" / "frontier.json").read_text())
    assert set(front["variants"]) == set(names) and (out / "frontier" / "frontier.png").is_file()
    assert str(out / "frontier" / "frontier.png") in summary["files"]  # paths, not the files' kinds
    assert "## 4-shot" in table


def test_table_numbers_are_the_cards(finished):
    out, summary = finished
    for row in summary["results"]:
        card = json.loads((out / "cards" / f"{row['fine_tune']}.json").read_text())
        assert row["retention"] == card["summary"]["retention"]
        assert row["acquisition"] == card["summary"]["acquisition"]
        assert f"{row['retention']['value']:.3f}" in (out / "results.md").read_text()
        bits = card["outcomes"]["heldout"]["tuned"]
        assert row["unfiltered_retention"]["value"] == pytest.approx(bits.count("1") / len(bits))


def test_rerun_reuses_finished_stages(finished, monkeypatch):
    out, summary = finished
    from factbench import answer_sources, recipes

    def refuse(*a, **k):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(recipes, "train", refuse)
    monkeypatch.setattr(answer_sources, "answer_with_model", refuse)
    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    again = demo.run("toy", out, echo=lambda *a: None)
    assert again["results"] == summary["results"]


def test_interrupted_training_is_redone_and_the_rest_reused(finished, tmp_path, monkeypatch):
    import shutil

    out, summary = finished
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    (copy / "models" / "known-only" / "recipe_card.json").unlink()  # as if killed before the card
    (copy / "cards" / "known-only.json").unlink()
    shutil.rmtree(copy / "answers" / "known-only")
    from factbench import recipes

    trained = []
    real = recipes.train
    monkeypatch.setattr(recipes, "train", lambda recipe, *a, **k: trained.append(recipe) or real(recipe, *a, **k))
    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    demo.run("toy", copy, echo=lambda *a: None)
    assert trained == ["known-only"]


def test_other_settings_in_the_same_folder_are_refused(finished, monkeypatch):
    out, _ = finished
    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    with pytest.raises(FactbenchError, match="other settings"):
        demo.run("smollm2", out, echo=lambda *a: None)


def test_bad_input(tmp_path, monkeypatch, capsys):
    with pytest.raises(SystemExit) as e:
        main(["demo", "--world", "mars"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["demo", "--world", "toy", "--jobs", "0", "--out", str(tmp_path / "none")])
    assert e.value.code == 2 and "--jobs" in capsys.readouterr().err and not (tmp_path / "none").exists()
    stranger = tmp_path / "mine"
    stranger.mkdir()
    (stranger / "notes.txt").write_text("keep me")
    assert main(["demo", "--world", "toy", "--out", str(stranger)]) == 2
    assert "not a demo run" in capsys.readouterr().err
    assert main(["demo", "--world", "toy", "--out", str(stranger), "--fresh"]) == 2
    assert (stranger / "notes.txt").read_text() == "keep me"
    afile = tmp_path / "afile"
    afile.write_text("x")
    assert main(["demo", "--out", str(afile)]) == 2
    assert main(["demo", "--out", str(afile), "--fresh"]) == 2
    assert afile.read_text() == "x"


def test_smollm2_split_comes_from_the_bundled_p17_profile(tmp_path):
    """The default world's split stage (no training): sizes, relation, and guessable held-out facts."""
    from factbench import splits

    split = splits.load_split(demo.make_split(demo.WORLDS["smollm2"], tmp_path, echo=lambda *a: None))
    kinds = [r["kind"] for r in split.sets["train"]]
    wanted = demo.WORLDS["smollm2"].split
    assert (kinds.count("known"), kinds.count("unknown"), len(split.sets["heldout"])) == (
        wanted["known"], wanted["unknown"], wanted["heldout"])
    assert {r["relation"] for r in split.sets["train"] + split.sets["heldout"]} == {"P17"}
    from factbench.scorecard import guessable_ids

    guessable, _ = guessable_ids(split)
    held = {r["id"] for r in split.sets["heldout"]}
    assert 0 < len(held & guessable) < len(held)  # both kinds, so cards report both retentions


def test_only_and_settings(tmp_path, monkeypatch, tiny_world_module):
    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    out = tmp_path / "one"
    summary = demo.run("toy", out, echo=lambda *a: None, only=["known-only"], settings=["learning_rate=1e-4"])
    assert [r["fine_tune"] for r in summary["results"]] == ["known-only"]
    card = json.loads((out / "models" / "known-only" / "recipe_card.json").read_text())
    assert card["config"]["learning_rate"] == 1e-4
    with pytest.raises(FactbenchError, match="learning_rte"):
        demo.run("toy", tmp_path / "bad", echo=lambda *a: None, settings=["learning_rte=1"])
    with pytest.raises(FactbenchError, match="unknown fine-tune"):
        demo.run("toy", tmp_path / "bad", echo=lambda *a: None, only=["dpo"])
    assert not (tmp_path / "bad").exists()


# ---- the demo's state: damaged files, full disks ----------------------------------------------------

def _copy(finished, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(finished[0], copy)
    return copy


def _tree(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file() and p.name != ".lock"}


def _errors(capsys):
    return [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("factbench: error")]


@pytest.mark.parametrize(("text", "message"), [
    ('{"settings": {"schema": 1, "wor', "is not valid JSON \\(truncated\\?\\)"),
    ("", "is not valid JSON"),
    ("[1, 2]", "is not a demo record"),
    ('{"settings": 3}', "is not a demo record"),
])
def test_a_damaged_demo_json_is_refused_in_one_line(finished, tmp_path, monkeypatch, capsys, text, message):
    copy = _copy(finished, tmp_path)
    (copy / "demo.json").write_text(text)
    before = _tree(copy)
    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    assert main(["demo", "--world", "toy", "--out", str(copy)]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and "--fresh" in errors[0]
    import re

    assert re.search(message, errors[0])
    assert _tree(copy) == before


def test_fresh_starts_a_damaged_run_over(finished, tmp_path, monkeypatch):
    copy = _copy(finished, tmp_path)
    (copy / "demo.json").write_text('{"sett')

    class Stop(Exception):
        pass

    def stop(*a, **k):
        raise Stop

    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    monkeypatch.setattr(demo, "make_split", stop)
    with pytest.raises(Stop):
        demo.run("toy", copy, fresh=True, echo=lambda *a: None)
    assert sorted(_tree(copy)) == ["demo.json"]
    assert json.loads((copy / "demo.json").read_text())["settings"]["world"]["model"] == "toy:tiny"


def test_a_damaged_card_is_made_again_from_the_kept_answers(finished, tmp_path, monkeypatch):
    copy = _copy(finished, tmp_path)
    good = json.loads((copy / "cards" / "sft.json").read_text())
    (copy / "cards" / "sft.json").write_text('{"schema": ')
    from factbench import answer_sources, recipes

    def refuse(*a, **k):
        raise AssertionError("a finished stage ran again")

    monkeypatch.setattr(recipes, "train", refuse)
    monkeypatch.setattr(answer_sources, "answer_with_model", refuse)
    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    demo.run("toy", copy, echo=lambda *a: None)
    again = scorecard.load_card(copy / "cards" / "sft.json")
    assert again["outcomes"] == good["outcomes"]


def test_a_failed_leaderboard_build_keeps_the_earlier_one(finished, tmp_path, monkeypatch):
    from factbench import leaderboard
    from factbench.errors import WriteError

    copy = _copy(finished, tmp_path)
    before = _tree(copy / "leaderboard")

    def full(folder, **k):
        (folder / "README.md").write_text("half")
        raise WriteError(f"cannot write {folder / 'README.md'}: no space left on the device; nothing was changed there")

    monkeypatch.setattr(leaderboard, "build", full)
    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    with pytest.raises(WriteError, match=f"cannot write {copy / 'leaderboard' / 'README.md'}:"):
        demo.run("toy", copy, echo=lambda *a: None)
    assert _tree(copy / "leaderboard") == before
    assert sorted(p.name for p in copy.iterdir() if p.name.startswith(".leaderboard")) == []


def test_full_disk_is_one_line_and_leaves_no_folder(full_disk, monkeypatch, capsys):
    from conftest import fill

    fill(full_disk)
    monkeypatch.setitem(demo.WORLDS, "toy", TINY)
    assert main(["demo", "--world", "toy", "--out", str(full_disk / "x")]) == 2
    errors = _errors(capsys)
    assert len(errors) == 1 and "cannot write" in errors[0], errors
    assert sorted(p.name for p in full_disk.iterdir()) == ["filler"]


def test_every_world_names_fine_tunes_that_exist_and_settings_that_load():
    from factbench.cli.demo import FINE_TUNES
    from factbench.recipes import load_config

    assert FINE_TUNES == list(demo.VARIANT_NAMES)
    for world in demo.WORLDS.values():
        assert set(world.variants) <= set(demo.VARIANT_NAMES) and world.seeds
        for v in demo.VARIANTS:
            if v.name in world.variants:  # every fine-tune's settings are valid before hours of training
                load_config(world.config, [*world.overrides, *v.overrides, "output_dir=x"])
    frontier = demo.WORLDS["frontier"]
    assert frontier.seeds == (0, 1, 2) and frontier.split["heldout"] is None and not frontier.score_cards


def test_only_and_seeds_select_without_changing_the_settings(tmp_path, monkeypatch, tiny_world_module):
    """A study trained in parts: each part goes into the same OUT, and the report covers what is finished."""
    two = demo.World(**{**TINY.__dict__, "seeds": (0, 1), "variants": ("sft", "known-only"), "score_cards": False})
    monkeypatch.setitem(demo.WORLDS, "toy", two)
    out = tmp_path / "parts"
    demo.run("toy", out, echo=lambda *a: None, only=["sft"], seeds=[1])
    assert (out / "models" / "sft" / "seed-1" / "recipe_card.json").is_file()
    assert not (out / "models" / "known-only").exists()
    summary = demo.run("toy", out, echo=lambda *a: None, seeds=[1])  # same settings: accepted, sft reused
    assert summary["trained"] == ["sft seed 1", "known-only seed 1"]
    card = json.loads((out / "models" / "sft" / "seed-1" / "recipe_card.json").read_text())
    assert card["seed"] == 1
    front = json.loads((out / "frontier" / "frontier.json").read_text())
    assert front["seeds"] == {"sft": [1], "known-only": [1]}
    with pytest.raises(FactbenchError, match="not the world's"):
        demo.run("toy", out, echo=lambda *a: None, seeds=[7])


# ---- fine-tunes side by side (--jobs N, fine_tune_jobs): the same runs as one by one ------------------

def _logs(out, name):
    """A fine-tune's training log and per-question outcomes, without how they were made: timings, and
    whether the base's answers were read back (recipes/base_answers.py; the first run makes them)."""
    folder = out / "models" / name
    rows = [json.loads(line) for line in (folder / "training_log.jsonl").read_text().splitlines()]
    for row in rows:
        row.pop("eval_seconds", None)
        row.pop("base_answers", None)
    return rows, (folder / "eval_outcomes.jsonl").read_text()


def test_side_by_side_trains_the_same_fine_tunes(tmp_path, monkeypatch, tiny_world_module, capsys):
    world = demo.World(**{**TINY.__dict__, "variants": ("sft", "self-distillation", "known-only")})
    monkeypatch.setitem(demo.WORLDS, "toy", world)
    lines = []
    one = demo.run("toy", tmp_path / "one", echo=lambda *a: None, jobs=1)
    two = demo.run("toy", tmp_path / "two", echo=lines.append, jobs=2)
    assert one["trained"] == two["trained"] == ["sft seed 0", "self-distillation seed 0", "known-only seed 0"]
    for name in ("sft", "self-distillation", "known-only"):
        assert _logs(tmp_path / "one", name) == _logs(tmp_path / "two", name)
        log = (tmp_path / "two" / "logs" / f"{name}.log").read_text()
        assert "wrote the model" in log  # the job's whole output is kept
        # the answers were asked side by side too: every question's outcome as one by one
        cards = [json.loads((tmp_path / run / "cards" / f"{name}.json").read_text()) for run in ("one", "two")]
        assert cards[0]["outcomes"] == cards[1]["outcomes"]
    assert one["results"] == two["results"]
    assert [line.split(":")[0] for line in lines if line.endswith("the stability reference")] == ["  known-only"]
    assert lines.index(next(x for x in lines if x.startswith("  self-distillation:"))) < \
        lines.index(next(x for x in lines if x.startswith("  sft:")))  # two-stage recipes start first
    assert any("3 fine-tunes, 2 at a time x 1 CPU thread(s)" in line for line in lines)
    assert any("answering with 4 models, 2 at a time" in line for line in lines)
    shown = [line for line in lines + capsys.readouterr().err.splitlines() if line.startswith("  [known-only] ")]
    assert any("epoch 1/1" in line for line in shown) and not any("Loading" in line for line in shown)
    # a rerun finds both finished and trains nothing
    again = []
    demo.run("toy", tmp_path / "two", echo=again.append, jobs=2)
    assert sum("reusing" in line and "models" in line for line in again) == 3


def test_a_failed_job_is_one_line_and_the_others_finish(tmp_path, tiny_world_module):
    good_dir, bad_dir = tmp_path / "good", tmp_path / "bad"
    split = demo.make_split(TINY, tmp_path, echo=lambda *a: None)
    common = ("model=toy:tiny", f"split_dir={split}", *TINY.overrides)
    jobs = [fine_tune_jobs.Job("bad", "sft", "toy", (*common, f"output_dir={bad_dir}", "trainable=nothing_matches")),
            fine_tune_jobs.Job("good", "known-only", "toy", (*common, f"output_dir={good_dir}"))]
    with pytest.raises(FactbenchError, match=r"fine-tune\(s\) bad failed .*log .*bad\.log.*rerun") as e:
        fine_tune_jobs.run(jobs, 2, 1, tmp_path / "logs", echo=lambda *a: None)
    assert "\n" not in str(e.value)
    assert (good_dir / "recipe_card.json").is_file() and not (bad_dir / "recipe_card.json").exists()
