"""The base model's first evaluation point, generated vs read back from the cache (recipes/base_answers.py).

    OMP_NUM_THREADS=1 python benchmarks/base_answers.py --questions 60 --repeats 3

SmolLM2-135M (bundled), fp32, the first `--questions` held-out facts of the bundled P17 profile's
facts, asked as a fine-tune's first evaluation point asks them: 4-shot and 0-shot, greedy, the
evaluation engine's batch size (32). Each repeat asks once through the bare engine (what every
fine-tune did before) and once through a ReusingEngine over a cache filled beforehand, whose time
includes hashing the weights (the key's costliest part). Medians over the repeats, the ratio from
the same run. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    from factbench import asking, data, models
    from factbench.engines import engine_for
    from factbench.protocol import generation_params
    from factbench.recipes.base_answers import ReusingEngine
    from factbench.recipes.callbacks import PROTOCOLS

    loaded = models.load("smollm2-135m")
    engine = engine_for(loaded.model, loaded.tokenizer, batch_size=32, dtype="float32", device="cpu")
    facts = data.load("dev", ["P17"])[:args.questions]
    params = generation_params()
    folder = tempfile.mkdtemp(prefix="base-answers-")

    def ask(make) -> tuple[float, list]:
        start = time.perf_counter()
        through = make()  # the ReusingEngine hashes the weights here: timed with its reads
        bits = [[r["em"] for r in asking.answer(through, facts, params=params, shots=shots).records]
                for shots, _ in PROTOCOLS.values()]
        return time.perf_counter() - start, bits

    ask(lambda: ReusingEngine(engine, folder))  # fills the cache
    generated, reused = [], []
    for _ in range(args.repeats):
        seconds, fresh = ask(lambda: engine)
        generated.append(seconds)
        seconds, kept = ask(lambda: ReusingEngine(engine, folder))
        reused.append(seconds)
        assert kept == fresh, "the answers read back differ from the ones generated"
    g, r = statistics.median(generated), statistics.median(reused)
    print(json.dumps({"questions": len(facts), "protocols": list(PROTOCOLS), "repeats": args.repeats,
                      "generated_s": [round(t, 2) for t in generated], "reused_s": [round(t, 3) for t in reused],
                      "median_generated_s": round(g, 2), "median_reused_s": round(r, 3),
                      "speed_up": round(g / r, 1)}))


if __name__ == "__main__":
    main()
