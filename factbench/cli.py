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

    p = sub.add_parser("demo", help="run the whole pipeline offline on the bundled model", formatter_class=_formatter,
                       description="Run factbench end to end, offline, on the bundled SmolLM2-135M-Instruct.",
                       epilog="examples:\n  factbench demo\n  factbench demo --questions 100 --out runs/demo")
    p.add_argument("--questions", type=int, default=200, help="dev questions to answer (default: 200)")
    p.add_argument("--out", type=Path, default=Path("runs/demo"), help="output folder (default: runs/demo)")
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
    return parser


def _budgets():
    from .knowledge import BUDGETS

    return BUDGETS.values()


def _add_model_args(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model and engine")
    g.add_argument("--model", default="smollm2-135m", help="smollm2-135m (default), toy[:PRESET], a folder or a hub id")
    g.add_argument("--revision", help="hub revision (branch, tag or commit)")
    g.add_argument("--engine", default="hf", choices=["hf", "vllm"], help="hf (CPU/GPU, default) or vllm (GPU)")
    g.add_argument("--dtype", default="auto", help="auto (bf16 where the hardware has it), float32, bfloat16")
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
    from . import answering, data
    from .engines import make_engine
    from .files import write_json, write_jsonl

    if args.sets or args.split_dir:
        return _eval_sets(args)
    facts = answering.pick_questions(data.load(data.check_split(args.split), args.relations), args.limit, args.seed)
    if args.out and args.out.exists() and not args.out.is_dir():
        raise FactbenchError(f"--out {args.out} exists and is not a folder")
    engine = make_engine(args.engine, args.model, revision=args.revision, dtype=args.dtype,
                         batch_size=args.batch_size)
    run = answering.answer(engine, facts)
    summary = run.summary() | {"split": args.split, "engine": engine.describe()}
    print(f"{summary['questions']} questions  EM {summary['em']:.3f}  contains {summary['contains']:.3f}  "
          f"{summary['questions_per_second']} questions/s")
    if args.out:
        write_jsonl(args.out / "samples.jsonl", run.records)
        write_json(args.out / "summary.json", summary)
        print(f"wrote {args.out}/samples.jsonl and summary.json")


def _eval_sets(args) -> None:
    """`factbench eval --sets`: the factforget questions through factbench's own engine."""
    from . import answering, prompts, question_sets, samples
    from .engines import GenerationParams, make_engine
    from .files import write_json, write_jsonl

    names = [question_sets.check_set(s) for s in (args.sets or question_sets.SETS)]
    if args.relations:
        raise FactbenchError("--relations does not apply to --sets (each set fixes its questions)")
    if args.limit is not None and args.limit < 1:
        raise FactbenchError(f"--limit must be at least 1, got {args.limit}")
    needs_split = any(n in question_sets.SPLIT_SETS for n in names)
    split = question_sets.find_split(args.split_dir, split_flag="--split-dir") if needs_split else None
    sets = {n: question_sets.docs(n, split)[:args.limit] for n in names}  # validate all before loading a model
    if args.out and args.out.exists() and not args.out.is_dir():
        raise FactbenchError(f"--out {args.out} exists and is not a folder")
    engine = make_engine(args.engine, args.model, revision=args.revision, dtype=args.dtype,
                         batch_size=args.batch_size)
    protocol = question_sets.question_protocol()  # the decoding the tasks' YAMLs also fix
    params = GenerationParams(max_new_tokens=protocol["max_new_tokens"], stop=tuple(protocol["stop"]))
    generation_kwargs = {"until": list(params.stop), "max_gen_toks": params.max_new_tokens,
                         "do_sample": False, "temperature": 0.0}
    summary = {"engine": engine.describe(), "split": str(split.path) if split else None, "sets": {}}
    for name, docs in sets.items():
        task = question_sets.task_name(name)
        if not docs:
            print(f"{task}: no questions, skipped")
            continue
        run = answering.answer(engine, [question_sets.fact_of(d) for d in docs], params=params)
        rows = [samples.record(i, d, prompts.build_prompt(question_sets.fact_of(d), 0), r["completion"], r["em"],
                               r["contains"], generation_kwargs) for i, (d, r) in enumerate(zip(docs, run.records))]
        summary["sets"][task] = run.summary()
        print(f"{task:<24} {len(rows):>5} questions  EM {summary['sets'][task]['em']:.3f}  "
              f"contains {summary['sets'][task]['contains']:.3f}")
        if args.out:
            write_jsonl(args.out / f"samples_{task}.jsonl", rows)
    if args.out:
        write_json(args.out / "summary.json", summary)
        print(f"wrote samples_<task>.jsonl per set and summary.json into {args.out}")


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


def _demo(args) -> None:
    from . import demo

    demo.run(questions=args.questions, out=args.out)


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
