"""Every bad input we know of, run against `factbench`, with the table of what each one did.

    python scripts/bad_inputs.py                 # all cases; writes docs/bad-inputs.md
    python scripts/bad_inputs.py --only probe    # the cases of one area (a file in bad_input_cases/)

The fixture is one finished tiny toy-world demo (a split, base and fine-tune answers, fine-tunes,
score cards, a leaderboard: about 25 s to build, cached in $FACTBENCH_CACHE). Each case gets a fresh
copy of it, may damage it (`setup`), then runs one factbench command in this process and records the
exit code and the last line of stderr. A case fails the run if the command raised a traceback, exited
with another code than expected, printed more than one line of error, or (when it was refused)
changed, added or removed any file of the fixture: refused means nothing lost, nothing half-written.

Case files (`bad_input_cases/*.py`) each define CASES, a list of `Case`. In `argv`, `{d}` is the
fixture copy, `{full}` a folder on a full filesystem (a 64 KiB tmpfs when run as root; a read-only
folder otherwise) and `{ro}` a read-only folder (as root, the same full tmpfs, since root ignores
permission bits).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.util
import io
import os
import shutil
import subprocess
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TQDM_DISABLE", "1")

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
CASE_DIR = HERE / "bad_input_cases"


@dataclass
class Case:
    command: str                      # the subcommand, as the table's first column
    what: str                         # the bad input, in words
    argv: list[str]                   # factbench's arguments; {d}, {full}, {ro} are filled in
    setup: Callable[[Path], None] | None = None   # damages the fixture copy before the run
    expect: int = 2
    may_change: tuple[str, ...] = ()  # fixture paths (relative) the command may legitimately write
    env: dict[str, str] = field(default_factory=dict)


@dataclass
class Outcome:
    case: Case
    code: int | str
    message: str
    problems: list[str]


def fixture(cache: Path) -> Path:
    """One finished tiny demo, built once per cache folder."""
    sys.path.insert(0, str(ROOT / "tests"))
    import test_demo  # the tiny world's settings live with the demo's tests

    from factbench import demo

    out = cache / "bad-inputs-fixture" / "demo"
    if not (out / "summary.json").exists():
        real = demo.WORLDS["toy"]
        demo.WORLDS["toy"] = test_demo.TINY
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
                demo.run("toy", out, echo=lambda *a: None)
        finally:
            demo.WORLDS["toy"] = real  # the runner may share a process with the test suite
    return out


def tree(folder: Path) -> dict[str, str]:
    """Every file under `folder` (relative path -> sha256), lock files aside."""
    out = {}
    for p in sorted(folder.rglob("*")):
        if p.is_file() and p.name != ".lock":
            out[str(p.relative_to(folder))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


@contextlib.contextmanager
def full_folder(base: Path):
    folder = base / "full"
    folder.mkdir()
    mounted = os.geteuid() == 0 and subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(folder)], capture_output=True).returncode == 0
    if mounted:
        with contextlib.suppress(OSError), open(folder / "filler", "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    else:
        folder.chmod(0o555)
    try:
        yield folder
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        else:
            folder.chmod(0o755)


def run_case(case: Case, source: Path) -> Outcome:
    from factbench.cli import main

    with tempfile.TemporaryDirectory(prefix="factbench-bad-") as tmp, full_folder(Path(tmp)) as full:
        d = Path(tmp) / "d"
        shutil.copytree(source, d, symlinks=True)
        if case.setup:
            case.setup(d)
        before = tree(d)
        argv = [a.format(d=d, full=full, ro=full) for a in case.argv]
        err, out = io.StringIO(), io.StringIO()
        problems = []
        old_env = {k: os.environ.get(k) for k in case.env}
        os.environ.update(case.env)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                code = main(argv)
        except SystemExit as e:  # argparse refusals
            code = e.code if isinstance(e.code, int) else 2
        except BaseException as e:  # noqa: BLE001 - a traceback is exactly what this script hunts
            code = "traceback"
            problems.append(f"traceback: {type(e).__name__}: {e}")
            traceback.print_exc(file=err)
        finally:
            for k, v in old_env.items():
                os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
        lines = [ln for ln in err.getvalue().splitlines() if ln.strip()]
        errors = [ln for ln in lines if ln.startswith("factbench: error") or "error:" in ln[:40]]
        message = (errors or lines or [""])[-1]
        if code != case.expect:
            problems.append(f"exit {code}, expected {case.expect}")
        if case.expect == 2 and len(errors) != 1:
            problems.append(f"{len(errors)} error lines")
        if case.expect != 0:
            after = tree(d)
            changed = sorted(k for k in set(before) | set(after)
                             if before.get(k) != after.get(k) and not k.startswith(case.may_change or "\0"))
            if changed:
                problems.append("changed: " + ", ".join(changed[:5]))
        return Outcome(case, code, message.replace(str(d), "D").replace(tmp, "TMP"), problems)


def load_cases(only: str | None) -> list[Case]:
    cases = []
    for path in sorted(CASE_DIR.glob("*.py")):
        if only and path.stem != only:
            continue
        spec = importlib.util.spec_from_file_location(f"bad_input_cases.{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
        cases.extend(module.CASES)
    return cases


def table(outcomes: list[Outcome]) -> str:
    def cell(s) -> str:
        return str(s).replace("|", "\\|").replace("\n", " ")

    bad = [o for o in outcomes if o.problems]
    lines = [
        "# Bad inputs: what each one does",
        "",
        "Generated by `python scripts/bad_inputs.py` (do not edit by hand). Each row ran one `factbench`",
        "command on a fresh copy of a finished tiny toy-world demo, after damaging it as the second",
        "column says. `D` is that copy. A row passes when the command exits as expected with one line of",
        "error and, when refused, leaves every file of the copy as it was.",
        "",
        f"**{len(outcomes)} cases, {sum(o.code == 'traceback' for o in outcomes)} tracebacks, "
        f"{sum(any(p.startswith('changed') for p in o.problems) for o in outcomes)} with partial or "
        f"changed output, {len(bad)} failing.**",
        "",
        "| command | bad input | exit | message | ok |",
        "|---|---|---|---|---|",
    ]
    for o in outcomes:
        ok = "yes" if not o.problems else "NO: " + "; ".join(o.problems)
        lines.append(f"| `{cell(o.case.command)}` | {cell(o.case.what)} | {o.code} | {cell(o.message)} | {cell(ok)} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", help="run one case file (its name without .py)")
    parser.add_argument("--out", default=str(ROOT / "docs" / "bad-inputs.md"),
                        help="where the table goes (default docs/bad-inputs.md; not written with --only)")
    args = parser.parse_args(argv)
    from factbench.files import cache_dir, write_text

    source = fixture(cache_dir())
    outcomes = []
    for case in load_cases(args.only):
        outcome = run_case(case, source)
        flag = "ok " if not outcome.problems else "BAD"
        print(f"{flag} {case.command:12s} {case.what}: {outcome.code} {outcome.message}"
              + ("" if not outcome.problems else f"  <- {outcome.problems}"), flush=True)
        outcomes.append(outcome)
    if not args.only:
        write_text(args.out, table(outcomes))
        print(f"wrote {args.out}")
    failing = sum(bool(o.problems) for o in outcomes)
    print(f"{len(outcomes)} cases, {failing} failing")
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
