"""factbench: did this fine-tune make the model forget facts it knew, and how many new facts did it learn?"""

from pathlib import Path

__version__ = "0.1.0"


def tasks_dir() -> Path:
    """The factforget lm-eval task folder (pass it to `lm_eval --include_path`).

    From a clone or an editable install it is the repository's `tasks/factforget/`; a normal
    install puts the same files into lm-eval's own `lm_eval/tasks/factforget/`, where lm-eval
    finds them without any flag.
    """
    repo_copy = Path(__file__).resolve().parent.parent / "tasks" / "factforget"
    if (repo_copy / "_factforget.yaml").is_file():
        return repo_copy
    import importlib.util

    spec = importlib.util.find_spec("lm_eval")
    for root in (spec.submodule_search_locations or []) if spec else []:
        installed = Path(root) / "tasks" / "factforget"
        if (installed / "_factforget.yaml").is_file():
            return installed
    raise FileNotFoundError("the factforget task folder is missing: reinstall factbench (pip install factbench)")


def __getattr__(name: str):
    # `factbench.audit(base, tuned, ...)` without importing the audit's dependencies on `import factbench`.
    if name == "audit":
        from .auditing import audit

        return audit
    raise AttributeError(f"module 'factbench' has no attribute {name!r}")
