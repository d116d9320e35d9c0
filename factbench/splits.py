"""Deterministic fine-tuning and evaluation sets from a knowledge profile (METHOD.md §3).

From a profile and a seed:

- **relations**: the profile's in-distribution relations where at least `min_known_share` of the
  probed facts are known to the model (default 30%);
- **held-out known** (`heldout.jsonl`): known facts of those relations, never trained on, and
  disjoint from every training fact in question text *and* subject string;
- **training set** (`train.jsonl`): `known` known facts + `unknown` Unknown facts, spread evenly
  over the relations (as far as each relation has facts), in a seeded training order;
- **out-of-distribution known** (`ood.jsonl`): known facts of the profile's OOD relations.

"Known" is the profile's `known` label: HighlyKnown and not guessable (see knowledge.py). With
`include_guessable=True` every HighlyKnown fact counts, guessable or not. "Unknown" is the SliCK
Unknown category (never right, greedy or sampled).

`train_known` says where the Known *training* facts come from when every recalled fact should be
held out (the split's manifest records the choice; training rows keep their SliCK category):
`known` (default: recalled facts, after the held-out set); `maybe`: MaybeKnown facts that are not
guessable (right under some prompts, and not by a constant or subject-spelled guess); `guessable`:
HighlyKnown facts a guess could answer. Mind what the latter teach: for SmolLM2-135M on P17, 369 of
its 397 guessable HighlyKnown facts answer "United States of America" (the model's constant guess),
so training on them teaches one answer, and Known-only SFT on 300 of them cut 4-shot retention of
the held-out recalled facts to 38% in one epoch (README, "The frontier study").

Same profile, settings and seed give byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path

from . import data
from .errors import FactbenchError
from .files import atomic_path, output_lock, sha256_file
from .knowledge import Profile

SPLIT_SCHEMA = 1
SET_NAMES = ("train", "heldout", "ood")
TRAIN_KNOWN = ("known", "maybe", "guessable")


@dataclass(frozen=True)
class SplitSettings:
    known: int = 8000
    unknown: int = 8000
    heldout: int | None = 1000  # None: every known fact (one per subject), the largest held-out set
    ood: int = 500
    seed: int = 0
    min_known_share: float = 0.3
    relations: tuple[str, ...] | None = None  # default: the profile's in-distribution relations
    include_guessable: bool = False
    train_known: str = "known"  # or "maybe" / "guessable": Known training facts from other categories

    def __post_init__(self):
        if self.train_known not in TRAIN_KNOWN:
            raise FactbenchError(f"--train-known must be one of {', '.join(TRAIN_KNOWN)}, got {self.train_known!r}")
        if self.train_known != "known" and self.include_guessable:
            raise FactbenchError(f"--train-known {self.train_known} frees the recalled facts for the held-out set; it "
                                 "cannot be combined with --include-guessable (which counts guessable facts as known)")
        for name in ("known", "unknown", "heldout", "ood"):
            if name == "heldout" and self.heldout is None:
                continue
            if getattr(self, name) < 0:
                raise FactbenchError(f"--{name} must be 0 or more")
        if not 0 <= self.min_known_share <= 1:
            raise FactbenchError("--min-known-share must be between 0 and 1")
        if self.heldout is not None and not self.known + self.unknown + self.heldout + self.ood:
            raise FactbenchError("--known, --unknown, --heldout and --ood are all 0: such a split holds no "
                                 "question at all; ask for at least one set")


def is_known(row: dict, settings: SplitSettings) -> bool:
    return row["category"] == "HighlyKnown" if settings.include_guessable else row["known"]


def is_training_known(row: dict, settings: SplitSettings) -> bool:
    """A Known training fact under `train_known` = maybe / guessable (see the module doc)."""
    if settings.train_known == "maybe":
        return row["category"] == "MaybeKnown" and not row["guessable"]
    return row["category"] == "HighlyKnown" and not row["known"]


def _check_empty(out_dir: Path) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise FactbenchError(f"{out_dir} is a file, not a folder; choose another --out")
    if out_dir.is_dir() and any(p.name != ".lock" for p in out_dir.iterdir()):
        raise FactbenchError(f"{out_dir} already exists and is not empty; choose another --out")


def make_split(profile: Profile, settings: SplitSettings, out_dir: Path | str) -> dict:
    """Draw the split and write it into out_dir (which must be empty or absent), locked while it works.

    The folder appears whole or not at all; a refusal or failure leaves no folder it created.
    """
    out_dir = Path(out_dir)
    _check_empty(out_dir)
    created = not out_dir.exists()
    try:
        with output_lock(out_dir, "--out"):
            _check_empty(out_dir)  # another process may have written it since the first look
            return _make_split(profile, settings, out_dir)
    except BaseException:
        if created and out_dir.is_dir() and all(p.name == ".lock" for p in out_dir.iterdir()):
            (out_dir / ".lock").unlink(missing_ok=True)
            try:
                out_dir.rmdir()
            except OSError:
                pass
        raise


def _make_split(profile: Profile, settings: SplitSettings, out_dir: Path) -> dict:
    facts = profile.facts()
    rows = {r["id"]: r for r in profile.rows}
    profiled = sorted({r["relation"] for r in profile.rows}, key=lambda r: int(r[1:]))
    candidates = list(settings.relations) if settings.relations else [r for r in profiled if r in data.IN_DISTRIBUTION]
    data.check_relations(candidates)
    missing = [r for r in candidates if r not in profiled]
    if missing:
        raise FactbenchError(f"relation(s) {', '.join(missing)} are not in the profile (it has {', '.join(profiled)})")

    known_by_rel: dict[str, list[str]] = defaultdict(list)
    unknown_by_rel: dict[str, list[str]] = defaultdict(list)
    other_known_by_rel: dict[str, list[str]] = defaultdict(list)
    total_by_rel: dict[str, int] = defaultdict(int)
    for fid, row in rows.items():
        total_by_rel[row["relation"]] += 1
        if is_known(row, settings):
            known_by_rel[row["relation"]].append(fid)
        elif row["category"] == "Unknown":
            unknown_by_rel[row["relation"]].append(fid)
        if settings.train_known != "known" and is_training_known(row, settings):
            other_known_by_rel[row["relation"]].append(fid)
    share = {r: len(known_by_rel[r]) / total_by_rel[r] for r in candidates}
    kept = [r for r in candidates if share[r] >= settings.min_known_share]
    if not kept:
        best = max(candidates, key=share.get)
        raise FactbenchError(f"no relation has at least {settings.min_known_share:.0%} known facts "
                             f"(best: {best} with {share[best]:.1%}); lower --min-known-share")

    rng = random.Random(settings.seed)
    for lists in (known_by_rel, unknown_by_rel, other_known_by_rel):
        for r in lists:
            lists[r].sort()
            rng.shuffle(lists[r])

    heldout = _take_even(kept, known_by_rel, settings.heldout, "held-out known facts", set(), facts)
    taken_subjects = {facts[f].subject for f in heldout} | {facts[f].question for f in heldout}
    if settings.train_known != "known":
        what = {"maybe": "MaybeKnown (not guessable)", "guessable": "guessable HighlyKnown"}[settings.train_known]
        train_known = _take_even(kept, other_known_by_rel, settings.known, f"{what} training facts",
                                 taken_subjects, facts)
    else:
        train_known = _take_even(kept, known_by_rel, settings.known,
                                 "known training facts (after the held-out set)", taken_subjects, facts,
                                 exclude=set(heldout))
    train_unknown = _take_even(kept, unknown_by_rel, settings.unknown, "Unknown training facts", taken_subjects, facts)
    train_subjects = {facts[f].subject for f in train_known + train_unknown} | {
        facts[f].question for f in train_known + train_unknown}
    ood_relations = [r for r in profiled if r in data.OUT_OF_DISTRIBUTION and r not in kept]
    ood = _take_even(ood_relations, known_by_rel, settings.ood, "out-of-distribution known facts",
                     train_subjects, facts) if settings.ood else []

    train = [(f, "known") for f in train_known] + [(f, "unknown") for f in train_unknown]
    random.Random(f"{settings.seed}/order").shuffle(train)
    sets = {
        "train": [_row(facts[f], rows[f], kind) for f, kind in train],
        "heldout": [_row(facts[f], rows[f], "known") for f in sorted(heldout, key=_id_key)],
        "ood": [_row(facts[f], rows[f], "known") for f in sorted(ood, key=_id_key)],
    }
    manifest = {
        "schema": SPLIT_SCHEMA,
        "kind": "factbench split",
        "profile": {"path": str(profile.path), "protocol_hash": profile.protocol_hash,
                    "profile_sha256": profile.manifest["profile_sha256"], "model": profile.manifest["model"],
                    # the labels' provenance: budget, pool, guess settings, engine
                    "probe_protocol_hash": profile.manifest.get("probe_protocol_hash")},
        "protocol_hash": profile.protocol_hash,
        "settings": asdict(settings) | {"relations": settings.relations and list(settings.relations)},
        "relations": {r: {"known_share": round(share[r], 4), "kept": r in kept} for r in candidates},
        "ood_relations": ood_relations,
        "counts": {name: _count(rows_) for name, rows_ in sets.items()},
    }
    return write_split(out_dir, sets, manifest)


def write_split(out_dir: Path | str, rows_by_set: dict[str, list[dict]], manifest: dict, *,
                keep_identical: bool = False) -> dict:
    """Write a split folder: `<set>.jsonl` per set, then `manifest.json` = `manifest` + their checksums.

    The one writer of split folders (`make_split`, `factbench interference`'s synthetic splits), so
    that `load_split` reads them all alike. The folder appears in one step: an interrupted write
    never leaves a folder that looks complete. With `keep_identical`, a folder whose manifest
    already lists exactly these files' checksums is left as it is (and its manifest returned).
    """
    out_dir = Path(out_dir)
    # JSON Lines is UTF-8 whatever the locale; the checksums are of these very bytes.
    blobs = {f"{name}.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
             for name, rows in rows_by_set.items()}
    sums = {name: hashlib.sha256(blob).hexdigest() for name, blob in blobs.items()}
    if keep_identical:
        try:
            existing = json.loads((out_dir / "manifest.json").read_text())
            if existing["files"] == sums:
                return existing
        except (OSError, ValueError, KeyError, TypeError):
            pass
    manifest = manifest | {"files": sums}
    with atomic_path(out_dir) as tmp:
        tmp.mkdir()
        for name, blob in blobs.items():
            (tmp / name).write_bytes(blob)
        (tmp / "manifest.json").write_bytes((json.dumps(manifest, indent=2, ensure_ascii=False) + "\n").encode())
    return manifest


def _id_key(fid: str) -> tuple:
    relation, split, index = fid.split("/")
    return int(relation[1:]), split, int(index)


def _take_even(relations, pools, n, what, blocked, facts, exclude=frozenset()) -> list[str]:
    """n facts spread as evenly as possible over relations, skipping blocked subjects/questions.

    n = None takes every fact it can (one per subject).
    """
    available = {r: [f for f in pools[r] if f not in exclude and facts[f].subject not in blocked
                     and facts[f].question not in blocked] for r in relations}
    have = sum(map(len, available.values()))
    every = n is None
    n = have if every else n
    if n > have:
        raise FactbenchError(f"asked for {n} {what}, but only {have} exist in relations {', '.join(relations)}; "
                             "ask for fewer")
    chosen, cursor = [], {r: 0 for r in relations}
    subjects: set[str] = set()
    while len(chosen) < n:
        progressed = False
        for r in relations:
            while cursor[r] < len(available[r]):
                f = available[r][cursor[r]]
                cursor[r] += 1
                if facts[f].subject not in subjects:  # one fact per subject inside a set, too
                    chosen.append(f)
                    subjects.add(facts[f].subject)
                    progressed = True
                    break
            if len(chosen) == n:
                break
        if not progressed:
            if every:
                break
            raise FactbenchError(f"asked for {n} {what}, but only {len(chosen)} with distinct subjects exist; "
                                 "ask for fewer")
    return chosen


def _row(fact: data.Fact, profile_row: dict, kind: str) -> dict:
    return {"id": fact.id, "relation": fact.relation, "kind": kind, "category": profile_row["category"],
            "question": fact.question, "answer": fact.answers[0], "answers": list(fact.answers),
            "subject": fact.subject}


def _count(rows: list[dict]) -> dict:
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for r in rows:
        out[r["relation"]][r["kind"]] += 1
    return {r: dict(c) for r, c in sorted(out.items(), key=lambda kv: int(kv[0][1:]))}


@dataclass
class Split:
    path: Path
    manifest: dict
    sets: dict[str, list[dict]]


def manifest_sha256(split: Split) -> str:
    """The checksum of a split's manifest, which holds its files' checksums: one split, one value."""
    return hashlib.sha256((split.path / "manifest.json").read_bytes()).hexdigest()


def load_split(path: Path | str) -> Split:
    """Read and verify a split folder; every problem is one FactbenchError line that says what to do."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    redo = "rerun factbench split into a new --out"
    if not manifest_path.is_file():
        raise FactbenchError(f"{path} is not a split folder (no manifest.json)")
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (ValueError, OSError):
        raise FactbenchError(f"{manifest_path} is unreadable or not a factbench split manifest "
                             f"(not UTF-8 JSON); {redo}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != "factbench split":
        raise FactbenchError(f"{manifest_path} is not a factbench split manifest; {redo}")
    files = manifest.get("files")
    if not isinstance(files, dict) or any(not isinstance(files.get(f"{n}.jsonl"), str) for n in SET_NAMES):
        raise FactbenchError(f"{manifest_path} is damaged (no checksums of {', '.join(f'{n}.jsonl' for n in SET_NAMES)}"
                             f" under 'files'); {redo}")
    sets = {}
    for name in SET_NAMES:
        file = path / f"{name}.jsonl"
        try:
            matches = file.is_file() and sha256_file(file) == files[f"{name}.jsonl"]
        except OSError:
            matches = False
        if not matches:
            raise FactbenchError(f"{file} is missing or does not match its manifest checksum; {redo}")
        try:
            rows = [json.loads(line) for line in file.read_bytes().decode("utf-8").splitlines()]
            bad = next((i for i, r in enumerate(rows, 1) if not isinstance(r, dict) or not isinstance(r.get("id"), str)),
                       None)
            if bad is not None:
                raise ValueError(f"line {bad} is not a split row with an id")
        except ValueError as e:
            cause = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise FactbenchError(f"{file} is not valid split JSON Lines ({cause}); {redo}") from None
        sets[name] = rows
    return Split(path, manifest, sets)


def split_profile(profile: Path | str, out_dir: Path | str, **settings) -> dict:
    """`factbench split`: load a profile folder ('bundled': SmolLM2-135M's) and draw a split into out_dir.

    `settings` are `SplitSettings` fields; returns the split's manifest.
    """
    from .knowledge import bundled_profile_dir, load_profile

    settings["relations"] = tuple(settings["relations"]) if settings.get("relations") else None
    checked = SplitSettings(**settings)  # sizes and shares refused before any work
    _check_empty(Path(out_dir))
    loaded = load_profile(bundled_profile_dir() if profile == "bundled" else profile)
    return make_split(loaded, checked, out_dir)


def kept_relations(manifest: dict) -> list[str]:
    """The relations a split kept (enough known facts)."""
    return [r for r, v in manifest["relations"].items() if v["kept"]]


def set_sizes(manifest: dict) -> dict[str, int]:
    """Facts per set (train, heldout, ood) of a split manifest."""
    return {name: sum(sum(c.values()) for c in counts.values()) for name, counts in manifest["counts"].items()}
