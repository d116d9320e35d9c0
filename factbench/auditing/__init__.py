"""Audit any fine-tune against its base, with no split: what it forgot, and what it learned.

    factbench audit --base smollm2-135m --tuned ./my-finetune [--trained-on train.jsonl]

From Python (a notebook):

    import factbench
    card = factbench.auditing("smollm2-135m", "./my-finetune")
    card["summary"]["retention"]              # of the facts the base recalls
    card.questions().query("forgotten")       # per question, a pandas DataFrame
    card.relations()                          # per relation

Each side is a model spec (local folder, hub id, `smollm2-135m`) or an answers folder of the
`factforget_audit` task (lm-eval `--log_samples`, or `factbench audit --save-answers`). The base is
judged under K prompts (`factbench.auditing.base`, cached by its weights' hash), the fine-tune asked
under prompt 0 (`factbench.auditing.answers`); the card is `factbench.auditing.card`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .. import knowledge, matching
from ..errors import FactbenchError
from ..metrics import DEFAULT_BOOTSTRAP, Bootstrap
from ..protocol import protocol_hash, question_protocol
from . import answers, base, card, questions, trained_on
from .questions import DEFAULT_PRESET, PRESETS, AuditError

__all__ = ["DEFAULT_PRESET", "PRESETS", "AuditCard", "AuditError", "audit"]


class AuditCard(dict):
    """An audit card (a plain dict, JSON as it is) with pandas views of its tables."""

    def questions(self):
        """One row per audit question: labels, both answers, outcome (retained / forgotten / ...)."""
        import pandas as pd

        o = self["outcomes"]
        frame = pd.DataFrame({k: v for k, v in o.items() if isinstance(v, list)}).rename(columns={"ids": "id"})
        for key in ("recalled", "guessable", "edited", "base", "tuned", "base_contains", "tuned_contains"):
            frame[key if key not in ("base", "tuned") else f"{key}_right"] = [c == "1" for c in o[key]]
        # The flip of each question under prompt 0, as in the card's flip table.
        frame["outcome"] = np.select([frame.base_right & frame.tuned_right, frame.base_right, frame.tuned_right],
                                     ["retained", "forgotten", "acquired"], "never_known")
        # The headline's forgetting: a recalled, not edited fact the fine-tune gets wrong.
        frame["forgotten"] = frame.recalled & ~frame.edited & ~frame.tuned_right
        frame["format_break"] = frame.tuned_shape != "answer"
        return frame

    def relations(self):
        """One row per relation: recalled facts, retention with its interval, forgotten, format breaks."""
        import pandas as pd

        rows = []
        for relation, r in self["by_relation"].items():
            rows.append({"relation": relation, "questions": r["questions"], "recalled": r["recalled"],
                         "retention": r["retention"]["value"], "retention_low": r["retention"]["low"],
                         "retention_high": r["retention"]["high"], "forgotten": r["forgotten"],
                         "forgotten_format_breaks": r["forgotten_format_breaks"],
                         "base_accuracy": r["base_accuracy"]["value"], "tuned_accuracy": r["tuned_accuracy"]["value"],
                         "format_breaks": r["format_breaks"]["value"], "edited": r["edited"]})
        return pd.DataFrame(rows).set_index("relation")


def audit(base_side: str, tuned_side: str, *, preset: str = DEFAULT_PRESET, trained_on_file: str | Path | None = None,
          profile: str | Path | None = None, engine: str = "hf", dtype: str = "auto", batch_size: int | None = None,
          base_revision: str | None = None, tuned_revision: str | None = None, save_answers: str | Path | None = None,
          base_cache: bool = True, boot: Bootstrap = DEFAULT_BOOTSTRAP, echo=print) -> AuditCard:
    """Audit `tuned_side` against `base_side` (see the module docstring); every bad input is one AuditError."""
    from ..answer_sources import check_model_spec, is_answers_folder

    k = questions.preset(preset).prompts
    training = trained_on.read(trained_on_file) if trained_on_file else None
    given_profile = _load_profile(profile) if profile else None
    save_answers = Path(save_answers) if save_answers else None
    if save_answers and save_answers.exists() and any(save_answers.iterdir()):
        raise AuditError(f"--save-answers {save_answers} already holds files; choose another folder")
    is_folder = {role: is_answers_folder(where) for role, where in (("base", base_side), ("tuned", tuned_side))}
    for role, where, rev in (("base", base_side, base_revision), ("tuned", tuned_side, tuned_revision)):
        if not is_folder[role]:
            try:
                check_model_spec(where, role, rev)
            except FactbenchError as e:
                raise AuditError(str(e)) from None
    notes: list[str] = []
    tuned_read = answers.read(tuned_side, "tuned", preset, training) if is_folder["tuned"] else None
    base_read = answers.read(base_side, "base", preset, training) if is_folder["base"] else None
    for side, need in ((base_read, k), (tuned_read, 1)):
        if side is not None:
            answers.check_complete(side, need)
            if training:
                _check_trained_answers(side, training)

    # The base: what it recalls (labels) and its prompt-0 answers.
    if base_read is not None:
        greedy = {key: a["completion"] for key, a in base_read.answers.items() if not trained_on.is_trained_id(key[0])}
        rows = base.rows_from_answers(greedy, preset)
        base_identity = base_read.identity | {"answers_sha256": base_read.sha256()}
        base_trained = _trained_right(base_read, training)
        rule_source = f"the base's lm-eval / factbench answers in {base_read.identity.get('answers')}"
    else:
        prof, where = base.base_profile(base_side, preset, engine=engine, dtype=dtype, revision=base_revision,
                                        batch_size=batch_size, use_cache=base_cache, echo=echo)
        rows = prof.rows
        base_identity = {"source": "factbench", "answers": str(prof.path), "base_answers": where,
                         "model": prof.manifest["model"], "engine": prof.manifest["engine"],
                         "profile_sha256": prof.manifest["profile_sha256"]}
        base_trained = None
        if training:  # the cached base pass does not hold the training questions: ask only those
            asked = answers.answer_with_model(base_side, "base", preset, 0, training=training, engine=engine,
                                              revision=base_revision, dtype=dtype, batch_size=batch_size, echo=echo)
            base_trained = _trained_right(asked, training)
        rule_source = f"a greedy probe of the base ({where}: {prof.path})"
    labels, sources = _labels(rows, given_profile, base_identity, notes)
    gold = {f.id: f.answers for f in questions.facts(preset)}
    base_answers = {r["id"]: {"completion": (c := r["greedy_answers"][0]), "em": matching.exact_match(c, gold[r["id"]]),
                              "contains": matching.contains(c, gold[r["id"]])} for r in rows}

    # The fine-tune: its prompt-0 answers (and its answers to the training questions).
    if tuned_read is None:
        tuned_read = answers.answer_with_model(tuned_side, "tuned", preset, 1, training=training, engine=engine,
                                               revision=tuned_revision, dtype=dtype, batch_size=batch_size,
                                               save_to=save_answers, echo=echo)
    tuned_trained = _trained_right(tuned_read, training)
    _note_architectures(base_identity, tuned_read.identity, notes, echo)
    notes += [*(base_read.notes if base_read else []), *tuned_read.notes]

    acquisition = None
    if training:
        ids = [f.id for f in training.facts]
        acquisition = card.acquisition_metrics(np.array([base_trained[i] for i in ids], dtype=bool),
                                               np.array([tuned_trained[i] for i in ids], dtype=bool), boot)
    rule = {"recalled": "HighlyKnown (right under every one of the K prompts, greedy) and not guessable (answer "
                        "not in the question, subject-blind control guess rate below the threshold, not only "
                        "exemplar copies)",
            "base_prompts": k, "guess": base.settings(preset).guess.__dict__, "labels_from": sources,
            "base_pass": rule_source}
    built = card.build(preset=preset, labels=labels, base={"answers": base_answers, "identity": base_identity},
                       tuned=tuned_read, knowledge_rule=rule, training=training,
                       edited=trained_on.edited(questions.facts(preset), training) if training else set(),
                       acquisition=acquisition, boot=boot, notes=notes)
    card.validate(built)
    return AuditCard(built)


def _load_profile(path) -> knowledge.Profile:
    try:
        prof = knowledge.load_profile(path)
    except FactbenchError as e:
        raise AuditError(f"--profile: {e}") from None
    if prof.protocol_hash != protocol_hash(question_protocol()):
        raise AuditError(f"--profile {path} was made under question protocol {prof.protocol_hash}, not this "
                         f"factbench's {protocol_hash(question_protocol())}: its labels describe other prompts")
    return prof


def _labels(rows: list[dict], given: knowledge.Profile | None, base_identity: dict, notes: list[str]):
    """Per audit id: the label shown, recalled / guessable, and its source (the given profile where it covers)."""
    sampled_by_pass = False
    covered = {}
    if given is not None:
        want = (base_identity.get("model") or {}).get("content_sha256")
        got = (given.manifest.get("model") or {}).get("content_sha256")
        if want and got and want != got:
            raise AuditError(f"--profile {given.path} was made for other weights ({got[:12]}) than the base "
                             f"({want[:12]}): its labels describe another model")
        covered = {r["id"]: r for r in given.rows}
    profile_sampled = bool(given and given.manifest.get("budget", {}).get("samples"))
    out, sources = {}, {}
    for r in rows:
        row, source, sampled = (covered[r["id"]], f"profile {given.path}", profile_sampled) if r["id"] in covered \
            else (r, "audit base pass", sampled_by_pass)
        out[r["id"]] = {"category": row["category"], "known": row["known"], "guessable": row["guessable"],
                        "category_label": card.category_of(row, sampled), "source": source}
        sources[source] = sources.get(source, 0) + 1
    if given is not None and not any(s.startswith("profile") for s in sources):
        notes.append(f"--profile {given.path} covers none of the audit questions (it probed {given.manifest['pool']['split']}"
                     "-split questions); every label comes from the audit base pass")
    return out, sources


def _check_trained_answers(side: answers.AuditAnswers, training) -> None:
    got = {fid for fid, _ in side.answers if fid.startswith("trained/")}
    want = {f.id for f in training.facts}
    if not want <= got:
        raise AuditError(f"the {side.role} answers hold no answers to {len(want - got)} of the {len(want)} --trained-on "
                         f"questions: run lm_eval with --metadata '{{\"trained_on\": \"{training.path}\"}}' (or give "
                         "the model, and factbench asks them)")


def _trained_right(side: answers.AuditAnswers, training) -> dict[str, bool] | None:
    if training is None:
        return None
    return {f.id: side.answers[(f.id, 0)]["em"] for f in training.facts}


def _note_architectures(base_identity: dict, tuned_identity: dict, notes: list[str], echo) -> None:
    """Allowed, but said: a 'fine-tune' of another architecture or vocabulary is not a fine-tune of this base."""
    configs = []
    for identity in (base_identity, tuned_identity):
        model = identity.get("model") or {}
        folder = model.get("name") if model.get("source") in ("local", None) else None
        if model.get("source") == "bundled":
            from ..models import smollm2_folder

            folder = str(smollm2_folder())
        try:
            configs.append(json.loads((Path(folder) / "config.json").read_text()) if folder else None)
        except (OSError, ValueError, TypeError):
            configs.append(None)
    if None in configs:
        return
    b, t = configs
    for key, what in (("model_type", "architectures"), ("vocab_size", "vocabularies")):
        if b.get(key) != t.get(key):
            line = (f"base and fine-tune have different {what} ({b.get(key)} vs {t.get(key)}): the audit compares "
                    "their answers all the same, but this is not a fine-tune of that base")
            notes.append(line)
            echo(f"note: {line}")
