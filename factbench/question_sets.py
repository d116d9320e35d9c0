"""Which questions each factforget set holds: the one place both sources of answers read from.

The lm-eval tasks (`tasks/factforget/`, through `factbench.lmeval_hooks`) and `factbench eval --sets`
both take their questions from here, so a tuned model scored through either asks exactly the same
questions, in the same order, with the same 4-shot prompts.

| set           | lm-eval task                | questions                                                      |
|---------------|-----------------------------|----------------------------------------------------------------|
| `heldout`     | `factforget_heldout`        | held-out facts the base model knew (`heldout.jsonl`): retention |
| `new`         | `factforget_new`            | the Unknown facts of the training set: acquisition            |
| `known_train` | `factforget_known_train`    | the Known facts of the training set: task learning            |
| `ood`         | `factforget_ood`            | out-of-distribution known facts (`ood.jsonl`)                  |
| `pool`        | `factforget_pool`           | the first 50 test questions of each of the 24 relations        |

The first four come from a split (see `factbench.splits`); `pool` needs none, for plain
per-relation accuracy of any model. Which split (`find_split`):

- `split=DIR`: a split folder made by `factbench split`;
- `profile=DIR`: a split derived from that knowledge profile with `fitting_settings` (cached);
- neither, or `split="smollm2-135m"`: the bundled SmolLM2-135M profile's split, `DEFAULT_SPLIT_DIR` (the lm-eval
  tasks refuse "neither" since task version 2.0: they must not measure SmolLM2's split for other models).

A split made under another question protocol (prompts, decoding, matching) than this factbench's
is refused: its Known/Unknown labels would not describe the questions asked now.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from dataclasses import asdict
from pathlib import Path

from . import data, knowledge, splits
from .data import Fact
from .errors import BusyError, FactbenchError
from .files import cache_dir
from .protocol import made_under_other_protocol, protocol_hash, question_protocol

SETS = {
    "heldout": "held-out facts the base model knew (retention)",
    "new": "Unknown facts of the training set (acquisition)",
    "known_train": "Known facts of the training set (task learning)",
    "ood": "out-of-distribution facts the base model knew",
    "pool": "first 50 test questions of each relation (needs no profile)",
}
SPLIT_SETS = ("heldout", "new", "known_train", "ood")  # the sets that come from a split
TASK_PREFIX = "factforget_"
POOL_PER_RELATION = 50
POOL_SPLIT = "test"
DEFAULT_SPLIT_DIR = knowledge.bundled_profile_dir() / "split"
BUNDLED_SPLIT = "smollm2-135m"  # the name that picks DEFAULT_SPLIT_DIR where a split folder is asked for


class QuestionSetError(FactbenchError):
    """A question set cannot be built: bad split, profile or set name."""


def task_name(set_name: str) -> str:
    return TASK_PREFIX + check_set(set_name)


def check_set(name: str) -> str:
    if name not in SETS:
        raise QuestionSetError(f"unknown question set {name!r}; choose one of {', '.join(SETS)}")
    return name


# ---- which split ---------------------------------------------------------------------------------

def find_split(split: str | Path | None = None, profile: str | Path | None = None, *,
               split_flag: str = "split", profile_flag: str = "profile") -> splits.Split:
    """The split to draw the set questions from; every problem is one QuestionSetError line.

    The flags name where the paths came from (`--metadata "split"`, `--split-dir`) in errors.
    """
    if split and profile:
        raise QuestionSetError(f"give a split ({split_flag}) or a profile ({profile_flag}), not both")
    if profile:
        derived = split_for_profile(Path(profile), profile_flag)
        return _checked(splits.load_split(derived), f"the split derived from profile {profile}")
    if split and str(split) != BUNDLED_SPLIT:
        path, what = Path(split), f"split folder {split} (given as {split_flag})"
    else:
        path, what = DEFAULT_SPLIT_DIR, f"the bundled SmolLM2-135M split {DEFAULT_SPLIT_DIR}"
    if not path.exists():
        hint = "" if path != DEFAULT_SPLIT_DIR else f"; it is not installed yet: pass a split folder as {split_flag}"
        raise QuestionSetError(f"{what} does not exist{hint}")
    if not path.is_dir():
        raise QuestionSetError(f"{what} is a file, not a split folder")
    try:
        loaded = splits.load_split(path)
    except FactbenchError as e:
        raise QuestionSetError(f"{what}: {e}") from None
    return _checked(loaded, what)


def _checked(split: splits.Split, what: str) -> splits.Split:
    current = question_protocol()
    if split.manifest.get("protocol_hash") != protocol_hash(current):
        raise QuestionSetError(
            made_under_other_protocol(what, split.manifest.get("protocol_hash"), _made_under(split), current,
                                      ("split", "now"))
            + "; rebuild the profile and split with this factbench, or score with the factbench version that made them")
    return split


def _made_under(split: splits.Split) -> dict | None:
    """The split's protocol fields, when its profile is still where it was made."""
    try:
        return json.loads((Path(split.manifest["profile"]["path"]) / "manifest.json").read_text())["protocol"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def fitting_settings(profile: knowledge.Profile) -> splits.SplitSettings:
    """The default split settings with sizes capped to what the profile holds.

    Each size is the default (8000 known, 8000 Unknown, 1000 held-out, 500 OOD) or, when the
    profile has fewer such facts, a quarter of its known in-distribution facts (known and
    held-out each), half of its Unknown in-distribution facts, half of its known OOD facts. The
    slack leaves room for the subject-disjointness rules. Everything else is the default.
    """
    known = sum(r["known"] for r in profile.rows if r["relation"] in data.IN_DISTRIBUTION)
    unknown = sum(r["category"] == "Unknown" for r in profile.rows if r["relation"] in data.IN_DISTRIBUTION)
    ood = sum(r["known"] for r in profile.rows if r["relation"] in data.OUT_OF_DISTRIBUTION)
    d = splits.SplitSettings()
    return splits.SplitSettings(known=min(d.known, known // 4), unknown=min(d.unknown, unknown // 2),
                                heldout=min(d.heldout, known // 4), ood=min(d.ood, ood // 2))


def split_for_profile(profile_dir: Path, profile_flag: str = "profile") -> Path:
    """A split folder derived from a profile with `fitting_settings`, made once and cached."""
    what = f"profile {profile_dir} (given as {profile_flag})"
    if not profile_dir.is_dir():
        raise QuestionSetError(f"{what} does not exist")
    try:
        profile = knowledge.load_profile(profile_dir)
    except FactbenchError as e:
        raise QuestionSetError(f"{what}: {e}") from None
    if profile.protocol_hash != protocol_hash(question_protocol()):
        raise QuestionSetError(
            made_under_other_protocol(what, profile.protocol_hash, profile.manifest.get("protocol"),
                                      question_protocol(), ("profile", "now"))
            + "; probe the base model again with this factbench")
    hint = f"make one with `factbench split --profile {profile_dir} ...` and pass split=DIR instead"
    try:
        settings = fitting_settings(profile)
    except FactbenchError:
        raise QuestionSetError(f"cannot derive a split from {what}: it holds no known or Unknown facts to "
                               f"draw from; {hint}") from None
    key = json.dumps({"profile": profile.manifest["profile_sha256"], "settings": asdict(settings),
                      "split_schema": splits.SPLIT_SCHEMA}, sort_keys=True)
    out = cache_dir() / "splits" / hashlib.sha256(key.encode()).hexdigest()[:16]
    if out.exists():
        try:
            splits.load_split(out)
            return out
        except FactbenchError as e:
            # A cached derivation is ours to remake: a damaged or half-removed one is drawn again.
            print(f"factbench: cached split {out} damaged ({e}): drawing it again", file=sys.stderr)
            _remove(out)
    try:
        splits.make_split(profile, settings, out)
    except BusyError:
        raise
    except FactbenchError as e:
        raise QuestionSetError(f"cannot derive a split from {what}: {e}; {hint}") from None
    return out


def _remove(folder: Path) -> None:
    try:
        shutil.rmtree(folder) if folder.is_dir() else folder.unlink()
    except OSError as e:
        raise QuestionSetError(f"cannot remove the damaged cached split {folder} ({e.strerror or e}); "
                               "remove it by hand and rerun") from None


# ---- the questions -------------------------------------------------------------------------------

def pool_facts() -> list[Fact]:
    """The first POOL_PER_RELATION test questions of every relation, relation by relation."""
    out = []
    for relation in data.check_relations(None):
        out.extend(data.load(POOL_SPLIT, [relation])[:POOL_PER_RELATION])
    return out


def set_rows(name: str, split: splits.Split | None) -> list[dict]:
    """The split rows of one set, in file order (for `new` and `known_train`: the training order)."""
    check_set(name)
    if name == "pool":
        return [{"id": f.id, "category": None} for f in pool_facts()]
    if split is None:
        raise QuestionSetError(f"the {name} set needs a split")
    if name in ("heldout", "ood"):
        return split.sets[name]
    kind = {"new": "unknown", "known_train": "known"}[name]
    return [r for r in split.sets["train"] if r["kind"] == kind]


def facts(name: str, split: splits.Split | None) -> list[Fact]:
    """The facts of one set, as bundled EntityQuestions rows."""
    return data.get(r["id"] for r in set_rows(name, split))


def docs(name: str, split: splits.Split | None) -> list[dict]:
    """One document per question: what lm-eval logs per sample and `factbench eval --sets` writes."""
    rows = set_rows(name, split)
    return [doc(f, r.get("category")) for f, r in zip(data.get(r["id"] for r in rows), rows, strict=True)]


def doc(fact: Fact, category: str | None = None) -> dict:
    """`id` is the fact id: samples from lm-eval and from factbench are joined on it."""
    return {"id": fact.id, "relation": fact.relation, "subject": fact.subject, "question": fact.question,
            "answers": list(fact.answers), "category": category}


def fact_of(doc: dict) -> Fact:
    return data.get([doc["id"]])[0]
