"""`factbench interference` (forgetting and drift, name-like vs UUID keys) and `factbench overlap` (before training)."""

from __future__ import annotations

from pathlib import Path

from .common import MODEL_HELP, check_out_file, formatter, fraction, positive_float, positive_int


def add_interference(sub) -> None:
    p = sub.add_parser("interference", help="semantic-overlap probe: forgetting and drift, name-like vs UUID keys",
                       formatter_class=formatter,
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
    g.add_argument("--model", default="smollm2-135m", help=MODEL_HELP)
    g.add_argument("--split", metavar="DIR", help="the base model's split, whose known facts are measured (default: "
                                                  "the bundled SmolLM2 split, or a toy world's own)")
    g.add_argument("--relation", default="P17", metavar="P", help="relation of the synthetic facts (default: P17)")
    g.add_argument("--keys", nargs="+", default=["namelike", "uuid"], metavar="KIND",
                   help="namelike (recombined words of real subjects) and/or uuid (default: both)")
    g.add_argument("--sizes", nargs="+", type=positive_int, default=[100, 300], metavar="N",
                   help="numbers of synthetic facts to train on (default: 100 300)")
    g.add_argument("--seed", type=int, default=0, help="seed of the facts, the sample and training (default: 0)")
    g = p.add_argument_group("training (factbench train's recipes)")
    g.add_argument("--recipe", nargs="+", default=["sft"], metavar="R",
                   help="sft (default), selfdistill, freeze, l2anchor; several compare them")
    g.add_argument("--config", metavar="CONFIG", help="recipe config (default: toy for toy worlds, else smollm2_demo)")
    g.add_argument("--epochs", type=positive_float, help="num_train_epochs (default: the config's)")
    g.add_argument("--lr", type=positive_float, help="learning_rate (default: the config's)")
    g.add_argument("--batch-size", type=positive_int, help="per_device_train_batch_size (default: the config's)")
    g.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="any other recipe setting")
    g = p.add_argument_group("measuring")
    g.add_argument("--heldout", type=positive_int, metavar="N", help="measure a seeded sample of N known facts (default: all)")
    g.add_argument("--new-limit", type=positive_int, default=200, metavar="N",
                   help="ask up to N of the trained synthetic facts, for 'learned' (default: 200)")
    g.add_argument("--layer", type=int, help="hidden-state layer of the drift (default: the middle block)")
    g.add_argument("--dtype", default="auto", help="answering dtype: auto (fp32 on CPU), float32, bfloat16")
    p.add_argument("--out", type=Path, default=Path("runs/interference"),
                   help="output folder (default: runs/interference)")
    p.add_argument("--keep-models", action="store_true", help="keep each fine-tune's weights (default: deleted "
                                                                "once measured)")
    p.set_defaults(func=run_interference)


def add_overlap(sub) -> None:
    p = sub.add_parser("overlap", help="before training: will these new facts overwrite known ones?",
                       formatter_class=formatter,
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
    p.add_argument("--model", default="smollm2-135m", help=MODEL_HELP)
    p.add_argument("--split", metavar="DIR", help="split whose known facts stand for what the model knows (default: "
                                                  "the bundled SmolLM2 split, or a toy world's own)")
    p.add_argument("--limit", type=positive_int, default=500, help="check a seeded sample of this many rows (default: 500)")
    p.add_argument("--layer", type=int, help="hidden-state layer (default: the middle block)")
    p.add_argument("--warn-at", type=fraction, default=0.5, help="overlap score that warns (default: 0.5)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and the reference keys (default: 0)")
    p.add_argument("--out", type=Path, metavar="FILE.json", help="also write the report as JSON")
    p.set_defaults(func=check_overlap)


def add(sub) -> None:
    add_interference(sub)
    add_overlap(sub)


def run_interference(args) -> None:
    from .. import interference

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


def check_overlap(args) -> None:
    from .. import overlap
    from ..files import write_json
    from ..sample_logs import check_out_json

    check_out_file(args.out, "overlap.json")
    check_out_json(args.out, lambda obj: isinstance(obj, dict) and obj.get("kind") == "factbench overlap",
                   "a factbench overlap report")
    report = overlap.check(args.train_file, args.model, split=args.split, limit=args.limit, layer=args.layer,
                           seed=args.seed, warn_at=args.warn_at, progress=True)
    if args.out:  # written first: a report that cannot be kept fails in one line
        write_json(args.out, report)
    print(overlap.render(report))
    if args.out:
        print(f"wrote {args.out}")
