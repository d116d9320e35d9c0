"""Per-sample answer logs in lm-eval's shape, so answers from either source can be scored later.

lm-eval (`--log_samples`) writes `<output_path>/<model>/samples_<task>_<date>.jsonl`, one JSON
object per question: `doc` (here with the fact `id`), `target`, `arguments`, `resps`,
`filtered_resps` and the metrics (`em`, `contains`). `factbench eval --sets` writes
`samples_<task>.jsonl` with the same keys. `read` takes either and gives, per fact id, the
completion (cut at the stop string and stripped, as factbench grades it) and both scores.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from .errors import FactbenchError
from .matching import cut_at_stop
from .protocol import STOP


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
    with open(path) as f:
        for n, line in enumerate(f, 1):
            try:
                row = json.loads(line)
                fid = key(row["doc"])
                completion = row["filtered_resps"][0]
                if isinstance(completion, list):  # some lm-eval filters keep a list per sample
                    completion = completion[0]
                out[fid] = {"completion": cut_at_stop(completion, STOP), "em": bool(row["em"]),
                            "contains": bool(row["contains"]), "prompt_hash": row.get("prompt_hash")}
            except (ValueError, KeyError, IndexError, TypeError):
                raise FactbenchError(f"{path}:{n} is not a factforget sample (needs doc.id, filtered_resps, "
                                     "em, contains)") from None
    return out
