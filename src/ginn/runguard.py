"""What keeps a ``ginn run`` output folder trustworthy: one writer at a time, no stale temporaries,
and resume stamps that notice damaged outputs.

* :func:`output_lock` holds an exclusive ``flock`` on ``OUTDIR/.ginn-run/lock`` for the whole run; a
  second ``ginn run`` on the same folder is refused at once (the kernel drops the lock if the holder
  dies, even by ``kill -9``, so a crashed run never blocks the next one).
* :func:`remove_stale_temporaries` deletes the ``.NAME.tmpPID`` files and folders a killed stage left
  behind (:class:`ginn.files.AtomicOutputs` writes under such names); under the lock, none is live.
* :func:`output_checksums` is recorded in a stage's stamp, so a truncated or edited output makes the
  stage run again instead of being reused.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import re
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path
from .errors import GinnError
from .files import sha256_file

LOCK_NAME = "lock"
_TEMPORARY = re.compile(r"^\..+\.tmp\d+$")


@contextlib.contextmanager
def output_lock(outdir: Path) -> Iterator[None]:
    """Hold the run lock of ``outdir``; refuse with a one-line error if another process holds it."""
    state = outdir / ".ginn-run"
    try:
        state.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise GinnError("--outdir", f"{outdir}: a regular file is in the way of the output folder") from None
    handle = open(state / LOCK_NAME, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise GinnError(outdir, f"another `ginn run` (pid {holder}) is writing this folder; "
                                    "wait for it to finish or choose another --outdir") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing releases the flock


def remove_stale_temporaries(outdir: Path) -> list[Path]:
    """Delete temporaries (``.NAME.tmpPID``) left in ``outdir`` by killed stages; call under the lock."""
    removed = []
    for path in sorted(outdir.rglob(".*.tmp*")):
        if _TEMPORARY.match(path.name) and path.exists():
            shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()
            removed.append(path)
    return removed


def checksum(path: Path) -> str:
    """Content hash of a file, or of every file in a folder (relative names included)."""
    if path.is_dir():
        digest = hashlib.sha256()
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            digest.update(str(child.relative_to(path)).encode() + b"\0" + sha256_file(child).encode())
        return digest.hexdigest()
    return sha256_file(path)


def output_checksums(outputs: Iterable[Path]) -> dict[str, str | None]:
    """Checksums of a stage's declared outputs (None for one that is missing)."""
    return {str(path): checksum(path) if path.exists() else None for path in outputs}
