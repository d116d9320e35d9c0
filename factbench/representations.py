"""How a model represents a question's subject, at a middle layer: the measure behind drift and overlap.

A subject's representation is the **mean over the subject's tokens** of one layer's hidden states,
with the subject read inside its question as training shows it (`Q: {question}`). Mean-pooling
rather than the last subject token: a name-like key and a real name share *some* of their tokens,
and the mean sees every one of them; for a one-token subject the two are the same. In a causal
model a token's state depends only on the tokens before it, so what follows the subject plays no
part.

The layer is `hidden_states[L]` of transformers' `output_hidden_states` (0 = the embeddings,
L = the output of block L), by default the middle block, `max(1, layers // 2)` (block 15 of
SmolLM2-135M's 30; block 1 of a one-block toy world, whose last output GPT-2 returns after its
final layer norm).

- **drift** of a fact = 1 − cos(base representation, fine-tuned representation) of its subject:
  0 for an unchanged model, larger the more training moved how the model reads that entity.
- **similarity** of two subjects = cos of their representations under one model.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from . import data
from .errors import FactbenchError
from .prompts import format_example

DEFAULT_BATCH_SIZE = 32


def layer_count(model) -> int:
    """Transformer blocks of a model (or of its config)."""
    config = getattr(model, "config", model)
    return int(getattr(config, "num_hidden_layers", 0) or getattr(config, "n_layer", 0))


def middle_layer(model) -> int:
    return max(1, layer_count(model) // 2)


def check_layer(model, layer: int | None) -> int:
    """The layer to read: `layer`, or the middle one; an index outside the model (or config) is one clear error."""
    n = layer_count(model)
    if layer is None:
        return middle_layer(model)
    if not 0 <= layer <= n:
        raise FactbenchError(f"layer {layer} does not exist: the model has layers 0 (embeddings) to {n}")
    return layer


def subject_span(question: str, subject: str) -> tuple[int, int]:
    """Where `subject` sits in `question` (characters): by the relation's template when one fits."""
    for _, template in data.RELATIONS.values():
        try:
            if data.subject_of(question, template) == subject:
                start = len(template.split("[X]")[0])
                return start, start + len(subject)
        except FactbenchError:  # not this relation's question
            continue
    start = question.find(subject) if subject else -1
    if start < 0:
        raise FactbenchError(f"subject {subject!r} does not occur in question {question!r}")
    return start, start + len(subject)


def text_and_span(question: str, subject: str) -> tuple[str, tuple[int, int]]:
    """The text a subject is read in, `Q: {question}`, and the subject's character span in it."""
    example = format_example(question, "")
    offset = example.index(question)  # after "Q: "
    start, end = subject_span(question, subject)
    return example[:offset + len(question)], (offset + start, offset + end)


@torch.no_grad()
def subject_states(model, tokenizer, items: Sequence[tuple[str, str]], layer: int | None = None,
                   batch_size: int = DEFAULT_BATCH_SIZE, progress: str | None = None) -> torch.Tensor:
    """One float32 vector per (question, subject): the mean of layer `layer` over the subject's tokens.

    `progress`, when given, is the label of a progress bar (on stderr).
    """
    from tqdm.auto import tqdm

    if not getattr(tokenizer, "is_fast", False):
        raise FactbenchError("subject representations need a fast tokenizer (character offsets)")
    layer = check_layer(model, layer)
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    encoded = [_encode(tokenizer, *text_and_span(q, s)) for q, s in items]
    out = []
    starts = range(0, len(encoded), batch_size)
    for start in tqdm(starts, desc=progress, unit="batch", disable=progress is None, leave=False, dynamic_ncols=True):
        chunk = encoded[start:start + batch_size]
        width = max(len(ids) for ids, _ in chunk)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        attention = torch.zeros((len(chunk), width), dtype=torch.long)
        pool = torch.zeros((len(chunk), width), dtype=torch.float32)
        for i, (row, (a, b)) in enumerate(chunk):
            ids[i, :len(row)] = torch.tensor(row)  # right padding: real tokens keep positions 0..n-1
            attention[i, :len(row)] = 1
            pool[i, a:b] = 1.0 / (b - a)
        hidden = model(input_ids=ids.to(param.device), attention_mask=attention.to(param.device),
                       output_hidden_states=True, use_cache=False).hidden_states[layer]
        out.append(torch.einsum("bt,btd->bd", pool.to(param.device), hidden.float()).cpu())
    model.train(was_training)
    return torch.cat(out) if out else torch.zeros((0, 0))


def _encode(tokenizer, text: str, span: tuple[int, int]) -> tuple[list[int], tuple[int, int]]:
    """Token ids of `text` and the token range [a, b) that overlaps the subject's characters."""
    enc = tokenizer(text, return_offsets_mapping=True)
    hits = [i for i, (s, e) in enumerate(enc["offset_mapping"]) if s < span[1] and e > span[0] and e > s]
    if not hits:
        raise FactbenchError(f"no token of {text!r} covers its subject")
    return list(enc["input_ids"]), (hits[0], hits[-1] + 1)


def drift(before: torch.Tensor, after: torch.Tensor) -> list[float]:
    """1 − cos per row: how far each subject's representation moved."""
    if before.shape != after.shape:
        raise ValueError(f"representations of different shapes: {tuple(before.shape)} vs {tuple(after.shape)}")
    return (1 - torch.nn.functional.cosine_similarity(before.double(), after.double(), dim=-1)).clamp(min=0).tolist()


def max_similarity(queries: torch.Tensor, keys: torch.Tensor) -> list[float]:
    """For each query vector, its highest cosine similarity to any key vector."""
    if len(keys) == 0:
        raise FactbenchError("no known subjects to compare with")
    q = torch.nn.functional.normalize(queries.double(), dim=-1)
    k = torch.nn.functional.normalize(keys.double(), dim=-1)
    return (q @ k.T).max(dim=1).values.tolist()
