"""`factbench audit`: any fine-tune against its base, no split needed: what it forgot."""

from __future__ import annotations

from pathlib import Path

from .common import add_base_tuned_model_args, add_statistics_args, bootstrap_of, check_out_file, engine_args, formatter


def _presets():
    from ..auditing import PRESETS

    return PRESETS


def add(sub) -> None:
    p = sub.add_parser("audit", help="audit any fine-tune against its base, no split needed: what it forgot",
                       formatter_class=formatter,
                       description="Audit a fine-tune you did not make against its base: the fixed audit question set "
                                   "(EntityQuestions test split, every relation) is asked of the base under K prompts "
                                   "(what it recalls: right under every prompt and not guessable) and of the fine-tune "
                                   "under prompt 0. The audit card reports retention of the recalled facts per "
                                   "relation with intervals, the flip table, format breaks apart from forgetting, and "
                                   "with --trained-on what it learned and which facts it edited. Each of --base and "
                                   "--tuned is a model (folder, hub id, smollm2-135m) or an answers folder of the "
                                   "factforget_audit task (lm_eval --log_samples, or --save-answers). The base's answers "
                                   "are cached by its weights' hash (bundled for smollm2-135m, preset small).",
                       epilog="examples:\n"
                              "  factbench audit --base smollm2-135m --tuned ./my-finetune --out cards/ft-audit.json\n"
                              "  factbench audit --base smollm2-135m --tuned ./my-finetune --trained-on train.jsonl\n"
                              "  lm_eval --model hf --model_args pretrained=BASE --tasks factforget_audit --log_samples "
                              "--output_path out/base\n"
                              "  lm_eval --model hf --model_args pretrained=TUNED --tasks factforget_audit --metadata "
                              "'{\"prompts\": 1}' --log_samples --output_path out/ft\n"
                              "  factbench audit --base out/base --tuned out/ft\n"
                              "\npresets (--preset):\n"
                              + "".join(f"  {n:<9} {p.purpose}\n" for n, p in _presets().items())
                              + "\n--trained-on: JSON Lines of {\"question\", \"answer\"}, {\"prompt\", \"completion\"} or "
                                "chat {\"messages\": [...]}")
    p.add_argument("--base", required=True, metavar="B", help="the base model, or its audit answers folder")
    p.add_argument("--tuned", required=True, metavar="T", help="the fine-tune, or its audit answers folder")
    p.add_argument("--preset", default="small", choices=list(_presets()),
                   help="audit question set size (default: small, for CPUs)")
    p.add_argument("--trained-on", type=Path, metavar="FILE",
                   help="the fine-tune's training data: adds acquisition, and audit facts about its subjects count as "
                        "edited, not forgotten")
    p.add_argument("--profile", type=Path, metavar="DIR",
                   help="a knowledge profile of the base: its labels replace the audit's where it covers the questions")
    p.add_argument("--out", type=Path, metavar="CARD.json", help="write the audit card (JSON) here")
    g = add_base_tuned_model_args(p)
    g.add_argument("--save-answers", type=Path, metavar="DIR", help="keep the fine-tune's answers in DIR (an answers folder)")
    g.add_argument("--no-base-cache", action="store_true",
                   help="ask the base again even if its audit answers are bundled or cached (the new ones are cached)")
    add_statistics_args(p.add_argument_group("statistics"))
    p.set_defaults(func=audit)


def audit(args) -> None:
    from ..auditing import audit as audit_fine_tune
    from ..auditing import render
    from ..auditing.card import SCHEMA_ID
    from ..files import write_json
    from ..sample_logs import check_out_json, check_writable

    check_out_file(args.out, "audit.json")
    check_out_json(args.out, lambda obj: isinstance(obj, dict) and obj.get("schema") == SCHEMA_ID, "an audit card")
    if args.save_answers:
        check_writable(args.save_answers)
    card = audit_fine_tune(args.base, args.tuned, preset=args.preset, trained_on_file=args.trained_on,
                           profile=args.profile, base_revision=args.base_revision, tuned_revision=args.tuned_revision,
                           save_answers=args.save_answers, base_cache=not args.no_base_cache, boot=bootstrap_of(args),
                           **engine_args(args))
    if args.out:  # written first: a card that cannot be kept fails in one line
        write_json(args.out, dict(card))
    print(render.render(card))
    if args.out:
        print(f"\nwrote audit card {args.out}")
