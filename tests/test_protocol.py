"""The question protocol (factbench.protocol): its hash, its decoding, and how mismatches are named."""

from factbench import protocol


def test_the_hash_depends_on_content_not_key_order():
    p = protocol.question_protocol()
    reordered = dict(reversed(list(p.items())))
    assert list(reordered) != list(p)
    assert protocol.protocol_hash(reordered) == protocol.protocol_hash(p)
    assert len(protocol.protocol_hash(p)) == 16
    assert protocol.protocol_hash(protocol.question_protocol(shots=5)) != protocol.protocol_hash(p)


def test_explain_mismatch_names_the_differing_field():
    a, b = protocol.question_protocol(), protocol.question_protocol(max_new_tokens=32)
    assert protocol.explain_mismatch(a, b, ("card", "now")) == "protocols differ (card vs now): max_new_tokens: 16 vs 32"
    assert protocol.explain_mismatch(a, dict(a)) == "protocols agree"


def test_both_decodings_are_the_protocols():
    p = protocol.question_protocol()
    params = protocol.generation_params()
    kwargs = protocol.generation_kwargs()
    assert params.max_new_tokens == kwargs["max_gen_toks"] == p["max_new_tokens"] == protocol.MAX_NEW_TOKENS
    assert list(params.stop) == kwargs["until"] == p["stop"] == list(protocol.STOP)
    assert params.temperature == kwargs["temperature"] == 0 and kwargs["do_sample"] is False
    other = protocol.question_protocol(max_new_tokens=8)
    assert protocol.generation_params(other).max_new_tokens == protocol.generation_kwargs(other)["max_gen_toks"] == 8


def test_made_under_other_protocol_says_which_hashes_and_fields():
    now, old = protocol.question_protocol(), protocol.question_protocol(shots=2)
    message = protocol.made_under_other_protocol("the split", protocol.protocol_hash(old), old, now, ("split", "now"))
    assert message.startswith(f"the split was made under question protocol {protocol.protocol_hash(old)}, but this "
                              f"factbench asks questions under {protocol.protocol_hash(now)}")
    assert "(protocols differ (split vs now): shots: 2 vs 4)" in message
    assert "protocols differ" not in protocol.made_under_other_protocol("x", "abc", None, now, ("a", "b"))
