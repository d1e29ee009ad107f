"""Atomic outputs, provenance records and small table helpers shared by every stage.

Every stage writes through :func:`atomic_outputs`, so a failure leaves no partial output: files and
folders are written under temporary names and renamed into place only when the stage finished.
"""

from __future__ import annotations

import contextlib
import functools
import datetime as _dt
import gzip
import hashlib
import io
import json
import os
import pickle
import platform
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import _table_rows
from .errors import GinnError

if TYPE_CHECKING:
    import pandas as pd
    import torch


class AtomicOutputs:
    """Hands out temporary paths and renames them onto their final names on commit."""

    def __init__(self) -> None:
        self._pending: list[tuple[Path, Path]] = []

    def _tmp_for(self, final: Path) -> Path:
        final = Path(final)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.tmp{os.getpid()}")
        self._pending.append((tmp, final))
        return tmp

    def file(self, final: str | Path) -> Path:
        """A temporary path to write instead of ``final``."""
        tmp = self._tmp_for(Path(final))
        if tmp.exists():
            tmp.unlink()
        return tmp

    def folder(self, final: str | Path) -> Path:
        """A fresh temporary folder to fill instead of ``final``."""
        tmp = self._tmp_for(Path(final))
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir()
        return tmp

    def _discard(self) -> None:
        for tmp, _ in self._pending:
            if tmp.is_dir():
                shutil.rmtree(tmp, ignore_errors=True)
            elif tmp.exists():
                tmp.unlink()

    def _commit(self) -> None:
        for tmp, final in self._pending:
            if not tmp.exists():
                raise RuntimeError(f"stage did not write {final}")
            check_replaceable(final, final, folder=tmp.is_dir())
        for tmp, final in self._pending:
            if final.is_dir() and not final.is_symlink():
                shutil.rmtree(final)
            os.replace(tmp, final)


@contextlib.contextmanager
def atomic_outputs() -> Iterator[AtomicOutputs]:
    """Context in which a stage writes all its outputs; nothing appears unless it succeeds."""
    outputs = AtomicOutputs()
    try:
        yield outputs
    except BaseException:
        outputs._discard()
        raise
    outputs._commit()


def sha256_file(path: str | Path, chunk: int = 1 << 22) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


@dataclass
class _Checksum:
    """A checksum computed in the background: the file's size and mtime when it started, and its result."""

    stat: tuple[int, int]
    thread: threading.Thread | None = None
    done: threading.Event = field(default_factory=threading.Event)
    sha256: str | None = None


_BACKGROUND: dict[str, _Checksum] = {}


def hash_in_background(paths) -> None:
    """Start the SHA-256 of input files in a background thread, so a stage's provenance record does not
    wait for it: hashlib and file reads release the GIL, so hashing overlaps the stage's own work. The
    package versions and source revision of the record are looked up there first.
    :func:`provenance_record` takes the digest of a file whose size and modification time are unchanged
    since and hashes any other file itself, so the record is what it would be without this."""
    jobs = []
    for path in paths:
        p = Path(path)
        if str(p) in _BACKGROUND or not p.is_file():
            continue
        stat = p.stat()
        jobs.append((p, _Checksum((stat.st_size, stat.st_mtime_ns))))
    if not jobs:
        return

    def work() -> None:
        try:
            try:
                _package_versions(), source_revision()  # the record's other slow parts (cached)
            except Exception:  # noqa: BLE001 - only a warm-up: provenance_record looks them up again and reports
                pass
            for p, checksum in jobs:
                try:
                    checksum.sha256 = sha256_file(p)
                except OSError:
                    pass  # provenance_record hashes it again and reports the problem
                checksum.done.set()
        finally:
            for _, checksum in jobs:
                checksum.done.set()

    thread = threading.Thread(target=work, name="ginn-sha256", daemon=True)
    for p, checksum in jobs:
        checksum.thread = thread
        _BACKGROUND[str(p)] = checksum
    thread.start()


def in_background(work: Callable[..., Any], *args: Any) -> Callable[..., None]:
    """Start ``work(*args)`` in a thread. The function returned waits for it and raises its error
    (``raise_error=False``: only waits, for a caller that already has an error to report)."""
    errors: list[BaseException] = []

    def run() -> None:
        try:
            work(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"ginn-{getattr(work, '__name__', 'work')}", daemon=True)
    thread.start()

    def wait(raise_error: bool = True) -> None:
        thread.join()
        if errors and raise_error:
            raise errors[0]
    return wait


def release_cached_pages(path: Path) -> None:
    """Drop an existing file's pages from the page cache (its content stays as it is, on disk), so that
    replacing it later frees little memory on the caller's path. Nothing where there is no posix_fadvise."""
    if not hasattr(os, "posix_fadvise"):
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def file_sha256(path: Path) -> str:
    """The file's SHA-256: the background one if started and the file is unchanged since, else computed now."""
    started = _BACKGROUND.pop(str(path), None)
    if started is not None:
        while not started.done.wait(1.0) and started.thread.is_alive():
            pass
        stat = path.stat()
        if started.sha256 is not None and started.stat == (stat.st_size, stat.st_mtime_ns):
            return started.sha256
    return sha256_file(path)


@functools.lru_cache(maxsize=1)
def _package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version()}
    for name in ("ginn", "numpy", "pandas", "scipy", "torch", "msprime", "scikit-learn", "xgboost"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            continue
    return out


# Set by `ginn run` for the stage it is running: its own command line and the config file it came from.
RUN_CONTEXT: dict[str, Any] = {}


def stage_command() -> list[str]:
    """The command line that reruns this stage: the stage's own argv, also under `ginn run`."""
    return list(RUN_CONTEXT.get("argv") or sys.argv)


@functools.lru_cache(maxsize=1)
def source_revision() -> str:
    """`git describe` of the ginn checkout when running from one, else the installed package version."""
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            done = subprocess.run(["git", "-C", str(root), "describe", "--always", "--dirty", "--tags"],
                                  capture_output=True, text=True, timeout=10)
            if done.returncode == 0 and done.stdout.strip():
                return "git " + done.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    from . import __version__

    return "ginn " + __version__


def check_output_path(out: str | Path, flag: str, folder: bool | None = None) -> None:
    """Refuse, before any work, an output that cannot be written (a regular file on the way, a folder
    that is not writable) or whose writing would destroy something else (see :func:`check_replaceable`;
    ``folder`` None: a prefix, whose files are checked when written)."""
    out = Path(out)
    for parent in [out, *out.parents][1:]:
        if parent.exists():
            if not parent.is_dir():
                raise GinnError(flag, f"{out}: {parent} is a regular file, not a folder")
            if not os.access(parent, os.W_OK):
                raise GinnError(flag, f"{out}: folder {parent} is not writable")
            break
    if folder is not None:
        check_replaceable(out, flag, folder)


def first_repeated(items):
    """The first item that an earlier one repeats (None when all differ): what a message names when a list
    gives a gene, column or value twice."""
    seen = set()
    return next((item for item in items if item in seen or seen.add(item)), None)


def check_not_an_input(out: str | Path, flag: str, inputs: list[tuple[str, Any]], folder: bool) -> None:
    """Refuse an output that is one of the command's inputs (``--out`` the ``--map`` it prunes, or the
    ``--bfile`` prefix it filters), or an output folder that holds one: writing it would replace the input."""
    target = Path(out).resolve()
    for source_flag, value in inputs:
        source = Path(value).resolve()
        if source == target:
            raise GinnError(flag, f"{out} is also given as {source_flag}: writing the output would destroy that "
                                  "input; choose another name")
        if folder and target in source.parents:
            raise GinnError(flag, f"{out} holds {source_flag} {value}: replacing the folder would delete that "
                                  "input; choose another name")


def check_replaceable(final: Path, where: str | Path, folder: bool) -> None:
    """An output replaces only what it would have written itself: a file replaces a file, a folder an
    empty folder or an earlier ginn output folder (it has provenance.json). Anything else is the user's,
    and a typo in --out must not delete it."""
    final = Path(final)
    if not final.exists():
        return
    if final.is_dir() != folder:
        found, wanted = ("folder", "file") if final.is_dir() else ("file", "folder")
        raise GinnError(where, f"{final} exists and is a {found}, but this output is a {wanted}; choose another name")
    if folder and any(final.iterdir()) and not (final / "provenance.json").is_file():
        raise GinnError(where, f"{final} is a folder ginn did not write (no provenance.json); "
                               "choose a new or empty folder")


def provenance_record(
    stage: str,
    params: Mapping[str, Any],
    inputs: Mapping[str, str | Path] | None = None,
    seed: int | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """What a stage ran with: command line, params, seed, versions and input checksums."""
    checksums = {}
    for label, path in (inputs or {}).items():
        if path is None:
            continue
        p = Path(path)
        if p.is_file():
            checksums[label] = {"path": str(p), "sha256": file_sha256(p)}
        elif p.is_dir():
            checksums[label] = {"path": str(p), "sha256": {
                str(f.relative_to(p)): sha256_file(f) for f in sorted(p.rglob("*")) if f.is_file()}}
    record = {
        "stage": stage,
        "command": stage_command(),
        "source_revision": source_revision(),
        "params": {k: (str(v) if isinstance(v, Path) else v) for k, v in params.items()},
        "seed": seed,
        "versions": dict(_package_versions()),
        "inputs": checksums,
        "host": platform.node(),
        "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    if RUN_CONTEXT.get("config"):
        record["config"] = RUN_CONTEXT["config"]
    if extra:
        record.update(extra)
    return record


def load_weights(module: torch.nn.Module, path: str | Path) -> None:
    """Load a torch state dict saved by ginn into ``module``, safely (tensors only); a missing, empty,
    truncated or foreign file, tensors of other names or shapes than the module's, or a NaN or infinite
    weight (ginn keeps a network's best finite weights, so only damage puts one there) is a one-line
    error naming the file."""
    import torch                                   # only the stages that load networks pay for it

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        module.load_state_dict(state)
    except EOFError:
        raise GinnError(path, "cannot load weights: the file is empty or cut short") from None
    except pickle.UnpicklingError:          # torch's text for it advises unsafe loading: not for a user
        raise GinnError(path, "cannot load weights: not a torch weights file, or damaged") from None
    except (RuntimeError, OSError) as exc:
        raise GinnError(path, f"cannot load weights: {(str(exc).splitlines() or [type(exc).__name__])[0]}") from None
    if not all(torch.isfinite(t).all() for t in state.values() if t.is_floating_point()):
        raise GinnError(path, "has NaN or infinite weights (damaged); train the networks again")


def write_json(path: str | Path, obj: Any) -> None:
    def default(o: Any) -> Any:
        if isinstance(o, (np.integer,)):
            return int(o)
        if isinstance(o, (np.floating,)):
            return float(o)
        if isinstance(o, np.ndarray):
            return o.tolist()
        if isinstance(o, Path):
            return str(o)
        raise TypeError(f"not JSON serialisable: {type(o)}")

    Path(path).write_text(json.dumps(obj, indent=2, default=default) + "\n")


def provenance_path(output: str | Path) -> Path:
    """``X.provenance.json`` beside a file or prefix output (``X.tsv`` -> ``X.provenance.json``)."""
    output = Path(output)
    name = output.name
    for suffix in (".tsv", ".json", ".html", ".bed"):
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return output.with_name(name + ".provenance.json")


def write_tsv(path: str | Path, table: pd.DataFrame | Mapping[str, Any], float_format: str | None = "%.6g", *,
              sep: str = "\t", header: bool = True, na_rep: str = "NA") -> None:
    """Separated text with a header, floats as ``float_format``, missing as ``na_rep``: what ``to_csv`` writes.

    ``table`` is a DataFrame or its columns by name (numpy arrays or Series), so a stage can write a table
    without importing pandas. Plain columns (numbers, booleans, strings without the separator, quotes or
    newlines) are joined into rows by the C kernel :mod:`ginn._table_rows`, 13x faster than ``to_csv`` on the
    100,000-row tables of ``ginn qc``; anything else goes to pandas."""
    items = list(table.items())
    names = [str(name) for name, _ in items]
    columns = [_typed_column(values, float_format, na_rep) for _, values in items]
    body = None
    if not any(column is None for column in columns) and not any(_needs_quoting(name, sep) for name in names) \
            and not (len(columns) == 1 and _has_empty_field(columns[0], na_rep)):  # a lone empty field is quoted
        body = _table_rows.format_rows(columns, sep, na_rep)
    if body is None:
        import pandas as pd

        frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(dict(items))
        frame.to_csv(path, sep=sep, index=False, header=header, float_format=float_format, na_rep=na_rep)
        return
    Path(path).write_bytes((sep.join(names) + "\n").encode() + body if header else body)


def _needs_quoting(text: str, sep: str = "\t") -> bool:
    return any(c in text for c in sep + '"\n\r')


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value)


_FLOAT_FORMAT = re.compile(r"%(?:\.(\d+))?([efgEFG])")


def _typed_column(values: Any, float_format: str | None, na_rep: str) -> tuple | None:
    """One column for :func:`ginn._table_rows.format_rows`, whose values it writes as ``to_csv`` does (``%s``
    of text, ints and booleans, ``float_format`` of floats, ``na_rep`` for missing values), or None if it is
    not a plain column."""
    dtype = values.dtype
    if not isinstance(dtype, np.dtype):  # a pandas extension type: its string columns (pandas 3's text) only
        import pandas as pd

        if not isinstance(dtype, pd.StringDtype):
            return None
        kind = "O"
    else:
        kind = dtype.kind
    if kind == "f" and float_format is not None:
        spec = _FLOAT_FORMAT.fullmatch(float_format)
        if spec:
            precision, code = spec.groups()
            return "float", np.ascontiguousarray(values, dtype=np.float64), code, int(precision or 6)
        return "text", [float_format % v if v == v else na_rep for v in values.tolist()]
    if kind == "b":
        return "bool", np.ascontiguousarray(values, dtype=np.bool_).view(np.uint8)
    if kind in "iu":
        values = np.asarray(values)
        if dtype == np.uint64 and len(values) and values.max() > np.iinfo(np.int64).max:
            return "text", [str(v) for v in values.tolist()]
        return "int", np.ascontiguousarray(values, dtype=np.int64)
    if kind in "OU":
        return "text", values.tolist()  # the kernel writes None and NaN as na_rep, leaves other objects to pandas
    return None


def _has_empty_field(column: tuple, na_rep: str) -> bool:
    kind, values = column[:2]
    if kind == "text":
        return "" in values or (na_rep == "" and any(map(_is_missing, values)))
    return kind == "float" and na_rep == "" and bool(np.isnan(values).any())


MISSING_TOKENS = ("NA", "nan", "NaN", ".")
TRUE_WORDS = ("true", "1", "yes")    # how a boolean column of a table may say True (any case)


def is_true(column: pd.Series) -> pd.Series:
    """A boolean table column read back: True where it says true/1/yes in any case, False elsewhere."""
    return column.astype(str).str.lower().isin(TRUE_WORDS)


def read_table(path: str | Path, required: list[str] | None = None, what: str = "table") -> pd.DataFrame:
    """Read a table with a header, every value a string (``NA``, ``nan``, ``.`` missing), checking
    required columns.

    A header with a tab makes the file tab-separated: an empty field is then a missing value, never a
    reason to shift the row's later values into its column (what a whitespace split would do). Otherwise
    fields are separated by runs of spaces or tabs, as in PLINK. Either way every row must have as many
    fields as the header, and column names must be unique. A gzip-compressed file is read as its text,
    and a UTF-8 byte-order mark (spreadsheet exports) is not part of the first column's name.
    """
    path = Path(path)
    if not path.is_file():
        raise GinnError(path, f"{what} file not found")
    content = path.read_bytes()
    try:
        if content[:2] == b"\x1f\x8b":
            content = gzip.decompress(content)
        text = content.decode("utf-8-sig")
    except (OSError, EOFError):
        raise GinnError(path, f"cannot parse {what}: a damaged gzip file") from None
    except UnicodeDecodeError:
        raise GinnError(path, f"cannot parse {what}: not UTF-8 text") from None
    numbered = [(number, line) for number, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not numbered:
        raise GinnError(path, f"cannot parse {what}: the file is empty")
    tabbed = "\t" in numbered[0][1]
    header = numbered[0][1].split("\t") if tabbed else numbered[0][1].split()
    if len(header) == 1 and "," in header[0]:
        raise GinnError(path, f"cannot parse {what}: its fields are separated by commas; "
                              "write it tab- or space-separated (PLINK style)")
    for number, line in numbered[1:]:
        fields = line.count("\t") + 1 if tabbed else len(line.split())
        if fields != len(header):
            raise GinnError(path, f"cannot parse {what}: line {number} has {fields} fields, the header {len(header)}")
    repeated = sorted({name for name in header if header.count(name) > 1})
    if repeated:
        raise GinnError(path, f"{what} names column(s) {', '.join(repeated)} more than once")
    import pandas as pd

    table = pd.read_csv(io.StringIO("\n".join(line for _, line in numbered)), sep="\t" if tabbed else r"\s+",
                        dtype=str, na_values=[*MISSING_TOKENS, ""], keep_default_na=False)
    missing = [c for c in (required or []) if c not in table.columns]
    if missing:
        raise GinnError(path, f"{what} lacks column(s) {', '.join(missing)} (has {', '.join(table.columns)})")
    return table


def numeric_column(table: pd.DataFrame, column: str, path: str | Path, *, missing_ok: bool = False) -> np.ndarray:
    """A :func:`read_table` column as float64. Text that is not a number is an error naming its line, and
    so is a missing or non-finite value unless ``missing_ok`` (then a missing value is NaN)."""
    import pandas as pd

    values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = np.isnan(values) & table[column].notna().to_numpy() if missing_ok else ~np.isfinite(values)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise GinnError(path, f"{column} is not a {'number' if missing_ok else 'finite number'} on line {row + 2} "
                              f"({table[column].iloc[row]!r})")
    return values

