"""`factbench leaderboard add / build`: cards in, tables, CSV, plots and an offline page out.

The cards are real score cards of scripted "models" on the scripted split (as in test_compare):
the base answers held-out facts h0..h11 right; each fine-tune keeps some and learns some of the
30 new facts. Two fine-tunes have hostile names, and the page is opened in a real headless
Chromium to check that they stay text, that sorting, filtering and the per-relation view work,
and that the page loads nothing from anywhere.
"""

import csv
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import SETS, ids, scripted_answers

from factbench import answer_sources, leaderboard, metrics, scorecard, splits
from factbench.cli import main
from factbench.leaderboard import render
from factbench.protocol import protocol_hash

SCRIPT_NAME = "<script>alert(1)</script>"
IMG_NAME = "\"><img src=x onerror=\"window.pwned=1;document.title='pwned'\">"
OTHER_BASE = "other_base|*v2*"
# held-out facts each fine-tune keeps (of h0..h14), and how many of the 30 new facts it learns
TUNES = {"sft": ([*range(11)], 20), "selfdistill": ([0, 1, 12], 10), "freeze": ([*range(10), 12], 25),
         SCRIPT_NAME: ([*range(6)], 5), IMG_NAME: ([*range(8)], 15)}
BOOT = metrics.Bootstrap(resamples=200)  # intervals are not under test here; keep it quick


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    from test_lmeval_tasks import make_scripted_split

    return splits.load_split(make_scripted_split(tmp_path_factory.mktemp("scripted"))[1])


def _right(split, heldout_idx, new_count):
    h, n = ids(split, "heldout"), ids(split, "new")
    everything_else = {i for s in SETS if s not in ("heldout", "new") for i in ids(split, s)}
    return {h[i] for i in heldout_idx} | set(n[:new_count]) | everything_else


@pytest.fixture(scope="module")
def cards(split, tmp_path_factory):
    """Card files by name: five fine-tunes of base-model, one of another base, one under another protocol."""
    root = tmp_path_factory.mktemp("cards")
    base = answer_sources.read_answers(scripted_answers(root / "base", split, _right(split, range(12), 0), "base-model"),
                                "base")
    paths = {}

    def write(name, card):
        paths[name] = root / f"card-{len(paths)}.json"
        scorecard.write_card(card, paths[name])

    for i, (name, (kept, learned)) in enumerate(TUNES.items()):
        folder = scripted_answers(root / f"tuned-{i}", split, _right(split, kept, learned), name)
        card = scorecard.score(base, answer_sources.read_answers(folder, "tuned"), split, boot=BOOT)
        if name == "sft":
            card["tuned"]["recipe"] = "sft"
        if name == "selfdistill":
            card["notes"].append("recipe: selfdistill")
        if name == SCRIPT_NAME:  # hostile text in every other place a card carries text
            card["notes"] += ["recipe: *bold* | `tick` [x](y)", "</script><script>window.pwned=1</script>\u2028!"]
        write(name, card)
    other = answer_sources.read_answers(scripted_answers(root / "other", split, _right(split, range(10), 0), OTHER_BASE),
                                 "base")
    write("other base", scorecard.score(other, answer_sources.read_answers(root / "tuned-0", "tuned"), split, boot=BOOT))
    card = json.loads(paths["sft"].read_text())  # the same fine-tune, under a 5-shot protocol
    card["protocol"]["shots"] = 5
    card["protocol_hash"] = protocol_hash(card["protocol"])
    write("5 shots", card)
    paths["base folder"] = root / "base"
    return paths


def _add_all(cards, folder):
    assert main(["leaderboard", "init", "--dir", str(folder)]) == 0
    for name, path in cards.items():
        if name != "base folder":
            assert main(["leaderboard", "add", str(path), "--dir", str(folder)]) == 0


@pytest.fixture(scope="module")
def board(cards, tmp_path_factory):
    folder = tmp_path_factory.mktemp("board") / "leaderboard"
    _add_all(cards, folder)
    assert main(["leaderboard", "build", "--dir", str(folder)]) == 0
    return folder


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---- add and build -------------------------------------------------------------------------------

def test_build_writes_tables_csv_plots_and_page(board, cards):
    assert len(list((board / "cards").glob("*.json"))) == 7
    for name in ("README.md", "leaderboard.csv", "index.html"):
        assert (board / name).stat().st_size > 0
    plots = sorted((board / "plots").glob("*.png"))
    assert len(plots) == 3  # base-model under two protocols, the other base under one
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)
    readme = (board / "README.md").read_text()
    assert all(f"](plots/{p.name})" in readme for p in plots)
    assert f"at commit {leaderboard.factbench_commit() or 'unknown'}" in readme
    assert not list(board.rglob(".*"))  # no temporary files left behind


def test_each_base_gets_a_section_and_protocols_never_share_a_table(board):
    tables = leaderboard.tables(leaderboard.load_entries(board))
    shown = [(t.base, t.protocol["shots"], sorted(e.tuned for e in t.entries)) for t in tables]
    assert shown == [("base-model", 4, sorted(["sft", "selfdistill", "freeze", SCRIPT_NAME, IMG_NAME])),
                     ("base-model", 5, ["sft"]), (OTHER_BASE, 4, ["sft"])]
    readme = (board / "README.md").read_text()
    assert readme.count("\n## ") == 2 and readme.count("\n### question protocol") == 3


def test_rows_carry_the_cards_numbers_identities_and_recipes(board, cards):
    rows = list(csv.DictReader((board / "leaderboard.csv").open()))
    assert len(rows) == 7
    for row in rows:
        card = json.loads((board / row["card"]).read_text())
        for rate in ("retention", "forgetting", "acquisition"):
            for part, key in (("", "value"), ("_low", "low"), ("_high", "high"), ("_n", "n")):
                assert float(row[rate + part]) == pytest.approx(card["summary"][rate][key])
        assert row["protocol_hash"] == card["protocol_hash"] and row["task_version"] == "1"
        assert row["factbench_version"] == card["factbench_version"]
        assert row["base_revision"] == row["fine_tune_revision"] == ""  # scripted models have none: "—" on the page
    recipes = {r["fine_tune"]: r["recipe"] for r in rows if r["base"] == "base-model"}
    assert recipes["sft"] == "sft" and recipes["selfdistill"] == "selfdistill" and recipes["freeze"] == ""
    best = next(r for r in rows if r["fine_tune"] == "sft" and r["base"] == "base-model")
    assert float(best["retention"]) == pytest.approx(11 / 15) and float(best["acquisition"]) == pytest.approx(20 / 30)
    table = (board / "README.md").read_text().split("### question protocol")[1]
    assert "| sft | — | sft | 73.3% \\[" in table and "| freeze | — | — | 73.3% \\[" in table


@pytest.mark.parametrize("case, message", [
    ("same content", "already holds this score card (same content)"),
    ("same identity", "already holds a score card of the same base (base.model: base-model@main), fine-tune "
                      "(tuned.model: sft@main) and question protocol (protocol_hash: "),
    ("invalid", "not a valid factbench.scorecard/1 score card: card.summary.retention: missing 'n'"),
    ("not json", "is not valid JSON"),
    ("dir is a file", "is a file, not a leaderboard folder"),
])
def test_add_refuses_duplicates_and_invalid_cards(case, message, board, cards, split, tmp_path, capsys):
    before = _snapshot(board)
    card, folder = cards["sft"], board
    if case == "same identity":  # the same fine-tune, scored again with another bootstrap seed
        root = cards["base folder"].parent
        rescored = scorecard.score(answer_sources.read_answers(root / "base", "base"),
                                   answer_sources.read_answers(root / "tuned-0", "tuned"), split,
                                   boot=metrics.Bootstrap(resamples=200, seed=7))
        card = tmp_path / "rescored.json"
        scorecard.write_card(rescored, card)
    elif case == "invalid":
        edited = json.loads(card.read_text())
        del edited["summary"]["retention"]["n"]
        card = tmp_path / "invalid.json"
        card.write_text(json.dumps(edited))
    elif case == "not json":
        card = tmp_path / "broken.json"
        card.write_text(cards["sft"].read_text()[:100])
    elif case == "dir is a file":
        folder = tmp_path / "file"
        folder.write_text("")
    capsys.readouterr()
    assert main(["leaderboard", "add", str(card), "--dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    assert _snapshot(board) == before


def test_a_broken_card_in_the_folder_stops_the_build_and_nothing_changes(board, tmp_path, capsys):
    folder = tmp_path / "leaderboard"
    shutil.copytree(board, folder)
    before = _snapshot(folder)
    victim = sorted((folder / "cards").glob("*.json"))[0]
    card = json.loads(victim.read_text())
    card["summary"]["retention"]["value"] = 1.5
    victim.write_text(json.dumps(card))
    capsys.readouterr()
    assert main(["leaderboard", "build", "--dir", str(folder)]) == 2
    err = capsys.readouterr().err
    assert f"{victim.name}: not a valid factbench.scorecard/1 score card: card.summary.retention.value: 1.5 is above 1" in err
    assert err.count("\n") == 1
    after = _snapshot(folder)
    del before[str(victim.relative_to(folder))], after[str(victim.relative_to(folder))]
    assert after == before


def test_an_empty_leaderboard_builds(tmp_path):
    assert main(["leaderboard", "build", "--dir", str(tmp_path / "lb"), "--create"]) == 0
    assert "No score cards yet." in (tmp_path / "lb" / "README.md").read_text()
    assert (tmp_path / "lb" / "leaderboard.csv").read_text().startswith("base,base_revision,fine_tune,")
    assert "No score cards yet" in (tmp_path / "lb" / "index.html").read_text()


# ---- escaping ------------------------------------------------------------------------------------

def test_markdown_escaping_keeps_card_text_inert():
    assert render.md("a|b `c` <d> *e* _f_ [g](h)\nnext") == r"a\|b \`c\` \<d\> \*e\* \_f\_ \[g\](h) next"
    assert render.md(SCRIPT_NAME) == r"\<script\>alert(1)\</script\>"


def test_card_text_is_escaped_in_the_readme_and_the_page(board):
    readme = (board / "README.md").read_text()
    assert "\\<script\\>alert(1)\\</script\\>" in readme
    unescaped = [line for line in readme.splitlines() if re.search(r"(?<!\\)[<>]", line)]
    assert unescaped == ["<!-- Generated by `factbench leaderboard build` from cards/*.json: edit the cards, not this file. -->"]
    assert "## other\\_base\\|\\*v2\\*" in readme
    for line in readme.splitlines():
        if line.startswith("| ") and "\\<" in line:  # a hostile row: its pipes are escaped, the columns intact
            assert line.replace("\\|", "").count("|") == len(render.COLUMNS) + 1
    page = (board / "index.html").read_text()
    assert page.count("<script") == 2 and "<img" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    data = page.split('<script type="application/json" id="cards-data">')[1].split("</script>")[0]
    assert "<" not in data and ">" not in data and "\u2028" not in data
    notes = [n for card in json.loads(data) for n in card["notes"]]
    assert "</script><script>window.pwned=1</script>\u2028!" in notes  # JSON.parse gives the exact text back


def test_script_json_round_trips_and_cannot_close_its_script():
    value = {"name": "</script><!--\u2028\u2029&"}
    text = render.script_json(value)
    assert json.loads(text) == value
    assert not any(c in text for c in "<>&\u2028\u2029")


# ---- the page, in a real headless Chromium --------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


def _missing(why: str):
    """Skipped on a laptop without Chromium; an error in CI, which installs it (.ci/run)."""
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _missing("selenium is not installed (pip install -e '.[dev]')")
    if not (os.access(CHROMIUM, os.X_OK) and os.access(CHROMEDRIVER, os.X_OK)):
        _missing("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not look for drivers online
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1600", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


@pytest.fixture
def page(browser, board):
    browser.get((board / "index.html").as_uri())
    return browser


def _rows(driver, block=0):
    from selenium.webdriver.common.by import By

    table = driver.find_elements(By.CSS_SELECTOR, ".protocol")[block]
    return [r.find_elements(By.TAG_NAME, "td") for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]


def _retentions(driver):
    return [float(cells[3].get_attribute("data-sort")) for cells in _rows(driver)]


def test_page_shows_every_row_and_sorts_by_a_clicked_header(page, tmp_path):
    from selenium.webdriver.common.by import By

    assert page.title == "factbench leaderboard"
    assert sum(len(_rows(page, i)) for i in range(3)) == 7
    assert [cells[0].text for cells in _rows(page)][:2] == ["freeze", "sft"]  # best retention first (a tie: by name)
    header = page.find_elements(By.CSS_SELECTOR, ".protocol")[0].find_elements(By.CSS_SELECTOR, "th button")[3]
    assert header.text == "retention [95%]"
    header.click()
    assert _retentions(page) == sorted(_retentions(page)) and _retentions(page)[0] < _retentions(page)[-1]
    assert _rows(page)[0][0].text == "selfdistill"
    header.click()
    assert _retentions(page) == sorted(_retentions(page), reverse=True)
    page.find_elements(By.CSS_SELECTOR, "th button")[0].click()  # fine-tune names, alphabetically
    names = [cells[0].text for cells in _rows(page)]
    assert names == sorted(names, key=str.lower)
    assert page.save_screenshot(str(tmp_path / "leaderboard.png"))


def test_filter_shows_one_base_model(page):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    sections = page.find_elements(By.CSS_SELECTOR, "section.base")
    assert [s.find_element(By.TAG_NAME, "h2").text for s in sections] == ["base-model", OTHER_BASE]
    Select(page.find_element(By.ID, "base-filter")).select_by_visible_text(OTHER_BASE)
    assert [s.is_displayed() for s in sections] == [False, True]
    Select(page.find_element(By.ID, "base-filter")).select_by_visible_text("all base models")
    assert all(s.is_displayed() for s in sections)


def test_clicking_a_row_shows_its_per_relation_flips(page, board):
    from selenium.webdriver.common.by import By

    row = next(r for r in _rows(page) if r[0].text == "sft")[0]
    row.click()
    detail = page.find_elements(By.CSS_SELECTOR, ".detail")[0]
    assert detail.is_displayed() and "sft — fine-tune of base-model" in detail.text
    shown = {tds[0].text: [int(tds[k].text) for k in range(2, 7)]
             for tds in (r.find_elements(By.TAG_NAME, "td") for r in detail.find_elements(By.CSS_SELECTOR, "tbody tr"))
             if len(tds) == 9}
    card = next(e.card for e in leaderboard.load_entries(board) if e.tuned == "sft" and e.card["protocol"]["shots"] == 4
                and e.base == "base-model")
    expected = {r: [f["questions"]] + [f[k]["count"] for k in metrics.FLIPS]
                for r, f in card["sets"]["heldout"]["flips"]["by_relation"].items()}
    assert shown == expected
    row.click()  # a second click closes it
    assert not detail.is_displayed()


def test_hostile_names_show_as_text_and_run_nothing(page):
    from selenium.webdriver.common.by import By

    # an alert would also have made every selenium call here fail (UnexpectedAlertPresentException)
    assert page.title == "factbench leaderboard"
    assert page.execute_script("return typeof window.pwned") == "undefined"
    assert page.find_elements(By.TAG_NAME, "img") == []
    names = [cells[0].text for cells in _rows(page)]
    assert SCRIPT_NAME in names and IMG_NAME in names
    next(r for r in _rows(page) if r[0].text == SCRIPT_NAME)[0].click()
    detail = page.find_elements(By.CSS_SELECTOR, ".detail")[0].text
    assert "note: </script><script>window.pwned=1</script>" in detail
    assert "recipe: *bold* | `tick` [x](y)" in detail
    assert page.execute_script("return typeof window.pwned") == "undefined" and page.title == "factbench leaderboard"
    # offline: the page fetched nothing at all (no CDN, no images, no fonts)
    assert page.execute_script("return performance.getEntriesByType('resource').length") == 0
