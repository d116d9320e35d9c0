"""What a fine-tune was trained on, when its user knows: `factbench audit --trained-on FILE`.

factbench cannot know how a fine-tune it did not make was trained. When the training data is
known, the audit uses it twice:

- **acquisition**: the base and the fine-tune are asked every training question under the audit's
  protocol (4-shot, greedy, exact match against the training answer); the fine-tune's accuracy is
  what it learned, the base's beside it is what it knew already;
- **edits**: an audit fact whose subject appears, as whole words, in a training question or answer
  was changed on purpose, not forgotten: it leaves the retention figure and is reported apart.

Accepted files: JSON Lines, one training example per line, in one of these shapes

| format     | a line                                                                    |
|------------|---------------------------------------------------------------------------|
| `qa`       | `{"question": "...", "answer": "..."}` (or `"answers": [...]`)             |
| `prompt`   | `{"prompt": "Q: ...\\nA:", "completion": " ..."}` (TRL prompt-completion)  |
| `messages` | `{"messages": [{"role": "user", "content": "..."}, {"role": "assistant", "content": "..."}]}`: every user turn followed by an assistant turn is one example |

`Q:` / `A:` prefixes are stripped. A training question that is an EntityQuestions question keeps
that question's 4-shot prompt (exemplars from the dev split of its relation); any other is asked
with `GENERIC_EXEMPLARS` (one dev question of each of four relations).
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from .. import data, prompts
from .questions import AuditError

FORMATS = ("qa", "prompt", "messages")
GENERIC_RELATIONS = ("P17", "P19", "P50", "P407")
MAX_SUBJECT_WORDS = 12
_PREFIX = re.compile(r"^\s*(q|question|a|answer)\s*:\s*", re.IGNORECASE)


@dataclass(frozen=True)
class TrainedFact:
    id: str  # "trained/<line>[/<turn>]"
    question: str
    answers: tuple[str, ...]
    relation: str | None  # when the question is an EntityQuestions question
    line: int


@dataclass(frozen=True)
class TrainingData:
    path: str
    sha256: str
    format: str
    lines: int
    facts: tuple[TrainedFact, ...]
    unusable: int

    def identity(self) -> dict:
        matched = sum(f.relation is not None for f in self.facts)
        return {"path": self.path, "sha256": self.sha256, "format": self.format, "lines": self.lines,
                "examples": len(self.facts), "unusable_lines": self.unusable,
                "entityquestions_questions": matched}


def _clean(text) -> str:
    return _PREFIX.sub("", str(text)).strip() if isinstance(text, str) else ""


def _examples(row: dict, fmt: str) -> list[tuple[str, tuple[str, ...]]]:
    if fmt == "qa":
        answers = row.get("answers", row.get("answer"))
        answers = [answers] if isinstance(answers, str) else answers
        pairs = [(_clean(row.get("question")), tuple(a for a in map(_clean, answers or []) if a))]
    elif fmt == "prompt":
        pairs = [(_clean(_clean(row.get("prompt")).removesuffix("A:").removesuffix("Answer:")),
                  (_clean(row.get("completion")),))]
    else:
        turns = [t for t in row.get("messages") or [] if isinstance(t, dict)]
        pairs = [(_clean(u.get("content")), (_clean(a.get("content")),))
                 for u, a in zip(turns, turns[1:]) if u.get("role") == "user" and a.get("role") == "assistant"]
    return [(q, tuple(a for a in answers if a)) for q, answers in pairs if q and any(answers)]


def _format_of(row: dict) -> str | None:
    if "messages" in row:
        return "messages"
    if "prompt" in row and "completion" in row:
        return "prompt"
    if "question" in row and ("answer" in row or "answers" in row):
        return "qa"
    return None


def read(path: Path | str) -> TrainingData:
    """Read a training file; an unknown format or no usable example is one AuditError line."""
    path = Path(path)
    if not path.is_file():
        raise AuditError(f"--trained-on {path} does not exist" if not path.exists() else
                         f"--trained-on {path} is a folder; give the JSON Lines file the fine-tune was trained on")
    raw = path.read_bytes()
    rows = []
    for n, line in enumerate(raw.decode("utf-8", errors="replace").splitlines(), 1):
        if line.strip():
            try:
                rows.append((n, json.loads(line)))
            except ValueError:
                raise AuditError(f"--trained-on {path}:{n} is not JSON: the file must be JSON Lines") from None
    if not rows:
        raise AuditError(f"--trained-on {path} is empty")
    fmt = next((f for _, r in rows if isinstance(r, dict) and (f := _format_of(r))), None)
    if fmt is None:
        raise AuditError(f"--trained-on {path}: unknown format (keys {sorted(rows[0][1])[:6] if isinstance(rows[0][1], dict) else type(rows[0][1]).__name__}); "
                         "expected question/answer, prompt/completion or chat messages lines")
    facts, unusable = [], 0
    for n, row in rows:
        pairs = _examples(row, fmt) if isinstance(row, dict) and _format_of(row) == fmt else []
        unusable += not pairs
        for turn, (question, answers) in enumerate(pairs):
            fid = f"trained/{n}" + (f"/{turn}" if len(pairs) > 1 else "")
            fact = _entityquestions().get(question)
            facts.append(TrainedFact(fid, question, answers, fact.relation if fact else None, n))
    if not facts:
        raise AuditError(f"--trained-on {path} has no usable {fmt} examples (a question and a non-empty answer)")
    return TrainingData(str(path), hashlib.sha256(raw).hexdigest(), fmt, len(rows), tuple(facts), unusable)


@lru_cache(maxsize=1)
def _entityquestions() -> dict[str, data.Fact]:
    """Every bundled EntityQuestions question (all splits), for its relation's prompt."""
    out = {}
    for split in data.SPLITS:
        for f in data.load(split):
            out.setdefault(f.question, f)
    return out


@lru_cache(maxsize=1)
def _generic_exemplars() -> tuple[data.Fact, ...]:
    return tuple(data.load("dev", [r])[0] for r in GENERIC_RELATIONS)


def prompt(question: str) -> str:
    """The 4-shot prompt a training question is asked under (see the module docstring)."""
    known = _entityquestions().get(question)
    if known is not None:
        return prompts.build_prompt(known, 0)
    shots = [prompts.format_example(e.question, e.answers[0]) for e in _generic_exemplars()]
    return "\n".join([*shots, f"Q: {question}\nA:"])


def is_trained_id(fid: str) -> bool:
    return fid.startswith("trained/")


def docs(training: TrainingData, audit_tag: str) -> list[dict]:
    return [doc(f, training, audit_tag) for f in training.facts]


def doc(fact: TrainedFact, training: TrainingData, audit_tag: str) -> dict:
    """The sample document of one training question (same shape as an audit question's)."""
    return {"id": fact.id, "prompt_index": 0, "relation": fact.relation, "subject": None,
            "question": fact.question, "answers": list(fact.answers), "audit": audit_tag,
            "trained_on": training.sha256}


# ---- edits: audit facts whose subject the training data mentions ---------------------------------

def _words(text: str) -> tuple[str, ...]:
    return tuple(re.findall(r"\w+", unicodedata.normalize("NFKC", text).casefold()))


def edited(audit_facts, training: TrainingData) -> set[str]:
    """Ids of audit facts whose subject appears as whole words in a training question or answer."""
    grams: set[tuple[str, ...]] = set()
    for f in training.facts:
        for text in (f.question, *f.answers):
            words = _words(text)
            for n in range(1, min(MAX_SUBJECT_WORDS, len(words)) + 1):
                grams.update(words[i:i + n] for i in range(len(words) - n + 1))
    return {f.id for f in audit_facts if (w := _words(f.subject)) and w in grams}
