"""Bad cards and bad leaderboard folders: forged or edited figures, broken checksums, unreadable files,
a --dir typo, a full disk. Every one must be refused in one line, changing nothing."""

from __future__ import annotations

import json
from pathlib import Path

from bad_inputs import Case  # noqa: F401 - scripts/ is on sys.path when the runner loads this

from factbench import card_schema, scorecard


def _current(d: Path) -> None:
    """The fixture may have been built before cards had checksums: give its cards theirs (the documented
    `factbench leaderboard rehash`, which recomputes every figure first)."""
    for path in [*(d / "cards").glob("*.json"), *(d / "leaderboard" / "cards").glob("*.json")]:
        scorecard.rehash(path)


def _tamper(edit, *, rehash: bool = True, name: str = "sft"):
    """A setup: the fixture's `name` card, edited by `edit`, its checksum recomputed (a forgery) or not."""
    def setup(d: Path) -> None:
        _current(d)
        path = d / "cards" / f"{name}.json"
        card = json.loads(path.read_text())
        edit(card)
        path.write_text(json.dumps(card_schema.with_checksum(card) if rehash else card))
    return setup


def _claim_99(card):
    card["summary"]["retention"] |= {"value": 0.99, "low": 0.98, "high": 1.0}


def _outside(card):
    r = card["summary"]["retention"]
    r["value"] = r["low"] / 2


def _flip_outcome(card):
    o = card["outcomes"]["heldout"]
    o["tuned"] = ("0" if o["tuned"][0] == "1" else "1") + o["tuned"][1:]


def _note(card):
    card["notes"].append("scored on a GPU")


def _seed(card):
    card["statistics"]["level"] = 0.5


def _old(card):
    card.pop("provenance", None)


def _bytes(data: bytes, name: str = "sft"):
    def setup(d: Path) -> None:
        (d / "cards" / f"{name}.json").write_bytes(data)
    return setup


def _truncate(d: Path) -> None:
    _current(d)
    path = d / "cards" / "sft.json"
    path.write_bytes(path.read_bytes()[:1000])


def _non_utf8(d: Path) -> None:
    _current(d)
    path = d / "cards" / "sft.json"
    path.write_bytes(b"\xff\xfe" + path.read_bytes()[2:])


def _nan(d: Path) -> None:
    _current(d)
    path = d / "cards" / "sft.json"
    card = json.loads(path.read_text())
    card["summary"]["peak_relative_forgetting"] = float("nan")
    path.write_text(json.dumps(card))


def _no_checksum(d: Path) -> None:
    path = d / "cards" / "sft.json"
    card = json.loads(path.read_text())
    for key in ("checksum", "provenance"):
        card.pop(key, None)
    path.write_text(json.dumps(card))


def _old_and_tampered(d: Path) -> None:
    _no_checksum(d)
    path = d / "cards" / "sft.json"
    card = json.loads(path.read_text())
    _claim_99(card)
    path.write_text(json.dumps(card))


def _tamper_published(d: Path) -> None:
    """A card already on the fixture's leaderboard, edited in place."""
    _current(d)
    path = sorted((d / "leaderboard" / "cards").glob("*.json"))[0]
    card = json.loads(path.read_text())
    _claim_99(card)
    path.write_text(json.dumps(card_schema.with_checksum(card)))


ADD = ["leaderboard", "add", "{d}/cards/sft.json", "--dir", "{d}/leaderboard"]

CASES = [
    Case("leaderboard add", "a forged card: 99% retention its outcomes do not give, checksum recomputed",
         ADD, _tamper(_claim_99)),
    Case("leaderboard add", "a retention value outside its own interval", ADD, _tamper(_outside)),
    Case("leaderboard add", "one per-question outcome flipped, checksum recomputed", ADD, _tamper(_flip_outcome)),
    Case("leaderboard add", "intervals made at another level than the card states", ADD, _tamper(_seed)),
    Case("leaderboard add", "a note added by hand (figures intact, checksum now wrong)", ADD,
         _tamper(_note, rehash=False)),
    Case("leaderboard add", "a card truncated to 1000 bytes", ADD, _truncate),
    Case("leaderboard add", "a card that is not UTF-8", ADD, _non_utf8),
    Case("leaderboard add", "a card that is a JSON list", ADD, _bytes(b"[1, 2, 3]\n")),
    Case("leaderboard add", "a card holding NaN", ADD, _nan),
    Case("leaderboard add", "a card made before checksums (run rehash first)", ADD, _no_checksum),
    Case("leaderboard rehash", "an old card whose summary was edited: not blessed", ["leaderboard", "rehash",
         "{d}/cards/sft.json"], _old_and_tampered),
    Case("leaderboard add", "--dir with a typo (not a leaderboard)", [*ADD[:3], "--dir", "{d}/leaderbord"], _current),
    Case("leaderboard build", "--dir with a typo (not a leaderboard)", ["leaderboard", "build", "--dir",
         "{d}/leaderbord"], _current),
    Case("leaderboard build", "--dir is a card file", ["leaderboard", "build", "--dir", "{d}/cards/sft.json"]),
    Case("leaderboard build", "a card on the board edited in place: the previous build stays",
         ["leaderboard", "build", "--dir", "{d}/leaderboard"], _tamper_published),
    Case("leaderboard build", "a new board on a full disk", ["leaderboard", "build", "--dir", "{full}/lb",
         "--create"]),
    Case("compare", "a forged card among the compared", ["compare", "{d}/cards/sft.json",
         "{d}/cards/known-only.json"], _tamper(_claim_99)),
]
