"""Synthetic facts for the semantic-overlap probe (METHOD.md §5): made-up subjects, real answers.

Every fact is a question of one relation (P17 by default, "Which country is [X] located in?",
its EntityQuestions template exactly) about a subject that does not exist, with an answer drawn
from the relation's real answer distribution. The subject ("key") is one of two kinds:

- **name-like** (`namelike`): a recombination of word tokens of the relation's real subjects in
  EntityQuestions, e.g. "Lac Shooting Cemetery". The number of words follows the real subjects'
  word counts, kept between 2 and 4 (so every key is a recombination, not a copied one-word name);
  the first word is drawn from real first words, the last from real last words, any middle word
  from real middle words, each by its frequency. A key equal to any real subject of any relation
  (all three splits) is drawn again, so a key never names a real entity.
- **UUID** (`uuid`): a random version-4 UUID, e.g. "3f2a91c0-77e4-4b1a-9d0e-5c6b7a8f9e01".

Which key and which answer fact i gets are drawn from separate seeded streams, so fact i has the
same answer under both kinds (only the key differs: "whatever the answers"), and the first n facts
of a longer list are exactly the facts of a shorter one, whatever sizes a run asks for.

**Keys a tokenizer cannot spell.** A word-level tokenizer (the toy world's) turns any word outside
its vocabulary into [UNK]. Name-like keys then use only words it can spell, and answers only
countries it can spell. A UUID group such as "3f2a91c0" is one unknown word to it, so for such a
tokenizer the 32 hex digits are written one token each, separated by spaces, with " - " between
the usual groups ("3 f 2 a 9 1 c 0 - 7 7 e 4 - ..."); a hex digit the vocabulary lacks as a
one-character token is written as another one-character token it has (so the key is still a
random string over 16 symbols). `key_spelling` reports which form a tokenizer gets.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from . import data
from .data import Fact
from .errors import FactbenchError

SYNTHETIC_VERSION = 1  # bump when the same seed would generate different facts
KEY_KINDS = {"namelike": "name-like", "uuid": "UUID"}
MIN_WORDS, MAX_WORDS = 2, 4
HEX = "0123456789abcdef"
# Stand-ins for hex digits a word-level vocabulary lacks as one-character tokens.
SPARE_SYMBOLS = "ghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
UUID_GROUPS = (8, 4, 4, 4, 12)


def check_kinds(kinds) -> tuple[str, ...]:
    kinds = tuple(kinds)
    bad = [k for k in kinds if k not in KEY_KINDS]
    if bad or not kinds:
        raise FactbenchError(f"unknown key kind(s) {', '.join(bad) or '(none)'}; choose from {', '.join(KEY_KINDS)}")
    return kinds


# ---- what a tokenizer can spell ---------------------------------------------------------------

def spellable(tokenizer) -> Callable[[str], bool]:
    """A test: does `tokenizer` encode the text without its unknown token? (Byte-level BPE always does.)"""
    unk = getattr(tokenizer, "unk_token_id", None)
    if tokenizer is None or unk is None:
        return lambda text: True
    memo: dict[str, bool] = {}

    def ok(text: str) -> bool:
        if text not in memo:
            memo[text] = unk not in tokenizer(text, add_special_tokens=False).input_ids
        return memo[text]

    return ok


def key_spelling(tokenizer) -> dict:
    """How UUID keys are written for this tokenizer: `uuid` (as is) or `spaced` (one token per digit)."""
    ok = spellable(tokenizer)
    probe = str(uuid.UUID(int=random.Random(0).getrandbits(128), version=4))
    if ok(f" {probe} ") and ok(HEX):
        return {"form": "uuid", "symbols": HEX}
    symbols = [c for c in HEX if ok(f" {c} ")]
    spares = iter(c for c in SPARE_SYMBOLS if c not in symbols and ok(f" {c} "))
    alphabet = "".join(c if c in symbols else next(spares, "") for c in HEX)
    if len(alphabet) < len(HEX) or not ok(" - "):
        raise FactbenchError("the tokenizer can spell neither UUIDs nor 16 one-character tokens separated by "
                             "spaces, so UUID keys would be [UNK]; use a model with a subword tokenizer")
    return {"form": "spaced", "symbols": alphabet}


# ---- the real data the keys and answers come from ---------------------------------------------

@cache
def real_subjects() -> frozenset[str]:
    """Every subject of every relation in every split: a name-like key must be none of them."""
    return frozenset(f.subject for split in data.SPLITS for f in data.load(split))


@cache
def _word_pools(relation: str) -> tuple[Counter, Counter, Counter, Counter]:
    """Word counts, first words, middle words and last words of the relation's real subjects."""
    lengths, first, middle, last = Counter(), Counter(), Counter(), Counter()
    for split in data.SPLITS:
        for f in data.load(split, [relation]):
            words = f.subject.split()
            lengths[len(words)] += 1
            if len(words) >= 2:
                first[words[0]] += 1
                last[words[-1]] += 1
                middle.update(words[1:-1])
    return lengths, first, middle, last


@cache
def _answer_counts(relation: str) -> Counter:
    return Counter(f.answers[0] for f in data.load("train", [relation]))


def _weighted(counts: Counter, ok: Callable[[str], bool]) -> tuple[list[str], list[int]]:
    items = sorted((w, c) for w, c in counts.items() if ok(w))  # sorted: the same draw on every machine
    return [w for w, _ in items], [c for _, c in items]


# ---- the facts ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class SyntheticFacts:
    """`n` facts of one key kind; `facts[i]` has the same answer for every kind and seed."""

    relation: str
    kind: str
    seed: int
    facts: tuple[Fact, ...]
    spelling: dict

    def describe(self) -> dict:
        return {"relation": self.relation, "keys": self.kind, "seed": self.seed, "n": len(self.facts),
                "version": SYNTHETIC_VERSION, "uuid_spelling": self.spelling if self.kind == "uuid" else None}


def generate(kind: str, n: int, *, relation: str = "P17", seed: int = 0, tokenizer=None) -> SyntheticFacts:
    """The first `n` synthetic facts of `kind` (deterministic in relation, seed and the tokenizer's vocabulary)."""
    check_kinds([kind])
    data.check_relations([relation])
    if n < 1:
        raise FactbenchError(f"the number of synthetic facts must be at least 1, got {n}")
    ok = spellable(tokenizer)
    spelling = key_spelling(tokenizer) if kind == "uuid" else {}
    keys = namelike_keys(n, relation, seed, ok) if kind == "namelike" else uuid_keys(n, seed, spelling)
    answers = draw_answers(n, relation, seed, ok)
    template = data.RELATIONS[relation][1]
    facts = tuple(
        Fact(id=f"{relation}/synthetic-{kind}/{i}", relation=relation, split=f"synthetic-{kind}", index=i,
             question=template.replace("[X]", key), answers=(answer,), subject=key, template=template)
        for i, (key, answer) in enumerate(zip(keys, answers, strict=True)))
    return SyntheticFacts(relation, kind, seed, facts, spelling)


def namelike_keys(n: int, relation: str, seed: int | str, ok: Callable[[str], bool] = lambda w: True) -> list[str]:
    lengths, first, middle, last = _word_pools(relation)
    pools = [_weighted(c, ok) for c in (first, middle or first, last)]
    if not all(words for words, _ in pools):
        raise FactbenchError(f"the tokenizer spells too few words of {relation}'s subjects to make name-like keys")
    length_choices = sorted(k for k in lengths if MIN_WORDS <= k <= MAX_WORDS)
    length_weights = [lengths[k] for k in length_choices]
    rng = random.Random(f"{seed}/{relation}/namelike")
    taken, real, keys = set(), real_subjects(), []
    attempts = 0
    while len(keys) < n:
        attempts += 1
        if attempts > 100 * n + 1000:
            raise FactbenchError(f"could not make {n} distinct name-like keys from {relation}'s subject words")
        k = rng.choices(length_choices, length_weights)[0]
        words = [rng.choices(*pools[0])[0], *(rng.choices(*pools[1])[0] for _ in range(k - 2)),
                 rng.choices(*pools[2])[0]]
        key = " ".join(words)
        if key not in real and key not in taken:
            taken.add(key)
            keys.append(key)
    return keys


def uuid_keys(n: int, seed: int | str, spelling: dict | None = None) -> list[str]:
    rng = random.Random(f"{seed}/uuid")
    spelling = spelling or {"form": "uuid", "symbols": HEX}
    keys = []
    for _ in range(n):
        key = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if spelling["form"] == "spaced":
            table = str.maketrans(HEX, spelling["symbols"])
            key = " - ".join(" ".join(group.translate(table)) for group in key.split("-"))
        keys.append(key)
    return keys


def draw_answers(n: int, relation: str, seed: int, ok: Callable[[str], bool] = lambda w: True) -> list[str]:
    answers, weights = _weighted(_answer_counts(relation), ok)
    if not answers:
        raise FactbenchError(f"the tokenizer spells none of {relation}'s answers")
    return random.Random(f"{seed}/{relation}/answers").choices(answers, weights, k=n)
