import json
import time

import pytest

from factbench import models
from factbench.errors import ModelError


def test_specs_are_classified_without_loading(tmp_path):
    assert models.resolve("smollm2-135m")["source"] == "bundled"
    assert models.resolve("toy:tiny") == {"source": "toy", "name": "toy:tiny", "preset": "tiny"}
    assert models.resolve("Qwen/Qwen2.5-1.5B", "abc123") == {"source": "hub", "name": "Qwen/Qwen2.5-1.5B",
                                                             "revision": "abc123"}
    (tmp_path / "config.json").write_text("{}")
    assert models.resolve(str(tmp_path))["source"] == "local"


@pytest.mark.parametrize("spec, message", [
    ("", "no model given"),
    ("gpt-5", "unknown model"),
    ("./missing-folder", "unknown model"),
])
def test_bad_specs(spec, message):
    with pytest.raises(ModelError, match=message):
        models.resolve(spec)


def test_folder_that_is_not_a_model(tmp_path):
    with pytest.raises(ModelError, match="no config.json"):
        models.resolve(str(tmp_path))
    (tmp_path / "weights.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file"):
        models.resolve(str(tmp_path / "weights.bin"))


def test_unreachable_hub_id_is_one_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match=r"cannot reach the Hugging Face hub for 'nobody/nothing' \(offline"):
        models.load("nobody/nothing")


def test_a_hub_id_fails_fast_offline_and_when_the_hub_is_unreachable(monkeypatch, capsys):
    from factbench.cli import main

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    assert main(["models", "prepare", "nobody/nothing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach the Hugging Face hub for 'nobody/nothing'" in err[0]
    assert "use a local model folder" in err[0]
    # not offline, but nothing answers where the hub should be: refused at once, not after retries
    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(ModelError, match=r"cannot reach the Hugging Face hub for 'nobody/nothing' \(offline\? "
                                         r"no connection to 127.0.0.1:9"):
        models.model_folder("nobody/nothing")
    assert time.perf_counter() - start < 10


def test_a_damaged_hash_memo_is_rebuilt(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    right = models.folder_hash(tmp_path)
    for damaged in ("[1, 2]", '{"key": 3}', "\xff\xfe", '{"key": null, "sha256": []}'):
        (tmp_path / models.HASH_MEMO).write_text(damaged, encoding="latin-1")
        assert models.folder_hash(tmp_path) == right
    memo = json.loads((tmp_path / models.HASH_MEMO).read_text())
    assert memo["sha256"] == right


def test_bundled_model_identity_is_a_content_hash(smollm2_dir):
    path, identity = models.model_folder("smollm2-135m")
    assert path == str(smollm2_dir)
    assert len(identity["content_sha256"]) == 64
    assert models.folder_hash(smollm2_dir) == identity["content_sha256"]  # memoised, same answer
    assert "quantization_config" not in (smollm2_dir / "config.json").read_text()


def test_a_folder_loads_like_any_spec_and_without_weights_when_asked(tiny_world):
    """The toy world's folder through models.load: the same tokenizer and config with or without weights."""
    full = models.load(str(tiny_world.model_dir))
    light = models.load(str(tiny_world.model_dir), weights=False)
    assert light.model is None and full.model is not None
    assert light.identity == full.identity and full.identity["source"] == "local"
    assert light.config.to_dict() == full.config.to_dict() == full.model.config.to_dict()
    assert light.tokenizer.get_vocab() == full.tokenizer.get_vocab() == tiny_world.load_tokenizer().get_vocab()
    with pytest.raises(ModelError, match="cannot reach the Hugging Face hub for 'nobody/nothing'"):
        models.load("nobody/nothing", weights=False)
