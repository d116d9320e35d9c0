"""`factbench leaderboard add | build`: score cards into published tables, a web page and plots."""

from __future__ import annotations

from pathlib import Path

from .common import formatter


def _add_dir(p) -> None:
    p.add_argument("--dir", type=Path, default=Path("leaderboard"), help="leaderboard folder (default: leaderboard)")


def add(sub) -> None:
    p = sub.add_parser("leaderboard", help="collect score cards into published tables, a web page and plots",
                       formatter_class=formatter,
                       description="A leaderboard folder holds score cards in cards/. `add` validates a card and "
                                   "copies it there (refusing invalid cards and duplicates); `build` writes "
                                   "README.md (Markdown tables), leaderboard.csv, plots/*.png and index.html (one "
                                   "offline page: sortable tables, a base-model filter, retention against "
                                   "acquisition, per-relation flips).",
                       epilog="examples:\n"
                              "  factbench leaderboard add cards/sft.json\n"
                              "  factbench leaderboard build\n"
                              "  factbench leaderboard add card.json --dir my-board && factbench leaderboard build "
                              "--dir my-board")
    lsub = p.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    s = lsub.add_parser("add", help="validate a score card and add it to DIR/cards")
    s.add_argument("card", type=Path, metavar="CARD", help="a score card from `factbench score --out`")
    _add_dir(s)
    s.set_defaults(func=add_card)
    s = lsub.add_parser("build", help="write DIR/README.md, leaderboard.csv, plots/ and index.html from DIR/cards")
    _add_dir(s)
    s.set_defaults(func=build)


def add_card(args) -> None:
    from .. import leaderboard

    target = leaderboard.add(args.card, args.dir)
    print(f"added {target}; run `factbench leaderboard build --dir {args.dir}` to update the tables and page")


def build(args) -> None:
    from .. import leaderboard

    written = leaderboard.build(args.dir)
    print(f"wrote {len(written)} files in {args.dir}: " + ", ".join(str(p.relative_to(args.dir)) for p in written))
