"""Audit cards on the leaderboard: their own tables beside score cards, a CSV of their own, a drill-down."""

import csv
import json

import pytest
from test_auditing import ACQUIRED, FORGOTTEN, PRESET, RECALLED, Named, _rule
from test_leaderboard import browser  # noqa: F401  (the headless Chromium fixture)

from factbench import card_schema, leaderboard
from factbench.auditing import answers, audit
from factbench.cli import main


def quiet(*a):
    pass


@pytest.fixture(scope="module")
def audit_board(tmp_path_factory, card):
    root = tmp_path_factory.mktemp("audit-board")
    base_right = {f.id for f in RECALLED}
    forgetful = (base_right - {f.id for f in FORGOTTEN}) | {f.id for f in ACQUIRED}
    answers.ask(Named("base-model", _rule(base_right)), PRESET, 2, root / "base", echo=quiet)
    answers.ask(Named("forgetful-tune", _rule(forgetful, {FORGOTTEN[0].id})), PRESET, 1, root / "forgetful", quiet)
    answers.ask(Named("faithful-tune", _rule(base_right)), PRESET, 1, root / "faithful", echo=quiet)
    folder = root / "leaderboard"
    for name in ("forgetful", "faithful"):
        path = root / f"{name}.json"
        path.write_text(json.dumps(dict(audit(str(root / "base"), str(root / name), preset=PRESET, echo=quiet))))
        assert main(["leaderboard", "add", str(path), "--dir", str(folder), "--create"]) == 0
    (root / "score.json").write_text(json.dumps(card))  # a score card of the scripted split, beside them
    assert main(["leaderboard", "add", str(root / "score.json"), "--dir", str(folder)]) == 0
    assert main(["leaderboard", "build", "--dir", str(folder)]) == 0
    return folder


def test_audits_get_their_own_tables_and_csv(audit_board):
    readme = (audit_board / "README.md").read_text()
    assert "## Audits: fine-tunes of unknown origin, no split" in readme
    assert "Built from 1 score card and 2 audit cards" in readme
    audit_part = readme.split("## Audits")[1]
    rows = [line for line in audit_part.splitlines() if line.startswith("| faithful") or line.startswith("| forgetful")]
    assert [r.split(" | ")[0] for r in rows] == ["| faithful-tune", "| forgetful-tune"]  # best retention first
    assert "unknown (training data not given)" in rows[0] and f"{len(RECALLED)} | 3 (1) |" in rows[1]
    with open(audit_board / "audits.csv") as f:
        got = {r["fine_tune"]: r for r in csv.DictReader(f)}
    assert float(got["forgetful-tune"]["retention"]) == pytest.approx((len(RECALLED) - 3) / len(RECALLED))
    assert got["faithful-tune"]["forgotten"] == "0" and got["forgetful-tune"]["training_data_known"] == "False"
    with open(audit_board / "leaderboard.csv") as f:
        assert len(list(csv.DictReader(f))) == 1  # score cards only


def test_an_audit_and_a_score_card_are_not_duplicates_but_two_audits_of_one_pair_are(audit_board, tmp_path, capsys):
    entries = leaderboard.load_entries(audit_board)
    assert len(entries) == 3
    again = next(e for e in entries if getattr(e, "audit_set", None) and e.tuned == "faithful-tune")
    path = tmp_path / "again.json"
    again.card["created"] = "another time"
    path.write_text(json.dumps(card_schema.with_checksum(again.card)))
    assert main(["leaderboard", "add", str(path), "--dir", str(audit_board)]) == 2
    assert "already holds an audit card of the same base" in capsys.readouterr().err


def test_an_edited_audit_card_is_refused(audit_board, tmp_path, capsys):
    entry = next(e for e in leaderboard.load_entries(audit_board) if getattr(e, "audit_set", None))
    broken = dict(entry.card)
    broken["outcomes"] = dict(broken["outcomes"], ids=broken["outcomes"]["ids"][:-1])
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(broken))
    assert main(["leaderboard", "add", str(path), "--dir", str(audit_board)]) == 2
    assert "one entry per audit question" in capsys.readouterr().err


def test_clicking_an_audit_row_shows_its_relations(browser, audit_board):  # noqa: F811
    from selenium.webdriver.common.by import By

    browser.get((audit_board / "index.html").as_uri())
    block = browser.find_element(By.CSS_SELECTOR, "section.audits .protocol")
    row = next(r for r in block.find_elements(By.CSS_SELECTOR, "tbody tr") if r.text.startswith("forgetful-tune"))
    row.click()
    detail = block.find_element(By.CSS_SELECTOR, ".detail")
    assert detail.is_displayed() and "forgetful-tune — audited against base-model" in detail.text
    assert len(detail.find_elements(By.CSS_SELECTOR, "tbody tr")) == 24  # every relation
