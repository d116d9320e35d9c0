"""The audit card: what a fine-tune forgot of what its base recalled, with no split.

An audit card (`"schema": "factbench.auditcard/1"`, JSON) holds:

| field            | what                                                                                   |
|------------------|----------------------------------------------------------------------------------------|
| `audit`          | question set: version, preset, size, relations, base prompts K, its ids hash            |
| `knowledge_rule` | how "the base recalls this fact" was decided, and where each question's label came from |
| `base`, `tuned`  | where the answers came from (factbench engine or lm-eval), model identities, answers hash |
| `training_data`  | `known: false` (factbench cannot know it) or the `--trained-on` file's identity         |
| `summary`        | retention of recalled facts (headline), forgetting, format breaks, edits, acquisition;  |
|                  | also the retained share of every fact the base answered right under prompt 0 (more     |
|                  | facts, but guessed ones among them)                                                    |
| `by_relation`    | per relation: recalled facts, retention, forgotten, format breaks, base / tuned accuracy |
| `by_category`    | per knowledge label: questions and the flip table                                      |
| `flips`          | every non-edited audit question under prompt 0: retained / forgotten / acquired / never known |
| `answer_shapes`  | shapes (answer, empty, chat markup, refusal, sentence) of both sides' prompt-0 answers  |
| `edited`, `acquisition` | only with `--trained-on`                                                      |
| `outcomes`       | per question: ids, labels and both answers (what `questions_frame` turns into a DataFrame) |

Every rate is `{"value", "low", "high", "n"}` with a seeded bootstrap interval over questions.
**Retention** = share of the facts the base recalls (right under all K prompts, not guessable) that
the fine-tune answers right under prompt 0; edited facts are left out of it.
"""

from __future__ import annotations

import hashlib
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from .. import __version__
from ..card_schema import SCHEMA as SCORE_SCHEMA
from ..card_schema import check_checksum, check_intervals, check_recomputed, provenance, schema_errors, with_checksum
from ..errors import CardError
from ..identities import label as side_label
from ..metrics import Bootstrap, Outcomes, complement, flip_cells, grouped_flips
from ..protocol import protocol_hash, question_protocol
from . import answer_shape, questions
from .base import NOT_SAMPLED

SCHEMA_ID = "factbench.auditcard/1"
UNKNOWN_TRAINING = ("unknown: factbench cannot know what this fine-tune was trained on, so no acquisition is "
                    "reported and no audit fact is treated as edited; pass --trained-on FILE if you know it")


_RATE = {"$ref": "#/$defs/rate"}
_OUTCOME_FIELDS = {"ids": "string", "relation": "string", "category": "string", "recalled": "bits",
                   "guessable": "bits", "edited": "bits", "base": "bits", "tuned": "bits", "base_contains": "bits",
                   "tuned_contains": "bits", "tuned_shape": "string", "base_answer": "string", "tuned_answer": "string"}
SCHEMA = {
    "title": "factbench audit card",
    "type": "object",
    "required": ["schema", "kind", "created", "factbench_version", "audit", "protocol", "protocol_hash",
                 "knowledge_rule", "base", "tuned", "training_data", "statistics", "summary", "by_relation",
                 "by_category", "flips", "answer_shapes", "edited", "acquisition", "outcomes", "notes"],
    "properties": {
        "schema": {"const": SCHEMA_ID},
        "kind": {"const": "factbench audit card"},
        "audit": {"type": "object", "required": ["version", "preset", "questions", "ids_sha256"]},
        "protocol_hash": {"type": "string", "pattern": "^[0-9a-f]{16}$"},
        "base": {"type": "object", "required": ["source", "label"]},
        "tuned": {"type": "object", "required": ["source", "label", "answers_sha256"]},
        "training_data": {"type": "object", "required": ["known"]},
        "summary": {"type": "object", "required": ["retention", "forgetting", "recalled_facts", "forgotten",
                                                   "forgotten_format_breaks", "format_breaks", "edited",
                                                   "acquisition"],
                    "properties": {"retention": _RATE, "forgetting": _RATE, "format_breaks": _RATE,
                                   "recalled_facts": {"type": "integer", "minimum": 0},
                                   "forgotten": {"type": "integer", "minimum": 0},
                                   "acquisition": {"anyOf": [{"type": "null"}, _RATE]}}},
        "by_relation": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["questions", "recalled", "retention", "forgotten"],
            "properties": {"retention": _RATE}}},
        "statistics": SCORE_SCHEMA["properties"]["statistics"],
        "answer_shapes": {"type": "object", "required": ["version"]},
        "outcomes": {"type": "object", "required": list(_OUTCOME_FIELDS),
                     "properties": {k: ({"type": "string", "pattern": "^[01]*$"} if kind == "bits" else
                                        {"type": "array", "items": {"type": kind}})
                                    for k, kind in _OUTCOME_FIELDS.items()}},
        "acquisition": {"anyOf": [{"type": "null"}, {
            "type": "object", "required": ["questions", "tuned_accuracy", "base_accuracy", "flips"],
            "properties": {"questions": {"type": "integer", "minimum": 0}, "tuned_accuracy": _RATE,
                           "base_accuracy": _RATE, "flips": {"$ref": "#/$defs/flips"},
                           "outcomes": {"type": "object", "required": ["base", "tuned"],
                                        "properties": {"base": {"type": "string", "pattern": "^[01]*$"},
                                                       "tuned": {"type": "string", "pattern": "^[01]*$"}}}}}]},
        "notes": {"type": "array", "items": {"type": "string"}},
        "checksum": {"$ref": "#/$defs/checksum"},
        "provenance": {"$ref": "#/$defs/provenance"},
    },
}


def validate(card: dict, *, recompute: bool = True) -> None:
    """Schema, internal consistency, every value inside its interval, every figure recomputed from the card's
    own outcomes, and the checksum where the card has one; the first problem is one CardError line."""
    errors = schema_errors(card, SCHEMA | {"$defs": SCORE_SCHEMA["$defs"]})
    if errors:
        raise CardError(f"not a valid {SCHEMA_ID} audit card: {errors[0]}"
                        + (f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""))
    if protocol_hash(card["protocol"]) != card["protocol_hash"]:
        raise CardError("the card's protocol_hash does not match its protocol (edited or corrupted)")
    o = card["outcomes"]
    if any(len(o[k]) != len(o["ids"]) for k in _OUTCOME_FIELDS if k in o) \
            or len(o["ids"]) != card["audit"]["questions"]:
        raise CardError("the card's outcomes do not have one entry per audit question (edited or corrupted)")
    if hashlib.sha256("\n".join(o["ids"]).encode()).hexdigest() != card["audit"]["ids_sha256"]:
        raise CardError("the card's outcomes are not the questions of its audit set (ids_sha256 differs: edited or "
                        "corrupted)")
    a = card["acquisition"]
    if a and "outcomes" in a and not len(a["outcomes"]["base"]) == len(a["outcomes"]["tuned"]) == a["questions"]:
        raise CardError("the card's acquisition outcomes do not have one entry per training question (edited or "
                        "corrupted)")
    check_intervals(card)
    if recompute:
        check_recomputed(card, recomputed)
    check_checksum(card)


def load(path: Path | str) -> dict:
    """An audit card from a file, validated; anything wrong with it is one CardError naming the file."""
    from ..scorecard import load_checked

    return load_checked(path, "audit card", SCHEMA_ID, validate)


def category_of(row: dict, sampled: bool) -> str:
    """The knowledge label shown for a question: SliCK category, split by the guess filter."""
    cat = row["category"]
    if cat == "HighlyKnown":
        return "HighlyKnown, recalled" if row["known"] else "HighlyKnown, guessable"
    if cat == "Unknown" and not sampled:
        return NOT_SAMPLED
    return cat


def build(*, preset: str, labels: dict[str, dict], base: dict, tuned, knowledge_rule: dict,
          training=None, edited: set[str] = frozenset(), acquisition: dict | None = None,
          boot: Bootstrap, notes: list[str]) -> dict:
    """The card. `labels`: per audit id {category, known, guessable, source}; `base`: per id the base's
    prompt-0 answer {completion, em, contains} plus `identity`; `tuned`: its AuditAnswers."""
    facts = questions.facts(preset)
    ids = [f.id for f in facts]
    base_answers = base["answers"]
    tuned_answers = {fid: tuned.answers[(fid, 0)] for fid in ids}
    t_shape = [answer_shape.shape(tuned_answers[i]["completion"]) for i in ids]
    outcomes = {
        "ids": ids, "relation": [f.relation for f in facts], "category": [labels[i]["category_label"] for i in ids],
        "label_source": [labels[i]["source"] for i in ids],
        "recalled": _bits(labels[i]["known"] for i in ids), "guessable": _bits(labels[i]["guessable"] for i in ids),
        "edited": _bits(i in edited for i in ids),
        "base": _bits(base_answers[i]["em"] for i in ids), "tuned": _bits(tuned_answers[i]["em"] for i in ids),
        "base_contains": _bits(base_answers[i]["contains"] for i in ids),
        "tuned_contains": _bits(tuned_answers[i]["contains"] for i in ids),
        "tuned_shape": t_shape, "base_answer": [base_answers[i]["completion"] for i in ids],
        "tuned_answer": [tuned_answers[i]["completion"] for i in ids],
    }
    card = {
        "schema": SCHEMA_ID,
        "kind": "factbench audit card",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "factbench_version": __version__,
        "audit": questions.identity(preset),
        "protocol": question_protocol(),
        "protocol_hash": protocol_hash(question_protocol()),
        "knowledge_rule": knowledge_rule,
        "base": base["identity"] | {"label": side_label(base["identity"])},
        "tuned": tuned.identity | {"decoding": tuned.decoding, "answers_sha256": tuned.sha256(),
                                   "label": side_label(tuned.identity)},
        "training_data": {"known": True} | training.identity() if training else
        {"known": False, "note": UNKNOWN_TRAINING},
        "statistics": {"bootstrap_resamples": boot.resamples, "seed": boot.seed, "level": boot.level,
                       "unit": "question"},
        **figures(outcomes, boot, acquisition, training_known=bool(training)),
        "acquisition": acquisition,
        "outcomes": outcomes,
        "notes": notes,
        "provenance": provenance(),
    }
    return with_checksum(card)


def figures(o: dict, boot: Bootstrap, acquisition: dict | None, *, training_known: bool) -> dict:
    """Every figure of an audit card from its per-question outcomes (`build` makes them with this, and
    `validate` recomputes them with it): summary, by_relation, by_category, flips, answer_shapes, edited."""
    ids, relation, category = o["ids"], o["relation"], o["category"]

    def flags(key):
        return np.array([c == "1" for c in o[key]], dtype=bool)

    known, guessable, is_edited = flags("recalled"), flags("guessable"), flags("edited")
    b, t, b_contains, t_contains = flags("base"), flags("tuned"), flags("base_contains"), flags("tuned_contains")
    t_shape = [answer_shape.shape(c) for c in o["tuned_answer"]]
    b_shape = [answer_shape.shape(c) for c in o["base_answer"]]
    t_break = np.array([s != "answer" for s in t_shape], dtype=bool)
    highly = np.array([str(c).startswith("HighlyKnown") for c in category], dtype=bool)
    recalled = known & ~is_edited
    kept = ~is_edited
    forgotten = recalled & ~t

    everything = Outcomes(list(ids), list(relation), list(category), b, t, b_contains, t_contains, guessable)
    not_edited = everything.subset(kept)
    summary = {
        "retention": boot.rate(t[recalled]),
        "forgetting": complement(boot.rate(t[recalled])),
        "recalled_facts": int(recalled.sum()),
        "forgotten": int(forgotten.sum()),
        "forgotten_format_breaks": int((forgotten & t_break).sum()),
        "forgotten_answer_shaped": int((forgotten & ~t_break).sum()),
        "retention_of_answer_shaped": boot.rate(t[recalled & ~t_break]),
        # A wider, weaker net than recall: every fact the base got right under prompt 0, guessable or not.
        "retained_of_base_right": boot.rate(t[b & kept]),
        "base_accuracy": boot.rate(b[kept]),
        "tuned_accuracy": boot.rate(t[kept]),
        "accuracy_change": boot.paired(t[kept], b[kept]),
        "format_breaks": boot.rate(t_break),
        "base_format_breaks": boot.rate(np.array([s != "answer" for s in b_shape], dtype=bool)),
        # HighlyKnown facts the guess filter set aside: kept apart, never in the headline.
        "guessable_facts": int((highly & guessable & kept).sum()),
        "guessable_retention": boot.rate(t[highly & guessable & kept]),
        "edited": int(is_edited.sum()),
        "acquisition": acquisition["tuned_accuracy"] if acquisition else None,
        "acquisition_base": acquisition["base_accuracy"] if acquisition else None,
    }
    by_relation = {}
    groups = defaultdict(list)
    for k, r in enumerate(relation):
        groups[r].append(k)
    for r, idx in sorted(groups.items(), key=lambda kv: int(kv[0][1:])):
        idx = np.array(idx)
        rec = idx[recalled[idx]]
        by_relation[r] = {
            "questions": int(kept[idx].sum()), "recalled": len(rec),
            "retention": boot.rate(t[rec]), "forgotten": int(forgotten[idx].sum()),
            "forgotten_format_breaks": int((forgotten & t_break)[idx].sum()),
            "base_accuracy": boot.rate(b[idx][kept[idx]]), "tuned_accuracy": boot.rate(t[idx][kept[idx]]),
            "format_breaks": boot.rate(t_break[idx]), "edited": int(is_edited[idx].sum()),
        }
    grouped = grouped_flips(not_edited, boot)
    return {
        "summary": summary,
        "by_relation": by_relation,
        "by_category": {c: {"questions": f["questions"], "flips": f} for c, f in grouped["by_category"].items()},
        "flips": grouped["all"],
        "answer_shapes": {"version": answer_shape.SHAPE_VERSION,
                          "tuned": answer_shape.shape_counts(o["tuned_answer"]),
                          "base": answer_shape.shape_counts(o["base_answer"])},
        "edited": _edited(b, t, is_edited, boot) if training_known else None,
    }


def recomputed(card: dict) -> dict:
    """An audit card's figures recomputed from its own outcomes, with its bootstrap settings (see `figures`).
    The acquisition (the fine-tune's training questions) is recomputed where the card holds those questions'
    outcomes (cards from this version on); older cards' acquisition is checked against its own flip counts."""
    st = card["statistics"]
    boot = Bootstrap(resamples=st["bootstrap_resamples"], seed=st["seed"], level=st["level"])
    version = card["answer_shapes"].get("version") if isinstance(card["answer_shapes"], dict) else None
    if version != answer_shape.SHAPE_VERSION:
        raise CardError(f"the card's answers were shaped by answer-shape version {version!r}, not this factbench's "
                        f"{answer_shape.SHAPE_VERSION!r}: its format-break figures cannot be recomputed here")
    acquisition = card["acquisition"]
    expected_acquisition = acquisition
    if acquisition and "outcomes" in acquisition:
        a = acquisition["outcomes"]
        expected_acquisition = acquisition_metrics(np.array([c == "1" for c in a["base"]], dtype=bool),
                                                   np.array([c == "1" for c in a["tuned"]], dtype=bool), boot)
    elif acquisition:
        _check_acquisition_counts(acquisition)
    o = card["outcomes"]
    expected = figures(o, boot, expected_acquisition, training_known=bool(card["training_data"]["known"]))
    expected["outcomes"] = {"tuned_shape": [answer_shape.shape(c) for c in o["tuned_answer"]]}
    if acquisition and "outcomes" in acquisition:
        expected["acquisition"] = expected_acquisition
    return expected


def _check_acquisition_counts(acquisition: dict) -> None:
    flips, n = acquisition["flips"], acquisition["questions"]
    right = {"tuned_accuracy": flips["retained"]["count"] + flips["acquired"]["count"],
             "base_accuracy": flips["retained"]["count"] + flips["forgotten"]["count"]}
    for key, count in right.items():
        value = acquisition[key]["value"]
        if n != acquisition[key]["n"] or (n and abs(value - count / n) > 1e-9):
            raise CardError(f"card.acquisition.{key}: the card says {value} of {acquisition[key]['n']}, its flip "
                            f"counts give {count} of {n} (edited or corrupted)")


def _edited(b, t, is_edited, boot: Bootstrap) -> dict:
    return {"facts": int(is_edited.sum()), "note": "audit facts whose subject appears in the training data: "
            "changed on purpose, not counted as forgotten", "flips": flip_cells(b[is_edited], t[is_edited], boot)}


def acquisition_metrics(base_right: np.ndarray, tuned_right: np.ndarray, boot: Bootstrap) -> dict:
    """The fine-tune's accuracy on its own training questions, the base's beside it, and their flips; with
    both sides' outcomes on those questions, in order, so that a reader can recompute them."""
    return {"questions": len(base_right), "tuned_accuracy": boot.rate(tuned_right),
            "base_accuracy": boot.rate(base_right), "change": boot.paired(tuned_right, base_right),
            "flips": flip_cells(base_right, tuned_right, boot),
            "outcomes": {"base": _bits(base_right), "tuned": _bits(tuned_right)}}


def _bits(x) -> str:
    return "".join("1" if v else "0" for v in x)

