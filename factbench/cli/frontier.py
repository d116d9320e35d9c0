"""`factbench frontier`: the retention–acquisition frontier of a study (variants × seeds), at matched acquisition."""

from __future__ import annotations

from pathlib import Path

from .common import formatter, fraction, positive_int

DESCRIPTION = """\
Reads every finished run under OUT/models/<variant>/ (or OUT/models/<variant>/seed-<N>/): the
per-question outcomes each training run wrote at every evaluation point (eval_outcomes.jsonl).
Per protocol (4-shot, 0-shot; never mixed):

  retention     share of held-out Known questions the base recalled (guessable ones left out)
                that the fine-tune answers right at a point
  acquisition   share of the new (Unknown, trained-on) questions it answers right
  frontier      retention against acquisition along training, mean over seeds
  matched       retention when a variant has learned a given share of new facts (linear
                interpolation between points), and its difference from --reference in points
  share removed (F_ref - F_variant) / (F_ref - F_stability final), F = 1 - retention
  final point   last point of variants that never learn (e.g. Known-only, attention-only)
  peak-relative (peak - final) / peak of retention over a run, mean over seeds

Intervals: 95% percentile bootstrap resampling held-out and new questions independently and
seeds with replacement, one draw for every variant (paired). With one seed they cover
question sampling only. Writes OUT/frontier/frontier.json, frontier.md and frontier.png
(--report-dir: elsewhere)."""


def add(sub) -> None:
    p = sub.add_parser("frontier", help="retention against acquisition of a study's variants, at matched acquisition",
                       formatter_class=formatter, description=DESCRIPTION,
                       epilog="examples:\n"
                              "  factbench frontier runs/study\n"
                              "  factbench frontier runs/study --reference sft --levels 0.2 0.4 0.6 --boot 5000\n"
                              "  factbench frontier runs/study --reference sd-published --report-dir runs/study/vs-sd")
    p.add_argument("out", type=Path, metavar="OUT", help="the study folder (holds models/<variant>/)")
    p.add_argument("--reference", default="sft", help="the variant others are compared with (default: sft)")
    p.add_argument("--stability", default="known-only",
                   help="the variant whose final forgetting is the floor of 'share removed' (default: known-only)")
    p.add_argument("--levels", type=fraction, nargs="+", metavar="A",
                   help="acquisition levels in (0, 1] (default: 5 evenly spaced multiples of 0.05 above every "
                        "learning variant's start, up to the reference's maximum; slower learners 'not reached' "
                        "above theirs)")
    p.add_argument("--boot", type=positive_int, default=2000, help="bootstrap replicates (default: 2000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")
    p.add_argument("--report-dir", type=Path, metavar="DIR",
                   help="write frontier.{json,md,png} here instead of OUT/frontier (e.g. a comparison with "
                        "another --reference beside the default one)")
    p.set_defaults(func=frontier)


def frontier(args) -> None:
    from .. import frontier, frontier_report

    summary = frontier.analyse(args.out, reference=args.reference, stability=args.stability, levels=args.levels,
                               n_boot=args.boot, seed=args.seed)
    paths = frontier.write(args.out, summary, args.report_dir)
    print(frontier_report.markdown(summary))
    for path in paths.values():
        print(f"wrote {path}")
