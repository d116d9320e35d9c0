"""Training examples from a split: `Q: {question}\\nA: {answer}` + eos, tokenised, with loss masks.

The example text is `prompts.format_example`, the shape of every few-shot exemplar the evaluation
prompts show, so training teaches exactly the format the model is later asked in.

Where the answer starts: the prompt `Q: {question}\\nA:` is tokenised on its own and the answer
starts where the two tokenisations part. With the usual tokenizers that is exactly the prompt's
length; when a tokenizer merges across the boundary, the merged token counts as answer, so every
answer character is under the loss.
"""

from __future__ import annotations

from pathlib import Path

import torch

from .. import question_sets, splits
from ..errors import FactbenchError
from ..prompts import format_example

KINDS = ("known", "unknown")


def find_training_split(split_dir: str | Path | None) -> splits.Split:
    """The split named by the `split_dir` setting (a folder, `bundled`/unset, or `toy[:PRESET]`)."""
    spec = str(split_dir) if split_dir is not None else None
    if spec and (spec == "toy" or spec.startswith("toy:")):
        from ..toyworld import toy_split

        spec = str(toy_split(spec.partition(":")[2] or "default"))
    if spec == "bundled":
        spec = None
    try:
        return question_sets.find_split(spec, split_flag="split_dir")
    except ValueError as e:  # splits.load_split parses the JSON Lines without catching
        raise FactbenchError(f"split {spec or 'bundled'}: a file is not valid JSON Lines ({e})") from None


def training_rows(split: splits.Split, kinds: tuple[str, ...] = KINDS) -> list[dict]:
    """The rows of `train.jsonl` of the given kinds, checked; in file (training) order."""
    where = split.path / "train.jsonl"
    rows = split.sets.get("train") or []
    if not rows:
        raise FactbenchError(f"{where} holds no training examples")
    for n, row in enumerate(rows, 1):
        ok = (isinstance(row, dict) and isinstance(row.get("question"), str) and row["question"].strip()
              and isinstance(row.get("answer"), str) and row["answer"].strip() and row.get("kind") in KINDS)
        if not ok:
            raise FactbenchError(f"{where}:{n} is not a training row (needs a non-empty question and answer, "
                                 "and kind known or unknown)")
    chosen = [r for r in rows if r["kind"] in kinds]
    if not chosen:
        raise FactbenchError(f"{where} has no {' or '.join(kinds)} facts to train on")
    return chosen


def check_tokenizer(tokenizer) -> int:
    """The eos id training appends; padding falls back to it (padded positions are masked anyway)."""
    if tokenizer.eos_token_id is None:
        raise FactbenchError("the tokenizer has no eos token: training examples end with one, so that a "
                             "fine-tuned model stops after its answer; use a tokenizer that defines eos_token")
    return tokenizer.eos_token_id


def encode(tokenizer, question: str, answer: str, max_length: int, eos_id: int, answer_end: str = "eos") -> dict:
    """One example: its token ids and the index of its first answer token.

    The answer ends with the eos token (`answer_end="eos"`) or with a newline (`"newline"`), the
    way answers end in few-shot prompts and in the documents of a base model that never saw eos
    after an answer (the toy world's).
    """
    prompt_ids = tokenizer(format_example(question, "").rstrip(" ")).input_ids
    text = format_example(question, answer) + ("\n" if answer_end == "newline" else "")
    ids = list(tokenizer(text).input_ids)
    start = 0
    while start < min(len(ids), len(prompt_ids)) and ids[start] == prompt_ids[start]:
        start += 1
    if answer_end == "eos" and (not ids or ids[-1] != eos_id):
        ids.append(eos_id)
    if start < 1 or start >= len(ids):
        raise FactbenchError(f"cannot find the answer tokens of {question!r} -> {answer!r} with this tokenizer")
    if len(ids) > max_length:
        raise FactbenchError(f"the example for {question!r} is {len(ids)} tokens, longer than the limit "
                             f"{max_length} (max_length, or the model's number of positions)")
    return {"input_ids": ids, "answer_spans": [(start, len(ids))]}


def encode_rows(tokenizer, rows: list[dict], max_length: int, answer_end: str = "eos") -> list[dict]:
    eos_id = check_tokenizer(tokenizer)
    return [encode(tokenizer, r["question"], r["answer"], max_length, eos_id, answer_end) | {"kinds": [r["kind"]]}
            for r in rows]


def pack(examples: list[dict], max_length: int) -> list[dict]:
    """Consecutive examples joined into sequences of at most max_length tokens (setting `packing`).

    Each fact is still its own `Q: ...\nA: ...` + eos with loss on its own answer; what changes
    is that most facts no longer sit at the start of a sequence but after other facts, as they do
    in a few-shot prompt. The examples keep their (seeded, shuffled) split order.
    """
    packed: list[dict] = []
    for e in examples:
        last = packed[-1] if packed else None
        if last is None or len(last["input_ids"]) + len(e["input_ids"]) > max_length:
            packed.append({"input_ids": [], "answer_spans": [], "kinds": []})
            last = packed[-1]
        offset = len(last["input_ids"])
        last["input_ids"] = last["input_ids"] + e["input_ids"]
        last["answer_spans"] += [(a + offset, b + offset) for a, b in e["answer_spans"]]
        last["kinds"] += e["kinds"]
    return packed


class ExampleDataset(torch.utils.data.Dataset):
    def __init__(self, examples: list[dict]):
        self.examples = examples

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int) -> dict:
        return self.examples[i]


class Collator:
    """Right-padded batches with `labels` (-100 where there is no cross-entropy) and, for
    self-distillation, `distill_mask` (True at the tokens whose prediction the KL covers).

    Both are aligned with `input_ids`: position t marks the prediction of token t from the tokens
    before it. Cached-teacher tensors of the examples, when present, are concatenated in batch
    order, which is the order `logits[:, :-1][distill_mask[:, 1:]]` visits those positions.
    """

    def __init__(self, pad_id: int, loss_on: str = "answer", kl_on: str | None = None):
        self.pad_id, self.loss_on, self.kl_on = pad_id, loss_on, kl_on

    def __call__(self, examples: list[dict]) -> dict:
        width = max(len(e["input_ids"]) for e in examples)
        n = len(examples)
        input_ids = torch.full((n, width), self.pad_id, dtype=torch.long)
        attention = torch.zeros((n, width), dtype=torch.long)
        positions = torch.arange(width)
        answer = torch.zeros((n, width), dtype=torch.bool)
        for i, e in enumerate(examples):
            length = len(e["input_ids"])
            input_ids[i, :length] = torch.tensor(e["input_ids"])
            attention[i, :length] = 1
            for start, end in e["answer_spans"]:
                answer[i] |= (positions >= start) & (positions < end)
        real = attention.bool()
        real[:, 0] = False  # the first token is never predicted
        ce_mask = answer if self.loss_on == "answer" else real
        batch = {"input_ids": input_ids, "attention_mask": attention,
                 "labels": input_ids.masked_fill(~ce_mask, -100)}
        if self.kl_on is not None:
            batch["distill_mask"] = answer if self.kl_on == "answer" else real
        if "teacher_ids" in examples[0]:
            for key in ("teacher_ids", "teacher_logprobs", "teacher_other"):
                batch[key] = torch.cat([e[key] for e in examples])
        return batch
