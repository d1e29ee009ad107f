"""The C kernel of ginn's text tables (ginn._table_rows) against the Python it replaced: rows joined from
%-formatted values (Python's own float formatting, over many random doubles and the awkward ones), and
PLINK text split with str.splitlines and str.split (ASCII and Unicode whitespace and line breaks)."""

from __future__ import annotations


import numpy as np
import pytest

from ginn import _table_rows
from ginn.files import write_tsv


def _python_rows(columns, sep: str, na_rep: str) -> bytes:
    """The oracle: each row's values %-formatted and joined, as write_tsv did before the kernel."""
    def text(column, row):
        kind, values = column[:2]
        if kind == "float":
            value = float(values[row])
            return na_rep if value != value else f"%.{column[3]}{column[2]}" % value
        if kind == "bool":
            return "%s" % bool(values[row])
        return "%s" % (values[row] if kind == "text" else int(values[row]))

    n_rows = len(columns[0][1])
    return "".join(sep.join(text(column, row) for column in columns) + "\n" for row in range(n_rows)).encode()


def _awkward_doubles(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random bit patterns (every exponent: subnormals, huge, inf, NaN), decimal-looking values, and the
    edges where rounding carries into a new digit."""
    bits = rng.integers(0, 2**64, size=n, dtype=np.uint64).view(np.float64)
    scaled = rng.normal(size=n) * 10.0 ** rng.integers(-12, 12, size=n)
    decimal = np.array([round(value, int(digits)) for value, digits in zip(scaled, rng.integers(0, 10, size=n))])
    edges = np.array([0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 2.5, 9.9999999, 99999999.5, 999999995.0, 1e16, 1e-5,
                      0.000099999999995, 123456785.0, 5e-324, -5e-324, 2.2250738585072014e-308, 1.7976931348623157e308,
                      np.inf, -np.inf, np.nan, -np.nan, 0.1, 1 / 3, 2 / 3, 1e22, 1e-7, 0.0218])
    ratios = rng.integers(0, 10_001, size=n) / 10_000  # missing rates and frequencies, as qc writes them
    # halves between two 6-, 8- or 10-digit roundings, and their neighbours (where a fast path could slip)
    halves = (rng.integers(10**5, 10**10, size=n) + 0.5) * 10.0 ** rng.integers(-30, 30, size=n)
    near = np.concatenate([halves, np.nextafter(halves, np.inf), np.nextafter(halves, -np.inf)])
    uniform = rng.random(n) * 10.0 ** rng.integers(-25, 25, size=n)
    return np.concatenate([bits, decimal, edges, ratios, near, -near, uniform, 10.0 ** rng.integers(-30, 30, size=n)])


@pytest.mark.parametrize("code", ["g", "e", "f", "G", "E"])
@pytest.mark.parametrize("precision", [0, 1, 2, 6, 8, 10, 15, 16, 17])
def test_floats_are_written_as_python_formats_them(code: str, precision: int) -> None:
    rng = np.random.default_rng(precision * 7 + ord(code))
    values = _awkward_doubles(rng, 3000)
    if code in "fF":  # %f of 1e308 is 309 digits: keep the huge ones to g and e
        values = values[~(np.abs(values) > 1e30)]
    column = ("float", values, code, precision)
    assert _table_rows.format_rows([column], "\t", "NA") == _python_rows([column], "\t", "NA")


def test_mixed_columns_join_into_the_same_rows_as_python() -> None:
    rng = np.random.default_rng(3)
    n = 2000
    columns = [("text", [f"rs{i}" for i in rng.integers(0, 10**9, size=n)]),
               ("int", rng.integers(-2**63, 2**63 - 1, size=n, dtype=np.int64, endpoint=True)),
               ("float", _awkward_doubles(rng, n)[:n], "g", 8),
               ("bool", (rng.random(n) < 0.5).view(np.uint8)),
               ("text", ["é", "日本", "a-b"] * (n // 3) + ["x"] * (n % 3))]
    for sep, na_rep in (("\t", "NA"), (" ", ""), (",", "nan")):
        assert _table_rows.format_rows(columns, sep, na_rep) == _python_rows(columns, sep, na_rep)
    assert _table_rows.format_rows([("int", np.array([-2**63, 2**63 - 1, 0], dtype=np.int64))], "\t", "") == \
        b"-9223372036854775808\n9223372036854775807\n0\n"


def test_missing_text_is_written_as_na_rep() -> None:
    assert _table_rows.format_rows([("text", ["a", None, float("nan"), "b"])], "\t", "NA") == b"a\nNA\nNA\nb\n"


@pytest.mark.parametrize("text", ['a"b', "a\tb", "a\nb", "a\rb"])
def test_text_that_needs_quoting_is_left_to_pandas(text: str) -> None:
    assert _table_rows.format_rows([("text", ["ok", text])], "\t", "NA") is None
    assert _table_rows.format_rows([("text", ["a b"])], " ", "NA") is None


def test_bad_columns_are_refused() -> None:
    with pytest.raises(ValueError, match="different lengths"):
        _table_rows.format_rows([("text", ["a"]), ("int", np.arange(2))], "\t", "NA")
    assert _table_rows.format_rows([("text", ["a", 1])], "\t", "NA") is None  # not text: pandas writes it
    with pytest.raises(ValueError):
        _table_rows.format_rows([("float", np.arange(3.0), "x", 3)], "\t", "NA")
    assert _table_rows.format_rows([], "\t", "NA") == b""


def test_write_tsv_matches_pandas_to_csv(tmp_path) -> None:
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(5)
    n = 500
    floats = _awkward_doubles(rng, n)[:n]
    table = {"snp": np.array([f"rs{i}" for i in range(n)], dtype=object), "pos": rng.integers(0, 10**9, size=n),
             "small": rng.integers(0, 200, size=n).astype(np.uint8), "p": floats, "p32": floats.clip(-1e30, 1e30).astype(np.float32),
             "pass": rng.random(n) < 0.5}
    for float_format, na_rep in (("%.8g", "NA"), ("%.6g", ""), ("%.3f", "NA"), ("%10.4f", "NA")):
        ours, theirs = tmp_path / "ours.tsv", tmp_path / "theirs.tsv"
        write_tsv(ours, table, float_format=float_format, na_rep=na_rep)
        pd.DataFrame(table).to_csv(theirs, sep="\t", index=False, float_format=float_format, na_rep=na_rep)
        assert ours.read_bytes() == theirs.read_bytes(), float_format


def _python_split(text: str, n_columns: int) -> list[list[str]]:
    """The oracle: str.splitlines, then str.split, blank lines skipped, as columns."""
    rows = [fields for fields in map(str.split, text.splitlines()) if fields]
    for fields in rows:
        if len(fields) != n_columns:
            raise ValueError(str(len(fields)))
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(n_columns)]


SPACES = [" ", "\t", "  ", "\x1f", "\x0b", "\x0c", "\xa0", "\u2003", "\u3000"]
BREAKS = ["\n", "\r\n", "\r", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x0b", "\x0c"]
WORDS = ["1", "rs12", "A", "0.5", "é", "日本", "x\u200by", "-9"]  # U+200B is not a space


def test_split_columns_splits_as_python_does() -> None:
    rng = np.random.default_rng(11)
    for trial in range(400):
        n_columns = int(rng.integers(1, 5))
        lines = []
        for _ in range(int(rng.integers(0, 6))):
            width = n_columns if rng.random() < 0.9 else int(rng.integers(0, 7))
            words = [WORDS[i] if rng.random() < 0.3 else f"w{i}" for i in rng.integers(0, len(WORDS), size=width)]
            gaps = [SPACES[i] if rng.random() < 0.3 else " " for i in rng.integers(0, len(SPACES), size=width + 1)]
            lines.append(gaps[0] + "".join(w + g for w, g in zip(words, gaps[1:])))
        breaks = [BREAKS[i] if rng.random() < 0.3 else "\n" for i in rng.integers(0, len(BREAKS), size=len(lines))]
        text = "".join(line + brk for line, brk in zip(lines, breaks))
        try:
            expected = _python_split(text, n_columns)
        except ValueError as exc:
            with pytest.raises(ValueError, match=f"^{exc}$"):
                _table_rows.split_columns(text, n_columns)
        else:
            assert _table_rows.split_columns(text, n_columns) == expected, repr(text)


def test_split_columns_of_a_bim() -> None:
    text = "1\trs1\t0\t100\tA\tG\n\n1 rs2 0 200 C T\r\n"
    assert _table_rows.split_columns(text, 6) == [["1", "1"], ["rs1", "rs2"], ["0", "0"], ["100", "200"],
                                                  ["A", "C"], ["G", "T"]]
    with pytest.raises(ValueError, match="^5$"):
        _table_rows.split_columns("1 rs1 0 100 A\n", 6)
    assert _table_rows.split_columns("", 2) == [[], []]
