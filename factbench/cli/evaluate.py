"""`factbench eval`: answer EntityQuestions questions, or the factforget sets, with factbench's own engines."""

from __future__ import annotations

from pathlib import Path

from .common import add_model_engine_args, engine_args, formatter, positive_int


def add(sub) -> None:
    p = sub.add_parser("eval", help="answer EntityQuestions questions with factbench's own engines",
                       formatter_class=formatter,
                       description="Ask a model few-shot EntityQuestions questions (greedy, stop at newline) and "
                                   "grade them by exact match (primary) and containment.",
                       epilog="examples:\n"
                              "  factbench eval --model smollm2-135m --split dev --limit 500\n"
                              "  factbench eval --model ./my-finetune --relations P17 P36 --out runs/ft\n"
                              "  factbench eval --model Qwen/Qwen2.5-1.5B --engine vllm --split test")
    add_model_engine_args(p.add_argument_group("model and engine"))
    q = p.add_argument_group("questions")
    q.add_argument("--split", default="dev", help="train, dev or test (default: dev)")
    q.add_argument("--relations", nargs="+", metavar="P", help="relation ids, e.g. P17 P36 (default: all 24)")
    q.add_argument("--limit", type=positive_int, help="answer a seeded sample of this many questions")
    q.add_argument("--seed", type=int, default=0, help="seed of that sample (default: 0)")
    q.add_argument("--out", type=Path, help="write samples.jsonl and summary.json into this folder (one model's "
                                            "run: a rerun of that model replaces it; another model's is refused)")
    g = p.add_argument_group(
        "factforget question sets (the same questions as the lm-eval tasks factforget_<set>)",
        "With --sets, writes samples_factforget_<set>.jsonl per set into --out, in lm-eval's per-sample "
        "shape; --limit then takes the first N questions of each set, as lm_eval --limit does.")
    g.add_argument("--sets", nargs="+", metavar="SET",
                   help="any of heldout new known_train ood pool (default with --split-dir: all)")
    g.add_argument("--split-dir", type=Path, metavar="DIR",
                   help="split folder from `factbench split` (default: the bundled SmolLM2-135M split)")
    p.set_defaults(func=eval_command)


def eval_command(args) -> None:
    engine = engine_args(args) | {"revision": args.revision}
    if args.sets or args.split_dir:
        from ..answer_sources import evaluate_sets

        evaluate_sets(args.model, args.sets, split_dir=args.split_dir, limit=args.limit, relations=args.relations,
                      out=args.out, **engine)  # prints a line per set
        return
    from ..asking import evaluate

    summary = evaluate(args.model, split=args.split, relations=args.relations, limit=args.limit, seed=args.seed,
                       out=args.out, **engine)
    print(f"{summary['questions']} questions  EM {summary['em']:.3f}  contains {summary['contains']:.3f}  "
          f"{summary['questions_per_second']} questions/s")
    if args.out:
        print(f"wrote {args.out}/samples.jsonl and summary.json")
