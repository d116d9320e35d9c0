"""`factbench demo`: the whole loop offline on the bundled model (or the toy world)."""

from __future__ import annotations

from pathlib import Path

from .common import formatter, positive_int

FINE_TUNES = ["sft", "attention-only", "self-distillation", "known-only", "ffn-only", "sd-published", "sd-kl-all",
              "sd-student-base", "l2-matched"]  # demo.VARIANT_NAMES (a test checks), without importing torch


def add(sub) -> None:
    p = sub.add_parser("demo", help="the whole loop offline: split, fine-tunes, score, leaderboard, frontier",
                       formatter_class=formatter,
                       description="Reproduce the paper's comparison offline on this CPU: split the base model's facts "
                       "into Known / Unknown training facts and held-out Known facts; fine-tune it with plain SFT, "
                       "attention-only training (FFN frozen), self-distillation and Known-only SFT; score each against "
                       "the base; publish a leaderboard; print the comparison table and the retention-acquisition frontier "
                       "(each recipe's held-out retention against its new-fact accuracy along training, compared at "
                       "matched acquisition) and save plots. A rerun reuses every finished stage. The `frontier` world "
                       "is the full study: every recipe and the published method's deviations, three seeds.",
                       epilog="worlds:\n  smollm2  SmolLM2-135M-Instruct (bundled) and its bundled P17 knowledge "
                       "profile (14 min on 2 idle cores)\n  toy      the toy world, a tiny model whose knowledge is decided "
                       "by construction (~2 min)\n  frontier the frontier study on SmolLM2: 8 fine-tunes x 3 seeds at 300 + 300 "
                       "training facts, every recalled P17 fact held out, 4-shot and 0-shot (hours: run it in parts "
                       "with --only / --seeds; each part is kept)\n\nexamples:\n  factbench demo\n"
                       "  factbench demo --world toy\n"
                       "  factbench demo --world frontier --out runs/frontier --seeds 0 --only sft sd-published\n"
                       "  factbench demo --out runs/demo2 --fresh\n"
                       "  factbench demo --only self-distillation --set kl_on=answer --out runs/demo-sd-answer")
    p.add_argument("--world", default="smollm2", choices=["smollm2", "toy", "frontier"],
                   help="which base model and scale (default: smollm2)")
    p.add_argument("--out", type=Path, help="output folder (default: runs/demo, or runs/demo-toy for --world toy)")
    p.add_argument("--fresh", action="store_true", help="delete an earlier demo run in --out and start over")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="settings",
                   help="training settings for every fine-tune, on top of the demo's (e.g. kl_on=answer "
                   "distill_lambda=0.5); see `factbench train --help`")
    p.add_argument("--only", nargs="+", metavar="NAME", choices=FINE_TUNES,
                   help="train only these of the world's fine-tunes (the report covers every finished one)")
    p.add_argument("--seeds", nargs="+", type=int, metavar="N",
                   help="train only these of the world's seeds (frontier: 0 1 2)")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="fine-tunes trained at once, each its own `factbench train` process with its share of the "
                   "CPU threads (default: as many as there are free threads on a CPU, one on a GPU; 1: one after "
                   "another in this process, with a progress bar per training stage)")
    p.set_defaults(func=run_demo)


def run_demo(args) -> None:
    from .. import demo

    out = args.out or Path("runs/demo" if args.world == "smollm2" else f"runs/demo-{args.world}")
    demo.run(world=args.world, out=out, fresh=args.fresh, settings=args.settings, only=args.only, seeds=args.seeds,
             jobs=args.jobs)
