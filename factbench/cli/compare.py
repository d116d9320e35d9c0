"""`factbench compare`: paired comparison of score cards of fine-tunes of one base."""

from __future__ import annotations

from pathlib import Path

from .common import add_statistics_args, bootstrap_of, check_out_file, formatter


def add(sub) -> None:
    p = sub.add_parser("compare", help="paired comparison of score cards of fine-tunes of one base",
                       formatter_class=formatter,
                       description="For each pair of score cards (fine-tunes of the same base, scored on the same "
                                   "split): the both-right / only-A / only-B / both-wrong table on held-out known "
                                   "facts, an exact McNemar test, a paired bootstrap interval of the difference in "
                                   "forgetting, and a plain-language verdict.",
                       epilog="examples:\n"
                              "  factbench compare cards/sft.json cards/selfdistill.json\n"
                              "  factbench compare cards/*.json --out comparison.json")
    p.add_argument("cards", nargs="+", type=Path, metavar="CARD", help="score cards from `factbench score --out`")
    p.add_argument("--out", type=Path, metavar="FILE.json", help="also write the comparison as JSON")
    add_statistics_args(p)
    p.set_defaults(func=compare_cards)


def compare_cards(args) -> None:
    from .. import compare
    from ..files import write_json
    from ..sample_logs import check_out_json

    check_out_file(args.out, "comparison.json")
    check_out_json(args.out, lambda obj: isinstance(obj, dict) and obj.get("schema") == compare.COMPARISON_SCHEMA,
                   "a comparison")
    result = compare.compare(compare.load_cards(args.cards), bootstrap_of(args))
    if args.out:  # written first: a comparison that cannot be kept fails in one line
        write_json(args.out, result)
    print(compare.render(result))
    if args.out:
        print(f"\nwrote {args.out}")
