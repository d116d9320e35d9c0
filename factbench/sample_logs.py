"""Per-sample answer logs in lm-eval's shape, so answers from either source can be scored later.

lm-eval (`--log_samples`) writes `<output_path>/<model>/samples_<task>_<date>.jsonl`, one JSON
object per question: `doc` (here with the fact `id`), `target`, `arguments`, `resps`,
`filtered_resps` and the metrics (`em`, `contains`). `factbench eval --sets` writes
`samples_<task>.jsonl` with the same keys. `read` takes either and gives, per fact id, the
completion (cut at the stop string and stripped, as factbench grades it) and both scores.

A factbench answers folder (`eval`, `eval --sets`, `score --save-answers`, the audit's answers) is
one model's one run: `write_folder` writes every samples file and `summary.json` together (the
folder appears whole or not at all), the summary records the model, a `run_id` and the samples
files it wrote (`files`: rows and sha256 of each), and every row carries the same `run_id`. A
folder is refused as an --out when it holds another model's answers or anything else
(`check_out_folder`, before any model runs); the same model's re-run replaces it whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from .errors import FactbenchError
from .files import atomic_path, sha256_file, write_error
from .matching import cut_at_stop
from .protocol import STOP

SUMMARY = "summary.json"


def record(doc_id: int, doc: dict, prompt: str, completion: str, em: bool, contains: bool,
           generation_kwargs: dict) -> dict:
    """One line of a samples file, keyed and hashed like lm-eval's (`doc_id` = position in the set).

    Equal `prompt_hash`es across the two sources prove the model saw the same prompt.
    """
    target = str(doc["answers"])
    return {
        "doc_id": doc_id,
        "doc": doc,
        "target": target,
        "arguments": {"gen_args_0": {"arg_0": prompt, "arg_1": generation_kwargs}},
        "resps": [[completion]],
        "filtered_resps": [completion],
        "filter": "none",
        "metrics": ["em", "contains"],
        "doc_hash": _sha256(json.dumps(doc, indent=2, ensure_ascii=False)),
        "prompt_hash": _sha256(prompt),
        "target_hash": _sha256(target),
        "em": float(em),
        "contains": float(contains),
    }


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def find(folder: Path | str, task: str) -> Path:
    """The samples file of `task` under `folder`: factbench's, else lm-eval's newest."""
    folder = Path(folder)
    own = folder / f"samples_{task}.jsonl"
    if own.is_file():
        return own
    # lm-eval adds a date to the name and a folder per model; newest last in name order.
    found = sorted(folder.rglob(f"samples_{task}_*.jsonl"), key=lambda p: p.name)
    if not found:
        raise FactbenchError(f"no samples_{task}*.jsonl under {folder} (did lm_eval run with --log_samples?)")
    return found[-1]


def read(path: Path | str, key=lambda doc: doc["id"]) -> dict:
    """{key: {"completion", "em", "contains", "prompt_hash"}} from a samples file of either source.

    The key is the fact id; the audit, which asks one fact under several prompts, keys by
    (fact id, prompt index).
    """
    out = {}
    for n, line in lines(path):
        try:
            row = json.loads(line)
        except ValueError:
            raise FactbenchError(f"{path}:{n} is not a factforget sample (not valid JSON: truncated or "
                                 "corrupted?)") from None
        try:
            fid = key(row["doc"])
            completion = row["filtered_resps"][0]
            if isinstance(completion, list):  # some lm-eval filters keep a list per sample
                completion = completion[0]
            out[fid] = {"completion": cut_at_stop(completion, STOP), "em": bool(row["em"]),
                        "contains": bool(row["contains"]), "prompt_hash": row.get("prompt_hash")}
        except (ValueError, KeyError, IndexError, TypeError, AttributeError):
            raise FactbenchError(f"{path}:{n} is not a factforget sample (needs doc.id, filtered_resps, "
                                 "em, contains)") from None
    return out


def lines(path: Path | str, error=FactbenchError) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of a UTF-8 text file; a line that is not UTF-8 is one `error`.

    The last line may lack its newline; a file that ends with one has no empty line after it.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as e:
        raise error(f"cannot read {path}: {e.strerror or e}") from None
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    for n, raw in enumerate(parts, 1):
        try:
            yield n, raw.decode("utf-8")
        except UnicodeDecodeError:
            raise error(f"{path}:{n} is not UTF-8 text (a binary or wrongly encoded file?)") from None


# ---- answers folders: one model, one run ---------------------------------------------------------

def _is_answer_file(p: Path) -> bool:
    return p.is_file() and (p.name == SUMMARY or (p.name.startswith("samples") and p.name.endswith(".jsonl")))


def same_model(a: dict | None, b: dict | None) -> bool:
    """Two model identities (`models.resolve` / an engine's `describe()["model"]`) of the same model spec."""
    if not a or not b:
        return False
    return (a.get("source"), a.get("name"), a.get("revision")) == (b.get("source"), b.get("name"), b.get("revision"))


def model_label(model: dict | None) -> str:
    if not model:
        return "an unknown model"
    return str(model.get("name")) + (f"@{model['revision']}" if model.get("revision") else "")


def folder_model(folder: Path) -> dict | None:
    """The model of the answers folder `folder` (from its summary.json), None when it cannot be told."""
    try:
        summary = json.loads((folder / SUMMARY).read_text(encoding="utf-8"))
        model = summary["engine"]["model"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return model if isinstance(model, dict) else None


def check_out_folder(out: Path | None, model: dict | None, flag: str = "--out", replaces: tuple[str, ...] = ()) -> None:
    """Refuse, before any model runs, an answers folder `out` the run would not own whole.

    Refused: `out` is a file; it holds files other than answers (replacing it would lose them); it
    holds answers of another model (`model`, as `models.resolve` gives it) or of an unknown run; its
    location cannot be written. The same model's answers are replaced whole when the run ends, and
    so are the entries named in `replaces` (a sharded run's `shards/`, which its merge replaces).
    """
    if out is None:
        return
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FactbenchError(f"{flag} {out} exists and is not a folder")
    if out.is_dir():
        held = [p for p in out.iterdir() if p.name != ".lock" and p.name not in replaces]
        foreign = sorted(p.name for p in held if not _is_answer_file(p))
        if foreign:
            raise FactbenchError(f"{flag} {out} holds other files than one run's answers ({foreign[0]}"
                                 f"{', ...' if len(foreign) > 1 else ''}): choose another {flag}")
        if held:
            other = folder_model(out)
            if other is None:
                raise FactbenchError(f"{flag} {out} holds answers of an unknown run (no readable summary.json): "
                                     f"choose another {flag}, or remove {out}")
            if model is not None and not same_model(other, model):
                raise FactbenchError(f"{flag} {out} holds the answers of another model ({model_label(other)}), not "
                                     f"{model_label(model)}: an answers folder holds one model's run; choose another "
                                     f"{flag}, or remove {out}")
    check_writable(out)


def check_writable(target: Path | str) -> None:
    """Refuse, before the work, an output that cannot be written (full disk, read-only, no permission).

    Writes and removes a small file in the nearest existing folder on the way to `target`; the final
    write stays atomic, this only spares a long run whose result could not be kept.
    """
    target = Path(target)
    where = target if target.is_dir() else target.parent
    while not where.exists() and where != where.parent:
        where = where.parent
    try:
        fd, tmp = tempfile.mkstemp(prefix=".factbench-check-", dir=where)
        try:
            os.write(fd, b"\0" * 1024)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(tmp)
    except OSError as e:
        raise write_error(target, e) from None


def write_folder(out: Path | str, files: dict[str, list[dict]], summary: dict, replaces: tuple[str, ...] = ()) -> dict:
    """Write one run's answers folder whole: each samples file (name -> rows) and summary.json.

    Every row and the summary get one new `run_id`; the summary lists the files (rows, sha256). The
    folder replaces `out` only once complete (`files.atomic_path`); `out` must have passed
    `check_out_folder` for the summary's model (and `replaces`). Returns the summary written.
    """
    out = Path(out)
    model = (summary.get("engine") or {}).get("model")
    check_out_folder(out, model, replaces=replaces)  # again: another process may have written it meanwhile
    run_id = uuid.uuid4().hex
    summary = summary | {"run_id": run_id, "files": {}}
    with atomic_path(out) as tmp:
        tmp.mkdir()
        for name, rows in files.items():
            with open(tmp / name, "w", encoding="utf-8") as f:
                for row in rows:
                    f.write(json.dumps(row | {"run_id": run_id}, ensure_ascii=False) + "\n")
            summary["files"][name] = {"rows": len(rows), "sha256": sha256_file(tmp / name)}
        (tmp / SUMMARY).write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return summary


def check_out_json(path: Path | None, owned, what: str, flag: str = "--out") -> None:
    """Before the work: refuse an --out JSON file that exists and is not `what`, or cannot be written.

    `owned(obj)` says whether an existing file's JSON is `what` ("a score card"), which may be
    replaced; anything else (another file, unreadable JSON) is never overwritten.
    """
    if path is None:
        return
    path = Path(path)
    if path.is_dir():
        raise FactbenchError(f"{flag} {path} is a folder; give a file name")
    if path.exists():
        try:
            ok = bool(owned(json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError, AttributeError):
            ok = False
        if not ok:
            raise FactbenchError(f"{flag} {path} exists and is not {what}: refusing to overwrite it; choose "
                                 f"another {flag}, or remove it")
    check_writable(path)
