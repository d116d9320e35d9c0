"""Audit cards on the leaderboard: their own tables, one per base model and audit set.

An audit card (`factbench audit`) measures a fine-tune with no split, so it never shares a table
with score cards: its retention is on the fixed audit set (EntityQuestions test split), not on a
split's held-out facts, and its acquisition exists only when the training data was given. Tables
group cards by base model, audit version and preset, and question protocol; rows sort by retention.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..auditing.card import SCHEMA_ID as AUDIT_SCHEMA_ID
from . import MISSING, CardEntry, model_revision, rate, slugify

COLUMNS = ["fine-tune", "revision", "retention [95%]", "forgetting [95%]", "recalled n", "forgotten (format breaks)",
           "base-right kept [95%]", "base-right n", "edited", "acquisition [95%]", "format breaks [95%]", "audit set",
           "factbench"]
EXPLAINER = ("Audits (`factbench audit`, no split): each row is one fine-tune asked the fixed audit questions "
             "(EntityQuestions test split, every relation). **Retention**: share of the facts its base recalls "
             "(right under every prompt, not guessable) that the fine-tune still answers right; **forgotten "
             "(format breaks)**: of those it got wrong, how many answers were not answer-shaped; **edited**: audit "
             "facts whose subject is in the training data, left out of retention; **base-right kept**: the share "
             "of every fact the base answered right under prompt 0 (recalled or guessed: more facts, a weaker "
             "label) that the fine-tune still answers right. **Acquisition** only when the training data was "
             "given (`--trained-on`); otherwise unknown.")


def is_audit(card: dict) -> bool:
    return card.get("schema") == AUDIT_SCHEMA_ID


@dataclass
class AuditEntry(CardEntry):
    """One audit card's row."""

    @property
    def audit_set(self) -> str:
        a = self.card["audit"]
        return f"{a['version']} {a['preset']}"


@dataclass
class AuditTable:
    base: str
    base_key: str
    audit_set: str
    protocol_hash: str
    entries: list[AuditEntry]
    slug: str = ""


def audit_tables(entries: list[AuditEntry]) -> list[AuditTable]:
    groups: dict[tuple, list[AuditEntry]] = {}
    for e in entries:
        groups.setdefault((e.base_key, e.audit_set, e.card["protocol_hash"]), []).append(e)
    out = []
    for (key, audit_set, protocol), rows in groups.items():
        rows.sort(key=lambda e: (-(e.card["summary"]["retention"]["value"] or 0), e.tuned, e.file))
        revision = model_revision(rows[0].card["base"])
        shown = rows[0].base if revision == MISSING else f"{rows[0].base} @ {revision}"
        out.append(AuditTable(shown, key, audit_set, protocol, rows))
    out.sort(key=lambda t: (t.base, t.base_key, t.audit_set))
    for i, t in enumerate(out):
        t.slug = f"audit-{slugify(t.base)}-{slugify(t.audit_set)}-{i}"
    return out


def cells(e: AuditEntry) -> list[tuple[str, float | str | None]]:
    """One audit row's cells as (text, sort key), like the score tables' cells."""
    s, card = e.card["summary"], e.card
    acquisition = s["acquisition"]
    acq = (rate(acquisition), acquisition["value"]) if acquisition else ("unknown (training data not given)", None)
    return [(e.tuned, e.tuned.lower()), (model_revision(card["tuned"]), model_revision(card["tuned"])),
            (rate(s["retention"]), s["retention"]["value"]), (rate(s["forgetting"]), s["forgetting"]["value"]),
            (str(s["recalled_facts"]), s["recalled_facts"]),
            (f"{s['forgotten']} ({s['forgotten_format_breaks']})", s["forgotten"]),
            (rate(s.get("retained_of_base_right")), (s.get("retained_of_base_right") or {}).get("value")),
            (str((s.get("retained_of_base_right") or {}).get("n", MISSING)), (s.get("retained_of_base_right") or {}).get("n")),
            (str(s["edited"]) if card["training_data"]["known"] else "unknown", s["edited"]),
            acq, (rate(s["format_breaks"]), s["format_breaks"]["value"]),
            (e.audit_set, e.audit_set), (card["factbench_version"], card["factbench_version"])]


def relation_rows(e: AuditEntry) -> list[list[str]]:
    """The click-a-row view of an audit: per relation, recalled facts, retention, forgotten, format breaks."""
    rows = []
    for relation, r in e.card["by_relation"].items():
        rows.append([relation, str(r["questions"]), str(r["recalled"]), rate(r["retention"]), str(r["forgotten"]),
                     str(r["forgotten_format_breaks"]), rate(r["base_accuracy"]), rate(r["tuned_accuracy"])])
    return rows


RELATION_HEADERS = ["relation", "questions", "recalled by base", "retention [95%]", "forgotten", "of which format breaks",
                    "base accuracy", "fine-tune accuracy"]


def csv_rows(tables: list[AuditTable], commit: str | None) -> tuple[list[str], list[dict]]:
    rates = ("retention", "forgetting", "retained_of_base_right", "acquisition", "format_breaks")
    fields = (["base", "base_revision", "fine_tune", "fine_tune_revision", "audit_version", "audit_preset",
               "recalled", "forgotten", "forgotten_format_breaks", "edited", "training_data_known"]
              + [f"{r}{part}" for r in rates for part in ("", "_low", "_high", "_n")]
              + ["factbench_version", "built_at_commit", "protocol_hash", "card"])
    rows = []
    for t in tables:
        for e in t.entries:
            s, card = e.card["summary"], e.card
            row = {"base": e.base, "base_revision": model_revision(card["base"]), "fine_tune": e.tuned,
                   "fine_tune_revision": model_revision(card["tuned"]), "audit_version": card["audit"]["version"],
                   "audit_preset": card["audit"]["preset"], "recalled": s["recalled_facts"],
                   "forgotten": s["forgotten"], "forgotten_format_breaks": s["forgotten_format_breaks"],
                   "edited": s["edited"], "training_data_known": card["training_data"]["known"],
                   "factbench_version": card["factbench_version"], "built_at_commit": commit or "",
                   "protocol_hash": card["protocol_hash"], "card": f"cards/{e.file}"}
            for r in rates:
                value = s.get(r) or {}
                for part, key in (("", "value"), ("_low", "low"), ("_high", "high"), ("_n", "n")):
                    row[r + part] = value.get(key, "")
            rows.append(row)
    return fields, rows
