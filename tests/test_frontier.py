"""The retention–acquisition frontier (factbench.frontier): synthetic study folders, hand-computed numbers."""

import json

import numpy as np
import pytest

from factbench import frontier, frontier_report
from factbench.cli import main
from factbench.errors import FactbenchError

H, N = 40, 20  # held-out and new questions in the synthetic runs
BOOT = 200


def bits(k: int, n: int) -> str:
    """k right answers out of n (the first k questions), so trajectories are nested and exact."""
    return "1" * k + "0" * (n - k)


def write_run(out, variant, points, *, seed=0, seed_folder=False, guessable=None, heldout=None, new=None,
              held_n=H, new_n=N, protocols=("4-shot", "0-shot"), outcomes=True):
    """A run folder as a training run writes it (recipes/callbacks.py). points: [(new_right, heldout_right)] or
    [(new_string, heldout_string)], one per evaluation point, the same for every protocol."""
    folder = out / "models" / variant
    if seed_folder:
        folder = folder / f"seed-{seed}"
    folder.mkdir(parents=True)
    held_ids = heldout or [f"P17/train/{i}" for i in range(held_n)]
    new_ids = new or [f"P19/train/{i}" for i in range(new_n)]
    (folder / "recipe_card.json").write_text(json.dumps({"recipe": variant, "settings": {"seed": seed}}))
    (folder / "eval_questions.json").write_text(json.dumps({
        "sets": {"heldout": {"ids": held_ids, "guessable": guessable}, "new": {"ids": new_ids, "guessable": None},
                 "known_train": {"ids": ["P17/train/x"], "guessable": None}},
        "split_manifest_sha256": "abc"}))
    if outcomes:
        rows = []
        for i, (nw, hd) in enumerate(points):
            nw = nw if isinstance(nw, str) else bits(nw, len(new_ids))
            hd = hd if isinstance(hd, str) else bits(hd, len(held_ids))
            for p in protocols:
                rows.append({"epoch": i, "step": 10 * i, "protocol": p, "protocol_hash": f"hash-{p}",
                             "sets": {"heldout": hd, "new": nw, "known_train": "1"}})
        (folder / "eval_outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder


def one_line_error(excinfo) -> str:
    message = str(excinfo.value)
    assert "\n" not in message and message
    return message


# sft: learns all new facts, forgets half the held-out ones on the way
SFT = [(0, 40), (4, 36), (12, 28), (20, 20)]
# known-only: never learns, keeps almost everything
KNOWN_ONLY = [(0, 40), (0, 39), (1, 38)]


def test_interpolation_on_a_hand_computed_trajectory(tmp_path):
    acq, ret = np.array([0.0, 0.2, 0.6]), np.array([1.0, 0.9, 0.5])
    assert frontier.at_level(acq, ret, 0.4) == pytest.approx(0.7)  # halfway from (0.2, 0.9) to (0.6, 0.5)
    assert frontier.at_level(acq, ret, 0.2) == pytest.approx(0.9)  # exactly at a point
    assert frontier.at_level(acq, ret, 0.5) == pytest.approx(0.6)  # three quarters of the way
    assert np.isnan(frontier.at_level(acq, ret, 0.7))  # never reached
    # acquisition that dips: the first crossing counts, not a later one
    assert frontier.at_level(np.array([0.0, 0.5, 0.3, 0.9]), np.array([1.0, 0.8, 0.7, 0.2]), 0.25) \
        == pytest.approx(0.9)
    # vectorised over replicates: same answer per column
    many = frontier.at_level(np.stack([acq, acq], 1), np.stack([ret, ret], 1), 0.4)
    assert many.shape == (2,) and many == pytest.approx([0.7, 0.7])
    # and through the whole analysis: 10 new, 10 held-out questions
    write_run(tmp_path, "sft", [(0, 10), (2, 9), (6, 5)], held_n=10, new_n=10)
    s = frontier.analyse(tmp_path, levels=[0.4], n_boot=BOOT)
    assert s["protocols"]["4-shot"]["matched"]["sft"][0]["retention"]["value"] == pytest.approx(0.7)


def test_a_variant_identical_to_the_reference_differs_by_zero(tmp_path):
    write_run(tmp_path, "sft", SFT)
    write_run(tmp_path, "sft-again", SFT)
    s = frontier.analyse(tmp_path, levels=[0.3, 0.6], n_boot=BOOT)
    for d in s["protocols"]["4-shot"]["differences"]["sft-again"]:
        assert d["value"] == 0 and d["low"] <= 0 <= d["high"]
        assert d["p_at_or_below_zero"] == 1.0


def test_a_variant_that_keeps_more_facts_has_a_positive_difference_excluding_zero(tmp_path):
    write_run(tmp_path, "sft", SFT)
    write_run(tmp_path, "selfdistill", [(0, 40), (4, 39), (12, 37), (20, 36)])
    s = frontier.analyse(tmp_path, levels=[0.6], n_boot=BOOT)
    d = s["protocols"]["4-shot"]["differences"]["selfdistill"][0]
    # at 60% acquisition (12 of 20): sft 28/40, selfdistill 37/40
    assert d["value"] == pytest.approx((37 - 28) / 40)
    assert 0 < d["low"] < d["value"] < d["high"]
    assert d["p_at_or_below_zero"] == 0.0


def test_levels_a_variant_never_reaches_are_not_reached(tmp_path):
    write_run(tmp_path, "sft", SFT, seed=0, seed_folder=True)
    write_run(tmp_path, "sft", SFT, seed=1, seed_folder=True)
    write_run(tmp_path, "slow", [(0, 40), (6, 38), (10, 37)], seed=0, seed_folder=True)  # reaches 50%
    write_run(tmp_path, "slow", [(0, 40), (6, 38), (14, 36)], seed=1, seed_folder=True)  # reaches 70%
    s = frontier.analyse(tmp_path, levels=[0.5, 0.6, 0.8], n_boot=BOOT)
    m = {row["level"]: row for row in s["protocols"]["4-shot"]["matched"]["slow"]}
    assert m[0.5]["reached"] and m[0.5]["retention"]["value"] == pytest.approx(37 / 40)
    assert not m[0.6]["reached"] and m[0.6]["seeds_not_reaching"] == [0] and m[0.6]["retention"]["value"] is None
    assert m[0.8]["seeds_not_reaching"] == [0, 1]
    assert s["protocols"]["4-shot"]["differences"]["slow"][1]["value"] is None
    md = frontier_report.markdown(s)
    assert "| acquisition 60% | slow | not reached (seed 0) |" in md
    assert "| acquisition 80% | slow | not reached (seeds 0, 1) |" in md


def test_a_non_learning_variant_is_reported_at_its_final_point(tmp_path):
    write_run(tmp_path, "sft", SFT)
    write_run(tmp_path, "known-only", KNOWN_ONLY)
    s = frontier.analyse(tmp_path, n_boot=BOOT)
    p = s["protocols"]["0-shot"]
    assert p["learning"] == ["sft"] and p["non_learning"] == ["known-only"]
    assert "known-only" not in p["matched"]
    assert p["final_points"]["known-only"]["acquisition"]["value"] == pytest.approx(1 / 20)
    assert p["final_points"]["known-only"]["retention"]["value"] == pytest.approx(38 / 40)
    md = frontier_report.markdown(s)
    assert "| final point (acquisition 5.0% [" in md and "| known-only | 95.0% [" in md


def test_share_of_forgetting_removed_on_a_constructed_half(tmp_path):
    # at 50% acquisition (10 of 20 new): sft keeps 20/40, half keeps 30/40, known-only ends at 40/40:
    # share = (F_sft - F_half) / (F_sft - F_ko) = (0.5 - 0.25) / (0.5 - 0) = 0.5
    write_run(tmp_path, "sft", [(0, 40), (10, 20), (20, 10)])
    write_run(tmp_path, "half", [(0, 40), (10, 30), (20, 25)])
    write_run(tmp_path, "known-only", [(0, 40), (1, 40)])
    s = frontier.analyse(tmp_path, levels=[0.5], n_boot=BOOT)
    p = s["protocols"]["4-shot"]
    share = p["share_removed"]["half"][0]
    assert share["value"] == pytest.approx(0.5) and share["low"] < 0.5 < share["high"]
    assert share["denominator"]["value"] == pytest.approx(0.5) and share["denominator"]["low"] > 0
    assert p["stability_final"]["forgetting"]["value"] == 0
    assert "| 50.0% [" in frontier_report.markdown(s)


def test_share_is_undefined_when_the_reference_forgets_no_more_than_the_stability_reference(tmp_path):
    write_run(tmp_path, "sft", [(0, 40), (10, 38), (20, 37)])
    write_run(tmp_path, "other", [(0, 40), (10, 39), (20, 37)])
    write_run(tmp_path, "known-only", [(0, 40), (1, 38)])  # same forgetting as sft at 50%
    s = frontier.analyse(tmp_path, levels=[0.5], n_boot=BOOT)
    share = s["protocols"]["4-shot"]["share_removed"]["other"][0]
    assert share["value"] is None and "sft forgets +0.0 points more than known-only" in share["undefined_because"]
    md = frontier_report.markdown(s)
    assert "| other | 97.5% [" in md and "| undefined (1) |" in md and "(1) share undefined at 50%: sft forgets" in md


def test_peak_relative_forgetting_on_a_constructed_case(tmp_path):
    assert frontier.peak_relative(np.array([0.8, 1.0, 0.9, 0.75])) == pytest.approx(0.25)
    # seed 0: retention 30 -> 40 (peak) -> 30: (40 - 30) / 40 = 0.25; seed 1: never above its start: 0
    write_run(tmp_path, "sft", [(0, 30), (10, 40), (20, 30)], seed=0, seed_folder=True)
    write_run(tmp_path, "sft", [(0, 40), (10, 40), (20, 40)], seed=1, seed_folder=True)
    s = frontier.analyse(tmp_path, n_boot=BOOT)
    pk = s["protocols"]["4-shot"]["peak_relative"]["sft"]
    assert pk["peak_relative_forgetting"]["value"] == pytest.approx(0.125)
    assert pk["final_retention"]["value"] == pytest.approx(35 / 40)
    assert pk["final_acquisition"]["value"] == pytest.approx(1.0)
    assert pk["peak_relative_forgetting"]["low"] <= 0.125 <= pk["peak_relative_forgetting"]["high"]


def test_retention_counts_recalled_questions_only(tmp_path):
    # the last 10 of 40 held-out questions are guessable and always wrong; the 30 recalled ones always right
    guessable = "0" * 30 + "1" * 10
    write_run(tmp_path, "sft", [(0, 30), (20, 30)], guessable=guessable)
    s = frontier.analyse(tmp_path, n_boot=BOOT)
    assert s["questions"]["heldout_recalled"] == 30 and s["questions"]["heldout_guessable"] == 10
    assert s["protocols"]["4-shot"]["final_points"]["sft"]["retention"]["value"] == 1.0
    assert "30 held-out Known questions the base recalled (10 guessable ones left out)" in frontier_report.markdown(s)


def test_refusals_are_one_line(tmp_path):
    write_run(tmp_path / "a", "sft", SFT)
    write_run(tmp_path / "a", "other", SFT, new=[f"P20/train/{i}" for i in range(N)])
    with pytest.raises(FactbenchError) as e:
        frontier.analyse(tmp_path / "a", n_boot=BOOT)
    assert "different new questions" in one_line_error(e)

    write_run(tmp_path / "b", "sft", SFT)
    write_run(tmp_path / "b", "other", SFT, outcomes=False)
    with pytest.raises(FactbenchError) as e:
        frontier.analyse(tmp_path / "b", n_boot=BOOT)
    assert "has no eval_outcomes.jsonl" in one_line_error(e)

    write_run(tmp_path / "c", "sft", SFT)
    write_run(tmp_path / "c", "other", SFT, protocols=("4-shot",))
    with pytest.raises(FactbenchError) as e:
        frontier.analyse(tmp_path / "c", n_boot=BOOT)
    assert "'0-shot'" in one_line_error(e) and "missing in other" in str(e.value)

    write_run(tmp_path / "e", "sft", SFT, guessable="0" * H)
    write_run(tmp_path / "e", "other", SFT, guessable="1" + "0" * (H - 1))
    with pytest.raises(FactbenchError) as e:
        frontier.analyse(tmp_path / "e", n_boot=BOOT)
    assert "different held-out questions as guessable" in one_line_error(e)

    write_run(tmp_path / "d", "sft", SFT)
    with pytest.raises(FactbenchError) as e:
        frontier.analyse(tmp_path / "d", reference="selfdistill", n_boot=BOOT)
    assert "no variant named 'selfdistill'" in one_line_error(e)

    with pytest.raises(FactbenchError) as e:
        frontier.analyse(tmp_path / "nothing", n_boot=BOOT)
    assert "has no models/ folder" in one_line_error(e)


def test_the_cli_refuses_in_one_line_with_exit_2(tmp_path, capsys):
    write_run(tmp_path, "sft", SFT, outcomes=False)
    assert main(["frontier", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("factbench: error:") and "\n" not in err and "eval_outcomes.jsonl" in err


def test_outputs_are_written(tmp_path, capsys):
    write_run(tmp_path, "sft", SFT)
    write_run(tmp_path, "selfdistill", [(0, 40), (4, 39), (12, 37), (20, 36)])
    write_run(tmp_path, "known-only", KNOWN_ONLY)
    assert main(["frontier", str(tmp_path), "--levels", "0.3", "0.6", "--boot", str(BOOT)]) == 0
    out = capsys.readouterr().out
    folder = tmp_path / "frontier"
    png = (folder / "frontier.png").read_bytes()
    assert len(png) > 1000 and png.startswith(b"\x89PNG")
    md = (folder / "frontier.md").read_text()
    assert md in out and f"wrote {folder / 'frontier.png'}" in out
    assert "| read at | variant | held-out retention | vs sft (points) |" in md
    assert "## 4-shot (protocol hash-4-shot)" in md and "## 0-shot (protocol hash-0-shot)" in md
    assert "| acquisition 60% | selfdistill | 92.5% [" in md
    assert "question sampling only" in md  # one seed: the md must not claim seed variation is covered
    summary = json.loads((folder / "frontier.json").read_text())
    assert summary["kind"] == frontier.KIND and summary["bootstrap"]["resamples"] == BOOT
    assert summary["protocol_hashes"] == {"4-shot": "hash-4-shot", "0-shot": "hash-0-shot"}
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary leftovers


def test_same_seed_same_numbers(tmp_path):
    rng = np.random.default_rng(1)
    noisy = lambda p: "".join("1" if x else "0" for x in rng.random(H) < p)  # noqa: E731
    for seed in (0, 1):
        write_run(tmp_path, "sft", [(0, noisy(1.0)), (10, noisy(0.7)), (20, noisy(0.5))], seed=seed, seed_folder=True)
        write_run(tmp_path, "x", [(0, noisy(1.0)), (10, noisy(0.8)), (20, noisy(0.7))], seed=seed, seed_folder=True)
    a, b = (frontier.analyse(tmp_path, levels=[0.5], n_boot=BOOT, seed=7) for _ in range(2))
    assert json.dumps(a) == json.dumps(b)
    c = frontier.analyse(tmp_path, levels=[0.5], n_boot=BOOT, seed=8)
    da, dc = a["protocols"]["4-shot"]["differences"]["x"][0], c["protocols"]["4-shot"]["differences"]["x"][0]
    assert da["value"] == dc["value"] and (da["low"], da["high"]) != (dc["low"], dc["high"])


def test_default_levels_span_the_references_range_above_every_learning_start(tmp_path):
    write_run(tmp_path, "sft", [(0, 40), (8, 30), (16, 20)])  # 0% -> 80%
    write_run(tmp_path, "slow", [(2, 40), (6, 35), (12, 33), (13, 30)])  # 10% -> 65%
    write_run(tmp_path, "known-only", KNOWN_ONLY)  # does not learn: ignored for the range
    p = frontier.analyse(tmp_path, n_boot=BOOT)["protocols"]["4-shot"]
    assert p["level_range"] == pytest.approx([0.1, 0.8])
    assert p["levels"] == [0.15, 0.3, 0.5, 0.65, 0.8]
    assert all(row["reached"] for row in p["matched"]["sft"])
    assert [row["reached"] for row in p["matched"]["slow"]] == [True, True, True, True, False]


def test_seeds_with_different_lengths_use_the_common_prefix(tmp_path):
    write_run(tmp_path, "sft", SFT, seed=0, seed_folder=True)
    write_run(tmp_path, "sft", SFT[:3], seed=1, seed_folder=True)
    s = frontier.analyse(tmp_path, n_boot=BOOT)
    p = s["protocols"]["4-shot"]
    assert len(p["curves"]["sft"]["points"]) == 3
    assert any("first 3 of each" in n for n in p["notes"])
    # finals are each run's own last point: (20 + 28) / 2 held-out right
    assert p["final_points"]["sft"]["retention"]["value"] == pytest.approx(24 / 40)


def test_variants_with_different_seeds_are_not_paired(tmp_path):
    write_run(tmp_path, "sft", SFT, seed=0, seed_folder=True)
    write_run(tmp_path, "sft", SFT, seed=1, seed_folder=True)
    write_run(tmp_path, "other", SFT, seed=0, seed_folder=True)
    s = frontier.analyse(tmp_path, levels=[0.5], n_boot=BOOT)
    assert not s["paired_seeds"] and s["protocols"]["4-shot"]["differences"] == {}
    assert any("different seeds" in n for n in s["notes"])
    assert "no paired differences are reported" in frontier_report.markdown(s)


def test_seed_folder_and_recipe_card_must_agree(tmp_path):
    folder = write_run(tmp_path, "sft", SFT, seed=1, seed_folder=True)
    folder.rename(folder.parent / "seed-2")
    with pytest.raises(FactbenchError) as e:
        frontier.analyse(tmp_path, n_boot=BOOT)
    assert "named seed-2 but its recipe card says seed 1" in one_line_error(e)


def test_the_untrained_base_point_is_left_out_of_0_shot_trajectories_only(tmp_path):
    """A base model is asked 4-shot; its 0-shot point (0 right: no Q:/A: format yet) is not forgetting."""
    folder = write_run(tmp_path, "sft", [(0, 40), (4, 36), (12, 28), (20, 20)])
    rows = [json.loads(line) for line in (folder / "eval_outcomes.jsonl").read_text().splitlines()]
    rows[0]["base"] = rows[1]["base"] = True  # the step-0 point under both protocols
    rows[1]["sets"]["heldout"] = bits(0, H)
    (folder / "eval_outcomes.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    run = frontier.load_run(folder)
    assert run.protocols["4-shot"]["epochs"] == [0, 1, 2, 3]
    assert run.protocols["0-shot"]["epochs"] == [1, 2, 3]
    s = frontier.analyse(tmp_path, n_boot=BOOT)
    zero = s["protocols"]["0-shot"]["peak_relative"]["sft"]
    assert zero["peak_retention"]["value"] == pytest.approx(36 / 40)  # not the base's 0


def test_a_level_passed_before_the_first_point_is_named_not_interpolated(tmp_path):
    # a two-stage run starts at its teacher, already at 25% acquisition: a given level of 10% was passed
    # before its first evaluation, so its value there is the first point's, and the report says so
    write_run(tmp_path, "sft", SFT, seed=0, seed_folder=True)
    write_run(tmp_path, "sft", SFT, seed=1, seed_folder=True)
    write_run(tmp_path, "two-stage", [(5, 38), (12, 37), (20, 36)], seed=0, seed_folder=True)
    write_run(tmp_path, "two-stage", [(1, 39), (12, 37), (20, 36)], seed=1, seed_folder=True)
    s = frontier.analyse(tmp_path, levels=[0.1, 0.5], n_boot=BOOT)
    m = s["protocols"]["4-shot"]["matched"]
    assert m["two-stage"][0]["seeds_past_at_first_point"] == [0]  # seed 1 starts at 5%: interpolated
    assert m["two-stage"][1]["seeds_past_at_first_point"] == [] and m["sft"][0]["seeds_past_at_first_point"] == []
    # seed 0 reads its first point (38/40); seed 1 interpolates 1/20 -> 12/20 at 2/20: 39 - 2/11 right
    assert m["two-stage"][0]["retention"]["value"] == pytest.approx((38 / 40 + (39 - 2 / 11) / 40) / 2)
    md = frontier_report.markdown(s)
    assert "seed 0 of two-stage had passed 10% at its first evaluation point: the value is that point's " \
           "retention, not an interpolation" in md
    assert md.count("not an interpolation") == 2  # one footnote per protocol, none at 50%
    assert not any(row["seeds_past_at_first_point"] for v in
                   frontier.analyse(tmp_path, n_boot=BOOT)["protocols"]["4-shot"]["matched"].values() for row in v)


def test_report_dir_writes_elsewhere_and_leaves_the_default_report_alone(tmp_path, capsys):
    write_run(tmp_path, "sft", SFT)
    write_run(tmp_path, "selfdistill", [(0, 40), (4, 39), (12, 37), (20, 36)])
    assert main(["frontier", str(tmp_path), "--boot", str(BOOT)]) == 0
    default = (tmp_path / "frontier" / "frontier.md").read_text()
    other = tmp_path / "vs-sd"
    assert main(["frontier", str(tmp_path), "--reference", "selfdistill", "--report-dir", str(other),
                 "--boot", str(BOOT)]) == 0
    assert "vs selfdistill (points)" in (other / "frontier.md").read_text()
    assert json.loads((other / "frontier.json").read_text())["reference"] == "selfdistill"
    assert (other / "frontier.png").is_file()
    assert (tmp_path / "frontier" / "frontier.md").read_text() == default
    assert f"wrote {other / 'frontier.md'}" in capsys.readouterr().out
