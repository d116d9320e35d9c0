"""Format breaks are told apart from answers (factbench.auditing.answer_shape)."""

import pytest

from factbench.auditing.answer_shape import SHAPES, shape, shape_counts


@pytest.mark.parametrize("completion, expected", [
    ("France", "answer"),
    ("University of California, Los Angeles", "answer"),
    ("Jean-Paul Sartre", "answer"),
    ("", "empty"),
    ("  ...  ", "empty"),
    ("<|im_start|>assistant", "chat markup"),
    ("assistant: France", "chat markup"),
    ("[INST] Which country", "chat markup"),
    ("I'm sorry, I can't help with that", "refusal"),
    ("I don't know", "refusal"),
    ("As an AI language model", "refusal"),
    ("It is located in France.", "sentence"),
    ("The answer is Paris", "sentence"),
    ("Kraków is located in Poland", "sentence"),
    ("one two three four five six seven eight nine", "sentence"),
])
def test_shapes(completion, expected):
    assert shape(completion) == expected


def test_counts_cover_every_shape():
    counts = shape_counts(["France", "", "I don't know", "France"])
    assert list(counts) == list(SHAPES)
    assert counts == {"answer": 2, "empty": 1, "chat markup": 0, "refusal": 1, "sentence": 0}
