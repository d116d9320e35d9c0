"""`factbench probe` (what a base model knows) and `factbench split` (training and held-out sets from it)."""

from __future__ import annotations

from pathlib import Path

from .common import add_model_engine_args, count, engine_args, formatter, fraction, positive_int


def _budgets():
    from ..knowledge import BUDGETS

    return BUDGETS.values()


def add_probe(sub) -> None:
    p = sub.add_parser("probe", help="build a knowledge profile (SliCK + guess evidence) of a base model",
                       formatter_class=formatter,
                       description="Label every pool question HighlyKnown / MaybeKnown / WeaklyKnown / Unknown for a "
                                   "base model (Gekhman et al. 2024), and record whether a right answer could be "
                                   "guessed. Resumable: rerun the same command after an interruption.",
                       epilog="budgets:\n" + "\n".join(f"  {b.name:<8} {b.trade_off}" for b in _budgets()) +
                              "\n\nexamples:\n"
                              "  factbench probe --model smollm2-135m --budget lite --per-relation 300 --out profiles/smol\n"
                              "  factbench probe --model Qwen/Qwen2.5-7B --engine vllm --out profiles/qwen7b")
    add_model_engine_args(p.add_argument_group("model and engine"))
    g = p.add_argument_group("pool and budget")
    g.add_argument("--relations", nargs="+", metavar="P",
                   help="relations to probe (default: Gekhman's 12 in-distribution + 7 OOD relations)")
    g.add_argument("--per-relation", type=positive_int, default=500, help="questions per relation (default: 500)")
    g.add_argument("--pool-split", default="train", help="EntityQuestions split to draw them from (default: train)")
    g.add_argument("--pool-seed", type=int, default=0, help="seed of the question sample (default: 0)")
    g.add_argument("--budget", default="gekhman", help="gekhman (default), lite or smoke; see below")
    g.add_argument("--exemplar-seed", type=int, default=0, help="seed of the few-shot exemplars (default: 0)")
    g.add_argument("--guess-threshold", type=fraction, default=0.2,
                   help="subject-blind control hit rate that makes a right answer guessable (default: 0.2)")
    g.add_argument("--guess-controls", type=positive_int, default=8, help="control subjects per question (default: 8)")
    p.add_argument("--out", type=Path, required=True, help="profile folder to write (or resume)")
    g = p.add_argument_group("many processes or machines (the profile is byte for byte the one-process one)")
    g.add_argument("--shard", metavar="I/N",
                   help="probe shard I of N (0 <= I < N) into OUT/shards/I-of-N; the last to finish merges")
    g.add_argument("--workers", type=positive_int, metavar="N",
                   help="run N local shard processes, the free CPU threads shared among them, then merge")
    g.add_argument("--merge", action="store_true",
                   help="merge the finished shards under --out into the profile (no model is loaded)")
    p.set_defaults(func=probe)


def add_split(sub) -> None:
    p = sub.add_parser("split", help="training, held-out and OOD sets from a profile (deterministic)",
                       formatter_class=formatter,
                       description="Draw a training set (Known + Unknown facts) and held-out / OOD known sets from "
                                   "a knowledge profile. Same profile, settings and seed give byte-identical files.",
                       epilog="examples:\n"
                              "  factbench split --profile bundled --known 150 --unknown 150 --heldout 150 "
                              "--min-known-share 0.05 --out splits/smol\n"
                              "  factbench split --profile profiles/qwen7b --seed 1 --out splits/qwen7b-s1")
    p.add_argument("--profile", required=True, help="profile folder, or 'bundled' for SmolLM2-135M's")
    p.add_argument("--out", type=Path, required=True, help="split folder to write (must not exist)")
    g = p.add_argument_group("sizes")
    g.add_argument("--known", type=count, default=8000, help="known training facts (default: 8000)")
    g.add_argument("--unknown", type=count, default=8000, help="Unknown training facts (default: 8000)")
    g.add_argument("--heldout", type=heldout_size, default=1000,
                   help="held-out known facts, or `all` (every known fact, one per subject; default: 1000)")
    g.add_argument("--ood", type=count, default=500, help="out-of-distribution known facts (default: 500; 0 = none)")
    g = p.add_argument_group("selection")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--relations", nargs="+", metavar="P", help="default: the profile's in-distribution relations")
    g.add_argument("--min-known-share", type=fraction, default=0.3,
                   help="keep relations with at least this share of known facts (default: 0.3)")
    g.add_argument("--include-guessable", action="store_true",
                   help="count guessable HighlyKnown facts as known (default: excluded)")
    g.add_argument("--train-known", choices=("known", "maybe", "guessable"), default="known",
                   help="where the Known training facts come from: known (default: recalled facts, after the "
                        "held-out set), maybe (MaybeKnown facts that are not guessable) or guessable "
                        "(HighlyKnown facts a guess could answer: often one constant answer); the last two leave "
                        "every recalled fact for the held-out set")
    p.set_defaults(func=split)


def heldout_size(text: str) -> int | None:
    """--heldout: a count, or `all` (None)."""
    return None if text.strip().lower() == "all" else count(text)


def add(sub) -> None:
    add_probe(sub)
    add_split(sub)


def probe(args) -> None:
    from .. import shards
    from ..errors import FactbenchError
    from ..knowledge import load_profile, probe_model

    if sum(map(bool, (args.shard, args.workers, args.merge))) > 1:
        raise FactbenchError("--shard, --workers and --merge are three ways to run a probe: give one")
    if args.merge:
        profile = load_profile(shards.merge(args.out))
        print_counts(profile.manifest)
        print(f"profile merged into {args.out} ({profile.manifest['wall_seconds']} s of probing in all)")
        return
    if args.workers:
        from .. import workers

        profile = workers.probe(args.workers, args.out, args.argv[1:])
        print_counts(profile.manifest)
        print(f"profile written to {args.out} by {args.workers} workers")
        return
    shard = shards.parse(args.shard) if args.shard else None
    profile = probe_model(args.model, args.out, relations=args.relations, per_relation=args.per_relation,
                          pool_split=args.pool_split, pool_seed=args.pool_seed, budget=args.budget,
                          exemplar_seed=args.exemplar_seed, guess_controls=args.guess_controls,
                          guess_threshold=args.guess_threshold, revision=args.revision, shard=shard,
                          **engine_args(args))
    if profile is None:
        done = len(shards.finished_shards(args.out))
        print(f"shard {shard} written to {shards.shard_dir(args.out, shard)}; {done} of {shard.count} shards "
              f"finished (the last to finish merges, or run `factbench probe --merge --out {args.out}`)")
        return
    print_counts(profile.manifest)
    print(f"profile written to {args.out} ({profile.manifest['wall_seconds']} s)")


def print_counts(manifest: dict) -> None:
    """A profile's label counts, a row per relation."""
    from ..knowledge import CATEGORIES

    cols = (*CATEGORIES, "guessable_greedy_right", "known", "total")
    heads = ("HighlyKn", "MaybeKn", "WeaklyKn", "Unknown", "guessable", "known", "total")
    print(f"{'relation':<9}" + "".join(f"{h:>10}" for h in heads))
    for r, c in manifest["counts"].items():
        print(f"{r:<9}" + "".join(f"{c[k]:>10}" for k in cols))


def split(args) -> None:
    from .. import splits

    manifest = splits.split_profile(args.profile, args.out, known=args.known, unknown=args.unknown,
                                    heldout=args.heldout, ood=args.ood, seed=args.seed,
                                    min_known_share=args.min_known_share, relations=args.relations,
                                    include_guessable=args.include_guessable, train_known=args.train_known)
    sizes = splits.set_sizes(manifest)
    print(f"relations kept: {', '.join(splits.kept_relations(manifest))}")
    print(f"train {sizes['train']}  heldout {sizes['heldout']}  ood {sizes['ood']}  ->  {args.out}")
