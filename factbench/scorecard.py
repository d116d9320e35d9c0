"""The score card: its versioned JSON schema, validation, reading and writing, and the terminal summary.

A score card (`"schema": "factbench.scorecard/1"`) is one JSON file per fine-tuned checkpoint
scored against its base (built by `factbench.scoring.score`). Top-level fields:

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

Every rate is `{"value", "low", "high", "n"}`: a mean over n questions and its bootstrap interval.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from . import data
from .errors import FactbenchError
from .evaluation import ids_sha256
from .files import write_json
from .protocol import protocol_hash

SCHEMA_ID = "factbench.scorecard/1"
SET_TITLES = {"heldout": "held-out known facts (retention)", "new": "new facts trained on (acquisition)",
              "known_train": "known facts trained on (task learning)", "ood": "out-of-distribution known facts"}
SET_STATUSES = ["scored", "not in split", "not answered", "only base answered", "only tuned answered"]


class CardError(FactbenchError):
    """A score card that is unreadable, invalid or inconsistent."""


# ---- the schema ----------------------------------------------------------------------------------

def _nullable(kind: str, **limits) -> dict:
    return {"type": [kind, "null"], **limits}


_RATE = {"type": "object", "required": ["value", "low", "high", "n"], "additionalProperties": False,
         "properties": {k: _nullable("number", minimum=0, maximum=1) for k in ("value", "low", "high")}
         | {"n": {"type": "integer", "minimum": 0}}}
_DIFF = {"type": "object", "required": ["value", "low", "high", "n"], "additionalProperties": False,
         "properties": {k: _nullable("number", minimum=-1, maximum=1) for k in ("value", "low", "high")}
         | {"n": {"type": "integer", "minimum": 0}}}
_CELL = {"type": "object", "required": ["count", "share"], "additionalProperties": False,
         "properties": {"count": {"type": "integer", "minimum": 0}, "share": {"$ref": "#/$defs/rate"}}}
_FLIPS = {"type": "object", "required": ["questions", "retained", "forgotten", "acquired", "never_known"],
          "additionalProperties": False,
          "properties": {"questions": {"type": "integer", "minimum": 0}}
          | {k: {"$ref": "#/$defs/cell"} for k in ("retained", "forgotten", "acquired", "never_known")}}
_METRICS = {
    "questions": {"type": "integer", "minimum": 0},
    "base_accuracy": {"$ref": "#/$defs/rate"},
    "tuned_accuracy": {"$ref": "#/$defs/rate"},
    "change": {"$ref": "#/$defs/diff"},
    "retained_of_base_right": {"$ref": "#/$defs/rate"},
    "contains": {"type": "object", "required": ["base_accuracy", "tuned_accuracy"],
                 "properties": {"base_accuracy": {"$ref": "#/$defs/rate"},
                                "tuned_accuracy": {"$ref": "#/$defs/rate"}}},
    "flips": {"type": "object", "required": ["all", "by_relation", "by_category"],
              "properties": {"all": {"$ref": "#/$defs/flips"},
                             "by_relation": {"type": "object", "additionalProperties": {"$ref": "#/$defs/flips"}},
                             "by_category": {"type": "object", "additionalProperties": {"$ref": "#/$defs/flips"}}}},
}
_SHA256 = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
_BITS = {"type": "string", "pattern": "^[01]*$"}
_SIDE = {"type": "object", "required": ["source", "answers", "model", "engine", "decoding", "answers_sha256", "label"],
         "properties": {"source": {"enum": ["factbench", "lm-eval"]}, "answers": _nullable("string"),
                        "model": _nullable("object"), "engine": _nullable("object"), "decoding": _nullable("object"),
                        "answers_sha256": _SHA256, "label": {"type": "string"}}}
_SET = {"anyOf": [
    {"type": "object", "required": ["status", "in_split", "ids_sha256", "answered", *_METRICS],
     "properties": {"status": {"const": "scored"}, "in_split": {"type": "integer", "minimum": 1},
                    "ids_sha256": _SHA256, "answered": {"type": "integer", "minimum": 1}} | _METRICS},
    {"type": "object", "required": ["status", "in_split"], "additionalProperties": False,
     "properties": {"status": {"enum": SET_STATUSES[1:]}, "in_split": {"type": "integer", "minimum": 0}}},
]}
SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$id": SCHEMA_ID,
    "title": "factbench score card",
    "type": "object",
    "additionalProperties": False,
    "required": ["schema", "kind", "created", "factbench_version", "task_version", "protocol", "protocol_hash",
                 "split", "base", "tuned", "statistics", "summary", "sets", "guessable", "training_log", "outcomes",
                 "notes"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "kind": {"const": "factbench score card"},
        "created": {"type": "string"},
        "factbench_version": {"type": "string"},
        "task_version": {"type": "integer"},
        "protocol": {"type": "object"},
        "protocol_hash": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "split": {"type": "object", "required": ["path", "protocol_hash", "files", "include_guessable"]},
        "base": _SIDE,
        "tuned": _SIDE,
        "statistics": {"type": "object", "required": ["bootstrap_resamples", "seed", "level", "unit"],
                       "properties": {"bootstrap_resamples": {"type": "integer", "minimum": 100},
                                      "seed": {"type": "integer"},
                                      "level": {"type": "number", "minimum": 0, "maximum": 1}}},
        "summary": {"type": "object", "additionalProperties": False,
                    "required": ["retention", "forgetting", "base_heldout_accuracy", "heldout_drop",
                                 "retained_of_base_right", "acquisition", "known_train_accuracy", "ood_retention",
                                 "forgotten_per_acquired", "peak_relative_forgetting"],
                    "properties": {
                        "retention": {"$ref": "#/$defs/rate"},
                        "forgetting": {"$ref": "#/$defs/rate"},
                        "base_heldout_accuracy": {"$ref": "#/$defs/rate"},
                        "heldout_drop": {"$ref": "#/$defs/diff"},
                        "retained_of_base_right": {"$ref": "#/$defs/rate"},
                        "acquisition": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/rate"}]},
                        "known_train_accuracy": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/rate"}]},
                        "ood_retention": {"anyOf": [{"type": "null"}, {"$ref": "#/$defs/rate"}]},
                        "forgotten_per_acquired": {"anyOf": [{"type": "null"}, {
                            "type": "object",
                            "required": ["forgotten", "heldout_questions", "acquired", "new_questions", "ratio"],
                            "properties": {"ratio": _nullable("number", minimum=0)}}]},
                        "peak_relative_forgetting": _nullable("number")}},
        "sets": {"type": "object", "required": ["heldout", "new", "known_train", "ood"], "additionalProperties": False,
                 "properties": {k: {"$ref": "#/$defs/set"} for k in ("heldout", "new", "known_train", "ood")}},
        "guessable": {"type": "object", "required": ["note", "questions", "sets"],
                      "properties": {"note": {"type": "string"}, "questions": {"type": "integer", "minimum": 0},
                                     "sets": {"type": "object", "additionalProperties": {
                                         "type": "object", "required": list(_METRICS), "properties": _METRICS}}}},
        "training_log": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["path", "sha256", "epochs", "peak", "final", "peak_relative_forgetting"],
            "properties": {"epochs": {"type": "array", "items": {
                "type": "object", "required": ["epoch", "heldout_accuracy"],
                "properties": {"epoch": {"type": "number"},
                               "heldout_accuracy": {"type": "number", "minimum": 0, "maximum": 1}}}}}}]},
        "outcomes": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["ids", "base", "tuned", "base_contains", "tuned_contains", "guessable"],
            "additionalProperties": False,
            "properties": {"ids": {"type": "array", "items": {"type": "string", "pattern": r"^P\d+/\w+/\d+$"}},
                           "base": _BITS, "tuned": _BITS, "base_contains": _BITS, "tuned_contains": _BITS,
                           "guessable": _BITS}}},
        "notes": {"type": "array", "items": {"type": "string"}},
    },
    "$defs": {"rate": _RATE, "diff": _DIFF, "cell": _CELL, "flips": _FLIPS, "set": _SET},
}


# ---- a small JSON Schema validator ---------------------------------------------------------------
# Only the keywords SCHEMA uses (type, enum, const, properties, required, additionalProperties,
# items, minimum, maximum, pattern, anyOf, local $ref): no extra dependency. The test suite checks
# it agrees with the `jsonschema` package where that is installed.

_TYPES = {"object": dict, "array": list, "string": str, "boolean": bool, "null": type(None)}


def _is(value, kind: str) -> bool:
    if kind in ("number", "integer"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return False
        return kind == "number" or float(value).is_integer()
    return isinstance(value, _TYPES[kind])


def schema_errors(value, schema: dict, where: str = "card", root: dict | None = None) -> list[str]:
    """Every way `value` breaks `schema`, as "path: problem" strings (empty when valid)."""
    root = root or schema
    if "$ref" in schema:
        schema = root["$defs"][schema["$ref"].removeprefix("#/$defs/")]
    if "anyOf" in schema:
        tries = [schema_errors(value, s, where, root) for s in schema["anyOf"]]
        return [] if any(not t for t in tries) else min(tries, key=len)
    kinds = schema.get("type")
    if kinds is not None:
        kinds = [kinds] if isinstance(kinds, str) else kinds
        if not any(_is(value, k) for k in kinds):
            return [f"{where}: expected {' or '.join(kinds)}, got {type(value).__name__}"]
    if "const" in schema and value != schema["const"]:
        return [f"{where}: expected {schema['const']!r}, got {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} is not one of {schema['enum']}"]
    errors = []
    if _is(value, "number"):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{where}: {value} is below {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{where}: {value} is above {schema['maximum']}")
    if isinstance(value, str) and "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {value[:40]!r} does not match {schema['pattern']}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += schema_errors(item, schema["items"], f"{where}[{i}]", root)
    if isinstance(value, dict):
        errors += [f"{where}: missing {k!r}" for k in schema.get("required", []) if k not in value]
        props, extra = schema.get("properties", {}), schema.get("additionalProperties", True)
        for k, v in value.items():
            if k in props:
                errors += schema_errors(v, props[k], f"{where}.{k}", root)
            elif extra is False:
                errors.append(f"{where}: unexpected field {k!r}")
            elif isinstance(extra, dict):
                errors += schema_errors(v, extra, f"{where}.{k}", root)
    return errors


def validate(card: dict) -> None:
    """Schema and internal consistency; the first problem is one CardError line."""
    errors = schema_errors(card, SCHEMA)
    if errors:
        raise CardError(f"not a valid {SCHEMA_ID} score card: {errors[0]}"
                        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    if protocol_hash(card["protocol"]) != card["protocol_hash"]:
        raise CardError("the card's protocol_hash does not match its protocol (edited or corrupted)")
    for name, o in card["outcomes"].items():
        n = len(o["ids"])
        if any(len(o[k]) != n for k in ("base", "tuned", "base_contains", "tuned_contains", "guessable")):
            raise CardError(f"the card's {name} outcomes do not have one entry per question (edited or corrupted)")
        entry = card["sets"].get(name)
        if not entry or entry["status"] != "scored" or entry["ids_sha256"] != ids_sha256(o["ids"]):
            raise CardError(f"the card's {name} outcomes do not match its {name} question set (edited or corrupted)")


def load_card(path: Path | str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise CardError(f"score card {path} does not exist")
    try:
        card = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError):
        raise CardError(f"score card {path} is not valid JSON (truncated or corrupted?)") from None
    if not isinstance(card, dict) or card.get("schema") != SCHEMA_ID:
        got = card.get("schema") if isinstance(card, dict) else type(card).__name__
        raise CardError(f"{path} is not a {SCHEMA_ID} score card (schema: {got!r})")
    try:
        validate(card)
    except CardError as e:
        raise CardError(f"{path}: {e}") from None
    return card


def write_card(card: dict, path: Path | str) -> None:
    validate(card)
    write_json(path, card)


# ---- the terminal summary ------------------------------------------------------------------------

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


def _flip_row(title: str, f: dict) -> str:
    counts = "".join(f"{f[k]['count']:>{w}}" for k, w in zip(("retained", "forgotten", "acquired", "never_known"),
                                                              (10, 11, 10, 13)))
    return f"  {title:<34}{f['questions']:>6}{counts}   {pct(f['forgotten']['share'])}"


def render(card: dict) -> str:
    """The plain-text summary printed by `factbench score`."""
    s, sets = card["summary"], card["sets"]
    out = [f"score card: {card['tuned']['label']}",
           f"  against base {card['base']['label']}",
           f"  split {card['split']['path']}  (question protocol {card['protocol_hash']}, task v{card['task_version']}, "
           f"factbench {card['factbench_version']})",
           f"  95% intervals: seeded bootstrap over questions ({card['statistics']['bootstrap_resamples']} resamples)",
           "",
           f"  {'set':<40}{'questions':>9}   {'base':<24}{'tuned':<24}change (points)"]
    for name, title in SET_TITLES.items():
        e = sets[name]
        if e["status"] != "scored":
            out.append(f"  {title:<40}{'':>9}   {e['status']}")
            continue
        out.append(f"  {title:<40}{e['questions']:>9}   {pct(e['base_accuracy']):<24}{pct(e['tuned_accuracy']):<24}"
                   f"{points(e['change'])}")
    held = sets["heldout"]
    base_right = held["flips"]["all"]["retained"]["count"] + held["flips"]["all"]["forgotten"]["count"]
    out += ["",
            f"  retention {pct(s['retention'])}, forgetting {pct(s['forgetting'])} of {held['questions']} held-out "
            "facts the base knew (absolute)",
            f"  the base itself answers {pct(s['base_heldout_accuracy'])} of them now; drop base - tuned "
            f"{points(s['heldout_drop'])} points",
            f"  of the {base_right} the base answered right, the tuned model keeps {pct(s['retained_of_base_right'])}"]
    ratio = s["forgotten_per_acquired"]
    if ratio:
        value = f"= {ratio['ratio']:.3f}" if ratio["ratio"] is not None else "(undefined: nothing acquired)"
        out.append(f"  forgotten ÷ acquired: {ratio['forgotten']} ÷ {ratio['acquired']} {value}; "
                   f"{ratio['forgotten']} of {ratio['heldout_questions']} held-out facts forgotten, "
                   f"{ratio['acquired']} of {ratio['new_questions']} new facts acquired")
    else:
        out.append("  forgotten ÷ acquired: – (no answers on the new facts)")
    log = card["training_log"]
    if log and log["peak_relative_forgetting"] is not None:
        out.append(f"  peak-relative forgetting: {100 * log['peak_relative_forgetting']:.1f}% (held-out accuracy "
                   f"{log['peak']['heldout_accuracy']:.3f} at epoch {log['peak']['epoch']}, "
                   f"{log['final']['heldout_accuracy']:.3f} at epoch {log['final']['epoch']})")
    else:
        out.append("  peak-relative forgetting: – (" + ("peak held-out accuracy is 0)" if log else
                                                       "give the recipe's per-epoch log with --training-log)"))
    out += ["", f"  {'flips, base -> tuned':<34}{'n':>6}{'retained':>10}{'forgotten':>11}{'acquired':>10}"
                f"{'never known':>13}   forgotten share"]
    for name, title in SET_TITLES.items():
        if sets[name]["status"] == "scored":
            out.append(_flip_row(title.split(" (")[0], sets[name]["flips"]["all"]))
    out.append("  held-out known facts by relation:")
    for relation, f in held["flips"]["by_relation"].items():
        out.append(_flip_row(f"  {relation} {data.RELATIONS.get(relation, ('',))[0]}", f))
    out.append("  held-out known facts by SliCK category:")
    for category, f in held["flips"]["by_category"].items():
        out.append(_flip_row(f"  {category}", f))
    guess = card["guessable"]
    out += ["", f"  guessable facts: {guess['note']}"]
    for name, m in guess["sets"].items():
        out.append(f"    {SET_TITLES[name].split(' (')[0]}: {m['questions']} guessable, base {pct(m['base_accuracy'])}, "
                   f"tuned {pct(m['tuned_accuracy'])}")
    if card["notes"]:
        out += ["", "  notes:"] + [f"  - {n}" for n in card["notes"]]
    return "\n".join(out)
