"""An audit from lm-eval logs and one from factbench's engines are the same card.

Base and fine-tune are two tiny random Llamas with the SmolLM2 tokenizer (random logits have no
near-ties, so any difference in prompt, tokenisation, stopping or decoding shows as a different
completion); the `tiny` audit preset keeps lm-eval's runs to a few seconds.
"""

import json

import pytest
from conftest import run_lm_eval, tiny_random_model

from factbench.auditing import audit

PRESET = "tiny"
MEASURED = ("audit", "protocol_hash", "training_data", "summary", "by_relation", "by_category", "flips",
            "answer_shapes", "edited", "acquisition", "outcomes")


def quiet(*a):
    pass


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, smol_tokenizer):
    dirs = {}
    for role, seed in (("base", 0), ("tuned", 1)):
        folder = tmp_path_factory.mktemp(f"random-{role}")
        tiny_random_model("llama", len(smol_tokenizer), seed=seed).save_pretrained(folder)
        smol_tokenizer.save_pretrained(folder)
        dirs[role] = folder
    return dirs


@pytest.fixture(scope="module")
def training_file(tmp_path_factory):
    from factbench import data

    path = tmp_path_factory.mktemp("train") / "train.jsonl"
    facts = data.load("train", ["P26"])[:5]
    path.write_text("".join(json.dumps({"question": f.question, "answer": f.answers[0]}) + "\n" for f in facts)
                    + json.dumps({"question": "What is my cat called?", "answer": "Tom"}) + "\n")
    return path


@pytest.mark.parametrize("with_training", [False, True], ids=["no-training-data", "trained-on"])
def test_lm_eval_logs_and_factbench_engines_give_the_same_card(model_dirs, training_file, tmp_path, with_training):
    extra = {"trained_on": str(training_file)} if with_training else {}
    run_lm_eval(model_dirs["base"], ["factforget_audit"], tmp_path / "lm-base", None, {"preset": PRESET, **extra})
    run_lm_eval(model_dirs["tuned"], ["factforget_audit"], tmp_path / "lm-tuned", None,
                {"preset": PRESET, "prompts": 1, **extra})
    trained = training_file if with_training else None
    from_logs = audit(str(tmp_path / "lm-base"), str(tmp_path / "lm-tuned"), preset=PRESET, trained_on_file=trained,
                      echo=quiet)
    from_engines = audit(str(model_dirs["base"]), str(model_dirs["tuned"]), preset=PRESET, dtype="float32",
                         trained_on_file=trained, echo=quiet)
    for key in MEASURED:
        assert from_logs[key] == from_engines[key], key
    assert from_logs["base"]["source"] == "lm-eval" and from_engines["base"]["source"] == "factbench"
    assert from_logs["tuned"]["answers_sha256"] == from_engines["tuned"]["answers_sha256"]
    answers = from_engines["outcomes"]["tuned_answer"]
    assert len(set(answers)) > 20  # varied answers: the comparison has teeth
    if with_training:
        assert from_engines["acquisition"]["questions"] == 6
