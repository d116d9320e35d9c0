"""The leaderboard: published score cards, and the tables, plots and page built from them.

A leaderboard folder (the repository's `leaderboard/`, or any `--dir`) holds score cards and
audit cards in `cards/`; `factbench leaderboard add CARD` validates one and copies it there, and
`factbench leaderboard build` writes, from every card in `cards/`:

  README.md        Markdown tables, one section per base model, one table per question protocol;
                   audit cards (no split) in their own tables (factbench.leaderboard.audits)
  leaderboard.csv  one row per score card, every number with its 95% interval
  audits.csv       one row per audit card
  plots/*.png      retention against acquisition, one plot per table
  index.html       one self-contained page (no network): sortable tables, a base-model filter,
                   the same trade-off as inline SVG, and a click-a-row per-relation view

Cards scored under different question protocols never share a table: their numbers do not mean
the same thing (factbench.protocol). Every string from a card is untrusted and escaped
(factbench.leaderboard.render).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .. import scorecard
from ..errors import BusyError, CardError, FactbenchError
from ..files import WRITE_ERRNOS, make_dirs, write_error, write_json
from ..identities import model_key

MISSING = "—"
GENERIC_FOLDERS = {"model", "models", "final", "best", "output", "checkpoint"}


class LeaderboardError(FactbenchError):
    """A card that cannot join the leaderboard, or a leaderboard folder that cannot be built."""


# ---- one row per card ----------------------------------------------------------------------------

@dataclass
class CardEntry:
    """One card's row, of either kind: who the base and the fine-tune are."""

    file: str  # the card's file name in cards/
    card: dict

    @property
    def base(self) -> str:
        return model_name(self.card["base"])

    @property
    def base_revision(self) -> str:
        return model_revision(self.card["base"])

    @property
    def tuned(self) -> str:
        return model_name(self.card["tuned"])

    @property
    def tuned_revision(self) -> str:
        return model_revision(self.card["tuned"])

    @property
    def base_key(self) -> str:
        return identity(self.card["base"])


@dataclass
class Entry(CardEntry):
    """One fine-tune's score-card row: also what it was tuned with, and its headline numbers."""

    @property
    def recipe(self) -> str:
        return recipe(self.card)

    @property
    def summary(self) -> dict:
        return self.card["summary"]

    def base_point(self) -> tuple[dict, dict | None]:
        """The base model's own (retention, acquisition): where every fine-tune started from."""
        new = self.card["sets"]["new"]
        return self.summary["base_heldout_accuracy"], new["base_accuracy"] if new["status"] == "scored" else None

    def by_relation(self, set_name: str) -> dict:
        entry = self.card["sets"][set_name]
        return entry["flips"]["by_relation"] if entry["status"] == "scored" else {}


def model_name(side: dict) -> str:
    """The model's name as a reader knows it: a local folder by its own name, not its full path."""
    model = side.get("model") or {}
    name = model.get("name") or side.get("label") or MISSING
    if model.get("source") == "local":
        path = Path(name)
        # A folder named only "model" (a run's usual layout) says nothing: keep the run's name with it.
        name = f"{path.parent.name}/{path.name}" if path.name in GENERIC_FOLDERS and path.parent.name else (
            path.name or name)
    return str(name)


def model_revision(side: dict) -> str:
    """Hub revision (and commit) where known, else the weights' content hash: what pins the model."""
    model = side.get("model") or {}
    revision = model.get("revision")
    if revision and model.get("sha"):
        return f"{revision} ({str(model['sha'])[:12]})"
    if revision:
        return str(revision)
    if model.get("sha"):
        return str(model["sha"])[:12]
    if model.get("content_sha256"):
        return f"sha256:{str(model['content_sha256'])[:12]}"
    return MISSING


def identity(side: dict) -> str:
    """What makes two sides the same model (identities.model_key); with no model identity, its answers."""
    return model_key(side) or f"answers:{side['answers_sha256']}"


def recipe(card: dict) -> str:
    """The recipe a fine-tune was made with, when the card says: a `recipe` field, else a 'recipe: ...' note."""
    for where in (card["tuned"], card["tuned"].get("model") or {}):
        value = where.get("recipe")
        if isinstance(value, dict):
            value = value.get("label") or value.get("recipe") or value.get("name")
        if value:
            return str(value)
    for note in card["notes"]:
        if note.lower().startswith("recipe:"):
            return note.split(":", 1)[1].strip() or MISSING
    return MISSING


def rate(r: dict | None) -> str:
    """"66.7% [40.0, 86.7]", or "—" when the card has no such number."""
    if not r or r["value"] is None:
        return MISSING
    return f"{100 * r['value']:.1f}% [{100 * r['low']:.1f}, {100 * r['high']:.1f}]"


# ---- tables: one per (base model, question protocol) ---------------------------------------------

@dataclass
class Table:
    base: str  # the base model's name and revision, as shown
    base_key: str
    protocol_hash: str
    protocol: dict
    entries: list[Entry]
    slug: str = ""  # unique within the leaderboard: names its plot file and its place in the page


def tables(entries: list[Entry]) -> list[Table]:
    """Group rows by base model, then protocol; best retention first within a table."""
    groups: dict[tuple[str, str], list[Entry]] = {}
    for e in entries:
        groups.setdefault((e.base_key, e.card["protocol_hash"]), []).append(e)
    out = []
    for (base_key, protocol_hash), rows in groups.items():
        rows.sort(key=lambda e: (-(e.summary["retention"]["value"] or 0), e.tuned, e.file))
        first = rows[0]
        shown = first.base if first.base_revision == MISSING else f"{first.base} @ {first.base_revision}"
        out.append(Table(shown, base_key, protocol_hash, first.card["protocol"], rows))
    out.sort(key=lambda t: (t.base, t.base_key, -len(t.entries), t.protocol_hash))  # a base's biggest table first
    seen: set[str] = set()
    for t in out:  # two bases may share a shown name (two local folders called "model")
        slug = stem = f"{slugify(t.base)}-{t.protocol_hash[:8]}"
        while slug in seen:
            slug = f"{stem}-{len(seen)}"
        seen.add(slug)
        t.slug = slug
    return out


def slugify(text: str, limit: int = 40) -> str:
    """A file-name-safe piece of a (possibly hostile) model name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-.")[:limit].strip("-.") or "model"


# ---- the cards folder ----------------------------------------------------------------------------

def cards_dir(folder: Path) -> Path:
    return Path(folder) / "cards"


def content_hash(card: dict) -> str:
    return hashlib.sha256(json.dumps(card, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def read_card(path: Path) -> dict:
    """A score card or an audit card, validated by its own schema, its figures recomputed from its outcomes."""
    from ..auditing import card as audit_card

    head = scorecard.read_json(Path(path)) if Path(path).is_file() else None
    if isinstance(head, dict) and head.get("schema") == audit_card.SCHEMA_ID:
        return audit_card.load(path)
    return scorecard.load_card(path)


def require_checksum(card: dict, path: Path) -> None:
    """The leaderboard takes only cards with a checksum: an older card must be checked and rehashed first."""
    if "checksum" not in card:
        raise LeaderboardError(f"{path} has no checksum (made before factbench wrote them): run `factbench "
                               f"leaderboard rehash {path}`, which recomputes every figure from its outcomes and adds one")


@contextmanager
def folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on the leaderboard folder itself (no lock file left in a published folder): a second
    `add` or `build` of the same leaderboard is refused at once with a BusyError."""
    folder = make_dirs(folder)
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"{folder} is being written by another factbench process; wait for it to finish") \
                from None
        yield
    finally:
        os.close(fd)


def is_leaderboard(folder: Path) -> bool:
    return cards_dir(folder).is_dir()


def check_folder(folder: Path, create: bool) -> None:
    """Refuse a --dir that is not a leaderboard (a typo would silently start a new board) unless `create`."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LeaderboardError(f"--dir {folder} is a file, not a leaderboard folder")
    if not create and not is_leaderboard(folder):
        raise LeaderboardError(f"--dir {folder} is not a leaderboard (it has no cards/ folder): check the path, or "
                               f"pass --create to start a new leaderboard there")


def init(folder: Path) -> Path:
    """An empty leaderboard folder (its cards/ folder), ready for `add`."""
    check_folder(folder, create=True)
    make_dirs(cards_dir(folder))
    return Path(folder)


def load_entries(folder: Path) -> list:
    """Every card in FOLDER/cards, validated (Entry for score cards, AuditEntry for audits); a broken card,
    a card without checksum or a duplicate stops the build."""
    from .audits import AuditEntry, is_audit

    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise LeaderboardError(f"--dir {folder} is a file, not a leaderboard folder")
    entries = []
    for path in sorted(cards_dir(folder).glob("*.json")):
        try:
            card = read_card(path)
        except CardError as e:
            raise LeaderboardError(f"{e}; fix or remove it") from None
        require_checksum(card, path)
        entry = AuditEntry(path.name, card) if is_audit(card) else Entry(path.name, card)
        _refuse_duplicate(card, entries, folder)
        entries.append(entry)
    return entries


def _refuse_duplicate(card: dict, entries: list[Entry], folder: Path) -> None:
    digest = content_hash(card)
    key = (identity(card["base"]), identity(card["tuned"]), card["protocol_hash"], card["schema"])
    for e in entries:
        where = cards_dir(folder) / e.file
        if content_hash(e.card) == digest:
            raise LeaderboardError(f"{where} already holds this score card (same content)")
        if (identity(e.card["base"]), identity(e.card["tuned"]), e.card["protocol_hash"], e.card["schema"]) == key:
            raise LeaderboardError(
                f"{where} already holds {'a score' if 'scorecard' in key[3] else 'an audit'} card of the same base (base.model: {key[0]}), fine-tune "
                f"(tuned.model: {key[1]}) and question protocol (protocol_hash: {key[2]}); remove it to replace it")


def add(card_path: Path, folder: Path, *, create: bool = True) -> Path:
    """Validate a score or audit card (its figures recomputed from its outcomes, its checksum checked) and
    copy it into FOLDER/cards; refuse invalid cards, cards without checksum and duplicates. `create=False`
    (the CLI's default) refuses a FOLDER that is not a leaderboard yet."""
    from .audits import is_audit

    folder = Path(folder)
    check_folder(folder, create)
    card = read_card(card_path)  # names the first invalid field
    require_checksum(card, Path(card_path))
    with folder_lock(folder):
        entries = load_entries(folder)
        _refuse_duplicate(card, entries, folder)
        base, tuned = model_name(card["base"]), model_name(card["tuned"])
        kind = "audit--" if is_audit(card) else ""
        target = cards_dir(folder) / f"{kind}{slugify(base, 30)}--{slugify(tuned)}-{content_hash(card)[:10]}.json"
        write_json(target, card)
    return target


def rehash(paths: list[Path]) -> list[Path]:
    """Give older cards (made before checksums) theirs, after recomputing every figure from their outcomes;
    a card whose figures disagree is refused and left as it was. Cards that have one are left alone."""
    done = []
    for path in paths:
        before = scorecard.read_json(Path(path)) if Path(path).is_file() else None
        scorecard.rehash(path, argv=["factbench", "leaderboard", "rehash", str(path)])
        if isinstance(before, dict) and "checksum" not in before:
            done.append(Path(path))
    return done


# ---- build ---------------------------------------------------------------------------------------

def factbench_commit() -> str | None:
    """The commit of the factbench code building the leaderboard, when it runs from a git checkout."""
    try:
        done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=Path(__file__).parent,
                              capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip() or None


OUTPUTS = ("README.md", "leaderboard.csv", "audits.csv", "index.html", "plots")


def build(folder: Path, *, create: bool = True) -> list[Path]:
    """Render everything in memory, write it all beside the old outputs, then swap it in: the built output
    (README, CSVs, page, plots) appears whole or not at all. `create=False` (the CLI's default) refuses a
    FOLDER that is not a leaderboard."""
    from . import plots, render
    from .audits import AuditEntry, audit_tables

    folder = Path(folder)
    check_folder(folder, create)
    make_dirs(cards_dir(folder))
    with folder_lock(folder):
        entries = load_entries(folder)
        grouped = tables([e for e in entries if isinstance(e, Entry)])
        audits = audit_tables([e for e in entries if isinstance(e, AuditEntry)])
        commit = factbench_commit()
        pngs = {f"{t.slug}.png": plots.tradeoff_png(t) for t in grouped}
        outputs = {"README.md": render.markdown(grouped, commit, audits),
                   "leaderboard.csv": render.csv_text(grouped, commit),
                   "audits.csv": render.audits_csv(audits, commit),
                   "index.html": render.page(grouped, commit, audits)}
        _swap_in(folder, outputs, pngs)
    return [folder / name for name in outputs] + [folder / "plots" / name for name in pngs]


def _swap_in(folder: Path, texts: dict[str, str], pngs: dict[str, bytes]) -> None:
    """Write every output into a staging folder in FOLDER (a full disk fails here, and nothing has changed),
    then move each old output aside and each new one into place (renames: no new space); a failed rename
    puts every old output back."""
    try:
        stage = Path(tempfile.mkdtemp(prefix=".build-", dir=folder))
    except OSError as e:
        raise write_error(folder, e) from None
    new, old = stage / "new", stage / "old"
    try:
        try:
            old.mkdir()
            (new / "plots").mkdir(parents=True)
            for name, text in texts.items():
                (new / name).write_text(text, encoding="utf-8")
            for name, png in pngs.items():
                (new / "plots" / name).write_bytes(png)
        except OSError as e:
            if e.errno not in WRITE_ERRNOS:
                raise
            raise write_error(folder, e) from None
        moved: list[str] = []
        try:
            for name in OUTPUTS:
                if (folder / name).exists() or (folder / name).is_symlink():
                    os.replace(folder / name, old / name)
                moved.append(name)
                os.replace(new / name, folder / name)
        except OSError as e:
            for name in reversed(moved):
                if (folder / name).exists() and not (new / name).exists():
                    os.replace(folder / name, new / name)
                if (old / name).exists():
                    os.replace(old / name, folder / name)
            raise write_error(folder, e) from None
    finally:
        shutil.rmtree(stage, ignore_errors=True)
