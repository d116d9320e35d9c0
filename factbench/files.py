"""The one write path: atomic files and folders, write failures as one line, output locks, hashes.

Every file or folder factbench writes goes through `atomic_path` (or the `write_*` helpers built on
it): the content goes to a temporary name beside the target, on the same filesystem, and is renamed
into place only when complete. A full disk, a read-only folder or a missing permission becomes one
`WriteError` naming the path and the cause, and the previous target (if any) is left as it was.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BusyError, WriteError

# The errors that mean "this output cannot be written here", as opposed to a bug or a bad input file.
WRITE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG,
                errno.ENAMETOOLONG, errno.ENOTDIR, errno.EISDIR, errno.EEXIST, errno.ENOENT}


def cache_dir() -> Path:
    """Where converted models and toy worlds live: $FACTBENCH_CACHE, else ~/.cache/factbench."""
    return Path(os.environ.get("FACTBENCH_CACHE") or Path.home() / ".cache" / "factbench")


def write_error(target: Path | str, e: OSError) -> WriteError:
    """The one-line message for an OSError met while writing `target`."""
    cause = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        cause = "no space left on the device"
    elif e.errno == errno.EROFS:
        cause = "the filesystem is read-only"
    elif e.errno in (errno.EACCES, errno.EPERM):
        cause = "permission denied"
    return WriteError(f"cannot write {target}: {cause}; nothing was changed there")


def make_dirs(folder: Path | str) -> Path:
    """`mkdir -p`, with a failure reported as a one-line WriteError."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_error(folder, e) from None
    return folder


@contextmanager
def atomic_path(target: Path | str) -> Iterator[Path]:
    """Yield a temporary path beside `target`; it replaces `target` only if the block succeeds.

    The block writes a file or creates a folder at the yielded path. An interrupted or failed write
    never leaves a file (or folder) that looks complete; an OSError of the "cannot write here" kind
    (full disk, read-only, permission) becomes a WriteError naming `target`.
    """
    target = Path(target)
    make_dirs(target.parent)
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent)) / target.name
    except OSError as e:
        raise write_error(target, e) from None
    try:
        try:
            yield tmp
            if target.is_dir() and tmp.is_dir():
                # Two renames, so the old folder is kept until the new one is complete and in place.
                old = tmp.parent / (target.name + ".old")
                os.replace(target, old)
                try:
                    os.replace(tmp, target)
                except OSError:
                    os.replace(old, target)
                    raise
            else:
                os.replace(tmp, target)
        except OSError as e:
            if e.errno in WRITE_ERRNOS and _is_ours(e, target, tmp):
                raise write_error(target, e) from None
            raise
    finally:
        shutil.rmtree(tmp.parent, ignore_errors=True)


def _is_ours(e: OSError, target: Path, tmp: Path) -> bool:
    """An OSError about the temporary path or the target (not, say, an input file read in the block)."""
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT or e.errno == errno.EROFS:
        return True
    names = [str(n) for n in (e.filename, getattr(e, "filename2", None)) if n]
    return not names or any(n.startswith(str(tmp.parent)) or n == str(target) for n in names)


def write_text(target: Path | str, text: str) -> None:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(target: Path | str, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def read_dict(path: Path | str) -> dict | None:
    """A JSON object kept in a file, or None when it is missing or does not read as one (then it is made again)."""
    try:
        value = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def write_json(target: Path | str, obj) -> None:
    write_text(target, json.dumps(obj, indent=2, ensure_ascii=False) + "\n")


def write_jsonl(target: Path | str, rows) -> None:
    with atomic_path(target) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")


@contextmanager
def output_lock(folder: Path | str, what: str = "output folder") -> Iterator[None]:
    """Hold an exclusive lock on `folder` (a `.lock` file in it) for the block.

    A second factbench process writing the same folder is refused at once with a BusyError instead
    of redoing (and racing on) the same work. The lock is an advisory flock: it is released when the
    process ends, however it ends, so a killed run never leaves a stale lock behind.
    """
    folder = make_dirs(folder)
    path = folder / ".lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise write_error(path, e) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BusyError(f"{folder} is being written by another factbench process; "
                            f"wait for it to finish or choose another {what}") from None
        yield
    finally:
        os.close(fd)


def sha256_file(path: Path | str, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
