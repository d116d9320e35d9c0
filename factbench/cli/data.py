"""`factbench data stats` and `factbench models list | prepare`: what ships inside factbench."""

from __future__ import annotations

from .common import formatter


def add(sub) -> None:
    p = sub.add_parser("data", help="inspect the bundled EntityQuestions data", formatter_class=formatter,
                       description="EntityQuestions (Sciavolino et al. 2021, MIT) ships inside factbench.",
                       epilog="examples:\n  factbench data stats\n  factbench data stats --json")
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)
    s = dsub.add_parser("stats", help="rows per relation and split (checksums verified)")
    s.add_argument("--json", action="store_true", help="print JSON instead of a table")
    s.set_defaults(func=data_stats)

    p = sub.add_parser("models", help="list model sources; prepare the bundled model", formatter_class=formatter,
                       epilog="examples:\n  factbench models list\n  factbench models prepare smollm2-135m")
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    s = msub.add_parser("list", help="the model specs factbench understands")
    s.set_defaults(func=models_list)
    s = msub.add_parser("prepare", help="convert/build a model once and print its folder and identity")
    s.add_argument("model", help="smollm2-135m, toy[:PRESET], a folder or a hub id")
    s.set_defaults(func=models_prepare)


def data_stats(args) -> None:
    from .. import data

    stats = data.stats()
    if args.json:
        import json

        print(json.dumps({r: dict(c) for r, c in stats.items()}, indent=2))
        return
    print(data.stats_table(stats))
    print("EntityQuestions (Sciavolino et al., EMNLP 2021), MIT licence; every file's SHA-256 verified.")


def models_list(args) -> None:
    from .. import models

    print("model specs:", models.describe_specs())


def models_prepare(args) -> None:
    from .. import models

    path, identity = models.prepare(args.model)
    print(path)
    print(identity)
