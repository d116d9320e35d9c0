"""The untrained base model's answers at a fine-tune's first evaluation point, kept and reused.

Every fine-tune of a study starts from the same base model and asks it the same questions before
its first step (epoch 0 of training_log.jsonl): the frontier study's 8 recipes x 3 seeds ask its
746 questions under two protocols 24 times, about 5 minutes each on one CPU thread. So the answers
are kept in the factbench cache (`$FACTBENCH_CACHE/base-answers/`, default ~/.cache/factbench),
under a key over everything that decides them:

- the model's weights as they are in memory (a sha256 of every tensor's name, dtype, shape and
  bytes), so a path that now holds other weights, or a base changed by a recipe, never matches;
- the tokenizer (its whole serialised form and its special tokens);
- every prompt, in order (the engine batches by shared prefix and length, so the order matters);
- the generation settings, and the engine with its batch size, dtype and device;
- the torch and transformers versions (their kernels decide greedy ties).

Only completions are kept: the grading (factbench.matching) is redone on every read. A file that
does not read as the answers to these prompts is ignored and written again; a cache that cannot be
written costs time, not results. `eval_reuse_base_answers: false` switches it off. The training
log row says which it was (`base_answers: reused` or `generated`).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from ..errors import WriteError
from ..files import cache_dir, read_dict, write_json

FOLDER = "base-answers"
SCHEMA = 1


def weights_sha256(model) -> str:
    """A sha256 of the model's weights as they are in memory (every tensor of its state dict)."""
    digest = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        # Bytes, not values: bf16 has no numpy dtype, and a uint8 view is exact for every dtype.
        digest.update(tensor.cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def tokenizer_sha256(tokenizer) -> str:
    backend = getattr(tokenizer, "backend_tokenizer", None)
    text = backend.to_str() if backend is not None else json.dumps(tokenizer.get_vocab(), sort_keys=True)
    special = json.dumps({"special": tokenizer.special_tokens_map, "pad": tokenizer.pad_token_id,
                          "padding_side": getattr(tokenizer, "padding_side", None)}, sort_keys=True, default=str)
    return hashlib.sha256((text + special).encode()).hexdigest()


class ReusingEngine:
    """An engine whose answers are read from the cache when the same model was asked the same prompts.

    Wrap the engine of an untrained base model only (the weights are hashed once, when it is made).
    `reused` / `generated` count the calls served each way.
    """

    def __init__(self, engine, folder: Path | None = None):
        self.engine = engine
        self.model = engine.model
        self.folder = Path(folder) if folder is not None else cache_dir() / FOLDER
        self.reused = self.generated = 0
        self._fixed = {"schema": SCHEMA, "weights": weights_sha256(engine.model),
                       "tokenizer": tokenizer_sha256(engine.tokenizer),
                       "engine": engine.describe() | {"batch_size": engine.batch_size}}
        self._fixed["engine"].pop("model", None)  # a name: the weights' hash says what the model is

    def key(self, prompts, params) -> str:
        record = self._fixed | {"params": repr(params), "prompts": list(prompts)}
        return hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()

    def generate(self, prompts, params) -> list[list[str]]:
        path = self.folder / f"{self.key(prompts, params)}.json"
        kept = _read(path, len(prompts), params.n)
        if kept is not None:
            self.reused += 1
            return kept
        completions = self.engine.generate(prompts, params)
        self.generated += 1
        try:
            write_json(path, {"schema": SCHEMA, "completions": completions})
        except (OSError, WriteError):  # an unwritable cache only means the next run generates again
            pass
        return completions


def _read(path: Path, prompts: int, n: int) -> list[list[str]] | None:
    """The kept completions, or None when the file is missing or is not `prompts` x `n` strings."""
    value = read_dict(path)
    if value is None or value.get("schema") != SCHEMA:
        return None
    completions = value.get("completions")
    if (not isinstance(completions, list) or len(completions) != prompts
            or not all(isinstance(c, list) and len(c) == n and all(isinstance(t, str) for t in c) for c in completions)):
        return None
    return completions
