"""Trainable-parameter presets (recipes/parameters.py): `requires_grad` of every parameter, per preset and architecture."""

import pytest
import torch
from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

from factbench.errors import FactbenchError
from factbench.recipes import parameters


def _model(arch: str, tied: bool = False):
    torch.manual_seed(0)
    small = dict(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=2, num_attention_heads=2,
                 num_key_value_heads=1, max_position_embeddings=32, tie_word_embeddings=tied)
    if arch == "llama":
        return LlamaForCausalLM(LlamaConfig(**small))
    if arch == "qwen2":
        return Qwen2ForCausalLM(Qwen2Config(**small))
    return GPT2LMHeadModel(GPT2Config(vocab_size=64, n_embd=16, n_layer=2, n_head=2, n_positions=32))


ARCHS = ["llama", "qwen2", "gpt2"]


def _role(arch: str, name: str) -> str:
    """What a parameter is, written out per architecture independently of parameters.py's patterns."""
    if arch == "gpt2":
        attention = (".attn.c_attn.weight", ".attn.c_attn.bias", ".attn.c_proj.weight", ".attn.c_proj.bias")
        ffn = (".mlp.c_fc.weight", ".mlp.c_fc.bias", ".mlp.c_proj.weight", ".mlp.c_proj.bias")
        other = ("transformer.wte.weight", "transformer.wpe.weight", "lm_head.weight", "transformer.ln_f.")
        norms = (".ln_1.", ".ln_2.")
    else:
        attention = tuple(f".self_attn.{p}_proj.{w}" for p in "qkvo" for w in ("weight", "bias"))
        ffn = tuple(f".mlp.{p}_proj.weight" for p in ("gate", "up", "down"))
        other = ("model.embed_tokens.weight", "lm_head.weight", "model.norm.weight")
        norms = (".input_layernorm.weight", ".post_attention_layernorm.weight")
    if name.endswith(attention):
        return "attention"
    if name.endswith(ffn):
        return "ffn"
    assert name.startswith(other) or any(n in name for n in norms), f"unclassified parameter {name}"
    return "frozen-in-presets"


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("preset", ["attention", "ffn", "all"])
def test_every_parameter_of_every_preset(arch, preset):
    model = _model(arch)
    summary = parameters.apply(model, preset)
    seen = 0
    for name, p in model.named_parameters(remove_duplicate=False):
        expected = preset == "all" or _role(arch, name) == preset
        assert p.requires_grad is expected, f"{arch} {preset}: {name}"
        seen += 1
    assert seen == len(list(model.named_parameters(remove_duplicate=False)))
    assert 0 < summary["trainable_parameters"] <= summary["total_parameters"]


@pytest.mark.parametrize(("arch", "attention_tensors"), [("llama", 8), ("qwen2", 14), ("gpt2", 8)])
def test_attention_preset_counts(arch, attention_tensors):
    """Two layers: q/k/v/o weights (+ Qwen2's three biases per layer; GPT-2's fused c_attn and c_proj with biases)."""
    model = _model(arch)
    assert parameters.apply(model, "attention")["trainable_tensors"] == attention_tensors


def test_ffn_preset_keeps_gpt2_attention_c_proj_frozen():
    model = _model("gpt2")
    parameters.apply(model, "ffn")
    params = dict(model.named_parameters())
    assert params["transformer.h.0.mlp.c_proj.weight"].requires_grad
    assert not params["transformer.h.0.attn.c_proj.weight"].requires_grad


def test_custom_globs_and_regexes():
    model = _model("llama")
    parameters.apply(model, ["*.layers.1.mlp.*", "re:layers\\.0\\.self_attn\\.q_proj"])
    trained = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trained == {"model.layers.1.mlp.gate_proj.weight", "model.layers.1.mlp.up_proj.weight",
                       "model.layers.1.mlp.down_proj.weight", "model.layers.0.self_attn.q_proj.weight"}


def test_a_pattern_that_matches_nothing_is_an_error():
    with pytest.raises(FactbenchError, match="match no parameter"):
        parameters.apply(_model("gpt2"), ["*.self_attn.q_proj.*"])


def test_unknown_preset_and_bad_regex():
    with pytest.raises(FactbenchError, match="unknown trainable preset"):
        parameters.apply(_model("llama"), "mlp")
    with pytest.raises(FactbenchError, match="not a valid regular expression"):
        parameters.apply(_model("llama"), ["re:(unclosed"])
    with pytest.raises(FactbenchError, match="non-empty"):
        parameters.apply(_model("llama"), [])


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_tied_embeddings(arch):
    """GPT-2 and SmolLM2-style Llama share one tensor between embeddings and LM head."""
    model = _model(arch, tied=True)
    embed = "transformer.wte.weight" if arch == "gpt2" else "model.embed_tokens.weight"
    assert model.get_input_embeddings().weight is model.get_output_embeddings().weight
    with pytest.raises(FactbenchError, match="one tied tensor"):
        parameters.apply(model, ["lm_head.weight"])
    parameters.apply(model, ["lm_head.weight", embed])
    assert model.get_output_embeddings().weight.requires_grad
    for preset in ("attention", "ffn"):
        parameters.apply(model, preset)
        assert not model.get_input_embeddings().weight.requires_grad
