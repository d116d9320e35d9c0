"""The toy world: a tiny language model whose knowledge we decide.

Real base models know an unknown mix of facts, and probing them takes GPU time. For fast tests
and the offline demo, factbench instead builds a small GPT-2-style model from scratch, on the
CPU, in minutes (the `tiny` preset: seconds), and pre-trains it on a chosen set of
EntityQuestions facts:

- the **known** facts are in its pre-training data, so it answers them under the usual 4-shot
  prompt (greedy recall is measured and recorded);
- the **unknown** facts never are: they are the "new facts" later fine-tuning teaches it, and
  the yardstick for how much it forgets of the known ones meanwhile.

Pre-training documents look exactly like few-shot prompts (`Q: ...\\nA: ...` lines of one
relation), so the model learns the answer format along with the facts. Its tokenizer is
word-level (each word, space, punctuation mark and newline is one token), built offline from
every word of the world's facts and of the dev rows the prompt exemplars come from; text
outside that vocabulary becomes [UNK], so the world only makes sense for its own facts.

The result is a plain Hugging Face folder (GPT2LMHeadModel + PreTrainedTokenizerFast) plus
`world.json`, which records the config, the known and unknown fact ids and the measured recall.
`toy_world(config)` caches builds by a hash of the config.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from . import data, files, matching, prompts
from .data import Fact
from .errors import FactbenchError
from .protocol import MAX_NEW_TOKENS, generation_params

# Bump when a change to this module changes what a given config builds, so that old cached
# worlds are not mistaken for new ones.
TOYWORLD_VERSION = 1

ARCHS = ("gpt2", "llama")
WORD_PATTERN = r"\w+|[^\w]"  # a word, or any single other character (space, "\n", "?", ...)
PAD, UNK, EOS = "[PAD]", "[UNK]", "<|endoftext|>"
RECALL_SHOTS = prompts.DEFAULT_SHOTS
RECALL_MAX_NEW_TOKENS = MAX_NEW_TOKENS  # recall is asked under the question protocol
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

    def load_model(self):
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.model_dir)

    def load_tokenizer(self):
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(self.model_dir)


# ---------------------------------------------------------------------------------------------
# Facts


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


# ---------------------------------------------------------------------------------------------
# Tokenizer


def build_tokenizer(texts: Sequence[str], max_length: int):
    """A word-level tokenizer whose vocabulary is every word and character of `texts`.

    Every word, space, punctuation mark and newline is its own token and decoding just joins
    tokens, so any text made of known words decodes back to itself exactly.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    splitter = pre_tokenizers.Split(Regex(WORD_PATTERN), behavior="isolated")
    counts = Counter(piece for text in texts for piece, _ in splitter.pre_tokenize_str(text))
    # Most frequent first, ties alphabetical: the same texts always give the same ids.
    words = sorted(counts, key=lambda w: (-counts[w], w))
    vocab = {w: i for i, w in enumerate([PAD, UNK, EOS, *words])}
    core = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
    core.pre_tokenizer = splitter
    core.decoder = decoders.Fuse()
    core.add_special_tokens([PAD, UNK, EOS])
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        pad_token=PAD,
        unk_token=UNK,
        eos_token=EOS,
        model_max_length=max_length,
        # Hugging Face's default clean-up deletes the space before "?" or "'s": that would break
        # the exact round trip this tokenizer exists for.
        clean_up_tokenization_spaces=False,
    )


# ---------------------------------------------------------------------------------------------
# Pre-training


def pretraining_documents(config: ToyWorldConfig, known: Sequence[Fact], rng: random.Random) -> Iterator[str]:
    """Endless prompt-shaped documents: every known fact once per pass, passes reshuffled.

    Each document holds `facts_per_document - dev_per_document` known facts of one relation and
    `dev_per_document` dev rows of it, in random order, one `Q: ...\\nA: ...` example per line.
    Passes rather than sampling with replacement, so that every fact is seen equally often.
    """
    dev = {r: data.load("dev", [r]) for r in config.relations}
    per_doc = config.facts_per_document - config.dev_per_document
    by_relation = {r: [f for f in known if f.relation == r] for r in config.relations}
    while True:
        chunks = []
        for r, facts in by_relation.items():
            facts = facts[:]
            rng.shuffle(facts)
            chunks += [(r, facts[i : i + per_doc]) for i in range(0, len(facts), per_doc)]
        rng.shuffle(chunks)
        for r, chunk in chunks:
            examples = chunk + rng.sample(dev[r], min(config.dev_per_document, len(dev[r])))
            rng.shuffle(examples)
            yield "".join(prompts.format_example(f.question, f.answers[0]) + "\n" for f in examples)


def pretrain(model, tokenizer, config: ToyWorldConfig, known: Sequence[Fact], progress=None) -> list[float]:
    """Plain next-token training on every token of the documents; returns the loss per step."""
    import torch

    rng = random.Random(f"toyworld/{config.seed}/documents")
    documents = pretraining_documents(config, known, rng)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=config.lr,
        betas=(0.9, 0.95),
    )

    def lr_factor(step: int) -> float:
        if step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        done = (step - config.warmup_steps) / max(1, config.steps - config.warmup_steps)
        return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * done))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
    model.train()
    losses = []
    for step in range(config.steps):
        batch = tokenizer(
            [next(documents) for _ in range(config.batch_size)],
            padding=True,
            truncation=True,
            return_tensors="pt",
        )
        loss = _next_token_loss(model, batch.input_ids, batch.attention_mask)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
        if progress:
            progress(step, loss.item())
    model.eval()
    return losses


def _next_token_loss(model, input_ids, attention_mask):
    """Mean cross-entropy of every real (non-padding) next token.

    The same loss as `model(..., labels=...)`, but the output layer only runs on real tokens: with
    a word-level vocabulary it is most of the compute, and padding is about a fifth of a batch.
    """
    import torch.nn.functional as F

    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    real = attention_mask[:, 1:].bool()
    logits = model.lm_head(hidden[:, :-1][real])
    return F.cross_entropy(logits, input_ids[:, 1:][real])


# ---------------------------------------------------------------------------------------------
# Recall


def recall(model, tokenizer, facts: Sequence[Fact]) -> float:
    """Share of facts answered right (normalised exact match) under 4-shot prompt 0, greedy."""
    from .engines import engine_for

    if not facts:
        return float("nan")
    # fp32 on purpose: the engine would pick bf16 on some CPUs, and change the model in place.
    engine = engine_for(model, tokenizer, dtype="float32", device="cpu")
    params = generation_params()
    completions = engine.generate([prompts.build_prompt(f, 0, k=RECALL_SHOTS) for f in facts], params)
    return sum(matching.exact_match(c[0], f.answers) for c, f in zip(completions, facts, strict=True)) / len(facts)


# ---------------------------------------------------------------------------------------------
# Building, loading, caching


def build_toy_world(out_dir: str | os.PathLike, config: ToyWorldConfig | None = None, progress=None) -> ToyWorld:
    """Build a toy world into `out_dir` (created; must not hold a world already)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaForCausalLM

    config = config or ToyWorldConfig.default()
    out = Path(out_dir)
    if (out / "world.json").exists():
        raise FactbenchError(f"{out} already holds a toy world; choose an empty folder")
    started = time.perf_counter()
    known, unknown = choose_facts(config)
    dev = data.load("dev", config.relations)
    tokenizer = build_tokenizer(
        [prompts.format_example(f.question, a) + "\n" for f in [*known, *unknown, *dev] for a in f.answers],
        max_length=config.n_positions,
    )
    # Fail before training, not after: the recall prompts (as long as the training documents)
    # plus the answer must fit the model's positions.
    longest = max(len(tokenizer(prompts.build_prompt(f, 0, k=RECALL_SHOTS)).input_ids) for f in [*known, *unknown])
    if longest + RECALL_MAX_NEW_TOKENS > config.n_positions:
        raise FactbenchError(
            f"toy world: n_positions {config.n_positions} is too small for {RECALL_SHOTS}-shot prompts of up to "
            f"{longest} tokens plus a {RECALL_MAX_NEW_TOKENS}-token answer"
        )
    model_config = model_config_for(config, tokenizer) if config.arch != "gpt2" else GPT2Config(
        vocab_size=len(tokenizer),
        n_positions=config.n_positions,
        n_embd=config.n_embd,
        n_layer=config.n_layer,
        n_head=config.n_head,
        # Memorising facts is the point, and dropout would only slow it down.
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        initializer_range=config.init_std,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    # fork_rng: the build is seeded, but must not reseed the caller's global torch generator.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = GPT2LMHeadModel(model_config) if config.arch == "gpt2" else LlamaForCausalLM(model_config)
        losses = pretrain(model, tokenizer, config, known, progress)
    trained = time.perf_counter()
    known_recall = recall(model, tokenizer, known)
    unknown_recall = recall(model, tokenizer, unknown)

    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    info = {
        "factbench_version": _factbench_version(),
        "torch_version": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "parameters": sum(p.numel() for p in model.parameters()),
        "vocab_size": len(tokenizer),
        "final_loss": losses[-1],
        "train_seconds": round(trained - started, 2),
        "build_seconds": round(time.perf_counter() - started, 2),
    }
    world = ToyWorld(out, config, tuple(f.id for f in known), tuple(f.id for f in unknown), known_recall, unknown_recall, info)
    # world.json goes last: a folder with it is a complete world.
    files.write_json(out / "world.json", _world_record(world))
    return world


def model_config_for(config: ToyWorldConfig, tokenizer):
    """A Llama-style model (rotary positions, gated MLP): a fact learned at one position of a
    sequence is recalled at another, which learned absolute positions (GPT-2) do not give a model
    this small. Fine-tuning examples start at position 0, but evaluation asks 4-shot, far later."""
    from transformers import LlamaConfig

    return LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=config.n_embd,
        intermediate_size=4 * config.n_embd,
        num_hidden_layers=config.n_layer,
        num_attention_heads=config.n_head,
        num_key_value_heads=config.n_head,
        max_position_embeddings=config.n_positions,
        initializer_range=config.init_std,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.eos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


def load_toy_world(out_dir: str | os.PathLike) -> ToyWorld:
    folder = Path(out_dir)
    try:
        record = json.loads((folder / "world.json").read_text())
    except FileNotFoundError:
        raise FactbenchError(f"{folder} is not a toy world (no world.json)") from None
    except (OSError, ValueError) as e:
        raise FactbenchError(f"cannot read {folder / 'world.json'}: {e}") from None
    return ToyWorld(
        model_dir=folder,
        config=ToyWorldConfig.from_dict(record["config"]),
        known_ids=tuple(record["known_ids"]),
        unknown_ids=tuple(record["unknown_ids"]),
        known_recall=record["recall"]["known"],
        unknown_recall=record["recall"]["unknown"],
        info=record.get("info", {}),
    )


def toy_world(config: ToyWorldConfig | None = None, cache_dir: str | os.PathLike | None = None, progress=None) -> ToyWorld:
    """The toy world for `config`, built on first use and then loaded from the cache.

    Worlds live in `<cache>/toyworld/<config hash>` (cache: `cache_dir`, else $FACTBENCH_CACHE,
    else ~/.cache/factbench). A build happens in a temporary folder beside its final place and
    is moved there in one step, so an interrupted build never leaves a folder that looks complete.
    """
    config = config or ToyWorldConfig.default()
    folder = Path(cache_dir or files.cache_dir()) / "toyworld" / config.hash()
    if not (folder / "world.json").is_file():
        with files.atomic_path(folder) as tmp:
            build_toy_world(tmp, config, progress)
    return load_toy_world(folder)


def _world_record(world: ToyWorld) -> dict:
    return {
        "toyworld_version": TOYWORLD_VERSION,
        "config": world.config.to_dict(),
        "config_hash": world.config.hash(),
        "known_ids": list(world.known_ids),
        "unknown_ids": list(world.unknown_ids),
        "recall": {
            "known": world.known_recall,
            "unknown": world.unknown_recall,
            "how": f"greedy, {RECALL_SHOTS}-shot prompt 0 ({prompts.PROMPT_VERSION}), stop at newline, "
            f"at most {RECALL_MAX_NEW_TOKENS} new tokens, exact match ({matching.MATCHING_VERSION})",
        },
        "info": world.info,
    }


def _factbench_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("factbench")
    except PackageNotFoundError:
        return None
