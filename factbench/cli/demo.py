"""`factbench demo`: the whole loop offline on the bundled model (or the toy world)."""

from __future__ import annotations

from pathlib import Path

from .common import formatter

FINE_TUNES = ["sft", "attention-only", "self-distillation", "known-only"]


def add(sub) -> None:
    p = sub.add_parser("demo", help="the whole loop offline: split, 4 fine-tunes, score, leaderboard",
                       formatter_class=formatter,
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
    p.add_argument("--only", nargs="+", metavar="NAME", choices=FINE_TUNES,
                   help="run only these fine-tunes (sft, attention-only, self-distillation, known-only)")
    p.set_defaults(func=run_demo)


def run_demo(args) -> None:
    from .. import demo

    out = args.out or Path("runs/demo" if args.world == "smollm2" else f"runs/demo-{args.world}")
    demo.run(world=args.world, out=out, fresh=args.fresh, settings=args.settings, only=args.only)
