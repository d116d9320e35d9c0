"""The toy world: a tiny language model whose knowledge we decide.

Real base models know an unknown mix of facts, and probing them takes GPU time. For fast tests
and the offline demo, factbench instead builds a small GPT-2-style model from scratch, on the
CPU, in minutes (the `tiny` preset: seconds), and pre-trains it on a chosen set of
EntityQuestions facts:

- the **known** facts are in its pre-training data, so it answers them under the usual 4-shot
  prompt (greedy recall is measured and recorded);
- the **unknown** facts never are: they are the "new facts" later fine-tuning teaches it, and
  the yardstick for how much it forgets of the known ones meanwhile.

Pre-training documents look exactly like few-shot prompts (`Q: ...\\nA: ...` lines of one
relation), so the model learns the answer format along with the facts. Its tokenizer is
word-level (each word, space, punctuation mark and newline is one token), built offline from
every word of the world's facts and of the dev rows the prompt exemplars come from; text
outside that vocabulary becomes [UNK], so the world only makes sense for its own facts.

The result is a plain Hugging Face folder (GPT2LMHeadModel + PreTrainedTokenizerFast) plus
`world.json`, which records the config, the known and unknown fact ids and the measured recall.
`toy_world(config)` caches builds by a hash of the config; `toy_split(preset)` is the world's
split (train / held-out facts) for the recipes, the demo and `factbench interference`.

| file             | what                                                                        |
|------------------|-----------------------------------------------------------------------------|
| world.py         | `ToyWorldConfig` (presets, hash), `ToyWorld`, which facts a world knows      |
| pretraining.py   | the word-level tokenizer, the model config, the pre-training loop           |
| build.py         | `build_toy_world`, `recall`, `load_toy_world`, `toy_world` (the cache)      |
| split.py         | `toy_split`, `label_facts`: the world's split, from one greedy answer a fact |
"""

from .build import RECALL_MAX_NEW_TOKENS, RECALL_SHOTS, build_toy_world, load_toy_world, recall, toy_world
from .pretraining import EOS, PAD, UNK, WORD_PATTERN, build_tokenizer, model_config_for, pretrain, pretraining_documents
from .split import label_facts, toy_split
from .world import ARCHS, PRESETS, TOYWORLD_VERSION, ToyWorld, ToyWorldConfig, choose_facts

__all__ = [
    "ARCHS", "EOS", "PAD", "PRESETS", "RECALL_MAX_NEW_TOKENS", "RECALL_SHOTS", "TOYWORLD_VERSION", "UNK",
    "WORD_PATTERN", "ToyWorld", "ToyWorldConfig", "build_tokenizer", "build_toy_world", "choose_facts",
    "label_facts", "load_toy_world", "model_config_for", "pretrain", "pretraining_documents", "recall", "toy_split",
    "toy_world",
]
