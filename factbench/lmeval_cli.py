"""`factbench-eval`: lm-eval's own command line, with the factforget tasks always findable.

A normal `pip install factbench` puts the task folder inside lm-eval (`lm_eval/tasks/factforget/`),
where plain `lm_eval --tasks factforget` finds it. From a clone or an editable install the folder
stays in the repository, and lm-eval 0.4 only looks further with `--include_path` (one path, no
entry points). This wrapper adds that flag when it is needed and otherwise runs lm-eval unchanged:

    factbench-eval --model hf --model_args pretrained=MODEL --tasks factforget --device cpu
    factbench-eval ls tasks
"""

from __future__ import annotations

import sys
from pathlib import Path

from . import tasks_dir

SUBCOMMANDS_WITH_INCLUDE_PATH = ("run", "ls", "validate")


def lm_eval_argv(argv: list[str], task_folder: Path, builtin_tasks: Path) -> list[str]:
    """lm-eval's arguments with `--include_path task_folder` added where it is missing and needed."""
    argv = list(argv)
    # lm-eval inserts `run` itself when the first argument is no subcommand; do the same first so
    # that the flag lands after the subcommand it belongs to.
    if len(argv) > 1 and argv[0] not in SUBCOMMANDS_WITH_INCLUDE_PATH:
        argv.insert(0, "run")
    if not argv or argv[0] not in SUBCOMMANDS_WITH_INCLUDE_PATH:
        return argv
    if task_folder.resolve().parent == builtin_tasks.resolve():
        return argv  # installed inside lm-eval: found anyway, and indexing it twice only warns
    if any(a == "--include_path" or a.startswith("--include_path=") for a in argv):
        raise SystemExit("factbench-eval: error: --include_path is taken by the factforget tasks; lm-eval "
                         f"0.4 accepts one path. Copy or link {task_folder} into your folder and call lm_eval.")
    return [*argv, "--include_path", str(task_folder)]


def main(argv: list[str] | None = None) -> None:
    import lm_eval.tasks
    from lm_eval.__main__ import cli_evaluate

    argv = sys.argv[1:] if argv is None else argv
    sys.argv = [sys.argv[0], *lm_eval_argv(argv, tasks_dir(), Path(lm_eval.tasks.__file__).parent)]
    cli_evaluate()


if __name__ == "__main__":
    main()
