"""The score card: assembly from two sides' answers, its versioned JSON schema, validation, I/O.

A score card (`"schema": "factbench.scorecard/1"`) is one JSON file per fine-tuned checkpoint
scored against its base (built by `score`; `factbench.scoring.score_fine_tune` is the whole
`factbench score` command). Top-level fields:

| field                | what                                                                              |
|----------------------|-----------------------------------------------------------------------------------|
| `schema`, `kind`     | `factbench.scorecard/1`, `factbench score card`                                   |
| `created`            | UTC time the card was made                                                        |
| `factbench_version`, `task_version` | who scored it, and the factforget task version               |
| `protocol`, `protocol_hash` | the question protocol (prompts, decoding, matching) and its hash           |
| `split`              | split folder, its protocol hash, file checksums, profile checksum and model       |
| `base`, `tuned`      | where answers came from (`lm-eval` or `factbench`), model identity (name, revision,|
|                      | content hash where known; lm-eval's model and model_args), engine, decoding,      |
|                      | `answers_sha256` (hash of every completion), a readable `label`                   |
| `training_data`      | `trained_on_split` (true / false / null = unknown) and the evidence: only a recipe |
|                      | card naming this split's train.jsonl makes "new" and "known_train" training facts |
| `statistics`         | bootstrap resamples, seed, level; the resampled unit is the question              |
| `summary`            | retention, forgetting, base held-out accuracy, drop, retained share of base-right |
|                      | facts, acquisition, known-train accuracy, OOD retention, forgotten ÷ acquired,    |
|                      | peak-relative forgetting                                                          |
| `sets`               | per set (heldout, new, known_train, ood): status, size in the split, `ids_sha256` |
|                      | (sha256 of the sorted ids), accuracies, change, contains variant, flip tables     |
|                      | (all / by relation / by SliCK category)                                           |
| `guessable`          | the same metrics on guessable held-out / OOD facts, when the split has them       |
| `training_log`       | per-epoch held-out accuracy and peak-relative forgetting, when given              |
| `outcomes`           | per set: `ids` and '0'/'1' strings (base, tuned, both scores, guessable)           |
| `notes`              | everything a reader should know (partial runs, missing identities, ...)          |
| `provenance`         | factbench version, the command that made the card (paths relative), when; for a |
|                      | card given its checksum later, `checksum_added` says by which version and how    |
| `checksum`           | `sha256:` + SHA-256 of the canonical JSON of every other field (see below)        |

**Validation** (`validate`, on every load): the schema; every value inside its own interval; every
figure (sets, guessable sets, summary) recomputed from the card's `outcomes` with the card's own
bootstrap seed, resamples and level, by the code that made it (`recomputed`), the first disagreeing
field named with its stated and recomputed values; then the checksum. The checksum detects edits and
corruption after factbench wrote the card; it does not prove a card honest, since anyone can make a
card with the tool from answers of their choosing (`factbench.card_schema`). Cards made before
outcomes carried each question's SliCK `category` have their per-category flips checked for their
sums only. A card without a checksum still loads here; the leaderboard refuses it until
`factbench leaderboard rehash` has recomputed it and added one.

Every rate is `{"value", "low", "high", "n"}`: a mean over n questions and its bootstrap interval.

**What is measured** (`factbench.metrics`, per set):

| set           | base accuracy | tuned accuracy is called | also                                            |
|---------------|---------------|--------------------------|-------------------------------------------------|
| `heldout`     | yes           | retention                | forgetting = 1 - retention; drop = base - tuned |
| `new`         | yes           | acquisition              | forgotten ÷ acquired                            |
| `known_train` | yes           | task learning            |                                                 |
| `ood`         | yes           | OOD retention            |                                                 |

Retention is absolute (of the facts the profile says the base knew), as in the paper; because a
base re-evaluated under another engine or dtype need not score 100% on them, the card also gives
the base's own accuracy now, the drop base − tuned (paired interval), and the retained share of the
facts the base got right in this run.

**Guessable facts.** The headline is on recalled facts (the profile's `known`: HighlyKnown and not
guessable). Splits exclude guessable facts by default; a split made with `include_guessable` has
them in `heldout` / `ood`, and they are scored apart, in the card's `guessable` section.

The plain-text summary of a card is `factbench.scorecard_render.render`.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from . import __version__
from .card_schema import (
    SCHEMA,
    SCHEMA_ID,
    check_checksum,
    check_intervals,
    check_recomputed,
    provenance,
    safe_command,
    schema_errors,
    with_checksum,
)
from .errors import CardError, FactbenchError
from .files import write_json
from .identities import answers_sha256, ids_sha256, label, split_identity
from .metrics import DEFAULT_BOOTSTRAP, Bootstrap, Outcomes, complement, join, negated, set_metrics
from .protocol import TASK_VERSION, protocol_hash, question_protocol
from .recipe_cards import read_recipe_card, trained_on_split
from .training_log import read_training_log

if TYPE_CHECKING:
    from .answer_sources import Answers
    from .splits import Split

RETENTION_SETS = ("heldout", "ood")  # sets of facts the base knew; guessable ones are scored apart


def validate(card: dict, *, recompute: bool = True) -> None:
    """Schema, internal consistency, every value inside its interval, every figure recomputed from the card's
    own outcomes (`recompute`), and the checksum where the card has one; the first problem is one CardError
    line. A card without a checksum (made before they existed) passes here; the leaderboard refuses it."""
    errors = schema_errors(card, SCHEMA)
    if errors:
        raise CardError(f"not a valid {SCHEMA_ID} score card: {errors[0]}"
                        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    if protocol_hash(card["protocol"]) != card["protocol_hash"]:
        raise CardError("the card's protocol_hash does not match its protocol (edited or corrupted)")
    for name, o in card["outcomes"].items():
        n = len(o["ids"])
        if any(len(o[k]) != n for k in ("base", "tuned", "base_contains", "tuned_contains", "guessable")) \
                or len(o.get("category", o["ids"])) != n:
            raise CardError(f"the card's {name} outcomes do not have one entry per question (edited or corrupted)")
        entry = card["sets"].get(name)
        if not entry or entry["status"] != "scored" or entry["ids_sha256"] != ids_sha256(o["ids"]):
            raise CardError(f"the card's {name} outcomes do not match its {name} question set (edited or corrupted)")
    for name, entry in card["sets"].items():
        if entry["status"] == "scored" and name not in card["outcomes"]:
            raise CardError(f"the card's {name} set is scored but has no outcomes (edited or corrupted)")
    check_intervals(card)
    if recompute:
        check_recomputed(card, recomputed)
    check_checksum(card)


def recomputed(card: dict) -> dict:
    """The card's figures as `score` makes them from the card's own per-question outcomes, with its bootstrap
    settings: per scored set, the guessable sets and the summary. Cards made before outcomes carried each
    question's SliCK category get no `by_category` here (those are checked for their sums alone)."""
    st = card["statistics"]
    boot = Bootstrap(resamples=st["bootstrap_resamples"], seed=st["seed"], level=st["level"])
    sets, merged, guess_sets = {}, {}, {}
    for name, entry in card["sets"].items():
        merged[name] = dict(entry)
        if entry["status"] != "scored":
            continue
        o = _expand(card["outcomes"][name])
        recalled = o.subset(~o.guessable) if name in RETENTION_SETS else o
        sets[name] = {"answered": len(o.ids)} | set_metrics(recalled, boot)
        if name in RETENTION_SETS and o.guessable.any():
            guess_sets[name] = set_metrics(o.subset(o.guessable), boot)
        merged[name] |= sets[name]
    if merged.get("heldout", {}).get("status") != "scored":
        raise CardError("the card's heldout set is not scored: a score card's headline needs it (edited or corrupted)")
    summary = _summary(merged, card["training_log"])
    for name, m in [*sets.items(), *guess_sets.items()]:
        if "category" not in card["outcomes"][name]:
            _check_category_sums(card, name)
            del m["flips"]["by_category"]
    return {"summary": summary, "sets": sets,
            "guessable": {"questions": sum(m["questions"] for m in guess_sets.values()), "sets": guess_sets}}


def refigured(card: dict) -> dict:
    """The card (the same dict) with every figure remade from its outcomes and its checksum reset: for a tool
    or test that changes outcomes on purpose. It is also all a forger needs, which is why a valid checksum and
    figures that agree with the outcomes prove the card consistent, never that its answers were really given."""
    card.pop("checksum", None)
    expected = recomputed(card)
    for name, m in expected["sets"].items():
        card["sets"][name] |= m
    card["summary"] = expected["summary"]
    card["guessable"] |= expected["guessable"]
    return with_checksum(card)


def _check_category_sums(card: dict, name: str) -> None:
    """Without per-question categories, a set's by_category flips can only be checked to add up."""
    flips = card["sets"][name]["flips"]
    for cell in ("retained", "forgotten", "acquired", "never_known"):
        total = sum(g[cell]["count"] for g in flips["by_category"].values())
        if total != flips["all"][cell]["count"]:
            raise CardError(f"card.sets.{name}.flips.by_category: its {cell} counts add up to {total}, not the "
                            f"{flips['all'][cell]['count']} of the set (edited or corrupted)")


def _expand(o: dict) -> Outcomes:
    """A card's compact outcomes back into `Outcomes` (the inverse of `_compact`)."""
    def flags(key):
        return np.array([c == "1" for c in o[key]], dtype=bool)

    return Outcomes(list(o["ids"]), [i.split("/")[0] for i in o["ids"]], list(o.get("category") or [None] * len(o["ids"])),
                    flags("base"), flags("tuned"), flags("base_contains"), flags("tuned_contains"), flags("guessable"))


def load_card(path: Path | str) -> dict:
    """A score card from a file, validated (see `validate`); anything wrong with it is one CardError naming it."""
    return load_checked(path, "score card", SCHEMA_ID, validate)


def load_checked(path: Path | str, what: str, schema_id: str, validate) -> dict:
    """A card of one kind (`schema_id`) from a file, checked by `validate`; every problem one CardError naming it."""
    path = Path(path)
    if not path.is_file():
        raise CardError(f"{what} {path} does not exist")
    card = read_json(path, what)
    if not isinstance(card, dict) or card.get("schema") != schema_id:
        got = card.get("schema") if isinstance(card, dict) else type(card).__name__
        raise CardError(f"{path} is not a {schema_id} {what} (schema: {got!r})")
    try:
        validate(card)
    except CardError as e:
        raise CardError(f"{path}: {e}") from None
    return card


def read_json(path: Path, what: str = "card"):
    """A card file's JSON; unreadable, non-UTF-8, truncated or NaN-holding files are one CardError naming it."""
    def no_constants(name):
        raise ValueError(f"{name} is not a number JSON allows")

    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"), parse_constant=no_constants)
    except UnicodeDecodeError:
        raise CardError(f"{what} {path} is not UTF-8 text (corrupted, or not a card)") from None
    except ValueError as e:
        raise CardError(f"{what} {path} is not valid JSON (truncated or corrupted?): {str(e)[:80]}") from None
    except OSError as e:
        raise CardError(f"{what} {path} cannot be read: {e.strerror or e}") from None
    except RecursionError:
        raise CardError(f"{what} {path} is nested too deeply to be a card") from None


def write_card(card: dict, path: Path | str) -> None:
    """Validate, (re)set the checksum to the card's content, write atomically."""
    card.pop("checksum", None)
    validate(card)
    write_json(path, with_checksum(card))


def rehash(path: Path | str, *, argv: list[str] | None = None) -> dict:
    """Give a card made before checksums its checksum, in place, after recomputing every figure from its
    outcomes (refused when they disagree). Nothing is asked again; the card's provenance says so."""
    from .auditing import card as audit_card

    path = Path(path)
    head = read_json(path)
    is_audit = isinstance(head, dict) and head.get("schema") == audit_card.SCHEMA_ID
    card = audit_card.load(path) if is_audit else load_card(path)
    if "checksum" in card:
        return card
    record = card.get("provenance") or {"factbench_version": card["factbench_version"],
                                        "command": ["(not recorded: the card was made before factbench recorded it)"],
                                        "created": card["created"]}
    partial = [n for n, o in card["outcomes"].items() if "category" not in o] if not is_audit else []
    acquisition = card.get("acquisition") if is_audit else None
    record["checksum_added"] = {
        "by": f"factbench {__version__}", "command": safe_command(argv),
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "note": "checksum added later, after recomputing every figure from the card's own per-question outcomes "
                "(with its own bootstrap seed and resamples); no model was asked again and no figure was changed"
                + ("; the per-category flips could only be checked to add up (these outcomes predate per-question "
                   "categories)" if partial else "")
                + ("; the acquisition could only be checked against its flip counts (the card predates storing the "
                   "training questions' outcomes)" if acquisition and "outcomes" not in acquisition else "")}
    card["provenance"] = record
    with_checksum(card)
    (audit_card.validate if is_audit else validate)(card)
    write_json(path, card)
    return card


# ---- assembly ------------------------------------------------------------------------------------

def score(base: Answers, tuned: Answers, split: Split, *, training_log: Path | str | None = None,
          boot: Bootstrap = DEFAULT_BOOTSTRAP) -> dict:
    """The score card of tuned against base on split (answers checked by `consistency.check_answers`)."""
    # Imported here: they bring the split and profile machinery, which readers of cards do not need.
    from . import question_sets
    from .consistency import check_answers

    status = check_answers(base, tuned, split)
    log = read_training_log(training_log) if training_log else None
    guessable, guessable_note = guessable_ids(split)
    notes = [*base.notes, *tuned.notes]
    sets, outcomes, guess_sets = {}, {}, {}
    for name in question_sets.SPLIT_SETS:
        in_split = len(question_sets.set_rows(name, split))
        entry = {"status": status[name], "in_split": in_split}
        if status[name] == "scored":
            o = join(name, base, tuned, split, guessable)
            outcomes[name] = _compact(o)
            recalled = o.subset(~o.guessable) if name in RETENTION_SETS else o
            entry |= {"ids_sha256": ids_sha256(o.ids), "answered": len(o.ids)}
            entry |= set_metrics(recalled, boot)
            if name in RETENTION_SETS and o.guessable.any():
                guess_sets[name] = set_metrics(o.subset(o.guessable), boot)
            if len(o.ids) < in_split:
                notes.append(f"{name}: {len(o.ids)} of the split's {in_split} questions were answered (limited run)")
        elif status[name].startswith("only"):
            notes.append(f"{name}: {status[name]}; not scored")
        sets[name] = entry
    _note_base_model(base, split, notes)
    recipe = _recipe_of(tuned)
    card = {
        "schema": SCHEMA_ID,
        "kind": "factbench score card",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "factbench_version": __version__,
        "task_version": TASK_VERSION,
        "protocol": question_protocol(),
        "protocol_hash": protocol_hash(question_protocol()),
        "split": split_identity(split),
        "base": _side(base),
        "tuned": _side(tuned) | ({"recipe": {k: v for k, v in recipe.items() if k != "split_files"}} if recipe else {}),
        "training_data": trained_on_split(recipe, split.manifest.get("files")),
        "statistics": {"bootstrap_resamples": boot.resamples, "seed": boot.seed, "level": boot.level,
                       "unit": "question"},
        "summary": _summary(sets, log),
        "sets": sets,
        "guessable": {"note": guessable_note, "questions": sum(m["questions"] for m in guess_sets.values()),
                      "sets": guess_sets},
        "training_log": log,
        "outcomes": outcomes,
        "notes": notes,
        "provenance": provenance(),
    }
    if log and card["summary"]["retention"]["value"] is not None:
        r = card["summary"]["retention"]
        if not r["low"] <= log["final"]["heldout_accuracy"] <= r["high"]:
            notes.append(f"the training log's last held-out accuracy ({log['final']['heldout_accuracy']:.3f}) is "
                         f"outside this card's retention interval [{r['low']:.3f}, {r['high']:.3f}]: was it measured "
                         "on other questions or with another engine?")
    validate(card)
    return card


def guessable_ids(split: Split) -> tuple[set[str] | None, str]:
    """Which split facts are guessable (from the split's profile), and a note saying how we know."""
    settings = split.manifest.get("settings") or {}
    if not settings.get("include_guessable"):
        return set(), "none: the split excludes guessable facts (made without include_guessable)"
    from . import knowledge

    where = (split.manifest.get("profile") or {}).get("path")
    try:
        profile = knowledge.load_profile(where)
    except (FactbenchError, TypeError):
        return None, (f"unknown: the split includes guessable facts but its profile ({where}) cannot be read; "
                      "guessable and recalled facts are scored together")
    if profile.manifest.get("profile_sha256") != split.manifest["profile"].get("profile_sha256"):
        return None, (f"unknown: the profile at {where} is not the one the split was made from; "
                      "guessable and recalled facts are scored together")
    return {r["id"] for r in profile.rows if r["guessable"]}, "scored apart from recalled facts (split includes them)"


def _compact(o: Outcomes) -> dict:
    """Per-question outcomes as '0'/'1' strings aligned with ids: what `compare` pairs on."""
    def bits(x):
        return "".join("1" if v else "0" for v in x)

    return {"ids": o.ids, "base": bits(o.base), "tuned": bits(o.tuned), "base_contains": bits(o.base_contains),
            "tuned_contains": bits(o.tuned_contains), "guessable": bits(o.guessable), "category": list(o.category)}


def _summary(sets: dict, log: dict | None) -> dict:
    def metric(name, key):
        return sets[name][key] if sets[name]["status"] == "scored" else None

    held = sets["heldout"]
    forgotten = held["flips"]["all"]["forgotten"]["count"]
    ratio = None
    if sets["new"]["status"] == "scored":
        acquired = sets["new"]["flips"]["all"]["acquired"]["count"]
        ratio = {"forgotten": forgotten, "heldout_questions": held["questions"], "acquired": acquired,
                 "new_questions": sets["new"]["questions"], "ratio": forgotten / acquired if acquired else None}
    return {
        "retention": held["tuned_accuracy"],
        "forgetting": complement(held["tuned_accuracy"]),
        "base_heldout_accuracy": held["base_accuracy"],
        "heldout_drop": negated(held["change"]),  # base - tuned
        "retained_of_base_right": held["retained_of_base_right"],
        "acquisition": metric("new", "tuned_accuracy"),
        "known_train_accuracy": metric("known_train", "tuned_accuracy"),
        "ood_retention": metric("ood", "tuned_accuracy"),
        "forgotten_per_acquired": ratio,
        "peak_relative_forgetting": log["peak_relative_forgetting"] if log else None,
    }


def _recipe_of(a: Answers) -> dict | None:
    """How a local fine-tune was made, from the recipe card `factbench train` leaves beside it."""
    model = a.identity.get("model")
    if not isinstance(model, dict) or model.get("source") != "local":
        return None
    return read_recipe_card(model.get("name") or "")


def _side(a: Answers) -> dict:
    return a.identity | {"decoding": a.decoding, "answers_sha256": answers_sha256(a.sets), "label": label(a.identity)}


def _note_base_model(base: Answers, split: Split, notes: list[str]) -> None:
    """Known labels describe the profiled model: say so when the base is visibly another one."""
    profiled = ((split.manifest.get("profile") or {}).get("model") or {}).get("content_sha256")
    base_hash = ((base.identity.get("model") or {}).get("content_sha256"))
    if profiled and base_hash and profiled != base_hash:
        notes.append("the base model's weights differ from those of the model the split's profile was made for: "
                     "the split's 'known' labels describe that model, not this base")


# ---- values as text -------------------------------------------------------------------------------

def pct(rate: dict | None) -> str:
    """"85.0% [82.7, 87.2]" (the interval in percent); "–" when there is nothing to report."""
    if not rate or rate["value"] is None:
        return "–"
    return f"{100 * rate['value']:.1f}% [{100 * rate['low']:.1f}, {100 * rate['high']:.1f}]"


def points(diff: dict | None) -> str:
    if not diff or diff["value"] is None:
        return "–"
    value, low, high = (round(100 * diff[k], 1) + 0.0 for k in ("value", "low", "high"))  # + 0.0: no "-0.0"
    return f"{value:+.1f} [{low:+.1f}, {high:+.1f}]"
