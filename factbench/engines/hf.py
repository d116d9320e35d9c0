"""Batched transformers generation, tuned for few-shot probing on CPUs (works on GPUs too).

What makes it fast compared with one `model.generate` per prompt:

1. **Shared-prefix reuse.** Prompts are tokenised, sorted, and grouped by their longest common
   token prefix (all questions of a relation under one exemplar set share ~80 prefix tokens).
   The prefix is run through the model once; every batch of the group starts from a copy of its
   KV cache and only encodes its own question. Grouping works on token ids, so it never changes
   the tokens a prompt is made of.
2. **Length-sorted batches** inside a group, so padding is minimal.
3. **Early exit per row.** Rows that hit a stop string or EOS leave the batch (their KV cache rows
   are dropped), so a batch of 2-token answers does not run 16 steps at full width.
4. **bf16 on CUDA** by default; on CPUs fp32 unless `dtype="bfloat16"` (faster, but it changes a
   few percent of greedy answers: see BENCHMARKS.md).

Sampling uses one seeded `torch.Generator` per (prompt, sample), so the same prompt gets the same
samples whatever batch or order it is in.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from tqdm.auto import tqdm

from .. import threads
from ..errors import FactbenchError
from ..matching import cut_at_stop
from .base import GenerationParams, check_prompts

DEFAULT_BATCH_SIZE = 32
# A shared prefix shorter than this is not worth a separate forward pass and cache copies.
MIN_SHARED_PREFIX = 8


def pick_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """'auto' is bf16 on CUDA and fp32 on CPUs.

    On this project's 2-core CPU bf16 answered 2x faster than fp32 but changed 7% of greedy answers
    (BENCHMARKS.md); answers are what factbench measures, so CPUs use fp32 unless asked otherwise.
    """
    if dtype == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    try:
        return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16,
                "bf16": torch.bfloat16, "float16": torch.float16, "fp16": torch.float16}[dtype]
    except KeyError:
        raise FactbenchError(f"unknown dtype {dtype!r}; use auto, float32, bfloat16 or float16") from None


def cpu_has_amx() -> bool:
    """Reported by the benchmarks: AMX is what makes bf16 several times faster on Intel CPUs."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return " amx_bf16" in flags


@dataclass
class _Row:
    """One (prompt, sample) to generate."""

    prompt: int  # index into the prompt list
    sample: int
    ids: list[int]
    generator: torch.Generator | None


def shared_prefix_groups(token_ids: Sequence[Sequence[int]], min_prefix: int = MIN_SHARED_PREFIX) -> list[tuple[int, list[int]]]:
    """Group prompts by a shared token prefix.

    Returns [(prefix_length, [prompt indices])]. Each prefix leaves at least one token of every
    member's own, so each member still has something to encode. Prompts that share less than
    `min_prefix` tokens with any other form one group with prefix_length 0.
    """
    order = sorted(range(len(token_ids)), key=lambda i: token_ids[i])
    groups: list[tuple[int, list[int]]] = []
    current: list[int] = []
    current_lcp = 0
    for i in order:
        if current:
            lcp = min(current_lcp, _common_prefix(token_ids[current[0]], token_ids[i]))
            if lcp >= min_prefix:
                current.append(i)
                current_lcp = lcp
                continue
            groups.append((current_lcp, current))
        current, current_lcp = [i], len(token_ids[i])
    groups.append((current_lcp, current))
    out, unshared = [], []
    for lcp, members in groups:
        lcp = min(lcp, min(len(token_ids[i]) for i in members) - 1)
        if lcp >= min_prefix and len(members) > 1:
            out.append((lcp, members))
        else:
            unshared.extend(members)  # batched together, each encoding its whole prompt
    if unshared:
        out.append((0, sorted(unshared)))
    return out


def _common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    n = min(len(a), len(b))
    i = 0
    while i < n and a[i] == b[i]:
        i += 1
    return i


def _seed_for(seed: int, prompt: str, sample: int) -> int:
    digest = hashlib.sha256(f"{seed}\0{sample}\0{prompt}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


class HFEngine:
    """Generation with a transformers causal LM already in memory."""

    name = "hf"

    def __init__(self, model, tokenizer, *, batch_size: int = DEFAULT_BATCH_SIZE, dtype: str = "auto",
                 device: str | None = None, progress: bool = True, model_identity: dict | None = None):
        if batch_size < 1:
            raise FactbenchError(f"batch size must be at least 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = pick_dtype(dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.batch_size = batch_size
        self.progress = progress
        self.model_identity = model_identity or {"name": getattr(model.config, "_name_or_path", "?")}
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        if self.pad_id is None:
            self.pad_id = 0  # padded positions are masked out, any id works
        self.eos_ids = _eos_ids(model, tokenizer)
        # transformers 5.2x renamed the forward argument `past_key_values` to `cache`.
        forward_args = inspect.signature(model.forward).parameters
        self._cache_kwarg = "cache" if "cache" in forward_args else "past_key_values"
        # Only the last position's logits are needed; the LM head over every prompt position
        # would cost as much as the rest of the model for a 49k vocabulary.
        self._last_logits = {"logits_to_keep": 1} if "logits_to_keep" in forward_args else {}
        self._stop_token_cache: dict[tuple[str, ...], list[bool]] = {}

    def describe(self) -> dict:
        import transformers

        return {
            "engine": self.name,
            "model": self.model_identity,
            "dtype": str(self.dtype).removeprefix("torch."),
            "device": self.device.type,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
        }

    # ---- public API -------------------------------------------------------------------------

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], params: GenerationParams) -> list[list[str]]:
        prompts = check_prompts(prompts)
        threads.announce()
        token_ids = [self.tokenizer(p).input_ids for p in prompts]
        results: list[list[str | None]] = [[None] * params.n for _ in prompts]
        bar = tqdm(total=len(prompts) * params.n, desc="generating", unit="answer", disable=not self.progress,
                   leave=False, dynamic_ncols=True)
        for prefix_len, members in shared_prefix_groups(token_ids):
            rows = [
                _Row(i, j, token_ids[i][prefix_len:], None if params.greedy else
                     torch.Generator().manual_seed(_seed_for(params.seed, prompts[i], j)))
                for i in members for j in range(params.n)
            ]
            rows.sort(key=lambda r: len(r.ids))
            prefix_cache = self._encode_prefix(token_ids[members[0]][:prefix_len]) if prefix_len else None
            for start in range(0, len(rows), self.batch_size):
                batch = rows[start:start + self.batch_size]
                for row, text in zip(batch, self._generate_batch(batch, prefix_len, prefix_cache, params)):
                    results[row.prompt][row.sample] = text
                bar.update(len(batch))
        bar.close()
        return results  # type: ignore[return-value]

    # ---- internals --------------------------------------------------------------------------

    def _encode_prefix(self, prefix: list[int]):
        ids = torch.tensor([prefix], device=self.device)
        return _cache_of(self.model(input_ids=ids, use_cache=True, **self._last_logits))

    def _generate_batch(self, batch: list[_Row], prefix_len: int, prefix_cache, params: GenerationParams) -> list[str]:
        # The n samples of a prompt share its tokens: encode each distinct prompt once, then
        # copy its cache rows, so sampling 16 answers costs one prompt encoding, not 16.
        distinct = list(dict.fromkeys(r.prompt for r in batch))
        encode = [next(r for r in batch if r.prompt == p) for p in distinct]
        width = max(len(r.ids) for r in encode)
        # Left-pad each row's own tokens so that the last position of every row is its last
        # prompt token; with a shared prefix the padding sits between prefix and question and
        # is masked out (positions come from the mask, so they stay contiguous per row).
        input_ids = torch.full((len(encode), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(encode), prefix_len + width), dtype=torch.long)
        mask[:, :prefix_len] = 1
        for k, r in enumerate(encode):
            input_ids[k, width - len(r.ids):] = torch.tensor(r.ids)
            mask[k, prefix_len + width - len(r.ids):] = 1
        input_ids, mask = input_ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(-1) - 1).clamp(min=0)[:, prefix_len:]
        cache = None
        if prefix_cache is not None:
            cache = copy.deepcopy(prefix_cache)
            cache.batch_repeat_interleave(len(encode))
        out = self.model(input_ids=input_ids, attention_mask=mask, position_ids=positions,
                         use_cache=True, **self._last_logits, **{self._cache_kwarg: cache})
        cache = _cache_of(out)
        logits = out.logits[:, -1, :]
        next_pos = positions[:, -1:] + 1
        if len(encode) < len(batch):
            rows = torch.tensor([distinct.index(r.prompt) for r in batch], device=self.device)
            cache.batch_select_indices(rows)
            logits, mask, next_pos = logits[rows], mask[rows], next_pos[rows]

        stop_tokens = self._stop_tokens(params.stop)
        multi_char_stops = [s for s in params.stop if len(s) > 1]
        generated: list[list[int]] = [[] for _ in batch]
        alive = list(range(len(batch)))  # batch indices still generating, in cache-row order
        for step in range(params.max_new_tokens):
            next_tokens = self._choose(logits, [batch[k] for k in alive], params)
            keep = []
            for row_pos, (k, tok) in enumerate(zip(alive, next_tokens.tolist())):
                if tok in self.eos_ids:
                    continue
                generated[k].append(tok)
                if stop_tokens[tok] or (multi_char_stops and any(
                        s in self.tokenizer.decode(generated[k]) for s in multi_char_stops)):
                    continue
                keep.append(row_pos)
            if not keep or step == params.max_new_tokens - 1:
                break
            keep_t = torch.tensor(keep, device=self.device)
            if len(keep) < len(alive):
                cache.batch_select_indices(keep_t)
                mask, next_pos = mask[keep_t], next_pos[keep_t]
                alive = [alive[p] for p in keep]
            tokens = next_tokens.to(self.device)[keep_t].unsqueeze(-1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=-1)
            out = self.model(input_ids=tokens, attention_mask=mask, position_ids=next_pos,
                             use_cache=True, **{self._cache_kwarg: cache})
            cache, logits, next_pos = _cache_of(out), out.logits[:, -1, :], next_pos + 1
        return [cut_at_stop(self.tokenizer.decode(g, skip_special_tokens=True), params.stop) for g in generated]

    def _choose(self, logits: torch.Tensor, rows: list[_Row], params: GenerationParams) -> torch.Tensor:
        if params.greedy:
            return logits.argmax(-1).cpu()
        logits = logits.float().cpu() / params.temperature
        if params.top_k:
            kth = torch.topk(logits, min(params.top_k, logits.shape[-1]), dim=-1).values[:, -1:]
            logits = logits.masked_fill(logits < kth, -math.inf)
        probs = torch.softmax(logits, dim=-1)
        return torch.cat([torch.multinomial(probs[i], 1, generator=r.generator) for i, r in enumerate(rows)])

    def _stop_tokens(self, stop: tuple[str, ...]) -> list[bool]:
        """A flag per vocabulary id: does this token's text contain a stop string?"""
        if stop not in self._stop_token_cache:
            texts = self.tokenizer.batch_decode([[i] for i in range(len(self.tokenizer))])
            flags = [any(s in t for s in stop) for t in texts]
            # The model's embedding matrix may be larger than the tokenizer's vocabulary.
            flags += [False] * max(0, self.model.config.vocab_size - len(flags))
            self._stop_token_cache[stop] = flags
        return self._stop_token_cache[stop]


def _cache_of(output):
    cache = getattr(output, "cache", None)
    return cache if cache is not None else output.past_key_values


def _eos_ids(model, tokenizer) -> set[int]:
    ids = set()
    for source in (getattr(model, "generation_config", None), model.config, tokenizer):
        eos = getattr(source, "eos_token_id", None)
        if isinstance(eos, int):
            ids.add(eos)
        elif eos:
            ids.update(eos)
    return ids


@torch.inference_mode()
def reference_generate(model, tokenizer, prompts: Sequence[str], params: GenerationParams) -> list[str]:
    """The naive baseline: one greedy `model.generate` per prompt, no batching, no prefix reuse.

    Used by tests and benchmarks/generate.py to check that HFEngine returns identical answers.
    """
    if not params.greedy:
        raise FactbenchError("the reference loop is greedy only")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    out = []
    for p in prompts:
        ids = tokenizer(p, return_tensors="pt").to(model.device)
        gen = model.generate(**ids, max_new_tokens=params.max_new_tokens, do_sample=False,
                             stop_strings=list(params.stop), tokenizer=tokenizer, pad_token_id=pad)
        text = tokenizer.decode(gen[0, ids.input_ids.shape[1]:], skip_special_tokens=True)
        out.append(cut_at_stop(text, params.stop))
    return out
