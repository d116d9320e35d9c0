"""Every reference recipe on the toy world: retention and acquisition per epoch, and at matched acquisition.

    OMP_NUM_THREADS=1 python benchmarks/toy_recipes.py --out runs/toy-recipes          # demo world
    python benchmarks/toy_recipes.py --preset tiny --epochs 6 --out runs/toy-tiny
    python benchmarks/toy_recipes.py --only sft selfdistill --set distill_lambda=0.5

Runs `factbench train` for each recipe with the bundled `toy.yaml` (plus `--set` overrides) into
OUT/<name>, then prints, per recipe, the last epoch's held-out / new / known-train accuracy (with
the number of questions), the peak-relative held-out drop, and held-out accuracy at matched
acquisition: METHOD.md §7 asks recipes to be compared where they have learned the same share of
new facts, not after the same number of epochs. For each recipe's per-epoch curve of
(new accuracy, held-out accuracy), held-out accuracy is linearly interpolated at the acquisition
levels in --levels (a level a recipe never reaches is left empty). A run already in OUT/<name>
(its recipe_card.json exists) is read, not redone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

VARIANTS = {
    "sft": ("sft", []),
    "attention": ("freeze", ["trainable=attention"]),
    "ffn": ("freeze", ["trainable=ffn"]),
    "known-only": ("known-only", []),
    "l2anchor": ("l2anchor", []),
    "selfdistill": ("selfdistill", []),
    "selfdistill-l0.5": ("selfdistill", ["distill_lambda=0.5"]),
    "selfdistill-top64": ("selfdistill", ["teacher_cache=topk", "teacher_topk=64"]),
    "selfdistill-base": ("selfdistill", ["teacher=base"]),
}


def at_acquisition(log: list[dict], level: float) -> float | None:
    """Held-out accuracy where the (epoch-ordered) new-fact accuracy first reaches `level`."""
    prev = None
    for row in log:
        new, held = row.get("new_accuracy"), row.get("heldout_accuracy")
        if new is None or held is None:
            continue
        if new >= level:
            if prev is None or new == prev[0]:
                return held
            w = (level - prev[0]) / (new - prev[0])
            return prev[1] + w * (held - prev[1])
        prev = (new, held)
    return None


def summarise(name: str, recipe: str, log: list[dict], levels: list[float]) -> dict:
    final, start = log[-1], log[0]
    peak = max(r["heldout_accuracy"] for r in log)
    return {
        "name": name, "recipe": recipe, "epochs": final["epoch"],
        "heldout": final["heldout_accuracy"], "new": final.get("new_accuracy"),
        "known_train": final.get("known_train_accuracy"),
        "n": {k: final.get(f"{k}_questions") for k in ("heldout", "new", "known_train")},
        "heldout_at_start": start["heldout_accuracy"],
        "peak_relative_drop": round((peak - final["heldout_accuracy"]) / peak, 4) if peak else None,
        "best_new": max(r.get("new_accuracy") or 0 for r in log),
        "heldout_at_acquisition": {str(a): at_acquisition(log, a) for a in levels},
        "curve": [(r["epoch"], r.get("new_accuracy"), r["heldout_accuracy"]) for r in log],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--preset", default="demo", help="toy world preset (default: demo)")
    ap.add_argument("--model", help="a built toy world's folder instead of the preset's (pins the world)")
    ap.add_argument("--split-dir", help="its split folder (default: toy:PRESET)")
    ap.add_argument("--epochs", type=float, help="num_train_epochs (default: toy.yaml's)")
    ap.add_argument("--only", nargs="+", choices=list(VARIANTS), help="run only these variants")
    ap.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", help="overrides for every run")
    ap.add_argument("--levels", nargs="+", type=float, default=[0.25, 0.5, 0.75, 0.9])
    args = ap.parse_args()

    from factbench import recipes

    base = [f"model={args.model or 'toy:' + args.preset}", f"split_dir={args.split_dir or 'toy:' + args.preset}",
            "disable_tqdm=true", *args.set]
    if args.epochs:
        base.append(f"num_train_epochs={args.epochs}")
    rows = []
    for name in args.only or VARIANTS:
        recipe, extra = VARIANTS[name]
        out = args.out / name
        if not (out / "recipe_card.json").is_file():
            recipes.train(recipe, "toy", [*base, *extra, f"output_dir={out}", "overwrite=true"])
        log = [json.loads(line) for line in (out / "training_log.jsonl").read_text().splitlines()]
        rows.append(summarise(name, recipe, log, args.levels))
        print(json.dumps(rows[-1]), flush=True)

    print("\n| recipe | epochs | held-out | new | known-train | peak-rel. drop | "
          + " | ".join(f"held-out @ new={a:g}" for a in args.levels) + " |")
    print("|---" * (6 + len(args.levels)) + "|")
    for r in rows:
        n = r["n"]
        cells = [f"{r['heldout']:.3f} (n={n['heldout']})", f"{r['new']:.3f} (n={n['new']})",
                 f"{r['known_train']:.3f} (n={n['known_train']})", f"{r['peak_relative_drop']:.3f}"]
        at = [f"{v:.3f}" if v is not None else "–" for v in r["heldout_at_acquisition"].values()]
        print(f"| {r['name']} | {r['epochs']} | " + " | ".join(cells + at) + " |")
    (args.out / "summary.json").write_text(json.dumps(rows, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
