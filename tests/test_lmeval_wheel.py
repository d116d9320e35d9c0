"""After a normal (non-editable) install of the wheel, plain lm-eval finds the factforget tasks.

The wheel is built from a clean copy of the sources (no stale build/ folder can leak in) and
installed with --no-deps into a fresh venv. The wheel puts the task folder inside the lm-eval
package of the environment it is installed into, so that environment needs lm-eval in its own
site-packages, as after `pip install factbench`. A venv made with --system-site-packages from this
venv would see the base interpreter's packages, not this venv's, so instead: the fresh venv gets
a copy of this venv's lm-eval code (without its ~14k built-in task YAMLs, whose indexing takes
~15 s) and a .pth line that appends this venv's site-packages for torch, transformers and the
rest. A .pth path line does not run the .pth files in that folder, so this venv's editable
factbench is invisible there; the subprocess runs outside the repository and reports where
everything it imported came from.
"""

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SOURCES = ("pyproject.toml", "README.md", "factbench", "tasks")

CHECK = r"""
import json, sys, factbench, lm_eval
from lm_eval.tasks import TaskManager
tm = TaskManager()
task = tm.load(["factforget_pool"])["tasks"]["factforget_pool"]
print(json.dumps({
    "factbench": factbench.__file__, "lm_eval": lm_eval.__file__, "tasks_dir": str(factbench.tasks_dir()),
    "all_tasks": [t for t in tm.all_tasks if t.startswith("factforget")],
    "pool_yaml": str(tm._index["factforget_pool"].yaml_path), "pool_docs": len(task.test_docs()),
    "sys_path": sys.path,
}))
"""


def _run(*cmd, **kw):
    out = subprocess.run(cmd, capture_output=True, text=True, **kw)
    assert out.returncode == 0, f"{cmd[:4]} failed:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out.stdout


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        path = REPO / name
        if path.is_dir():
            shutil.copytree(path, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(path, src / name)
    dist = tmp_path_factory.mktemp("dist")
    _run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
         "-w", str(dist), str(src))
    (whl,) = dist.glob("factbench-*.whl")
    return whl


@pytest.mark.packaging
def test_wheel_holds_the_task_folder_inside_lm_eval_and_every_factbench_package(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    tasks = {n.removeprefix("lm_eval/tasks/factforget/") for n in names if n.startswith("lm_eval/tasks/factforget/")}
    assert tasks == {p.name for p in (REPO / "tasks" / "factforget").iterdir() if p.is_file()}
    # Only the task folder: an lm_eval/__init__.py here would overwrite lm-eval's own.
    assert not [n for n in names if n.startswith("lm_eval/") and not n.startswith("lm_eval/tasks/factforget/")]
    packages = {str(p.relative_to(REPO)) for p in (REPO / "factbench").rglob("__init__.py")}
    assert packages <= names, f"add {sorted(packages - names)} to [tool.setuptools] packages in pyproject.toml"
    # The tasks' default questions: the bundled split, once it is in the repository.
    default_split = REPO / "factbench" / "profiles" / "smollm2-135m" / "split"
    bundled = {str(p.relative_to(REPO)) for p in default_split.glob("*") if p.is_file()}
    assert bundled <= names, f"the wheel lacks {sorted(bundled - names)}: see package-data in pyproject.toml"
    # The audit's bundled base answers (SmolLM2-135M, preset small): the default audit needs no base pass.
    audit_base = {str(p.relative_to(REPO)) for p in (REPO / "factbench" / "auditing" / "bundled").rglob("*") if p.is_file()}
    assert audit_base and audit_base <= names, f"the wheel lacks {sorted(audit_base - names)}"


@pytest.mark.packaging
def test_plain_lm_eval_finds_factforget_after_installing_the_wheel(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    site = Path(_run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())
    outer_site = Path(sysconfig.get_paths()["purelib"])
    lm_eval_src = Path(__import__("lm_eval").__file__).parent
    shutil.copytree(lm_eval_src, site / "lm_eval", ignore=_builtin_task_folders(lm_eval_src / "tasks"))
    (site / "outer-venv.pth").write_text(f"{outer_site}\n")
    _run(sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel))

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")} | {"HF_HUB_OFFLINE": "1"}
    report = json.loads(_run(str(python), "-c", CHECK, cwd=tmp_path, env=env).strip().splitlines()[-1])
    installed = site / "lm_eval" / "tasks" / "factforget"
    assert report["all_tasks"] == ["factforget", "factforget_audit", "factforget_heldout", "factforget_known_train",
                                   "factforget_new", "factforget_ood", "factforget_pool", "factforget_split"]
    assert report["pool_docs"] == 1200  # the hooks resolved to the installed factbench and loaded data
    assert Path(report["pool_yaml"]).parent == installed
    assert Path(report["factbench"]).is_relative_to(site)
    assert Path(report["lm_eval"]).is_relative_to(site)
    assert Path(report["tasks_dir"]) == installed
    assert not any(Path(p) in (REPO, REPO / "factbench") for p in report["sys_path"] if p)

    # The console scripts came with the wheel; factbench-eval adds no --include_path here.
    listed = _run(str(venv / "bin" / "factbench-eval"), "ls", "tasks", cwd=tmp_path, env=env)
    assert "factforget_heldout" in listed


def _builtin_task_folders(tasks: Path):
    def ignore(folder, names):
        return [n for n in names if Path(folder) == tasks and (tasks / n).is_dir()] + ["__pycache__"]

    return ignore


@pytest.mark.packaging
def test_reinstalling_lm_eval_keeps_the_tasks_and_uninstalling_factbench_removes_them(wheel, tmp_path):
    """The task files belong to factbench's install record, not lm-eval's: pip keeps them through a
    forced reinstall of lm-eval and removes them with factbench. The one test that reaches PyPI: it
    downloads the installed lm-eval's own wheel (from pip's cache after the first run)."""
    from importlib.metadata import version

    wheels = tmp_path / "wheels"
    _run(sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(wheels), f"lm-eval=={version('lm-eval')}")
    (lm_eval_wheel,) = wheels.glob("lm_eval-*.whl")
    venv = tmp_path / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", str(venv))
    python = venv / "bin" / "python"
    site = Path(_run(str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])").strip())

    def pip(*args):
        return _run(sys.executable, "-m", "pip", "--python", str(python), *args)

    pip("install", "--no-deps", "--no-index", "-q", str(lm_eval_wheel))
    pip("install", "--no-deps", "--no-index", "-q", str(wheel))
    tasks = site / "lm_eval" / "tasks" / "factforget"
    expected = {p.name for p in (REPO / "tasks" / "factforget").iterdir() if p.is_file()}
    assert {p.name for p in tasks.iterdir()} >= expected
    pip("install", "--force-reinstall", "--no-deps", "--no-index", "-q", str(lm_eval_wheel))
    assert {p.name for p in tasks.iterdir()} >= expected, "a forced lm-eval reinstall removed the factforget tasks"
    pip("uninstall", "-y", "-q", "factbench")
    assert not tasks.exists() or not any(tasks.glob("*.yaml")), "uninstalling factbench left the task YAMLs behind"
    assert (site / "lm_eval" / "tasks" / "nq_open").is_dir()  # and lm-eval's own tasks are untouched


def test_the_lm_eval_tasks_entry_point_is_declared():
    """lm-eval PR #4015 proposes task plugins found through an `lm_eval.tasks` entry point: declared now
    (lm-eval 0.4.13 ignores it), it points to the task folder."""
    import tomllib

    points = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]["lm_eval.tasks"]
    module, _, attr = points["factforget"].partition(":")
    import importlib

    assert getattr(importlib.import_module(module), attr)() == REPO / "tasks" / "factforget"
