"""Self-distillation's stage 1 trained vs loaded from `teacher_dir` (recipes/shared_teacher.py).

    OMP_NUM_THREADS=1 python benchmarks/shared_teacher.py --known 48 --repeats 3

SmolLM2-135M (bundled), fp32, on a split of the bundled 4,000-question P17 profile with `--known`
Known (MaybeKnown, not guessable, as the frontier study trains) and 8 Unknown training facts; the
frontier world's settings (lr 1e-4, batch 8), no evaluation points (they are the same work either
way) and a one-step stage 2. Each repeat runs the recipe twice into a fresh teacher_dir: the first
trains stage 1 and keeps it, the second loads it; the stage-1 seconds are the recipe card's (the
loaded one's include computing the key, which hashes the weights, and reading the file). Checks
that both runs end with the same weights. Medians over the repeats, the ratio from the same run.
Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--known", type=int, default=48)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import torch
    from safetensors.torch import load_file

    from factbench import knowledge, splits
    from factbench.recipes import train

    root = Path(tempfile.mkdtemp(prefix="shared-teacher-"))
    profile = knowledge.load_profile(knowledge.bundled_profile_dir("smollm2-135m-p17-4000"))
    split_dir = root / "split"
    splits.make_split(profile, splits.SplitSettings(known=args.known, unknown=8, heldout=8, ood=0,
                                                    relations=("P17",), train_known="maybe", min_known_share=0.0),
                      split_dir)
    settings = {"model": "smollm2-135m", "split_dir": str(split_dir), "learning_rate": 1e-4,
                "per_device_train_batch_size": 8, "max_steps": 1, "eval_each_epoch": False,
                "eval_before_training": False, "disable_tqdm": True, "report_to": "none"}
    trained, loaded = [], []
    for i in range(args.repeats):
        kept = root / f"teachers-{i}"
        runs = [train("selfdistill", settings | {"output_dir": str(root / f"{i}-{name}"), "teacher_dir": str(kept)})
                for name in ("trains", "loads")]
        first, second = (r.card["stages"][0] for r in runs)
        assert "reused" not in first and "reused" in second, "the second run did not load the kept teacher"
        trained.append(first["seconds"])
        loaded.append(second["seconds"])
        a, b = (load_file(r.output_dir / "model.safetensors") for r in runs)
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), "the two runs' weights differ"
    t, r = statistics.median(trained), statistics.median(loaded)
    print(json.dumps({"known": args.known, "stage1_steps": -(-args.known // 8), "repeats": args.repeats,
                      "trained_s": trained, "loaded_s": loaded, "median_trained_s": round(t, 2),
                      "median_loaded_s": round(r, 2), "speed_up": round(t / r, 1), "same_weights": True}))


if __name__ == "__main__":
    main()
