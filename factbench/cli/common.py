"""What several `factbench` subcommands share: the help formatter, argument groups, the --out check."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import FactbenchError

MODEL_HELP = "smollm2-135m (default), toy[:PRESET], a folder or a hub id"


def formatter(prog):
    """Help keeps the descriptions' and epilogs' own line breaks; option help starts at column 32."""
    return argparse.RawDescriptionHelpFormatter(prog, max_help_position=32)


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1 (a batch size, a sample size, a count)."""
    return _number(text, int, lambda v: v >= 1, "a whole number of at least 1")


def count(text: str) -> int:
    """An argparse type: a whole number of at least 0 (0 meaning none)."""
    return _number(text, int, lambda v: v >= 0, "a whole number of at least 0")


def positive_float(text: str) -> float:
    """An argparse type: a number above 0 (epochs, a learning rate)."""
    return _number(text, float, lambda v: v > 0, "a number above 0")


def fraction(text: str) -> float:
    """An argparse type: a number from 0 to 1."""
    return _number(text, float, lambda v: 0 <= v <= 1, "a number from 0 to 1")


def _number(text, kind, ok, wanted):
    try:
        value = kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
    if value != value or not ok(value):  # value != value: NaN
        raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}")
    return value


def add_model_engine_args(group, *, model: bool = True) -> None:
    """Add the model and engine flags to a parser or argument group.

    With `model`: --model and --revision (one model is asked), then always --engine, --dtype and
    --batch-size (how factbench's own engine runs it).
    """
    if model:
        group.add_argument("--model", default="smollm2-135m", help=MODEL_HELP)
        group.add_argument("--revision", help="hub revision (branch, tag or commit)")
    group.add_argument("--engine", default="hf", choices=["hf", "vllm"], help="hf (CPU/GPU, default) or vllm (GPU)")
    group.add_argument("--dtype", default="auto", help="auto (bf16 on CUDA, fp32 on CPU), float32, bfloat16")
    group.add_argument("--batch-size", type=positive_int, help="hf engine batch size (default: 32)")


def engine_args(args) -> dict:
    """The engine keywords (engine, dtype, batch_size) of the flags `add_model_engine_args` added."""
    return {"engine": args.engine, "dtype": args.dtype, "batch_size": args.batch_size}


def add_base_tuned_model_args(parser):
    """The group "when --base or --tuned is a model" of commands that compare a fine-tune with its base.

    Holds --engine, --dtype, --batch-size, --base-revision and --tuned-revision; returned so that a
    command can add its own flags to it.
    """
    group = parser.add_argument_group("when --base or --tuned is a model")
    add_model_engine_args(group, model=False)
    group.add_argument("--base-revision", help="hub revision of the base model")
    group.add_argument("--tuned-revision", help="hub revision of the fine-tune")
    return group


def add_statistics_args(group) -> None:
    """Add --resamples and --seed (the bootstrap behind every interval) to a parser or argument group."""
    group.add_argument("--resamples", type=positive_int, default=2000, help="bootstrap resamples (default: 2000)")
    group.add_argument("--seed", type=int, default=0, help="bootstrap seed (default: 0)")


def bootstrap_of(args):
    """The `factbench.metrics.Bootstrap` that --resamples and --seed ask for."""
    from ..metrics import Bootstrap

    return Bootstrap(args.resamples, args.seed)


def check_out_file(path: Path | None, example: str) -> None:
    """Refuse an --out that is a folder where a file is written; `example` is a file name to suggest."""
    if path and path.is_dir():
        raise FactbenchError(f"--out {path} is a folder; give a file name such as {example}")
