"""Few-shot prompts (factbench.prompts): deterministic exemplars of the question's own relation."""

import pytest

from factbench import data, prompts


@pytest.fixture(scope="module")
def dev_facts():
    return data.load("dev", ["P17"])[:20]


def test_exemplars_are_deterministic_and_shared_by_a_relation(dev_facts):
    other = data.load("test", ["P17"])[:2]
    first = prompts.exemplars(other[0])
    assert first == prompts.exemplars(other[0]) and first == prompts.exemplars(other[1])
    assert all(e.relation == "P17" for e in first)
    assert prompts.exemplars(other[0], prompt_index=1) != first
    assert prompts.exemplars(other[0], seed=1) != first


def test_a_question_is_never_its_own_exemplar(dev_facts):
    for prompt_index in range(3):
        shots = prompts.exemplars(dev_facts[0], prompt_index)
        for e in shots:  # each exemplar, asked itself, gets k others
            own = prompts.exemplars(e, prompt_index)
            assert len(own) == prompts.DEFAULT_SHOTS and all(x.question != e.question for x in own)


@pytest.mark.parametrize("k", [0, 1, 4, 7])
def test_k_shots_and_the_prompt_ends_with_the_question(k):
    fact = data.load("test", ["P19"])[0]
    prompt = prompts.build_prompt(fact, 0, k=k)
    assert prompt.count("Q: ") == k + 1 and prompt.count("\nA: ") == k
    assert prompt.endswith(f"Q: {fact.question}\nA:")
    for e in prompts.exemplars(fact, 0, k=k):
        assert prompts.format_example(e.question, e.answers[0]) in prompt
