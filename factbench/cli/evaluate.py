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
                              "  factbench eval --model Qwen/Qwen2.5-1.5B --engine vllm --split test\n"
                              "  factbench eval --model ./my-finetune --sets heldout new --split-dir splits/smol "
                              "--shard 0/4 --out out/ft   # and 1/4 .. 3/4")
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
    g = p.add_argument_group(
        "many processes or machines, with --sets (the merged folder equals the one-process one)",
        "Shard I of N answers every N-th question of each set into OUT/shards/I-of-N; the last shard to "
        "finish merges them into --out, one answers folder (one run) that score takes like any other.")
    g.add_argument("--shard", metavar="I/N",
                   help="answer shard I of N (0 <= I < N) into OUT/shards/I-of-N; the last to finish merges")
    g.add_argument("--workers", type=positive_int, metavar="N",
                   help="run N local shard processes, the free CPU threads shared among them, then merge")
    g.add_argument("--merge", action="store_true",
                   help="merge the finished shards under --out into one answers folder (no model is loaded)")
    p.set_defaults(func=eval_command)


def eval_command(args) -> None:
    from ..errors import FactbenchError

    sharded = sum(map(bool, (args.shard, args.workers, args.merge)))
    if sharded > 1:
        raise FactbenchError("--shard, --workers and --merge are three ways to run eval --sets: give one")
    if sharded and args.out is None:
        raise FactbenchError("--shard, --workers and --merge need --out (the folder the shards share)")
    if (args.shard or args.workers) and not (args.sets or args.split_dir):
        raise FactbenchError("--shard and --workers shard eval --sets (give --sets or --split-dir)")
    if args.merge:
        from ..answer_shards import merge

        summary = merge(args.out)
        sizes = ", ".join(f"{task} {stats['questions']}" for task, stats in summary["sets"].items())
        print(f"merged {summary['merged_from']['shards']} shards into {args.out} ({sizes} questions)")
        return
    engine = engine_args(args) | {"revision": args.revision}
    if args.sets or args.split_dir:
        from .. import shards
        from ..answer_shards import is_merged
        from ..answer_sources import evaluate_sets

        shard = shards.parse(args.shard) if args.shard else None
        evaluate_sets(args.model, args.sets, split_dir=args.split_dir, limit=args.limit, relations=args.relations,
                      out=args.out, shard=shard, workers=args.workers, argv=args.argv[1:],
                      **engine)  # prints a line per set
        if args.workers:
            print(f"answers written to {args.out} by {args.workers} workers")
        elif shard is not None and not is_merged(args.out):
            print(f"shard {shard} written to {shards.shard_dir(args.out, shard)} (the last shard to finish merges, "
                  f"or run `factbench eval --sets ... --merge --out {args.out}`)")
        return
    from ..asking import evaluate

    summary = evaluate(args.model, split=args.split, relations=args.relations, limit=args.limit, seed=args.seed,
                       out=args.out, **engine)
    print(f"{summary['questions']} questions  EM {summary['em']:.3f}  contains {summary['contains']:.3f}  "
          f"{summary['questions_per_second']} questions/s")
    if args.out:
        print(f"wrote {args.out}/samples.jsonl and summary.json")
