"""`factbench overlap TRAIN.jsonl --model M`: will these new facts overwrite what the model knows?

A check to run on a fine-tuning set *before* training. The semantic-overlap probe
(`factbench interference`, METHOD.md §5) shows forgetting driven by new facts whose subjects the
model reads like entities it knows (name-like keys) and little of it for subjects it reads like
nothing it knows (UUID keys). This check measures where a training set's subjects fall between
those two, without training anything:

1. each new subject is read inside its own question at a middle layer (factbench.representations)
   and gets its **highest cosine similarity to any known subject** (the facts the model knew in
   its split: the same known facts `interference` measures forgetting on);
2. the same is done for two references put in place of each subject, in the same question:
   UUID keys and name-like keys (factbench.synthetic; name-like keys from the subject words of the
   question's relation, P17's when the question follows no EntityQuestions template);
3. **overlap score** = (yours − UUID) / (name-like − UUID) of the mean similarities: 0 reads like
   UUID keys, 1 like name-like keys. At `warn_at` (0.5 by default: closer to name-like keys than
   to UUID keys) it warns that forgetting is likely.

Subjects equal to a known subject are counted on their own: a fact about a known entity edits
what the model knows about it, whatever the similarity says.

Input: JSON Lines, one `{"question": ..., "answer": ...}` object a line (a split's `train.jsonl`
works as it is). The subject is the row's `subject` field when it has one, else the [X] of the
EntityQuestions template the question follows; a question that follows none needs a `subject`.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path

from . import data, models, representations, stats, synthetic
from .errors import FactbenchError
from .interference import base_split, known_rows

DEFAULT_LIMIT = 500
DEFAULT_WARN_AT = 0.5
SCHEMA = 1


def read_rows(path: Path | str) -> list[dict]:
    """The rows of a training file, each with its question, answer, subject and relation (None if unknown)."""
    path = Path(path)
    if not path.exists():
        raise FactbenchError(f"{path} does not exist")
    if path.is_dir():
        hint = f"; pass {path / 'train.jsonl'}" if (path / "train.jsonl").is_file() else ""
        raise FactbenchError(f"{path} is a folder, not a JSON Lines file{hint}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise FactbenchError(f"{path} is not UTF-8 text") from None
    rows = []
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except ValueError:
            raise FactbenchError(f"{path}:{n} is not valid JSON") from None
        if not (isinstance(row, dict) and _text(row.get("question")) and _text(row.get("answer"))):
            raise FactbenchError(f'{path}:{n} needs a non-empty "question" and "answer"')
        rows.append(_with_subject(row, f"{path}:{n}"))
    if not rows:
        raise FactbenchError(f"{path} holds no rows")
    return rows


def _text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _with_subject(row: dict, where: str) -> dict:
    question = row["question"]
    relation = None
    for rel, (_, template) in data.RELATIONS.items():
        try:
            subject = data.subject_of(question, template)
        except FactbenchError:
            continue
        relation = rel
        break
    if _text(row.get("subject")):
        subject = row["subject"]
        if subject not in question:
            raise FactbenchError(f'{where}: its "subject" {subject!r} does not occur in its question')
    elif relation is None:
        raise FactbenchError(f"{where}: cannot tell the subject of {question!r} (it follows no EntityQuestions "
                             'template); add a "subject" field')
    return {"question": question, "answer": row["answer"], "subject": subject, "relation": relation}


def check(path: Path | str, model: str = models.DEFAULT_MODEL, *, split: str | Path | None = None,
          limit: int | None = DEFAULT_LIMIT, layer: int | None = None, seed: int = 0,
          warn_at: float = DEFAULT_WARN_AT, progress: bool = False) -> dict:
    """The overlap report of a training file for `model` (see the module docstring)."""
    rows = read_rows(path)
    if limit is not None and limit < 1:
        raise FactbenchError(f"--limit must be at least 1, got {limit}")
    if not 0 < warn_at <= 1:
        raise FactbenchError(f"--warn-at must be in (0, 1], got {warn_at}")
    total = len(rows)
    if limit is not None and total > limit:
        keep = sorted(random.Random(seed).sample(range(total), limit))
        rows = [rows[i] for i in keep]
    known_split = base_split(model, split)
    known = data.get(r["id"] for r in known_rows(known_split, None, seed))
    loaded = models.load(model)
    tokenizer = loaded.tokenizer
    layer = representations.check_layer(loaded.model, layer)

    def states(items, what):
        return representations.subject_states(loaded.model, tokenizer, items, layer,
                                              progress=f"reading {what}" if progress else None)

    known_states = states([(f.question, f.subject) for f in known], "known subjects")
    references = reference_questions(rows, tokenizer, seed)
    similarity = {
        "yours": representations.max_similarity(states([(r["question"], r["subject"]) for r in rows], "your subjects"),
                                                known_states),
        **{kind: representations.max_similarity(states(items, f"{synthetic.KEY_KINDS[kind]} keys"), known_states)
           for kind, items in references.items()},
    }
    means = {k: stats.rate_with_ci(v) for k, v in similarity.items()}  # a bootstrap of the mean, any values
    low, high, yours = means["uuid"]["value"], means["namelike"]["value"], means["yours"]["value"]
    score = (yours - low) / (high - low) if high > low else None
    known_subjects = {f.subject.casefold() for f in known}
    exact = sorted({r["subject"] for r in rows if r["subject"].casefold() in known_subjects})
    likely = (score is not None and score >= warn_at) or bool(exact)
    return {
        "schema": SCHEMA, "kind": "factbench overlap", "file": str(path), "model": model, "layer": layer,
        "rows": total, "rows_checked": len(rows), "known_subjects": len(known), "known_split": str(known_split.path),
        "similarity": means, "overlap_score": score, "warn_at": warn_at,
        "known_subjects_trained_on": exact,
        "closer_to_name_like": sum(s >= high for s in similarity["yours"]) / len(rows),
        "forgetting_likely": likely,
    }


def reference_questions(rows: list[dict], tokenizer, seed: int | str) -> dict[str, list[tuple[str, str]]]:
    """Each row's question with its subject replaced by a UUID key and by a name-like key."""
    ok = synthetic.spellable(tokenizer)
    # A seed stream of their own, so that the references are never the very keys `interference` trained on.
    seed = f"overlap/{seed}"
    uuids = iter(synthetic.uuid_keys(len(rows), seed, synthetic.key_spelling(tokenizer)))
    by_relation = defaultdict(int)
    for r in rows:
        by_relation[r["relation"] or "P17"] += 1
    names = {rel: iter(synthetic.namelike_keys(n, rel, seed, ok)) for rel, n in by_relation.items()}
    out: dict[str, list[tuple[str, str]]] = {"uuid": [], "namelike": []}
    for r in rows:
        start, end = representations.subject_span(r["question"], r["subject"])
        for kind, key in (("uuid", next(uuids)), ("namelike", next(names[r["relation"] or "P17"]))):
            out[kind].append((r["question"][:start] + key + r["question"][end:], key))
    return out


def render(report: dict) -> str:
    sim = report["similarity"]

    def line(label, rate):
        return f"  {label:<34}{rate['value']:.3f} [{rate['low']:.3f}, {rate['high']:.3f}]"

    checked = (f"{report['rows_checked']} of {report['rows']} rows (a seeded sample)"
               if report["rows_checked"] < report["rows"] else f"{report['rows']} rows")
    lines = [
        f"overlap of {report['file']} with what {report['model']} knows: {checked}, "
        f"{report['known_subjects']} known subjects, layer {report['layer']}",
        "  highest cosine similarity of a subject to a known subject (mean, 95% CI):",
        line("your subjects", sim["yours"]),
        line("UUID keys in your questions", sim["uuid"]),
        line("name-like keys in your questions", sim["namelike"]),
    ]
    score = report["overlap_score"]
    if score is None:
        lines.append("  overlap score: undefined (the two references are not apart for this model)")
    else:
        lines.append(f"  overlap score {score:.2f}  (0 = reads like UUID keys, 1 = like name-like keys; "
                     f"warning at {report['warn_at']:.2f})")
        lines.append(f"  {report['closer_to_name_like']:.0%} of your subjects are at least as close to a known "
                     "subject as the name-like keys are on average")
    exact = report["known_subjects_trained_on"]
    if exact:
        shown = ", ".join(exact[:5]) + (" ..." if len(exact) > 5 else "")
        lines.append(f"  {len(exact)} of your subjects are known subjects themselves ({shown}): "
                     "training on them edits what the model knows")
    if report["forgetting_likely"]:
        lines.append("WARNING: forgetting is likely: the model reads these subjects like entities it knows, so "
                     "training on them can overwrite known facts (METHOD.md §5). Consider UUID-like keys for "
                     "synthetic entities, self-distillation (`--recipe selfdistill`), and measuring it: "
                     "`factbench score` after training.")
    else:
        lines.append("forgetting from semantic overlap looks unlikely: these subjects read more like UUID keys than "
                     "like known names (other causes of forgetting remain; score the fine-tune to be sure).")
    return "\n".join(lines)
