"""Atomic output: write to a temporary file in the destination directory, then rename over the target.

A crash or an exception mid-write leaves no half-written file at the final path. :func:`check_output_file` and
:func:`check_output_dir` say, before any work is done, when an output cannot be written where it was asked for (a
directory in the way, a file where a directory is needed): a one-line InputError naming the path.
"""
import contextlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np

from mindsponge_fold.common.errors import InputError


def _check_parents(path: Path, what: str) -> None:
    """The nearest existing ancestor of ``path`` must be a writable directory (the rest is created)."""
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"cannot create the {what} here: {parent} is not a directory", path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"cannot create the {what} here: {parent} is not writable", path)


def file_content(head: bytes) -> str:
    """What the first bytes of a file say it is (for messages about a file of the wrong kind)."""
    if not head:
        return "an empty file"
    if head.startswith(b"\x93NUMPY"):
        return "a single numpy array (.npy)"
    if head.startswith(b"\x1f\x8b"):
        return "gzip-compressed data"
    if head[:1] == b"\x80":
        return "a Python pickle"
    if all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "a text file"
    return "binary data of unknown format"


def load_npz(path, what: str = "arrays") -> dict:
    """Every array of an ``.npz`` (no pickled objects); a one-line InputError naming the file when it is missing, a
    directory, not an ``.npz`` at all (saying what it is instead) or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"no such {what} file" if not path.exists() else f"is a directory, not a {what} file", path)
    with open(path, "rb") as f:
        head = f.read(64)
    if head[:2] != b"PK":
        raise InputError(f"not an .npz {what} file: {file_content(head)}", path)
    try:
        with np.load(path, allow_pickle=False) as f:
            return {k: f[k] for k in f.files}
    except (ValueError, OSError, EOFError) as e:
        raise InputError(f"not a readable .npz {what} file ({str(e).splitlines()[0] if str(e) else type(e).__name__})",
                         path) from None


def check_output_file(path, what: str = "output file") -> None:
    """InputError naming ``path`` when a file cannot be written there (a directory in the way, a parent that is a
    file or not writable). Nothing is created."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"is a directory; the {what} must be a file path", path)
    if path.exists():
        if not os.access(path.parent, os.W_OK | os.X_OK):
            raise InputError(f"cannot replace the {what}: {path.parent} is not writable", path)
        return
    _check_parents(path, what)


def check_output_dir(path, what: str = "output directory") -> None:
    """InputError naming ``path`` when it cannot be (or become) a writable directory. Nothing is created."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise InputError(f"is a file; the {what} must be a directory", path)
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"the {what} is not writable", path)
        return
    _check_parents(path, what)


@contextlib.contextmanager
def atomic_path(path, suffix: str = ""):
    """Yield a temporary path beside ``path``; on success rename it to ``path``, on error delete it."""
    path = Path(path)
    check_output_file(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + path.name + ".", suffix=".tmp" + suffix, dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; final files get the usual permissions
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_text(path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_json(path, obj, indent=None) -> None:
    write_text(path, json.dumps(obj, indent=indent, default=_json_default) + "\n")


def save_npz(path, arrays: dict, compressed: bool = True) -> None:
    """np.savez(_compressed) with keys kept exactly (slashes allowed), atomically."""
    with atomic_path(path, suffix=".npz") as tmp:
        (np.savez_compressed if compressed else np.savez)(tmp, **{k: np.asarray(v) for k, v in arrays.items()})


def _json_default(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
