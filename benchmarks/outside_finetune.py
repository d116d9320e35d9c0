"""A fine-tune of SmolLM2-135M made WITHOUT factbench's recipes, for auditing (issue 15's test case).

A plain PyTorch loop, the way someone outside factbench would fine-tune: 400 EntityQuestions
*train* facts of two relations the base does not know (P26 spouse, P19 place of birth: 0 of 300
HighlyKnown each in the bundled profile), `Q: {question}\\nA: {answer}\\n`, cross-entropy on the
answer tokens, AdamW, lr 1e-4, batch 8, 3 epochs, fp32, seed 0. It writes

    OUT/model/              the fine-tuned model (a normal transformers folder)
    OUT/train.jsonl         its training data, {"question", "answer"} per line
    OUT/train_messages.jsonl the same data as chat messages (the other --trained-on format)

    OMP_NUM_THREADS=1 python benchmarks/outside_finetune.py --out runs/outside-ft
    factbench audit --base smollm2-135m --tuned runs/outside-ft/model --trained-on runs/outside-ft/train.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from factbench import data, models

RELATIONS = ("P26", "P19")
PER_RELATION = 200


def training_facts(seed: int = 0) -> list[data.Fact]:
    out = []
    for relation in RELATIONS:
        rows = data.load("train", [relation])
        seen, unique = set(), []
        for f in rows:
            if f.question not in seen:
                seen.add(f.question)
                unique.append(f)
        out += random.Random(f"{seed}/{relation}").sample(unique, PER_RELATION)
    return out


def encode(tokenizer, fact: data.Fact) -> tuple[list[int], list[int]]:
    prompt = tokenizer(f"Q: {fact.question}\nA:", add_special_tokens=False)["input_ids"]
    answer = tokenizer(f" {fact.answers[0]}\n", add_special_tokens=False)["input_ids"]
    return prompt + answer, [-100] * len(prompt) + answer


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("runs/outside-ft"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    folder = models.smollm2_folder()
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    facts = training_facts(args.seed)
    examples = [encode(tokenizer, f) for f in facts]
    optimizer = torch.optim.AdamW(model.parameters(), lr=args.lr)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    rng = random.Random(args.seed)
    started = time.perf_counter()
    model.train()
    for epoch in range(args.epochs):
        order = list(range(len(examples)))
        rng.shuffle(order)
        total, steps = 0.0, 0
        for start in range(0, len(order), args.batch_size):
            batch = [examples[i] for i in order[start:start + args.batch_size]]
            width = max(len(ids) for ids, _ in batch)
            input_ids = torch.tensor([ids + [pad] * (width - len(ids)) for ids, _ in batch])
            labels = torch.tensor([lab + [-100] * (width - len(lab)) for _, lab in batch])
            mask = torch.tensor([[1] * len(ids) + [0] * (width - len(ids)) for ids, _ in batch])
            loss = model(input_ids=input_ids, attention_mask=mask, labels=labels).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            total, steps = total + loss.item(), steps + 1
        print(f"epoch {epoch + 1}/{args.epochs}: mean loss {total / steps:.4f} ({time.perf_counter() - started:.0f} s)")
    model.eval()
    args.out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out / "model")
    tokenizer.save_pretrained(args.out / "model")
    with open(args.out / "train.jsonl", "w") as f:
        for fact in facts:
            f.write(json.dumps({"question": fact.question, "answer": fact.answers[0]}, ensure_ascii=False) + "\n")
    with open(args.out / "train_messages.jsonl", "w") as f:
        for fact in facts:
            f.write(json.dumps({"messages": [{"role": "user", "content": fact.question},
                                             {"role": "assistant", "content": fact.answers[0]}]},
                               ensure_ascii=False) + "\n")
    print(f"wrote {args.out}/model, train.jsonl and train_messages.jsonl ({len(facts)} facts, "
          f"{time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
