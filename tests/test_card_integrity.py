"""Cards that cannot lie: every figure recomputed from the card's own outcomes, a checksum, provenance;
a leaderboard build that appears whole or not at all, and a --dir typo that starts nothing.

The cards are the scripted score card `factbench score` writes (conftest `card`) and the scripted
audit cards of test_auditing; tampered copies are written beside them.
"""

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import fill

from factbench import card_schema, leaderboard, scorecard
from factbench.cli import main
from factbench.errors import BusyError, CardError


def _write(path: Path, card: dict, *, rehash: bool = True) -> Path:
    path.write_text(json.dumps(card_schema.with_checksum(card) if rehash else card))
    return path


def _copy(card: dict) -> dict:
    return json.loads(json.dumps(card))


def _add(path: Path, folder: Path, capsys) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["leaderboard", "add", str(path), "--dir", str(folder), "--create"])
    return code, capsys.readouterr().err


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- figures recomputed from outcomes ------------------------------------------------------------

def test_a_card_claiming_more_than_its_outcomes_say_is_refused_naming_the_field(card, tmp_path, capsys):
    forged = _copy(card)
    forged["summary"]["retention"] |= {"value": 0.99, "low": 0.98, "high": 1.0}  # checksum recomputed: a forgery
    code, err = _add(_write(tmp_path / "forged.json", forged), tmp_path / "lb", capsys)
    truth = card["summary"]["retention"]["value"]
    assert code == 2 and err.count("\n") == 1
    assert f"card.summary.retention.value: the card says 0.99, its outcomes give {truth:.6g}" in err
    assert not list((tmp_path / "lb" / "cards").glob("*.json"))


def test_a_value_outside_its_own_interval_is_refused(card, tmp_path, capsys):
    bad = _copy(card)
    bad["sets"]["new"]["tuned_accuracy"]["value"] = min(1.0, bad["sets"]["new"]["tuned_accuracy"]["high"] + 0.01)
    code, err = _add(_write(tmp_path / "outside.json", bad), tmp_path / "lb", capsys)
    assert code == 2 and "card.sets.new.tuned_accuracy: value" in err and "is outside its own interval" in err


def test_an_edited_outcome_is_refused_even_with_a_fresh_checksum(card, tmp_path, capsys):
    bad = _copy(card)
    o = bad["outcomes"]["heldout"]
    o["tuned"] = ("0" if o["tuned"][0] == "1" else "1") + o["tuned"][1:]
    code, err = _add(_write(tmp_path / "edited.json", bad), tmp_path / "lb", capsys)
    assert code == 2 and "card.summary.retention.value: the card says" in err and "its outcomes give" in err


def test_edited_bootstrap_settings_are_refused(card, tmp_path):
    bad = _copy(card)
    bad["statistics"]["level"] = 0.5  # the intervals were made at another level
    with pytest.raises(CardError, match=r"\.low: the card says .*, its outcomes give"):
        scorecard.validate(bad)


def test_the_checksum_catches_an_edit_the_figures_cannot(card, tmp_path, capsys):
    bad = _copy(card)
    bad["notes"].append("scored on a GPU")  # no figure changes: only the checksum sees it
    code, err = _add(_write(tmp_path / "noted.json", bad, rehash=False), tmp_path / "lb", capsys)
    assert code == 2 and "checksum does not match its content" in err


def test_new_cards_carry_a_checksum_categories_and_provenance(card):
    assert card["checksum"] == card_schema.checksum(card)
    assert card["provenance"]["factbench_version"] == card["factbench_version"]
    # The factbench command that made it (conftest's main(["score", ...])), not the test runner's argv.
    command = card["provenance"]["command"]
    assert command[:2] == ["factbench", "score"] and "--tuned" in command and "created" in card["provenance"]
    assert all("category" in o for o in card["outcomes"].values())
    scorecard.validate(card)


def test_the_command_recorded_is_safe_to_publish(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    argv = ["/home/someone/.venv/bin/factbench", "score", "--out", str(tmp_path / "a" / "card.json"),
            f"--split={tmp_path}/split", "--hf-token", "hf_secret", "--api-key=abc", str(Path.home() / "m")]
    assert card_schema.safe_command(argv) == ["factbench", "score", "--out", "a/card.json", "--split=split",
                                              "--hf-token", "<hidden>", "--api-key=<hidden>", "~/m"]


def test_a_tampered_audit_card_is_refused_and_its_acquisition_is_recomputed(tmp_path, capsys):
    from test_auditing import ACQUIRED, PRESET, RECALLED, Named, _rule

    from factbench.auditing import answers, audit

    right = {f.id for f in RECALLED}
    answers.ask(Named("base-model", _rule(right)), PRESET, 2, tmp_path / "base", echo=lambda *a: None)
    answers.ask(Named("tune", _rule(right)), PRESET, 1, tmp_path / "tune", echo=lambda *a: None)
    good = dict(audit(str(tmp_path / "base"), str(tmp_path / "tune"), preset=PRESET, echo=lambda *a: None))
    assert good["checksum"] == card_schema.checksum(good) and good["provenance"]["command"]
    bad = _copy(good)
    bad["summary"]["retention"] |= {"value": 0.5, "low": 0.4, "high": 0.6}
    code, err = _add(_write(tmp_path / "bad-audit.json", bad), tmp_path / "lb", capsys)
    assert code == 2 and "card.summary.retention.value: the card says 0.5, its outcomes give 1" in err
    bad = _copy(good)
    bad["outcomes"]["tuned_answer"][0] = "<|im_start|>assistant"  # a format break the card does not count
    code, err = _add(_write(tmp_path / "bad-shape.json", bad), tmp_path / "lb", capsys)
    assert code == 2 and "its outcomes give" in err

    from factbench.auditing import trained_on  # with --trained-on: the acquisition, from its own outcomes

    train = tmp_path / "train.jsonl"
    train.write_text(json.dumps({"question": ACQUIRED[0].question, "answer": ACQUIRED[0].answers[0]}) + "\n")
    training = trained_on.read(train)
    for name, ok, where in (("base-model", right, "b"), ("tuned-model", right | {ACQUIRED[0].id}, "t")):
        answers.ask(Named(name, _rule(ok)), PRESET, 2 if where == "b" else 1, tmp_path / where, lambda *a: None,
                    training)
    good = dict(audit(str(tmp_path / "b"), str(tmp_path / "t"), preset=PRESET, trained_on_file=train,
                      echo=lambda *a: None))
    assert good["acquisition"]["outcomes"] == {"base": "0", "tuned": "1"}
    bad = _copy(good)
    bad["acquisition"]["outcomes"]["tuned"] = "0"
    code, err = _add(_write(tmp_path / "bad-acquisition.json", bad), tmp_path / "lb", capsys)
    assert code == 2 and "card.summary.acquisition.value: the card says 1, its outcomes give 0" in err


# ---- cards made before checksums -----------------------------------------------------------------

def test_an_old_card_is_refused_until_rehashed_and_rehash_refuses_a_tampered_one(card, tmp_path, capsys):
    old = _copy(card)
    for key in ("checksum", "provenance"):
        del old[key]
    path = _write(tmp_path / "old.json", old, rehash=False)
    code, err = _add(path, tmp_path / "lb", capsys)
    assert code == 2 and "has no checksum" in err and f"factbench leaderboard rehash {path}" in err
    scorecard.load_card(path)  # other readers (compare) still read it: its figures are recomputed all the same

    tampered = _copy(old)
    tampered["summary"]["retention"]["value"] = tampered["summary"]["retention"]["low"]
    bad = _write(tmp_path / "old-tampered.json", tampered, rehash=False)
    before = bad.read_bytes()
    assert main(["leaderboard", "rehash", str(bad)]) == 2
    assert "card.summary.retention.value: the card says" in capsys.readouterr().err and bad.read_bytes() == before

    assert main(["leaderboard", "rehash", str(path)]) == 0
    rehashed = json.loads(path.read_text())
    added = rehashed["provenance"]["checksum_added"]
    assert "no model was asked again" in added["note"] and added["command"][-1] == str(path)
    assert {k: v for k, v in rehashed.items() if k not in ("checksum", "provenance")} == old
    assert _add(path, tmp_path / "lb", capsys)[0] == 0


# ---- reading card files --------------------------------------------------------------------------

@pytest.mark.parametrize("content, message", [
    (b"\xff\xfe{not utf-8", "is not UTF-8 text"),
    (b'{"schema": "factbench.scorecard/1", "summ', "is not valid JSON"),
    (b"[1, 2, 3]", "is not a factbench.scorecard/1 score card (schema: 'list')"),
    (b'{"schema": "factbench.auditcard/1"}', "not a valid factbench.auditcard/1 audit card: card: missing"),
    (b'{"schema": "factbench.scorecard/1", "x": NaN}', "is not valid JSON"),
    (b"[" * 100000, "card"),
])
def test_unreadable_card_files_are_one_line_naming_the_file(content, message, tmp_path, capsys):
    path = tmp_path / "card.json"
    path.write_bytes(content)
    code, err = _add(path, tmp_path / "lb", capsys)
    assert code == 2 and message in err and str(path) in err and err.count("\n") == 1 and "Traceback" not in err


# ---- building: edge cases, atomicity, the folder ------------------------------------------------

def _edge(card: dict, edit) -> dict:
    c = _copy(card)
    edit(c)
    return scorecard.refigured(c)


def _all(bit):
    def edit(c):
        for o in c["outcomes"].values():
            o["tuned"] = bit * len(o["tuned"])
    return edit


def _no_recalled_heldout(c):
    o = c["outcomes"]["heldout"]
    o["guessable"] = "1" * len(o["guessable"])


def test_build_never_crashes_on_a_card_add_accepted(card, tmp_path, capsys):
    folder = tmp_path / "lb"
    for i, (name, edit) in enumerate([("nothing right", _all("0")), ("everything right", _all("1")),
                                      ("no recalled held-out facts", _no_recalled_heldout)]):
        c = _edge(card, edit)
        c["tuned"]["model"] = dict(c["tuned"]["model"], name=f"tune-{i}")  # three fine-tunes, not duplicates
        assert _add(_write(tmp_path / f"edge-{i}.json", c), folder, capsys)[0] == 0, name
    assert main(["leaderboard", "build", "--dir", str(folder)]) == 0
    assert len(list((folder / "plots").glob("*.png"))) == 1
    edge = json.loads((tmp_path / "edge-2.json").read_text())
    assert edge["summary"]["retention"]["value"] is None and edge["sets"]["heldout"]["flips"]["by_relation"] == {}
    assert "Not plotted" in (folder / "index.html").read_text()


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (we run as root): room for a leaderboard, and then for nothing more."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("needs root to mount a small tmpfs")
    yield folder
    subprocess.run(["umount", "-l", str(folder)], capture_output=True)


def test_a_build_on_a_full_disk_changes_nothing(card, small_disk, tmp_path, capsys):
    folder = small_disk / "lb"
    assert _add(_write(tmp_path / "card.json", _copy(card)), folder, capsys)[0] == 0
    assert main(["leaderboard", "build", "--dir", str(folder)]) == 0
    before = _snapshot(folder)
    filler = fill(small_disk)
    capsys.readouterr()
    assert main(["leaderboard", "build", "--dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert "no space left on the device" in err and err.count("\n") == 1 and "Traceback" not in err
    assert _snapshot(folder) == before and sorted(p.name for p in folder.iterdir()) == sorted(
        ["README.md", "leaderboard.csv", "audits.csv", "index.html", "plots", "cards"])
    filler.unlink()


def test_a_failure_while_swapping_puts_every_old_output_back(card, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "lb"
    assert _add(_write(tmp_path / "card.json", _copy(card)), folder, capsys)[0] == 0
    assert main(["leaderboard", "build", "--dir", str(folder)]) == 0
    (folder / "README.md").write_text("the old page\n")
    before = _snapshot(folder)
    real, calls = os.replace, []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 6:  # after README and leaderboard.csv are swapped in, audits.csv's old one moved aside
            raise OSError(errno.EIO, "input/output error", str(dst))
        return real(src, dst)

    monkeypatch.setattr(leaderboard.os, "replace", flaky)
    with pytest.raises(leaderboard.FactbenchError, match="cannot write"):
        leaderboard.build(folder)
    monkeypatch.setattr(leaderboard.os, "replace", real)
    assert _snapshot(folder) == before and not [p for p in folder.iterdir() if p.name.startswith(".")]


def test_a_dir_that_is_not_a_leaderboard_is_refused_unless_created(card, tmp_path, capsys):
    path = _write(tmp_path / "card.json", _copy(card))
    for argv in (["build", "--dir", str(tmp_path / "leaderbord")],
                 ["add", str(path), "--dir", str(tmp_path / "leaderbord")]):
        capsys.readouterr()
        assert main(["leaderboard", *argv]) == 2
        err = capsys.readouterr().err
        assert "is not a leaderboard (it has no cards/ folder)" in err and "--create" in err
        assert not (tmp_path / "leaderbord").exists()
    assert main(["leaderboard", "init", "--dir", str(tmp_path / "new")]) == 0
    assert main(["leaderboard", "build", "--dir", str(tmp_path / "new")]) == 0
    assert main(["leaderboard", "build", "--dir", str(tmp_path / "other"), "--create"]) == 0
    leaderboard.build(tmp_path / "library")  # library calls (factbench demo) create by default
    assert (tmp_path / "library" / "README.md").is_file()


def test_a_second_writer_is_refused(tmp_path):
    leaderboard.init(tmp_path / "lb")
    with leaderboard.folder_lock(tmp_path / "lb"), pytest.raises(BusyError, match="another factbench process"):
        leaderboard.build(tmp_path / "lb")


def test_the_published_cards_pass_the_new_validation():
    root = Path(__file__).resolve().parent.parent / "leaderboard"
    entries = leaderboard.load_entries(root)  # recomputes every figure and checks every checksum
    assert len(entries) == len(list((root / "cards").glob("*.json"))) >= 1
    assert all("checksum_added" in e.card["provenance"] or "command" in e.card["provenance"] for e in entries)
