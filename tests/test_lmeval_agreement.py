"""lm-eval (`--model hf`) and `factbench eval --sets` give the same answer to every question.

Both run the same model on the same factforget questions; per fact id the prompts (by hash), the
completions and both scores must be identical. The model is a tiny random Llama with the SmolLM2
tokenizer: random logits have no near-ties, so any difference in prompt, tokenisation, stopping
or decoding shows up as a different completion. (The toy world would give right answers too, but
its smallest preset does not yet recall its facts and takes over a minute to build here.) The real
SmolLM2 then checks that right answers are scored alike (`em` not all zero).
"""

import pytest
from conftest import run_lm_eval, tiny_random_model
from test_lmeval_tasks import make_scripted_split

from factbench import question_sets, sample_logs
from factbench.cli import main

LIMIT = 6  # questions per set


@pytest.fixture(scope="module")
def split_dir(tmp_path_factory):
    return make_scripted_split(tmp_path_factory.mktemp("scripted"))[1]


@pytest.fixture(scope="module")
def random_model_dir(tmp_path_factory, smol_tokenizer):
    folder = tmp_path_factory.mktemp("random-llama")
    tiny_random_model("llama", len(smol_tokenizer)).save_pretrained(folder)
    smol_tokenizer.save_pretrained(folder)
    return folder


def assert_same_answers(factbench_out, lm_eval_out, tasks) -> list[dict]:
    compared = []
    for task in tasks:
        ours = sample_logs.read(sample_logs.find(factbench_out, task))
        theirs = sample_logs.read(sample_logs.find(lm_eval_out, task))
        assert list(ours) == list(theirs), f"{task}: different questions or order"
        for fid in ours:
            assert ours[fid] == theirs[fid], f"{task} {fid}: factbench {ours[fid]} vs lm-eval {theirs[fid]}"
        compared += ours.values()
    return compared


def test_random_model_same_prompts_completions_and_scores_in_every_set(random_model_dir, split_dir, tmp_path):
    tasks = [question_sets.task_name(s) for s in question_sets.SETS]
    run_lm_eval(random_model_dir, ["factforget_split", "factforget_pool"], tmp_path / "lm_eval", LIMIT,
                {"split": str(split_dir)})
    assert main(["eval", "--model", str(random_model_dir), "--dtype", "float32", "--split-dir", str(split_dir),
                 "--limit", str(LIMIT), "--out", str(tmp_path / "factbench")]) == 0
    compared = assert_same_answers(tmp_path / "factbench", tmp_path / "lm_eval", tasks)
    assert len(compared) == 4 * LIMIT + 5  # the scripted split has only 5 OOD facts
    assert len({c["completion"] for c in compared}) > 10  # varied, non-empty answers: the check has teeth


def test_real_smollm2_right_answers_score_alike(smollm2_dir, tmp_path):
    # The first P17 pool questions: SmolLM2 gets about 4 in 10 of them right.
    run_lm_eval(smollm2_dir, ["factforget_pool"], tmp_path / "lm_eval", 10, batch_size=1)
    assert main(["eval", "--model", str(smollm2_dir), "--dtype", "float32", "--sets", "pool", "--limit", "10",
                 "--out", str(tmp_path / "factbench")]) == 0
    compared = assert_same_answers(tmp_path / "factbench", tmp_path / "lm_eval", ["factforget_pool"])
    assert 0 < sum(c["em"] for c in compared) < len(compared)
