"""Is an answer answer-shaped? Format breaks are not forgetting.

An EntityQuestions answer is a short name (a place, a person, a language, a company). A fine-tune
that stopped following the `Q: ... A: ...` format (a chat fine-tune answering in sentences, a
model that refuses, one that leaks its chat template) gets facts "wrong" without having lost
them. The audit sorts every wrong-or-right answer into one shape, the first rule that applies:

| shape         | rule                                                                                  |
|---------------|---------------------------------------------------------------------------------------|
| `empty`       | nothing but whitespace or punctuation                                                 |
| `chat markup` | a chat-template token or role tag (`<|im_start|>`, `[INST]`, `<start_of_turn>`, `assistant:` ...) |
| `refusal`     | an apology, a refusal or a statement of not knowing (`I'm sorry`, `I cannot`, `I don't know`, `As an AI`) |
| `sentence`    | more than `MAX_ANSWER_WORDS` words, or a clause with a subject and a verb (`It is ...`, `The answer is ...`, `X is located in ...`) |
| `answer`      | anything else: answer-shaped, right or wrong                                          |

The rules are deliberately conservative (a long true name such as "University of California,
Los Angeles" stays an answer); `SHAPE_VERSION` changes with them. The shape is judged on what the
model said, right or wrong; grading stays exact match, so a right fact said in a sentence still
counts wrong, and the card shows how many forgotten facts were such format breaks.
"""

from __future__ import annotations

import re
from collections import Counter

SHAPE_VERSION = "shape-1"
SHAPES = ("answer", "empty", "chat markup", "refusal", "sentence")
MAX_ANSWER_WORDS = 8

_MARKUP = re.compile(r"<\|[^|>]{1,40}\|>|\[/?INST\]|<\/?s>|<start_of_turn>|<end_of_turn>|<\|?eot_id\|?>|"
                     r"^\s*(assistant|user|system)\s*[:\n]|<think>|</think>", re.IGNORECASE)
_REFUSAL = re.compile(r"\b(i'?m sorry|i am sorry|sorry,|i can(?:no|')t|i cannot|i do(?: not|n'?t) know|"
                      r"i'?m not sure|i am not sure|as an ai|i'?m unable|i am unable|no information|not sure)\b",
                      re.IGNORECASE)
_CLAUSE = re.compile(r"^(it|he|she|they|this|that|there|the answer|the correct answer|answer)\b.*\b"
                     r"(is|was|are|were|has|had|be)\b|\b(is|was|are|were)\s+(located|born|married|written|"
                     r"made|produced|created|founded|released|performed|owned|employed|known)\b", re.IGNORECASE)
_WORD = re.compile(r"\w+", re.UNICODE)


def shape(completion: str) -> str:
    """The shape of one completion (already cut at the stop string)."""
    text = completion.strip()
    if not _WORD.search(text):
        return "empty"
    if _MARKUP.search(text):
        return "chat markup"
    if _REFUSAL.search(text):
        return "refusal"
    if len(_WORD.findall(text)) > MAX_ANSWER_WORDS or _CLAUSE.search(text):
        return "sentence"
    return "answer"


def is_answer_shaped(completion: str) -> bool:
    return shape(completion) == "answer"


def shape_counts(completions) -> dict[str, int]:
    counts = Counter(shape(c) for c in completions)
    return {s: counts.get(s, 0) for s in SHAPES}
