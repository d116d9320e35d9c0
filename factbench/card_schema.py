"""The score card's JSON schema, and the small JSON Schema validator factbench's cards are checked with.

Apart from `factbench.scorecard` (assembly, reading, writing) because the schema is data that the
audit card (`factbench.auditing.card`) reuses: its rates, differences and flip cells are the same
objects. The validator covers the part of JSON Schema these schemas use (type, const, enum,
minimum / maximum, pattern, required, properties, additionalProperties, items, anyOf, $ref into
$defs); `tests/test_scorecard.py` checks it agrees with the `jsonschema` package.
"""

from __future__ import annotations

import re

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
