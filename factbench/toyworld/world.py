"""A toy world's settings (`ToyWorldConfig`), the built world (`ToyWorld`) and its facts.

Which EntityQuestions facts a world knows is decided here (`choose_facts`): a seeded draw from the
train split, spread evenly over the world's relations; the held-back (unknown) facts share no
subject with the known ones. How the model learns them is pretraining.py; building, loading and
caching a world is build.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import Counter
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .. import data
from ..data import Fact
from ..errors import FactbenchError

# Bump when a change to the toy world's code changes what a given config builds, so that old
# cached worlds are not mistaken for new ones.
TOYWORLD_VERSION = 1

ARCHS = ("gpt2", "llama")
PRESETS = ("default", "tiny", "demo")
_AT_LEAST_ONE = ("n_known", "facts_per_document", "n_layer", "n_embd", "n_head", "n_positions", "steps", "batch_size")
_AT_LEAST_ZERO = ("n_unknown", "dev_per_document", "warmup_steps")


@dataclass(frozen=True)
class ToyWorldConfig:
    """How to build a toy world.

    Facts:
        relations: EntityQuestions relations the world's facts come from. The defaults avoid
            relations where a model can guess facts it never saw: P495 (70% of answers are
            "United States of America") and P36 (41% of answers are spelled out in the
            question). Every relation's dev rows join the vocabulary, and its word list is most
            of the compute, so relations with few dev rows (P800) are cheap.
        n_known: facts in pre-training, drawn from the train split, spread evenly over relations.
        n_unknown: facts held back from pre-training (disjoint from the known ones in subject).
        seed: draws the facts, initialises the model and orders the pre-training documents.

    Pre-training documents (each is `facts_per_document` examples of one relation):
        facts_per_document: examples per document, as in a k-shot prompt.
        dev_per_document: how many of them are dev rows (the prompts' exemplars) rather than
            known facts. 0 (the default) trains on known facts only: the model then ignores the
            exemplars it has never seen, and learns its facts in fewer steps than with dev rows.

    Model (GPT-2 architecture): n_layer, n_embd, n_head, n_positions (longest sequence), and
        init_std, the initial weights' standard deviation. GPT-2's 0.02 leaves a model this
        small stuck for hundreds of steps before it starts recalling facts; 0.06 does not.
        (0.1 was worse again, and so were widths below 128.)

    Optimisation (AdamW, linear warm-up then cosine decay to 10%): steps, batch_size (documents
    per step), lr, warmup_steps, weight_decay.
    """

    relations: tuple[str, ...] = ("P17", "P19", "P69", "P800")
    n_known: int = 2000
    n_unknown: int = 500
    seed: int = 0

    facts_per_document: int = 5
    dev_per_document: int = 0

    arch: str = "gpt2"
    n_layer: int = 1
    n_embd: int = 128
    n_head: int = 2
    n_positions: int = 256
    init_std: float = 0.06

    steps: int = 1000
    batch_size: int = 16
    lr: float = 3e-3
    warmup_steps: int = 50
    weight_decay: float = 0.0

    @classmethod
    def default(cls) -> ToyWorldConfig:
        """A few thousand facts, >90% recall, a few CPU minutes: the demo's base model."""
        return cls()

    @classmethod
    def tiny(cls) -> ToyWorldConfig:
        """150 known facts in seconds on one thread: the tests' base model."""
        # Small batches: a model this size learns its facts in fewer tokens with more, smaller
        # steps (4 x 500 reached 99% recall where 8 x 300 reached 92% and 4 x 300 failed).
        return cls(relations=("P69", "P800"), n_known=150, n_unknown=100, steps=500, batch_size=4)

    @classmethod
    def demo(cls) -> ToyWorldConfig:
        """The `factbench demo --world toy` base model: a Llama-style world built in about a minute."""
        return cls(relations=("P69", "P800"), n_known=150, n_unknown=100, steps=500, batch_size=4, arch="llama",
                   n_layer=2, n_head=4)

    @classmethod
    def preset(cls, name: str) -> ToyWorldConfig:
        if name not in PRESETS:
            raise FactbenchError(f"unknown toy world preset {name!r}; choose one of {', '.join(PRESETS)}")
        return getattr(cls, name)()

    def __post_init__(self):
        object.__setattr__(self, "relations", tuple(self.relations))
        try:
            data.check_relations(self.relations)
        except FactbenchError as e:
            raise FactbenchError(f"toy world: {e}") from None
        if len(set(self.relations)) != len(self.relations):
            raise FactbenchError(f"toy world: relations repeat in {', '.join(self.relations)}")
        for name, least in [*((n, 1) for n in _AT_LEAST_ONE), *((n, 0) for n in _AT_LEAST_ZERO)]:
            value = getattr(self, name)
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= least):
                raise FactbenchError(f"toy world: {name} must be a whole number >= {least}, got {value!r}")
        for name, value, zero_ok in (("lr", self.lr, False), ("init_std", self.init_std, False),
                                     ("weight_decay", self.weight_decay, True)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and (value > 0 or zero_ok and value == 0)):
                raise FactbenchError(f"toy world: {name} must be a number {'>= 0' if zero_ok else 'above 0'}, got {value!r}")
        if self.dev_per_document >= self.facts_per_document:
            raise FactbenchError(
                f"toy world: dev_per_document ({self.dev_per_document}) must leave room for known facts "
                f"in a document of {self.facts_per_document}"
            )
        if self.arch not in ARCHS:
            raise FactbenchError(f"toy world: arch must be one of {', '.join(ARCHS)}, got {self.arch!r}")
        if self.n_embd % self.n_head:
            raise FactbenchError(f"toy world: n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")

    def to_dict(self) -> dict:
        return asdict(self) | {"relations": list(self.relations)}

    @classmethod
    def from_dict(cls, d: dict) -> ToyWorldConfig:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise FactbenchError(f"toy world: unknown config setting(s) {', '.join(unknown)}")
        return cls(**{**d, "relations": tuple(d.get("relations", cls.relations))})

    def hash(self) -> str:
        """Identifies what this config builds (with this version of the toy world code)."""
        d = self.to_dict()
        if d["arch"] == "gpt2":
            del d["arch"]  # worlds built before `arch` existed keep their hash (and their cache entry)
        blob = json.dumps({"toyworld_version": TOYWORLD_VERSION, **d}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ToyWorld:
    """A built toy world: a Hugging Face model folder plus what it knows."""

    model_dir: Path  # a transformers model folder; world.json lies beside the weights
    config: ToyWorldConfig
    known_ids: tuple[str, ...]
    unknown_ids: tuple[str, ...]
    known_recall: float  # greedy 4-shot exact match on the known facts, measured after the build
    unknown_recall: float  # the same on the unknown facts (near zero: they were never seen)
    info: dict = field(default_factory=dict, compare=False)  # build time, sizes, versions

    @property
    def known(self) -> list[Fact]:
        return data.get(self.known_ids)

    @property
    def unknown(self) -> list[Fact]:
        return data.get(self.unknown_ids)

    def load(self):
        """Model and tokenizer, loaded like any other model folder (`factbench.models.load`)."""
        from .. import models

        return models.load(str(self.model_dir))

    def load_model(self):
        return self.load().model

    def load_tokenizer(self):
        from .. import models

        return models.load(str(self.model_dir), weights=False).tokenizer



def choose_facts(config: ToyWorldConfig) -> tuple[list[Fact], list[Fact]]:
    """The known and unknown facts: seeded, spread evenly over relations, train split only."""
    dev_questions = {f.question for f in data.load("dev", config.relations)}
    train = data.load("train", config.relations)
    # A question asked twice (with different answers) or also used as a dev exemplar would make
    # a fact ambiguous, so such questions are never part of the world.
    counts = Counter(f.question for f in train)
    usable = [f for f in train if counts[f.question] == 1 and f.question not in dev_questions]
    rng = random.Random(f"toyworld/{config.seed}")
    by_relation = {r: [f for f in usable if f.relation == r] for r in config.relations}
    for pool in by_relation.values():
        rng.shuffle(pool)

    known = _spread(by_relation, config.n_known, taken_subjects=set())
    # Disjoint in subject, not only in fact: a new fact about a known subject would be an edit of
    # known knowledge, not new knowledge.
    unknown = _spread(by_relation, config.n_unknown, taken_subjects={f.subject for f in known})
    return known, unknown


def _spread(pools: dict[str, list[Fact]], n: int, taken_subjects: set[str]) -> list[Fact]:
    """n facts taken round-robin over relations, skipping subjects in `taken_subjects`."""
    pools = {r: [f for f in pool if f.subject not in taken_subjects] for r, pool in pools.items()}
    needed = {r: n // len(pools) + (i < n % len(pools)) for i, r in enumerate(pools)}
    for r, k in needed.items():
        if len(pools[r]) < k:
            raise FactbenchError(f"toy world: relation {r} has only {len(pools[r])} usable train facts, {k} needed")
    return [f for r, k in needed.items() for f in pools[r][:k]]
