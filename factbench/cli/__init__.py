"""The `factbench` command: one module per command family, each adding its parser(s) and thin handler(s).

A handler turns the parsed flags into one library call and prints what it returns.
Flags several commands share (model and engine, statistics, the --out file check) live in
`common`.
"""

from __future__ import annotations

import argparse
import sys

from .. import __version__
from ..errors import FactbenchError
from . import audit, compare, data, demo, evaluate, frontier, interference, knowledge, leaderboard, score, train
from .common import formatter

EPILOG = """\
examples:
  factbench demo                                   the whole loop, offline, on the bundled model
  factbench data stats                             what EntityQuestions data is bundled
  factbench eval --model smollm2-135m --split dev --limit 500 --out runs/smollm2-dev
  factbench models prepare smollm2-135m            convert the bundled model once (cached)
  factbench score --base runs/base --tuned runs/sft --out cards/sft.json
  factbench compare cards/sft.json cards/selfdistill.json
  factbench frontier runs/study                    retention against acquisition across recipes and seeds

Every command exits with code 2 and one line of explanation on bad input.
"""

# The commands that run models: they choose their CPU thread count from the free cores (threads.py).
COMPUTE = {"demo", "eval", "probe", "score", "audit", "train", "interference", "overlap"}

# In the order `factbench --help` lists them.
COMMANDS = (demo, data, evaluate, knowledge, score, audit, compare, leaderboard, train, interference, frontier)


class Parser(argparse.ArgumentParser):
    """argparse with its refusals on one line (no usage block): every failure is one line, exit 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="factbench", formatter_class=formatter, epilog=EPILOG,
        description="Did this fine-tune make the model forget facts it knew, and how many new facts did it learn?")
    parser.add_argument("--version", action="version", version=f"factbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for family in COMMANDS:
        family.add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # for commands that rerun themselves (workers)
    from .. import card_schema

    card_schema.COMMAND = ["factbench", *args.argv]  # what a card's provenance records
    try:
        if args.command in COMPUTE:
            from .. import threads

            threads.configure(echo=lambda line: print(line, file=sys.stderr))
        args.func(args)
    except FactbenchError as e:
        print(f"factbench: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # The last resort for a write or read the code did not route through files.py: still one line.
        where = f" {e.filename}" if e.filename else ""
        print(f"factbench: error:{where}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("factbench: interrupted", file=sys.stderr)
        return 130
    return 0
