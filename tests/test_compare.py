"""`factbench compare`: paired tests between fine-tunes of one base, on hand-built score cards.

Held-out set of the scripted split: 15 facts h0..h14; the base answers h0..h11 right.
  A keeps h0..h10               (11 right)
  B keeps h0, h1 and gets h12   (3 right)
  C keeps h0..h9 and gets h12   (11 right)
A vs B: both right 2 (h0, h1), only A 9 (h2..h10), only B 1 (h12), both wrong 3 (h11, h13, h14).
A vs C: both right 10, only A 1 (h10), only C 1 (h12), both wrong 3.
"""

import json

import pytest
from conftest import SETS, ids, scripted_answers
from scipy.stats import binomtest

from factbench import answer_sources, compare, scorecard, splits
from factbench.cli import main
from factbench.protocol import protocol_hash


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from test_lmeval_tasks import make_scripted_split

    return splits.load_split(make_scripted_split(tmp_path_factory.mktemp("scripted"))[1])


def _right(split, heldout_idx, new_count):
    h, n = ids(split, "heldout"), ids(split, "new")
    return {h[i] for i in heldout_idx} | set(n[:new_count])


@pytest.fixture(scope="module")
def cards(split, tmp_path_factory):
    root = tmp_path_factory.mktemp("cards")
    everything_else = {i for s in SETS if s not in ("heldout", "new") for i in ids(split, s)}
    base = scripted_answers(root / "base", split, _right(split, range(12), 0) | everything_else, "base-model")
    tuned = {"A": _right(split, range(11), 20), "B": _right(split, [0, 1, 12], 10),
             "C": _right(split, [*range(10), 12], 20)}
    paths = {}
    for name, right in tuned.items():
        folder = scripted_answers(root / name, split, right | everything_else, f"tuned-{name}")
        card = scorecard.score(answer_sources.read_answers(base, "base"), answer_sources.read_answers(folder, "tuned"), split)
        paths[name] = root / f"{name}.json"
        scorecard.write_card(card, paths[name])
    paths["base_folder"] = base
    return paths


def test_table_mcnemar_and_verdict_for_a_clear_difference(cards):
    named = compare.load_cards([cards["A"], cards["B"]])
    pair = compare.compare(named)["pairs"][0]
    f = pair["forgetting"]
    assert f["table"] == {"both_right": 2, "only_a_right": 9, "only_b_right": 1, "both_wrong": 3}
    assert f["mcnemar_p"] == pytest.approx(22 / 1024)  # 2 * (C(10,0) + C(10,1)) / 2^10
    assert f["mcnemar_p"] == pytest.approx(binomtest(1, 10, 0.5).pvalue)
    assert f["a"]["value"] == pytest.approx(4 / 15) and f["b"]["value"] == pytest.approx(12 / 15)
    d = f["difference"]
    assert d["value"] == pytest.approx(4 / 15 - 12 / 15) and d["low"] <= d["value"] <= d["high"] < 0
    assert pair["verdict"].startswith("A forgets 26.7% [")
    assert "vs B 80.0% [" in pair["verdict"] and "of 15 held-out facts; B forgets more (McNemar p = 0.021" in pair["verdict"]
    acq = pair["acquisition"]
    assert acq["table"] == {"both_right": 10, "only_a_right": 10, "only_b_right": 0, "both_wrong": 10}
    assert acq["mcnemar_p"] == pytest.approx(binomtest(0, 10, 0.5).pvalue)


def test_no_detectable_difference_is_said_with_its_interval(cards):
    pair = compare.compare(compare.load_cards([cards["A"], cards["C"]]))["pairs"][0]
    f = pair["forgetting"]
    assert f["table"] == {"both_right": 10, "only_a_right": 1, "only_b_right": 1, "both_wrong": 3}
    assert f["mcnemar_p"] == 1.0 == pytest.approx(binomtest(1, 2, 0.5).pvalue)
    assert f["difference"]["value"] == 0
    assert "no detectable difference (McNemar p = 1); the 95% interval of the difference [" in pair["verdict"]
    assert pair["verdict"].endswith("points includes 0")


def test_compare_command_prints_every_pair_and_writes_json(cards, tmp_path, capsys):
    out = tmp_path / "comparison.json"
    assert main(["compare", str(cards["A"]), str(cards["B"]), str(cards["C"]), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "A vs B: held-out known facts (15)" in printed and "B vs C" in printed
    assert "verdict: A forgets" in printed
    result = json.loads(out.read_text())
    assert result["schema"] == "factbench.comparison/1"
    assert [(p["a"], p["b"]) for p in result["pairs"]] == [("A", "B"), ("A", "C"), ("B", "C")]


def test_compare_out_replaces_a_comparison_but_never_another_file(cards, tmp_path, capsys):
    out = tmp_path / "comparison.json"
    argv = ["compare", str(cards["A"]), str(cards["B"]), "--out", str(out)]
    assert main(argv) == 0 and main(argv) == 0
    capsys.readouterr()
    out.write_text("my notes\n")
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "exists and is not a comparison: refusing to overwrite it" in err and err.count("\n") == 1
    assert out.read_text() == "my notes\n"


def test_compare_out_that_cannot_be_written_is_one_line_and_prints_nothing(cards, full_disk, capsys, monkeypatch):
    from conftest import fill

    fill(full_disk)
    argv = ["compare", str(cards["A"]), str(cards["B"]), "--out", str(full_disk / "c.json")]
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "cannot write" in captured.err and captured.err.count("\n") == 1 and captured.out == ""
    monkeypatch.setattr("factbench.sample_logs.check_writable", lambda target: None)  # the disk fills meanwhile
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert "cannot write" in captured.err and captured.err.count("\n") == 1 and "verdict" not in captured.out
    assert not (full_disk / "c.json").exists()


def _edited(path, tmp_path, name, edit):
    """A card edited on purpose, its figures and checksum remade: consistent in itself, so what
    compare must find is the edit's own consequence."""
    card = json.loads(path.read_text())
    edit(card)
    out = tmp_path / f"{name}.json"
    out.write_text(json.dumps(scorecard.refigured(card)))
    return out


def _other_protocol(card):
    card["protocol"]["shots"] = 5
    card["protocol_hash"] = protocol_hash(card["protocol"])


def _swap_a_question(card):
    card["outcomes"]["heldout"]["ids"][0] = "P17/train/1"


def test_a_re_evaluated_base_is_noted_not_refused(cards, tmp_path):
    def rebase(card):  # same base model, one answer differs: e.g. scored under another dtype
        o = card["outcomes"]["heldout"]
        o["base"] = ("0" if o["base"][0] == "1" else "1") + o["base"][1:]
        card["base"]["answers_sha256"] = "f" * 64

    other = _edited(cards["B"], tmp_path, "B2", rebase)
    pair = compare.compare(compare.load_cards([cards["A"], other]))["pairs"][0]
    assert any("the base was evaluated differently" in n for n in pair["notes"])


@pytest.mark.parametrize("case, message", [
    ("other base", "A and X are fine-tunes of different bases"),
    ("other questions", "A and X were scored on different held-out questions (15 vs 10"),
    ("other protocol", "A and X were scored under different question protocols (protocols differ (A vs X): shots: 4 vs 5)"),
    ("corrupted", "X.json is not valid JSON"),
    ("edited", "outcomes do not match its heldout question set"),
    ("one card", "compare needs at least two score cards"),
])
def test_incomparable_or_broken_cards_are_refused(case, message, cards, split, tmp_path, capsys):
    if case == "other base":
        folder = scripted_answers(tmp_path / "other-base", split, set(), "another-base")
        tuned = answer_sources.read_answers(cards["base_folder"], "tuned")  # any fine-tune's answers will do
        card = scorecard.score(answer_sources.read_answers(folder, "base"), tuned, split)
        x = tmp_path / "X.json"
        scorecard.write_card(card, x)
    elif case == "other questions":
        scripted_answers(tmp_path / "base10", split, set(), "base-model", limit=10)
        scripted_answers(tmp_path / "tuned10", split, set(), "tuned-X", limit=10)
        card = scorecard.score(answer_sources.read_answers(tmp_path / "base10", "base"),
                             answer_sources.read_answers(tmp_path / "tuned10", "tuned"), split)
        x = tmp_path / "X.json"
        scorecard.write_card(card, x)
    elif case == "other protocol":
        x = _edited(cards["B"], tmp_path, "X", _other_protocol)
    elif case == "corrupted":
        x = tmp_path / "X.json"
        x.write_text(cards["B"].read_text()[:300])
    elif case == "edited":
        x = _edited(cards["B"], tmp_path, "X", _swap_a_question)
    out = tmp_path / "comparison.json"
    argv = ["compare", str(cards["A"])] + ([] if case == "one card" else [str(x)])
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert not out.exists()
