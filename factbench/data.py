"""EntityQuestions, bundled with the package.

The 72 files (24 relations x train/dev/test) are byte-for-byte copies of the upstream JSON
(princeton-nlp/EntityQuestions, commit 096c261f, MIT licence), stored xz-compressed under
`factbench/data/entityquestions/`. Every file is checked against the upstream SHA-256 of its
*uncompressed* bytes when loaded, so a corrupted install can never silently change a result.

Each row becomes a `Fact` with a stable id `"<relation>/<split>/<index>"` (index = position in
the upstream file), the subject parsed back out of the relation's question template, and the
template itself.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache, lru_cache
from pathlib import Path

from .errors import DataError

DATA_DIR = Path(__file__).parent / "data" / "entityquestions"
SPLITS = ("train", "dev", "test")

# Relation id -> (Wikidata property label, question template). From the upstream
# relation_query_templates.json; P30 has no data files and is left out.
RELATIONS: dict[str, tuple[str, str]] = {
    "P17": ("country", "Which country is [X] located in?"),
    "P19": ("place of birth", "Where was [X] born?"),
    "P20": ("place of death", "Where did [X] die?"),
    "P26": ("spouse", "Who is [X] married to?"),
    "P36": ("capital", "What is the capital of [X]?"),
    "P40": ("child", "Who is [X]'s child?"),
    "P50": ("author", "Who is the author of [X]?"),
    "P69": ("educated at", "Where was [X] educated?"),
    "P106": ("occupation", "What kind of work does [X] do?"),
    "P112": ("founded by", "Who founded [X]?"),
    "P127": ("owned by", "Who owns [X]?"),
    "P131": ("located in the administrative territorial entity", "Where is [X] located?"),
    "P136": ("genre", "What type of music does [X] play?"),
    "P159": ("headquarters location", "Where is the headquarter of [X]?"),
    "P170": ("creator", "Who was [X] created by?"),
    "P175": ("performer", "Who performed [X]?"),
    "P176": ("manufacturer", "Which company is [X] produced by?"),
    "P264": ("record label", "What music label is [X] represented by?"),
    "P276": ("location", "Where is [X] located?"),
    "P407": ("language of work or name", "Which language was [X] written in?"),
    "P413": ("position played on team / speciality", "What position does [X] play?"),
    "P495": ("country of origin", "Which country was [X] created in?"),
    "P740": ("location of formation", "Where was [X] founded?"),
    "P800": ("notable work", "What is [X] famous for?"),
}

# Gekhman et al. (2024): 12 in-distribution relations, 7 out-of-distribution test relations;
# the remaining 5 were dropped there for overlapping with others.
IN_DISTRIBUTION = ("P131", "P136", "P17", "P19", "P26", "P264", "P36", "P40", "P495", "P69", "P740", "P800")
OUT_OF_DISTRIBUTION = ("P127", "P50", "P407", "P176", "P170", "P175", "P112")
DROPPED = ("P20", "P106", "P159", "P276", "P413")


@dataclass(frozen=True)
class Fact:
    """One EntityQuestions row."""

    id: str  # "<relation>/<split>/<index>", stable across releases
    relation: str
    split: str
    index: int
    question: str
    answers: tuple[str, ...]
    subject: str
    template: str

    def to_dict(self) -> dict:
        d = self.__dict__.copy()
        d["answers"] = list(self.answers)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Fact:
        return cls(**{**d, "answers": tuple(d["answers"])})


def fact_id(relation: str, split: str, index: int) -> str:
    return f"{relation}/{split}/{index}"


def check_relations(relations: Iterable[str] | None) -> list[str]:
    """Validate relation ids; None means all 24, in a fixed order."""
    if relations is None:
        return sorted(RELATIONS, key=lambda r: int(r[1:]))
    relations = list(relations)
    unknown = [r for r in relations if r not in RELATIONS]
    if unknown:
        raise DataError(
            f"unknown relation(s) {', '.join(unknown)}; EntityQuestions has {', '.join(check_relations(None))}"
        )
    if not relations:
        raise DataError("no relations selected")
    return relations


def check_split(split: str) -> str:
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    return split


def subject_of(question: str, template: str) -> str:
    """The [X] part of a question built from `template`."""
    m = _template_regex(template).fullmatch(question)
    if m is None:
        raise DataError(f"question {question!r} does not follow template {template!r}")
    return m.group(1)


@cache
def _template_regex(template: str) -> re.Pattern:
    before, after = template.split("[X]")
    return re.compile(re.escape(before) + "(.+)" + re.escape(after), re.DOTALL)


@lru_cache(maxsize=4)
def _checksums(data_dir: Path) -> dict[str, str]:
    path = data_dir / "SHA256SUMS"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"cannot read {path} ({e.strerror}); reinstall factbench") from None
    except ValueError:
        raise DataError(f"{path} is corrupted (not UTF-8); reinstall factbench") from None
    sums = {}
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]):
            raise DataError(f"{path} is corrupted (line {number} is not '<sha256> <file>'); reinstall factbench")
        sums[parts[1]] = parts[0]
    return sums


@cache
def _load_file(relation: str, split: str, data_dir: Path) -> tuple[Fact, ...]:
    name = f"{split}/{relation}.{split}.json"
    path = data_dir / f"{name}.xz"
    try:
        raw = lzma.decompress(path.read_bytes())
    except FileNotFoundError:
        raise DataError(f"data file {path} is missing; reinstall factbench") from None
    except OSError as e:
        raise DataError(f"cannot read data file {path} ({e.strerror or e}); reinstall factbench") from None
    except (lzma.LZMAError, EOFError):
        raise DataError(f"data file {path} is corrupted (not valid xz); reinstall factbench") from None
    expected = _checksums(data_dir).get(name)
    actual = hashlib.sha256(raw).hexdigest()
    if expected != actual:
        raise DataError(
            f"data file {path} fails its checksum (expected {expected}, got {actual[:16]}...); reinstall factbench"
        )
    template = RELATIONS[relation][1]
    return tuple(
        Fact(
            id=fact_id(relation, split, i),
            relation=relation,
            split=split,
            index=i,
            question=row["question"],
            answers=tuple(row["answers"]),
            subject=subject_of(row["question"], template),
            template=template,
        )
        for i, row in enumerate(json.loads(raw))
    )


def load(split: str, relations: Iterable[str] | None = None, data_dir: Path | None = None) -> list[Fact]:
    """All facts of one split, relation by relation in the order given (default: all 24)."""
    check_split(split)
    out: list[Fact] = []
    for r in check_relations(relations):
        out.extend(_load_file(r, split, Path(data_dir) if data_dir else DATA_DIR))
    return out


def get(fact_ids: Iterable[str], data_dir: Path | None = None) -> list[Fact]:
    """Look facts up by id."""
    out = []
    for fid in fact_ids:
        try:
            relation, split, index = fid.split("/")
            rows = _load_file(check_relations([relation])[0], check_split(split), Path(data_dir or DATA_DIR))
            out.append(rows[int(index)])
        except (ValueError, IndexError, TypeError, AttributeError):
            raise DataError(f"no EntityQuestions fact with id {fid!r}") from None
    return out


def stats(data_dir: Path | None = None) -> dict[str, Counter]:
    """Row counts: {relation: Counter(split -> rows)}."""
    return {r: Counter({s: len(load(s, [r], data_dir)) for s in SPLITS}) for r in check_relations(None)}


def relation_name(relation: str) -> str:
    """The relation's short name ("country" for P17), or "" for an unknown id."""
    return RELATIONS.get(relation, ("",))[0]


def stats_table(stats: dict[str, Counter]) -> str:
    """`stats()` as a text table: a row per relation (id, property, rows per split), then the totals."""
    lines = [f"{'relation':<9}{'property':<28}{'train':>8}{'dev':>8}{'test':>8}"]
    totals = {s: 0 for s in SPLITS}
    for r, counts in stats.items():
        lines.append(f"{r:<9}{RELATIONS[r][0][:27]:<28}" + "".join(f"{counts[s]:>8}" for s in SPLITS))
        for s in SPLITS:
            totals[s] += counts[s]
    lines.append(f"{'total':<37}" + "".join(f"{totals[s]:>8}" for s in SPLITS))
    return "\n".join(lines)
