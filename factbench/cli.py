"""The `factbench` command. Each subcommand maps to one module; this file only parses and prints."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import __version__
from .errors import FactbenchError

EPILOG = """\
examples:
  factbench demo                                   the whole loop, offline, on the bundled model
  factbench data stats                             what EntityQuestions data is bundled
  factbench eval --model smollm2-135m --split dev --limit 500 --out runs/smollm2-dev
  factbench models prepare smollm2-135m            convert the bundled model once (cached)
  factbench score --base runs/base --tuned runs/sft --out cards/sft.json
  factbench compare cards/sft.json cards/selfdistill.json

Every command exits with code 2 and one line of explanation on bad input.
"""


def _formatter(prog):
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="factbench", formatter_class=_formatter, epilog=EPILOG,
        description="Did this fine-tune make the model forget facts it knew, and how many new facts did it learn?")
    parser.add_argument("--version", action="version", version=f"factbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("demo", help="the whole loop offline: split, 4 fine-tunes, score, leaderboard",
                       formatter_class=_formatter,
                       description="Reproduce the paper's comparison offline on this CPU: split the base model's facts "
                       "into Known / Unknown training facts and held-out Known facts; fine-tune it with plain SFT, "
                       "attention-only training (FFN frozen), self-distillation and Known-only SFT; score each against "
                       "the base; publish a leaderboard; print the comparison table and save plots. A rerun reuses "
                       "every finished stage.",
                       epilog="worlds:\n  smollm2  SmolLM2-135M-Instruct (bundled) and its bundled P17 knowledge "
                       "profile (~11 min on 2 cores)\n  toy      the toy world, a tiny model whose knowledge is decided "
                       "by construction (~2 min)\n\nexamples:\n  factbench demo\n  factbench demo --world toy\n"
                       "  factbench demo --out runs/demo2 --fresh\n"
                       "  factbench demo --only self-distillation --set kl_on=answer --out runs/demo-sd-answer")
    p.add_argument("--world", default="smollm2", choices=["smollm2", "toy"], help="which base model (default: smollm2)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/demo, or runs/demo-toy for --world toy)")
    p.add_argument("--fresh", action="store_true", help="delete an earlier demo run in --out and start over")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="settings",
                   help="training settings for every fine-tune, on top of the demo's (e.g. kl_on=answer "
                   "distill_lambda=0.5); see `factbench train --help`")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=["sft", "attention-only", "self-distillation",
                                                                  "known-only"],
                   help="run only these fine-tunes (sft, attention-only, self-distillation, known-only)")
    p.set_defaults(func=_demo)

    p = sub.add_parser("data", help="inspect the bundled EntityQuestions data", formatter_class=_formatter,
                       description="EntityQuestions (Sciavolino et al. 2021, MIT) ships inside factbench.",
                       epilog="examples:\n  factbench data stats\n  factbench data stats --json")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("stats", help="rows per relation and split (checksums verified)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=_data_stats)

    p = sub.add_parser("models", help="list model sources; prepare the bundled model", formatter_class=_formatter,
                       epilog="examples:\n  factbench models list\n  factbench models prepare smollm2-135m")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    s = msub.add_parser("list", help="the model specs factbench understands")
    s.set_defaults(func=_models_list)
    s = msub.add_parser("prepare", help="convert/build a model once and print its folder and identity")
    s.add_argument("model", help="smollm2-135m, toy[:PRESET], a folder or a hub id")
    s.set_defaults(func=_models_prepare)

    p = sub.add_parser("eval", help="answer EntityQuestions questions with factbench's own engines",
                       formatter_class=_formatter,
                       description="Ask a model few-shot EntityQuestions questions (greedy, stop at newline) and "
                                   "grade them by exact match (primary) and containment.",
                       epilog="examples:\n"
                              "  factbench eval --model smollm2-135m --split dev --limit 500\n"
                              "  factbench eval --model ./my-finetune --relations P17 P36 --out runs/ft\n"
                              "  factbench eval --model Qwen/Qwen2.5-1.5B --engine vllm --split test")
    _add_model_args(p)
    q = p.add_argument_group("questions")
    q.add_argument("--split", default="dev", help="train, dev or test (default: dev)")
    q.add_argument("--relations", nargs="+", metavar="P", help="relation ids, e.g. P17 P36 (default: all 24)")
    q.add_argument("--limit", type=int, help="answer a seeded sample of this many questions")
    q.add_argument("--seed", type=int, default=0, help="seed of that sample (default: 0)")
    q.add_argument("--out", type=Path, help="write samples.jsonl and summary.json into this folder")
    g = p.add_argument_group(
        "factforget question sets (the same questions as the lm-eval tasks factforget_<set>)",
        "With --sets, writes samples_factforget_<set>.jsonl per set into --out, in lm-eval's per-sample "
        "shape; --limit then takes the first N questions of each set, as lm_eval --limit does.")
    g.add_argument("--sets", nargs="+", metavar="SET",
                   help="any of heldout new known_train ood pool (default with --split-dir: all)")
    g.add_argument("--split-dir", type=Path, metavar="DIR",
                   help="split folder from `factbench split` (default: the bundled SmolLM2-135M split)")
    p.set_defaults(func=_eval)

    p = sub.add_parser("probe", help="build a knowledge profile (SliCK + guess evidence) of a base model",
                       formatter_class=_formatter,
                       description="Label every pool question HighlyKnown / MaybeKnown / WeaklyKnown / Unknown for a "
                                   "base model (Gekhman et al. 2024), and record whether a right answer could be "
                                   "guessed. Resumable: rerun the same command after an interruption.",
                       epilog="budgets:\n" + "\n".join(f"  {b.name:<8} {b.trade_off}" for b in _budgets()) +
                              "\n\nexamples:\n"
                              "  factbench probe --model smollm2-135m --budget lite --per-relation 300 --out profiles/smol\n"
                              "  factbench probe --model Qwen/Qwen2.5-7B --engine vllm --out profiles/qwen7b")
    _add_model_args(p)
    g = p.add_argument_group("pool and budget")
    g.add_argument("--relations", nargs="+", metavar="P",
                   help="relations to probe (default: Gekhman's 12 in-distribution + 7 OOD relations)")
    g.add_argument("--per-relation", type=int, default=500, help="questions per relation (default: 500)")
    g.add_argument("--pool-split", default="train", help="EntityQuestions split to draw them from (default: train)")
    g.add_argument("--pool-seed", type=int, default=0, help="seed of the question sample (default: 0)")
    g.add_argument("--budget", default="gekhman", help="gekhman (default), lite or smoke; see below")
    g.add_argument("--exemplar-seed", type=int, default=0, help="seed of the few-shot exemplars (default: 0)")
    g.add_argument("--guess-threshold", type=float, default=0.2,
                   help="subject-blind control hit rate that makes a right answer guessable (default: 0.2)")
    g.add_argument("--guess-controls", type=int, default=8, help="control subjects per question (default: 8)")
    p.add_argument("--out", type=Path, required=True, help="profile folder to write (or resume)")
    p.set_defaults(func=_probe)

    p = sub.add_parser("split", help="training, held-out and OOD sets from a profile (deterministic)",
                       formatter_class=_formatter,
                       description="Draw a training set (Known + Unknown facts) and held-out / OOD known sets from "
                                   "a knowledge profile. Same profile, settings and seed give byte-identical files.",
                       epilog="examples:\n"
                              "  factbench split --profile bundled --known 150 --unknown 150 --heldout 150 "
                              "--min-known-share 0.05 --out splits/smol\n"
                              "  factbench split --profile profiles/qwen7b --seed 1 --out splits/qwen7b-s1")
    p.add_argument("--profile", required=True, help="profile folder, or 'bundled' for SmolLM2-135M's")
    p.add_argument("--out", type=Path, required=True, help="split folder to write (must not exist)")
    g = p.add_argument_group("sizes")
    g.add_argument("--known", type=int, default=8000, help="known training facts (default: 8000)")
    g.add_argument("--unknown", type=int, default=8000, help="Unknown training facts (default: 8000)")
    g.add_argument("--heldout", type=int, default=1000, help="held-out known facts (default: 1000)")
    g.add_argument("--ood", type=int, default=500, help="out-of-distribution known facts (default: 500; 0 = none)")
    g = p.add_argument_group("selection")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--relations", nargs="+", metavar="P", help="default: the profile's in-distribution relations")
    g.add_argument("--min-known-share", type=float, default=0.3,
                   help="keep relations with at least this share of known facts (default: 0.3)")
    g.add_argument("--include-guessable", action="store_true",
                   help="count guessable HighlyKnown facts as known (default: excluded)")
    p.set_defaults(func=_split)

    p = sub.add_parser("score", help="score a fine-tune against its base: retention, forgetting, acquisition, flips",
                       formatter_class=_formatter,
                       description="Score a fine-tuned checkpoint against its base, fact by fact, on the factforget "
                                   "sets of a split: retention and forgetting of held-out known facts, acquisition "
                                   "of the new facts trained on, the flip table, 95% bootstrap intervals. Each of "
                                   "--base and --tuned is an lm-eval --log_samples folder, a `factbench eval --sets "
                                   "--out` folder, or a model (then factbench answers the sets itself).",
                       epilog="examples:\n"
                              "  factbench score --base runs/lm-eval/base --tuned runs/lm-eval/sft --out cards/sft.json\n"
                              "  factbench score --base smollm2-135m --tuned ./my-finetune --split splits/smol\n"
                              "  factbench score --base runs/base --tuned runs/sft --training-log runs/sft/log.jsonl\n"
                              "\ntraining log (--training-log): JSON Lines, one row per epoch, e.g.\n"
                              '  {"epoch": 0, "heldout_accuracy": 0.97}\n'
                              '  {"epoch": 1, "heldout_accuracy": 0.91, "new_accuracy": 0.42}')
    p.add_argument("--base", required=True, metavar="B", help="the base model's answers folder, or the base model")
    p.add_argument("--tuned", required=True, metavar="T", help="the fine-tune's answers folder, or the fine-tune")
    p.add_argument("--split", metavar="DIR", help="split folder (default: the bundled SmolLM2-135M split)")
    p.add_argument("--out", type=Path, metavar="CARD.json", help="write the score card (JSON) here")
    p.add_argument("--training-log", type=Path, metavar="FILE",
                   help="per-epoch JSONL with epoch and heldout_accuracy: adds peak-relative forgetting")
    g = p.add_argument_group("when --base or --tuned is a model")
    g.add_argument("--engine", default="hf", choices=["hf", "vllm"], help="hf (CPU/GPU, default) or vllm (GPU)")
    g.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")
    g.add_argument("--batch-size", type=int, help="hf engine batch size (default: 32)")
    g.add_argument("--base-revision", help="hub revision of the base model")
    g.add_argument("--tuned-revision", help="hub revision of the fine-tune")
    g.add_argument("--limit", type=int,
                   help="answer only the first N questions of each set (a model scored against an answers folder "
                        "is asked only the questions that folder answered, without this)")
    g.add_argument("--save-answers", type=Path, metavar="DIR",
                   help="keep the answers factbench generates in DIR/base and DIR/tuned (reusable as folders)")
    g = p.add_argument_group("statistics")
    g.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.set_defaults(func=_score)

    p = sub.add_parser("audit", help="audit any fine-tune against its base, no split needed: what it forgot",
                       formatter_class=_formatter,
                       description="Audit a fine-tune you did not make against its base: the fixed audit question set "
                                   "(EntityQuestions test split, every relation) is asked of the base under K prompts "
                                   "(what it recalls: right under every prompt and not guessable) and of the fine-tune "
                                   "under prompt 0. The audit card reports retention of the recalled facts per "
                                   "relation with intervals, the flip table, format breaks apart from forgetting, and "
                                   "with --trained-on what it learned and which facts it edited. Each of --base and "
                                   "--tuned is a model (folder, hub id, smollm2-135m) or an answers folder of the "
                                   "factforget_audit task (lm_eval --log_samples, or --save-answers). The base's answers "
                                   "are cached by its weights' hash (bundled for smollm2-135m, preset small).",
                       epilog="examples:\n"
                              "  factbench audit --base smollm2-135m --tuned ./my-finetune --out cards/ft-audit.json\n"
                              "  factbench audit --base smollm2-135m --tuned ./my-finetune --trained-on train.jsonl\n"
                              "  lm_eval --model hf --model_args pretrained=BASE --tasks factforget_audit --log_samples "
                              "--output_path out/base\n"
                              "  lm_eval --model hf --model_args pretrained=TUNED --tasks factforget_audit --metadata "
                              "'{\"prompts\": 1}' --log_samples --output_path out/ft\n"
                              "  factbench audit --base out/base --tuned out/ft\n"
                              "\npresets (--preset):\n"
                              + "".join(f"  {n:<9} {p.purpose}\n" for n, p in _audit_presets().items())
                              + "\n--trained-on: JSON Lines of {\"question\", \"answer\"}, {\"prompt\", \"completion\"} or "
                                "chat {\"messages\": [...]}")
    p.add_argument("--base", required=True, metavar="B", help="the base model, or its audit answers folder")
    p.add_argument("--tuned", required=True, metavar="T", help="the fine-tune, or its audit answers folder")
    p.add_argument("--preset", default="small", choices=list(_audit_presets()),
                   help="audit question set size (default: small, for CPUs)")
    p.add_argument("--trained-on", type=Path, metavar="FILE",
                   help="the fine-tune's training data: adds acquisition, and audit facts about its subjects count as "
                        "edited, not forgotten")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="a knowledge profile of the base: its labels replace the audit's where it covers the questions")
    p.add_argument("--out", type=Path, metavar="CARD.json", help="write the audit card (JSON) here")
    g = p.add_argument_group("when --base or --tuned is a model")
    g.add_argument("--engine", default="hf", choices=["hf", "vllm"], help="hf (CPU/GPU, default) or vllm (GPU)")
    g.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")
    g.add_argument("--batch-size", type=int, help="hf engine batch size (default: 32)")
    g.add_argument("--base-revision", help="hub revision of the base model")
    g.add_argument("--tuned-revision", help="hub revision of the fine-tune")
    g.add_argument("--save-answers", type=Path, metavar="DIR", help="keep the fine-tune's answers in DIR (an answers folder)")
    g = p.add_argument_group("statistics")
    g.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    g.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.set_defaults(func=_audit)

    p = sub.add_parser("compare", help="paired comparison of score cards of fine-tunes of one base",
                       formatter_class=_formatter,
                       description="For each pair of score cards (fine-tunes of the same base, scored on the same "
                                   "split): the both-right / only-A / only-B / both-wrong table on held-out known "
                                   "facts, an exact McNemar test, a paired bootstrap interval of the difference in "
                                   "forgetting, and a plain-language verdict.",
                       epilog="examples:\n"
                              "  factbench compare cards/sft.json cards/selfdistill.json\n"
                              "  factbench compare cards/*.json --out comparison.json")
    p.add_argument("cards", nargs="+", type=Path, metavar="CARD", help="score cards from `factbench score --out`")
    p.add_argument("--out", type=Path, metavar="FILE.json", help="also write the comparison as JSON")
    p.add_argument("--resamples", type=int, default=2000, help="bootstrap resamples (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.set_defaults(func=_compare)

    p = sub.add_parser("leaderboard", help="collect score cards into published tables, a web page and plots",
                       formatter_class=_formatter,
                       description="A leaderboard folder holds score cards in cards/. `add` validates a card and "
                                   "copies it there (refusing invalid cards and duplicates); `build` writes "
                                   "README.md (Markdown tables), leaderboard.csv, plots/*.png and index.html (one "
                                   "offline page: sortable tables, a base-model filter, retention against "
                                   "acquisition, per-relation flips).",
                       epilog="examples:\n"
                              "  factbench leaderboard add cards/sft.json\n"
                              "  factbench leaderboard build\n"
                              "  factbench leaderboard add card.json --dir my-board && factbench leaderboard build "
                              "--dir my-board")
    lsub = p.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    s = lsub.add_parser("add", help="validate a score card and add it to DIR/cards")
    s.add_argument("card", type=Path, metavar="CARD", help="a score card from `factbench score --out`")
    s.add_argument("--dir", type=Path, default=Path("leaderboard"), help="leaderboard folder (default: leaderboard)")
    s.set_defaults(func=_leaderboard_add)
    s = lsub.add_parser("build", help="write DIR/README.md, leaderboard.csv, plots/ and index.html from DIR/cards")
    s.add_argument("--dir", type=Path, default=Path("leaderboard"), help="leaderboard folder (default: leaderboard)")
    s.set_defaults(func=_leaderboard_build)

    p = sub.add_parser("train", help="fine-tune with a reference recipe: sft, freeze, selfdistill, known-only, l2anchor",
                       formatter_class=_formatter,
                       description="Fine-tune a base model on a split's training facts with one of the reference "
                                   "recipes (METHOD.md §4), on the transformers Trainer (accelerate / torchrun work "
                                   "as usual). Writes the model, training_log.jsonl (held-out / new / known-train "
                                   "accuracy per epoch) and recipe_card.json into output_dir.",
                       epilog="recipes:\n"
                              "  sft          all parameters, cross-entropy on the answers of Known + Unknown facts\n"
                              "  freeze       SFT with a trainable preset (trainable=attention|ffn|all) or patterns\n"
                              "  selfdistill  teacher = 1 epoch SFT on Known facts; student: CE + λτ²·KL to it\n"
                              "  known-only   SFT on the Known facts only (the stability reference)\n"
                              "  l2anchor     SFT + λ·||θ − θ0||² (l2_lambda)\n"
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
    p.set_defaults(func=_train)

    p = sub.add_parser("interference", help="semantic-overlap probe: forgetting and drift, name-like vs UUID keys",
                       formatter_class=_formatter,
                       description="Fine-tune the base model on synthetic facts of one relation whose subjects are "
                                   "name-like (recombined real place-name tokens) or UUID strings, at several sizes "
                                   "and with several recipes, and measure on the facts it knew: forgetting (base − "
                                   "fine-tuned accuracy) and drift of their subjects' middle-layer representations "
                                   "(METHOD.md §5). Saves a table, JSON and a plot; a rerun reuses finished "
                                   "conditions.",
                       epilog="measures (on every fact the base model knew in its split; 95% bootstrap intervals):\n"
                              "  forgetting  base − fine-tuned accuracy (greedy 4-shot), paired over the same facts\n"
                              "  drift       1 − cos of each known subject's mean hidden state at --layer, base vs "
                              "fine-tuned\n"
                              "  learned     accuracy on the synthetic facts trained on (up to --new-limit), asked the "
                              "same way\n"
                              "\noutput (in --out): interference.md (the tables), interference.json (every number with "
                              "n and 95%\ninterval, the settings and the command), interference.png (forgetting and "
                              "drift against size)\n"
                              "\nexamples:\n"
                              "  factbench interference --model toy --recipe sft selfdistill --sizes 100 300 1000 "
                              "--out runs/interference-toy\n"
                              "  factbench interference --model smollm2-135m --recipe sft --sizes 100 300 --lr 1e-4 "
                              "--out runs/interference-smol\n"
                              "  factbench interference --model toy --sizes 300 --set num_train_epochs=5 "
                              "lr_scheduler_type=linear")
    g = p.add_argument_group("base model and synthetic facts")
    g.add_argument("--model", default="smollm2-135m", help="smollm2-135m (default), toy[:PRESET], a folder or a hub id")
    g.add_argument("--split", metavar="DIR", help="the base model's split, whose known facts are measured (default: "
                                                  "the bundled SmolLM2 split, or a toy world's own)")
    g.add_argument("--relation", default="P17", metavar="P", help="relation of the synthetic facts (default: P17)")
    g.add_argument("--keys", nargs="+", default=["namelike", "uuid"], metavar="KIND",
                   help="namelike (recombined words of real subjects) and/or uuid (default: both)")
    g.add_argument("--sizes", nargs="+", type=int, default=[100, 300], metavar="N",
                   help="numbers of synthetic facts to train on (default: 100 300)")
    g.add_argument("--seed", type=int, default=0, help="seed of the facts, the sample and training (default: 0)")
    g = p.add_argument_group("training (factbench train's recipes)")
    g.add_argument("--recipe", nargs="+", default=["sft"], metavar="R",
                   help="sft (default), selfdistill, freeze, l2anchor; several compare them")
    g.add_argument("--config", metavar="CONFIG", help="recipe config (default: toy for toy worlds, else smollm2_demo)")
    g.add_argument("--epochs", type=float, help="num_train_epochs (default: the config's)")
    g.add_argument("--lr", type=float, help="learning_rate (default: the config's)")
    g.add_argument("--batch-size", type=int, help="per_device_train_batch_size (default: the config's)")
    g.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="any other recipe setting")
    g = p.add_argument_group("measuring")
    g.add_argument("--heldout", type=int, metavar="N", help="measure a seeded sample of N known facts (default: all)")
    g.add_argument("--new-limit", type=int, default=200, metavar="N",
                   help="ask up to N of the trained synthetic facts, for 'learned' (default: 200)")
    g.add_argument("--layer", type=int, help="hidden-state layer of the drift (default: the middle block)")
    g.add_argument("--dtype", default="auto", help="answering dtype: auto (fp32 on CPU), float32, bfloat16")
    p.add_argument("--out", type=Path, default=Path("runs/interference"),
                   help="output folder (default: runs/interference)")
    p.add_argument("--keep-models", action="store_true", help="keep each fine-tune's weights (default: deleted "
                                                                "once measured)")
    p.set_defaults(func=_interference)

    p = sub.add_parser("overlap", help="before training: will these new facts overwrite known ones?",
                       formatter_class=_formatter,
                       description="Check a fine-tuning set before training: how much do its subjects overlap "
                                   "entities the model knows? Each subject's middle-layer representation is compared "
                                   "with the known subjects of the model's split (highest cosine similarity) and "
                                   "placed between two references in the same questions: UUID keys (0) and name-like "
                                   "keys (1), the two kinds `factbench interference` measures forgetting for. Warns "
                                   "when forgetting is likely.",
                       epilog="input: JSON Lines, one {\"question\": ..., \"answer\": ...} a line (a split's "
                              "train.jsonl works);\nthe subject is a row's \"subject\" field, else the [X] of the "
                              "EntityQuestions template its question follows\n"
                              "\nexamples:\n"
                              "  factbench overlap my_facts.jsonl --model smollm2-135m\n"
                              "  factbench overlap splits/smol/train.jsonl --model toy --out overlap.json\n"
                              "  factbench overlap data.jsonl --model ./my-base --split splits/my-base --warn-at 0.3")
    p.add_argument("train_file", type=Path, metavar="TRAIN.jsonl", help="the new facts to check")
    p.add_argument("--model", default="smollm2-135m", help="smollm2-135m (default), toy[:PRESET], a folder or a hub id")
    p.add_argument("--split", metavar="DIR", help="split whose known facts stand for what the model knows (default: "
                                                  "the bundled SmolLM2 split, or a toy world's own)")
    p.add_argument("--limit", type=int, default=500, help="check a seeded sample of this many rows (default: 500)")
    p.add_argument("--layer", type=int, help="hidden-state layer (default: the middle block)")
    p.add_argument("--warn-at", type=float, default=0.5, help="overlap score that warns (default: 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and the reference keys (default: 0)")
    p.add_argument("--out", type=Path, metavar="FILE.json", help="also write the report as JSON")
    p.set_defaults(func=_overlap)
    return parser


def _budgets():
    from .knowledge import BUDGETS

    return BUDGETS.values()


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and engine")
    g.add_argument("--model", default="smollm2-135m", help="smollm2-135m (default), toy[:PRESET], a folder or a hub id")
    g.add_argument("--revision", help="hub revision (branch, tag or commit)")
    g.add_argument("--engine", default="hf", choices=["hf", "vllm"], help="hf (CPU/GPU, default) or vllm (GPU)")
    g.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")
    g.add_argument("--batch-size", type=int, help="hf engine batch size (default: 32)")


def _data_stats(args) -> None:
    from . import data

    stats = data.stats()
    if args.json:
        import json

        print(json.dumps({r: dict(c) for r, c in stats.items()}, indent=2))
        return
    print(f"{'relation':<9}{'property':<28}{'train':>8}{'dev':>8}{'test':>8}")
    totals = {s: 0 for s in data.SPLITS}
    for r, counts in stats.items():
        print(f"{r:<9}{data.RELATIONS[r][0][:27]:<28}" + "".join(f"{counts[s]:>8}" for s in data.SPLITS))
        for s in data.SPLITS:
            totals[s] += counts[s]
    print(f"{'total':<37}" + "".join(f"{totals[s]:>8}" for s in data.SPLITS))
    print("EntityQuestions (Sciavolino et al., EMNLP 2021), MIT licence; every file's SHA-256 verified.")


def _models_list(args) -> None:
    from . import models

    print("model specs:", models.describe_specs())


def _models_prepare(args) -> None:
    from . import models

    path, identity = models.model_folder(args.model)
    print(path)
    print(identity)


def _eval(args) -> None:
    from . import asking, data
    from .engines import make_engine
    from .files import write_json, write_jsonl

    if args.sets or args.split_dir:
        return _eval_sets(args)
    facts = asking.pick_questions(data.load(data.check_split(args.split), args.relations), args.limit, args.seed)
    if args.out and args.out.exists() and not args.out.is_dir():
        raise FactbenchError(f"--out {args.out} exists and is not a folder")
    engine = make_engine(args.engine, args.model, revision=args.revision, dtype=args.dtype,
                         batch_size=args.batch_size)
    run = asking.answer(engine, facts)
    summary = run.summary() | {"split": args.split, "engine": engine.describe()}
    print(f"{summary['questions']} questions  EM {summary['em']:.3f}  contains {summary['contains']:.3f}  "
          f"{summary['questions_per_second']} questions/s")
    if args.out:
        write_jsonl(args.out / "samples.jsonl", run.records)
        write_json(args.out / "summary.json", summary)
        print(f"wrote {args.out}/samples.jsonl and summary.json")


def _eval_sets(args) -> None:
    """`factbench eval --sets`: the factforget questions through factbench's own engine."""
    from . import question_sets
    from .answer_sources import answer_sets, find_sets
    from .engines import make_engine

    names = [question_sets.check_set(s) for s in (args.sets or question_sets.SETS)]
    if args.relations:
        raise FactbenchError("--relations does not apply to --sets (each set fixes its questions)")
    split, sets = find_sets(names, args.split_dir, args.limit)  # validate all before loading a model
    if args.out and args.out.exists() and not args.out.is_dir():
        raise FactbenchError(f"--out {args.out} exists and is not a folder")
    engine = make_engine(args.engine, args.model, revision=args.revision, dtype=args.dtype,
                         batch_size=args.batch_size)
    answer_sets(engine, sets, split, out=args.out)


def _probe(args) -> None:
    from . import knowledge
    from .engines import make_engine

    if args.budget not in knowledge.BUDGETS:
        raise FactbenchError(f"unknown budget {args.budget!r}; choose one of {', '.join(knowledge.BUDGETS)}")
    pool = knowledge.Pool(relations=tuple(args.relations) if args.relations else knowledge.Pool.relations,
                          per_relation=args.per_relation, split=args.pool_split, seed=args.pool_seed)
    if args.per_relation < 1:
        raise FactbenchError("--per-relation must be at least 1")
    settings = knowledge.ProbeSettings(budget=knowledge.BUDGETS[args.budget], exemplar_seed=args.exemplar_seed,
                                       guess=knowledge.GuessSettings(args.guess_controls, args.guess_threshold))
    pool.facts()  # validate relations and split before loading a model
    engine = make_engine(args.engine, args.model, revision=args.revision, dtype=args.dtype,
                         batch_size=args.batch_size, progress=False)
    out = knowledge.probe(engine, pool, settings, args.out)
    profile = knowledge.load_profile(out)
    _print_counts(profile.manifest)
    print(f"profile written to {out} ({profile.manifest['wall_seconds']} s)")


def _print_counts(manifest: dict) -> None:
    from .knowledge import CATEGORIES

    cols = (*CATEGORIES, "guessable_greedy_right", "known", "total")
    heads = ("HighlyKn", "MaybeKn", "WeaklyKn", "Unknown", "guessable", "known", "total")
    print(f"{'relation':<9}" + "".join(f"{h:>10}" for h in heads))
    for r, c in manifest["counts"].items():
        print(f"{r:<9}" + "".join(f"{c[k]:>10}" for k in cols))


def _split(args) -> None:
    from . import knowledge, splits

    path = knowledge.bundled_profile_dir() if args.profile == "bundled" else args.profile
    profile = knowledge.load_profile(path)
    settings = splits.SplitSettings(known=args.known, unknown=args.unknown, heldout=args.heldout, ood=args.ood,
                                    seed=args.seed, min_known_share=args.min_known_share,
                                    relations=tuple(args.relations) if args.relations else None,
                                    include_guessable=args.include_guessable)
    manifest = splits.make_split(profile, settings, args.out)
    kept = [r for r, v in manifest["relations"].items() if v["kept"]]
    sizes = {name: sum(sum(c.values()) for c in counts.values()) for name, counts in manifest["counts"].items()}
    print(f"relations kept: {', '.join(kept)}")
    print(f"train {sizes['train']}  heldout {sizes['heldout']}  ood {sizes['ood']}  ->  {args.out}")


def _score(args) -> None:
    from . import scorecard
    from .metrics import Bootstrap
    from .scorecard_render import render
    from .scoring import score_fine_tune

    if args.out and args.out.is_dir():
        raise FactbenchError(f"--out {args.out} is a folder; give a file name such as card.json")
    boot = Bootstrap(args.resamples, args.seed)
    card = score_fine_tune(args.base, args.tuned, split=args.split, training_log=args.training_log, boot=boot,
                           engine=args.engine, dtype=args.dtype, batch_size=args.batch_size, limit=args.limit,
                           save_answers=args.save_answers, base_revision=args.base_revision,
                           tuned_revision=args.tuned_revision)
    print(render(card))
    if args.out:
        scorecard.write_card(card, args.out)
        print(f"\nwrote score card {args.out}")


def _audit_presets():
    from .auditing import PRESETS

    return PRESETS


def _audit(args) -> None:
    from .auditing import audit, render
    from .files import write_json
    from .metrics import Bootstrap

    if args.out and args.out.is_dir():
        raise FactbenchError(f"--out {args.out} is a folder; give a file name such as audit.json")
    card = audit(args.base, args.tuned, preset=args.preset, trained_on_file=args.trained_on, profile=args.profile,
                 engine=args.engine, dtype=args.dtype, batch_size=args.batch_size, base_revision=args.base_revision,
                 tuned_revision=args.tuned_revision, save_answers=args.save_answers,
                 boot=Bootstrap(args.resamples, args.seed))
    print(render.render(card))
    if args.out:
        write_json(args.out, dict(card))
        print(f"\nwrote audit card {args.out}")


def _compare(args) -> None:
    from . import compare
    from .files import write_json
    from .metrics import Bootstrap

    if args.out and args.out.is_dir():
        raise FactbenchError(f"--out {args.out} is a folder; give a file name such as comparison.json")
    result = compare.compare(compare.load_cards(args.cards), Bootstrap(args.resamples, args.seed))
    print(compare.render(result))
    if args.out:
        write_json(args.out, result)
        print(f"\nwrote {args.out}")


def _leaderboard_add(args) -> None:
    from . import leaderboard

    target = leaderboard.add(args.card, args.dir)
    print(f"added {target}; run `factbench leaderboard build --dir {args.dir}` to update the tables and page")


def _leaderboard_build(args) -> None:
    from . import leaderboard

    written = leaderboard.build(args.dir)
    print(f"wrote {len(written)} files in {args.dir}: " + ", ".join(str(p.relative_to(args.dir)) for p in written))


def _interference(args) -> None:
    from . import interference

    overrides = list(args.set)
    for value, key in ((args.epochs, "num_train_epochs"), (args.lr, "learning_rate"),
                       (args.batch_size, "per_device_train_batch_size")):
        if value is not None:
            overrides.append(f"{key}={value}")
    exp = interference.Experiment(
        model=args.model, recipes=args.recipe, sizes=args.sizes, keys=args.keys, relation=args.relation,
        seed=args.seed, config=args.config, overrides=overrides, split=args.split, heldout_limit=args.heldout,
        new_limit=args.new_limit, layer=args.layer, dtype=args.dtype, keep_models=args.keep_models)
    exp = interference.with_command(exp, args.out)
    summary = interference.run(exp, args.out)
    print()
    print(interference.render(summary))
    print(f"wrote interference.md, interference.json and interference.png into {args.out}")


def _overlap(args) -> None:
    from . import overlap
    from .files import write_json

    if args.out and args.out.is_dir():
        raise FactbenchError(f"--out {args.out} is a folder; give a file name such as overlap.json")
    report = overlap.check(args.train_file, args.model, split=args.split, limit=args.limit, layer=args.layer,
                           seed=args.seed, warn_at=args.warn_at, progress=True)
    print(overlap.render(report))
    if args.out:
        write_json(args.out, report)
        print(f"wrote {args.out}")


def _train(args) -> None:
    from . import recipes

    result = recipes.train(args.recipe, args.config, args.overrides)
    final = result.card.get("final") or {}
    scores = "  ".join(f"{k.removesuffix('_accuracy')} {v:.3f}" for k, v in final.items()
                       if k.endswith("_accuracy") and v is not None)
    print(f"{args.recipe}: {scores or 'trained'}  ({result.card['wall_seconds']} s)")
    print(f"wrote the model, training_log.jsonl and recipe_card.json into {result.output_dir}")


def _demo(args) -> None:
    from . import demo

    out = args.out or Path("runs/demo" if args.world == "smollm2" else f"runs/demo-{args.world}")
    demo.run(world=args.world, out=out, fresh=args.fresh, settings=args.settings, only=args.only)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except FactbenchError as e:
        print(f"factbench: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("factbench: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
