"""`factbench train`: fine-tune with a reference recipe (sft, freeze, selfdistill, known-only, l2anchor)."""

from __future__ import annotations

import os

from .common import formatter


def add(sub) -> None:
    p = sub.add_parser("train", help="fine-tune with a reference recipe: sft, freeze, selfdistill, known-only, l2anchor",
                       formatter_class=formatter,
                       description="Fine-tune a base model on a split's training facts with one of the reference "
                                   "recipes (METHOD.md §4), on the transformers Trainer (accelerate / torchrun work "
                                   "as usual). Writes the model, training_log.jsonl (held-out / new / known-train "
                                   "accuracy per epoch) and recipe_card.json into output_dir.",
                       epilog="recipes:\n"
                              "  sft          all parameters, cross-entropy on the answers of Known + Unknown facts\n"
                              "  freeze       SFT with a trainable preset (trainable=attention|ffn|all) or patterns\n"
                              "  selfdistill  teacher = 1 epoch SFT on Known facts; student: CE + λτ²·KL to it\n"
                              "  known-only   SFT on the Known facts only (the stability reference)\n"
                              "  l2anchor     SFT + λ·||θ − θa||² (l2_lambda; l2_anchor=stage1 l2_lambda=matched: the paper's baseline)\n"
                              "\nconfigs: a YAML file, or a bundled one by name: toy, smollm2_demo, qwen2.5_1.5b, "
                              "llama3.1_8b\n"
                              "\nexamples:\n"
                              "  factbench train --recipe sft --config toy output_dir=runs/toy/sft\n"
                              "  factbench train --recipe freeze --config toy trainable=ffn output_dir=runs/toy/ffn\n"
                              "  factbench train --recipe selfdistill --config my.yaml distill_lambda=0.5 "
                              "teacher_cache=topk\n"
                              "  torchrun --nproc_per_node 8 -m factbench.cli train --recipe sft --config "
                              "llama3.1_8b")
    p.add_argument("--recipe", required=True, metavar="RECIPE", help="sft, freeze, selfdistill, known-only or l2anchor")
    p.add_argument("--config", required=True, metavar="CONFIG", help="YAML file or bundled config name")
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                   help="settings on top of the config (any RecipeConfig or TrainingArguments field)")
    p.set_defaults(func=train)


def train(args) -> None:
    from .. import recipes

    result = recipes.train(args.recipe, args.config, args.overrides)
    final = result.card.get("final") or {}
    scores = "  ".join(f"{k.removesuffix('_accuracy')} {v:.3f}" for k, v in final.items()
                       if k.endswith("_accuracy") and v is not None)
    if os.environ.get("RANK", "0") != "0":  # under torchrun, one summary: the main process's
        return
    print(f"{args.recipe}: {scores or 'trained'}  ({result.card['wall_seconds']} s)")
    print(f"wrote the model, training_log.jsonl and recipe_card.json into {result.output_dir}")
