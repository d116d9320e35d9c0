"""`factbench leaderboard add | build`: score cards into published tables, a web page and plots."""

from __future__ import annotations

from pathlib import Path

from .common import formatter


def _add_dir(p, create: bool = True) -> None:
    p.add_argument("--dir", type=Path, default=Path("leaderboard"), help="leaderboard folder (default: leaderboard)")
    if create:
        p.add_argument("--create", action="store_true",
                       help="start a new leaderboard in --dir if it is not one yet (otherwise refused: a typo "
                            "in --dir would silently start a new board)")


def add(sub) -> None:
    p = sub.add_parser("leaderboard", help="collect score cards into published tables, a web page and plots",
                       formatter_class=formatter,
                       description="A leaderboard folder holds score and audit cards in cards/. `add` validates a "
                                   "card (recomputing every figure from its per-question outcomes and checking its "
                                   "checksum) and copies it there (refusing invalid cards and duplicates); `build` "
                                   "writes "
                                   "README.md (Markdown tables), leaderboard.csv, plots/*.png and index.html (one "
                                   "offline page: sortable tables, a base-model filter, retention against "
                                   "acquisition, per-relation flips).",
                       epilog="examples:\n"
                              "  factbench leaderboard add cards/sft.json\n"
                              "  factbench leaderboard build\n"
                              "  factbench leaderboard init --dir my-board\n"
                              "  factbench leaderboard add card.json --dir my-board && factbench leaderboard build "
                              "--dir my-board\n"
                              "  factbench leaderboard rehash old-card.json   # a card made before checksums")
    lsub = p.add_subparsers(dest="leaderboard_command", metavar="ACTION", required=True)
    s = lsub.add_parser("add", help="validate a score card and add it to DIR/cards")
    s.add_argument("card", type=Path, metavar="CARD", help="a score card from `factbench score --out`")
    _add_dir(s)
    s.set_defaults(func=add_card)
    s = lsub.add_parser("build", help="write DIR/README.md, leaderboard.csv, plots/ and index.html from DIR/cards")
    _add_dir(s)
    s.set_defaults(func=build)
    s = lsub.add_parser("init", help="start an empty leaderboard in DIR (its cards/ folder)")
    _add_dir(s, create=False)
    s.set_defaults(func=init)
    s = lsub.add_parser("rehash", help="give cards made before checksums their checksum, after recomputing "
                                       "every figure from their outcomes (refused when they disagree)")
    s.add_argument("cards", type=Path, nargs="+", metavar="CARD", help="score or audit card files, rewritten in place")
    s.set_defaults(func=rehash)


def add_card(args) -> None:
    from .. import leaderboard

    target = leaderboard.add(args.card, args.dir, create=args.create)
    print(f"added {target}; run `factbench leaderboard build --dir {args.dir}` to update the tables and page")


def build(args) -> None:
    from .. import leaderboard

    written = leaderboard.build(args.dir, create=args.create)
    print(f"wrote {len(written)} files in {args.dir}: " + ", ".join(str(p.relative_to(args.dir)) for p in written))


def init(args) -> None:
    from .. import leaderboard

    folder = leaderboard.init(args.dir)
    print(f"leaderboard ready in {folder}: add cards with `factbench leaderboard add CARD --dir {folder}`")


def rehash(args) -> None:
    from .. import leaderboard

    done = leaderboard.rehash(args.cards)
    for path in args.cards:
        print(f"{path}: " + ("figures recomputed from its outcomes and agree; checksum added" if path in done else
                             "already has a checksum; its figures agree with its outcomes; left as it was"))
