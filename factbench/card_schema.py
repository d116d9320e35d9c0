"""The score card's JSON schema, and the small JSON Schema validator factbench's cards are checked with.

Apart from `factbench.scorecard` (assembly, reading, writing) because the schema is data that the
audit card (`factbench.auditing.card`) reuses: its rates, differences and flip cells are the same
objects. The validator covers the part of JSON Schema these schemas use (type, const, enum,
minimum / maximum, pattern, required, properties, additionalProperties, items, anyOf, $ref into
$defs); `tests/test_scorecard.py` checks it agrees with the `jsonschema` package.

Also here, because both card kinds use them: the content checksum (`checksum`), the provenance
record (`provenance`), the interval check (every value inside its own interval) and the comparison
of a card's stated figures with the figures recomputed from its per-question outcomes.

**What the checksum proves, and what it does not.** `checksum` is `"sha256:"` + the SHA-256 of the
card's canonical JSON (every field but `checksum`; keys sorted, no spaces, UTF-8). It detects a card
edited by hand or corrupted after factbench wrote it. It does not prove the card is honest: anyone
can make a card with the tool (or recompute the hash) from answers of their choosing. What guards
the numbers is the recomputation: every figure must follow from the card's own per-question
outcomes, and `leaderboard add` refuses a card whose figures do not.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import time
from pathlib import Path

from .errors import CardError

SCHEMA_ID = "factbench.scorecard/1"
SET_STATUSES = ["scored", "not in split", "not answered", "only base answered", "only tuned answered"]


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
                 "notes"],  # training_data is optional: cards made before it existed stay readable
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
        "training_data": {"type": "object", "required": ["trained_on_split", "evidence"],
                          "properties": {"trained_on_split": {"type": ["boolean", "null"]},
                                         "evidence": {"type": "string"}}},
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
                           "guessable": _BITS,
                           "category": {"type": "array", "items": {"type": ["string", "null"]}}}}},
        "notes": {"type": "array", "items": {"type": "string"}},
        "checksum": {"$ref": "#/$defs/checksum"},
        "provenance": {"$ref": "#/$defs/provenance"},
    },
    "$defs": {"rate": _RATE, "diff": _DIFF, "cell": _CELL, "flips": _FLIPS, "set": _SET,
              "checksum": {"type": "string", "pattern": "^sha256:[0-9a-f]{64}$"},
              "provenance": {"type": "object", "required": ["factbench_version", "command"],
                             "properties": {"factbench_version": {"type": "string"},
                                            "command": {"type": "array", "items": {"type": "string"}},
                                            "created": {"type": "string"},
                                            "checksum_added": {"type": "object"}}}},
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


# ---- checksum and provenance ---------------------------------------------------------------------

CHECKSUM_NOTE = ("checksum: sha256 of the card's canonical JSON (all fields but this one, keys sorted); it detects "
                 "edits and corruption, not a card forged with the tool")


def canonical_json(card: dict) -> bytes:
    """The bytes the checksum is taken over: every field but `checksum`, keys sorted, no spaces, UTF-8."""
    try:
        text = json.dumps({k: v for k, v in card.items() if k != "checksum"}, sort_keys=True, ensure_ascii=False,
                          separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise CardError(f"the card cannot be written as JSON ({e})") from None
    return text.encode("utf-8")


def checksum(card: dict) -> str:
    return "sha256:" + hashlib.sha256(canonical_json(card)).hexdigest()


def with_checksum(card: dict) -> dict:
    """The card (the same dict) with its checksum set to match its content: call it last."""
    card.pop("checksum", None)
    card["checksum"] = checksum(card)
    return card


def check_checksum(card: dict) -> bool:
    """True when the card's checksum matches; False when it has none (a card older than checksums)."""
    if "checksum" not in card:
        return False
    if card["checksum"] != checksum(card):
        raise CardError("the card's checksum does not match its content (edited or corrupted after it was written)")
    return True


_SECRET = re.compile(r"token|key|password|secret|auth", re.I)


# The factbench command being run, set by the CLI (`factbench.cli.main`): inside another program
# (a notebook, a test calling main([...])) sys.argv is that program's, not factbench's.
COMMAND: list[str] | None = None


def safe_command(argv: list[str] | None = None) -> list[str]:
    """The command line that made a card, safe to publish: the program by its name, paths relative to
    the working folder (or to ~), values of secret-looking flags hidden, long arguments cut."""
    argv = list(argv if argv is not None else COMMAND if COMMAND is not None else sys.argv)
    cwd, home = Path.cwd(), Path.home()

    def one(arg: str) -> str:
        flag, eq, value = arg.partition("=") if arg.startswith("--") else ("", "", arg)
        if os.path.isabs(value):
            path = Path(value)
            for root, prefix in ((cwd, ""), (home, "~/")):
                try:
                    value = prefix + str(path.relative_to(root)) if path != root else (prefix.rstrip("/") or ".")
                    break
                except ValueError:
                    continue
        return (flag + eq + value)[:200]

    out, hide = [], False
    for i, arg in enumerate(argv[:64]):
        if i == 0:
            out.append(Path(arg).name or arg)
        elif hide and not arg.startswith("-"):
            out.append("<hidden>")
        elif arg.startswith("--") and "=" in arg and _SECRET.search(arg.split("=")[0]):
            out.append(arg.split("=")[0] + "=<hidden>")
        else:
            out.append(one(arg))
        hide = arg.startswith("-") and "=" not in arg and bool(_SECRET.search(arg))
    return out


def provenance(argv: list[str] | None = None) -> dict:
    """Who made a card and how: factbench version, the (safe) command line, when."""
    from . import __version__

    return {"factbench_version": __version__, "command": safe_command(argv),
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


# ---- figures against their intervals and against their outcomes ----------------------------------

_TOLERANCE = 1e-9  # recomputed floats are bit-identical; this only absorbs a JSON round trip


def _short(value) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    text = json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def check_intervals(value, where: str = "card") -> None:
    """Every rate or difference ({value, low, high, n}) holds its value inside its own interval."""
    if isinstance(value, dict):
        if {"value", "low", "high", "n"} <= value.keys():
            v, low, high = value["value"], value["low"], value["high"]
            numbers = [x for x in (v, low, high) if x is not None]
            if v is None or low is None or high is None:
                if numbers:
                    raise CardError(f"{where}: value, low and high must all be numbers or all be null")
            elif not all(isinstance(x, (int, float)) and math.isfinite(x) for x in numbers):
                raise CardError(f"{where}: value, low and high must be finite numbers")
            elif not low <= v <= high:
                raise CardError(f"{where}: value {_short(v)} is outside its own interval [{_short(low)}, "
                                f"{_short(high)}]")
        for k, v in value.items():
            check_intervals(v, f"{where}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            check_intervals(v, f"{where}[{i}]")


# keyed groups: one the card states but its outcomes do not make is a difference
GROUPS = re.compile(r"(\.by_relation|\.by_category|^card\.guessable\.sets)$")


def first_difference(stated, recomputed, where: str = "card") -> str | None:
    """The first place where a card's stated figures differ from those recomputed from its outcomes, as one
    line naming the field, its stated and its recomputed value; None when they agree."""
    def differs(message: str) -> str:
        return f"{where}: {message}"

    if isinstance(recomputed, dict):
        if not isinstance(stated, dict):
            return differs(f"the card says {_short(stated)}, its outcomes give {_short(recomputed)}")
        for k, v in recomputed.items():
            if k not in stated:
                return f"{where}.{k}: missing from the card, its outcomes give {_short(v)}"
            d = first_difference(stated[k], v, f"{where}.{k}")
            if d:
                return d
        if GROUPS.search(where):
            extra = [k for k in stated if k not in recomputed]
            if extra:
                return f"{where}.{extra[0]}: in the card, but its outcomes have no such group"
        return None
    if isinstance(recomputed, list):
        if not isinstance(stated, list) or len(stated) != len(recomputed):
            return differs(f"the card says {_short(stated)}, its outcomes give {_short(recomputed)}")
        for i, (a, b) in enumerate(zip(stated, recomputed)):
            d = first_difference(a, b, f"{where}[{i}]")
            if d:
                return d
        return None
    number = (int, float)
    if isinstance(recomputed, number) and not isinstance(recomputed, bool) and isinstance(stated, number) \
            and not isinstance(stated, bool):
        same = stated == recomputed if isinstance(recomputed, int) and isinstance(stated, int) else \
            math.isfinite(stated) and abs(stated - recomputed) <= _TOLERANCE
    else:
        same = stated == recomputed and type(stated) is type(recomputed)
    return None if same else differs(f"the card says {_short(stated)}, its outcomes give {_short(recomputed)}")


def check_recomputed(card: dict, recompute) -> None:
    """Refuse a card whose figures do not follow from its own outcomes (`recompute(card)`: the figures the
    code that made the card gives for them), or whose outcomes cannot be read back."""
    try:
        expected = recompute(card)
    except CardError:
        raise
    except (KeyError, IndexError, TypeError, ValueError, AttributeError) as e:
        raise CardError(f"the card's figures cannot be recomputed from its outcomes ({type(e).__name__}: {e})") \
            from None
    d = first_difference(card, expected)
    if d:
        raise CardError(f"{d} (edited, corrupted, or not made by factbench)")
