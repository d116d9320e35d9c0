"""How a toy world learns its facts: its word-level tokenizer, its model, its pre-training.

Pre-training documents look exactly like few-shot prompts (`Q: ...\\nA: ...` lines of one
relation), so the model learns the answer format along with the facts. The tokenizer is
word-level (each word, space, punctuation mark and newline is one token), built offline from
every word of the world's facts and of the dev rows the prompt exemplars come from.
"""

from __future__ import annotations

import math
import random
from collections import Counter
from collections.abc import Iterator, Sequence

from .. import data, prompts
from ..data import Fact
from .world import ToyWorldConfig

WORD_PATTERN = r"\w+|[^\w]"  # a word, or any single other character (space, "\n", "?", ...)
PAD, UNK, EOS = "[PAD]", "[UNK]", "<|endoftext|>"


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
