"""Answer normalisation and matching.

Two scores, always computed and reported separately (never mixed in one number):

- `exact_match` (the primary score): the normalised completion equals a normalised gold answer.
- `contains` (a named secondary variant): a normalised gold answer appears in the normalised
  completion as a run of whole words, so "Paris, France" contains "Paris" but "Iranian" does
  not contain "Iran".

Normalisation is SQuAD's (lowercase, drop punctuation, drop the articles a/an/the, collapse
whitespace) with two Unicode-aware changes, because EntityQuestions is full of non-ASCII names:
text is NFKC-normalised first (composed and decomposed accents compare equal), and every Unicode
punctuation character counts as punctuation, not only ASCII's. Accents themselves are kept:
"Malmö" and "Malmo" are different answers.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

MATCHING_VERSION = "squad-nfkc-1"
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def _is_punctuation(ch: str) -> bool:
    return unicodedata.category(ch).startswith("P")


def normalize_answer(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if _is_punctuation(ch) else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, answers: Iterable[str]) -> bool:
    pred = normalize_answer(prediction)
    return any(pred == normalize_answer(a) for a in answers)


def contains(prediction: str, answers: Iterable[str]) -> bool:
    pred = f" {normalize_answer(prediction)} "
    return any((gold := normalize_answer(a)) and f" {gold} " in pred for a in answers)


def cut_at_stop(completion: str, stop: Sequence[str] = ("\n",)) -> str:
    """The completion up to the first stop string, without surrounding whitespace."""
    end = len(completion)
    for s in stop:
        i = completion.find(s)
        if i != -1:
            end = min(end, i)
    return completion[:end].strip()
