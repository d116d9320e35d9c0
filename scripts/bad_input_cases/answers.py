"""Bad inputs of answers and scoring: answers folders that mix runs or are damaged, outputs that cannot
be written or would overwrite another file (eval, score, compare, overlap, audit)."""

import contextlib
import io
import json
import shutil

from bad_inputs import Case  # noqa: F401 - scripts/ is on sys.path when the runner loads this

SCORE = ["score", "--base", "{d}/answers/base", "--tuned", "{d}/answers/sft", "--split", "{d}/split"]
EVAL_SETS = ["eval", "--sets", "heldout", "--model", "toy:tiny", "--split-dir", "{d}/split"]
CARDS = ["{d}/cards/sft.json", "{d}/cards/known-only.json"]


def _mix(d):
    """The base's held-out answers dropped into the fine-tune's folder (one file of another run)."""
    shutil.copy(d / "answers/base/samples_factforget_heldout.jsonl", d / "answers/sft")


def _no_summary(d):
    (d / "answers/sft/summary.json").unlink()


def _not_utf8(d):
    path = d / "answers/sft/samples_factforget_heldout.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2].replace(b'"doc"', b'"d\xff\xfe"', 1)
    path.write_bytes(b"\n".join(lines))


def _truncated(d):
    path = d / "answers/sft/samples_factforget_heldout.jsonl"
    path.write_bytes(path.read_bytes()[:-40])


def _log_not_utf8(d):
    path = d / "models/sft/training_log.jsonl"
    path.write_bytes(path.read_bytes() + b'{"epoch": 9, "heldout_accuracy": 0.5, "x": "\xff"}\n')


def _lmeval_two_models(d):
    """One lm-eval --output_path folder holding runs of two models, a set from each."""
    lm = d / "lm"
    lm.mkdir()
    for (date, model), s in zip((("2025-01-02T10-00-00.1", "/models/a"), ("2025-03-04T10-00-00.1", "/models/b")),
                                ("heldout", "new")):
        shutil.copy(d / f"answers/base/samples_factforget_{s}.jsonl", lm / f"samples_factforget_{s}_{date}.jsonl")
        (lm / f"results_{date}.json").write_text(json.dumps({"config": {"model": "hf",
                                                                         "model_args": f"pretrained={model}"}}))


def _fresh_then_mixed(d):
    """A folder written by this factbench (`eval --sets`), then another run's file copied over one of its own."""
    from factbench.cli import main

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        assert main([*[a.format(d=d) for a in EVAL_SETS[:-2]], "--sets", "heldout", "new", "--split-dir",
                     str(d / "split"), "--out", str(d / "fresh")]) == 0
    shutil.copy(d / "answers/sft/samples_factforget_new.jsonl", d / "fresh")


CASES = [
    Case("score", "an answers folder mixing two runs (the base's held-out file in the fine-tune's folder)",
         SCORE, setup=_mix),
    Case("score", "a factbench answers folder of this version with another run's file copied in",
         ["score", "--base", "{d}/answers/base", "--tuned", "{d}/fresh", "--split", "{d}/split"],
         setup=_fresh_then_mixed),
    Case("score", "samples without summary.json", SCORE, setup=_no_summary),
    Case("score", "a samples file that is not UTF-8 (line 3)", SCORE, setup=_not_utf8),
    Case("score", "a samples file whose last line is truncated", SCORE, setup=_truncated),
    Case("score", "a training log that is not UTF-8", [*SCORE, "--training-log", "{d}/models/sft/training_log.jsonl"],
         setup=_log_not_utf8),
    Case("score", "an lm-eval folder holding runs of two models",
         ["score", "--base", "{d}/lm", "--tuned", "{d}/answers/sft", "--split", "{d}/split"], setup=_lmeval_two_models),
    Case("score", "--out over a file that is not a score card", [*SCORE, "--out", "{d}/results.md"]),
    Case("score", "--out on a full disk", [*SCORE, "--out", "{full}/x/card.json"]),
    Case("score", "--save-answers on a full disk (a model side)",
         ["score", "--base", "{d}/answers/base", "--tuned", "{d}/models/sft", "--split", "{d}/split",
          "--save-answers", "{full}/x"]),
    Case("score", "--out over an existing score card (replaced)", [*SCORE, "--out", "{d}/cards/sft.json"], expect=0),
    Case("eval", "--sets of another model into an existing answers folder", [*EVAL_SETS, "--out", "{d}/answers/sft"]),
    Case("eval", "--sets into a folder holding other files", [*EVAL_SETS, "--out", "{d}/split"]),
    Case("eval", "--sets --out on a full disk", [*EVAL_SETS, "--out", "{full}/x"]),
    Case("eval", "--out on a full disk", ["eval", "--model", "toy:tiny", "--limit", "3", "--out", "{full}/x"]),
    Case("eval", "--out is a file", ["eval", "--model", "toy:tiny", "--limit", "3", "--out", "{d}/results.md"]),
    Case("eval", "--sets of the same model into its answers folder (replaced whole)",
         [*EVAL_SETS, "--out", "{d}/answers/base"], expect=0),
    Case("compare", "--out on a full disk", ["compare", *CARDS, "--out", "{full}/c.json"]),
    Case("compare", "--out over a file that is not a comparison", ["compare", *CARDS, "--out", "{d}/demo.json"]),
    Case("overlap", "--out on a full disk", ["overlap", "{d}/split/train.jsonl", "--model", "toy:tiny",
                                             "--out", "{full}/o.json"]),
    Case("overlap", "--out over a file that is not an overlap report",
         ["overlap", "{d}/split/train.jsonl", "--model", "toy:tiny", "--out", "{d}/summary.json"]),
    Case("audit", "--out on a full disk", ["audit", "--base", "toy:tiny", "--tuned", "{d}/models/sft",
                                           "--out", "{full}/a.json"]),
    Case("audit", "--out over a score card", ["audit", "--base", "toy:tiny", "--tuned", "{d}/models/sft",
                                              "--out", "{d}/cards/sft.json"]),
]
