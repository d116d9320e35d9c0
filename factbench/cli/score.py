"""`factbench score`: a fine-tune against its base on a split's factforget sets, as a score card."""

from __future__ import annotations

from pathlib import Path

from .common import (
    add_base_tuned_model_args,
    add_statistics_args,
    bootstrap_of,
    check_out_file,
    engine_args,
    formatter,
    positive_int,
)


def add(sub) -> None:
    p = sub.add_parser("score", help="score a fine-tune against its base: retention, forgetting, acquisition, flips",
                       formatter_class=formatter,
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
    p.add_argument("--out", type=Path, metavar="CARD.json",
                   help="write the score card (JSON) here (replaces a score card, never another file)")
    p.add_argument("--training-log", type=Path, metavar="FILE",
                   help="per-epoch JSONL with epoch and heldout_accuracy: adds peak-relative forgetting")
    g = add_base_tuned_model_args(p)
    g.add_argument("--limit", type=positive_int,
                   help="answer only the first N questions of each set (a model scored against an answers folder "
                        "is asked only the questions that folder answered, without this)")
    g.add_argument("--save-answers", type=Path, metavar="DIR",
                   help="keep the answers factbench generates in DIR/base and DIR/tuned (reusable as folders)")
    add_statistics_args(p.add_argument_group("statistics"))
    p.set_defaults(func=score)


def score(args) -> None:
    from .. import scorecard
    from ..card_schema import SCHEMA_ID
    from ..sample_logs import check_out_json, check_writable
    from ..scorecard_render import render
    from ..scoring import score_fine_tune

    check_out_file(args.out, "card.json")
    check_out_json(args.out, lambda obj: isinstance(obj, dict) and obj.get("schema") == SCHEMA_ID, "a score card")
    if args.save_answers:
        check_writable(args.save_answers)
    card = score_fine_tune(args.base, args.tuned, split=args.split, training_log=args.training_log,
                           boot=bootstrap_of(args), limit=args.limit, save_answers=args.save_answers,
                           base_revision=args.base_revision, tuned_revision=args.tuned_revision, **engine_args(args))
    if args.out:  # written before it is printed: a card that cannot be kept fails in one line, not after
        scorecard.write_card(card, args.out)
    print(render(card))
    if args.out:
        print(f"\nwrote score card {args.out}")
