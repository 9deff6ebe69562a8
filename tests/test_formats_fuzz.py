"""Fuzzing every text importer: any bytes give a log or one LogImportError line, nothing else.

Structure-aware: each case starts from a fixture of one tool's format (so the
detector takes that tool's path) and mutates it the way real files go wrong:
flipped and inserted bytes, cut files, dropped or repeated lines, cells replaced
by words, huge numbers, empty strings or long runs, delimiters swapped, and the
text re-encoded as UTF-16 or cp1252. A second strategy builds tables from scratch.

CI runs a few hundred cases per test; the fuzz run sets DYNOAI_FUZZ_EXAMPLES
(e.g. ``DYNOAI_FUZZ_EXAMPLES=10000 pytest tests/test_formats_fuzz.py``).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import core.formats as formats
from core.formats import LogImportError, open_log

DATA = Path(__file__).parent / "data"
EXAMPLES = int(os.environ.get("DYNOAI_FUZZ_EXAMPLES", "150"))
FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    derandomize=EXAMPLES <= 500,
)
TEXT_FIXTURES = sorted(
    p.name for p in DATA.iterdir() if p.suffix in (".csv", ".msl") and p.name != "README.md"
)
CELLS = st.sampled_from(
    [
        "",
        "-",
        "nan",
        "1e308",
        "-1e308",
        "inf",
        "x" * 300,
        "12,5",
        '"',
        '"a,b"',
        "23:59:59.999",
        "03-Mar-2024 14:15:46.000",
        "0",
        "-0",
        "MARK 001",
        "\t",
        ";",
        ",",
    ]
)


def _check(path: Path) -> None:
    try:
        log = open_log(path)
    except LogImportError as exc:
        text = str(exc)
        assert text and "\n" not in text and str(path) in text
        return
    assert log.t_s.size == log.summary.rows
    for column in log.columns.values():
        assert column.shape == log.t_s.shape
    list(log.records())  # the stream replay and import consume


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    data = (DATA / draw(st.sampled_from(TEXT_FIXTURES))).read_bytes()
    lines = data.split(b"\n")
    for _ in range(draw(st.integers(0, 4))):
        op = draw(st.integers(0, 7))
        if not lines:
            break
        k = draw(st.integers(0, len(lines) - 1))
        if op == 0:
            del lines[k]
        elif op == 1:
            lines.insert(k, lines[draw(st.integers(0, len(lines) - 1))])
        elif op == 2:
            sep = next((d for d in (b";", b",", b"\t") if d in lines[k]), b",")
            cells = lines[k].split(sep)
            j = draw(st.integers(0, len(cells) - 1))
            cells[j] = draw(CELLS).encode("utf-8")
            lines[k] = sep.join(cells)
        elif op == 3:
            lines[k] = (
                lines[k].replace(b",", b";")
                if draw(st.booleans())
                else lines[k].replace(b";", b"\t")
            )
        elif op == 4:
            lines = lines[:k]
        elif op == 5:
            line = bytearray(lines[k])
            if line:
                i = draw(st.integers(0, len(line) - 1))
                line[i] = draw(st.integers(0, 255))
            lines[k] = bytes(line)
        elif op == 6:
            lines.insert(k, draw(st.binary(max_size=40)))
        else:
            lines[k] = lines[k] + b"," * draw(st.integers(1, 5))
    out = b"\n".join(lines)
    cut = draw(st.integers(0, 3))
    if cut == 1 and out:
        out = out[: draw(st.integers(0, len(out)))]
    encoding = draw(st.sampled_from(["keep", "keep", "utf-16", "cp1252"]))
    if encoding != "keep":
        with contextlib.suppress(UnicodeDecodeError):
            out = out.decode("utf-8").encode(encoding, errors="replace")
    return out


@st.composite
def built(draw: st.DrawFn) -> bytes:
    names = [
        "Time",
        "Time (ms)",
        "Engine Speed (rpm)",
        "RPM",
        "MAP (kPa)",
        "Boost (psi)",
        "Lambda",
        "AFR",
        "O2 Volts (V)",
        "Knock Correction (°CA)",
        "TPS (%)",
        "Baro",
        "MAF (Hz)",
        "Engine Load (%)",
        "Device Time",
        "Stamp",
        "Coolant Temp (°F)",
    ]
    cols = draw(st.lists(st.sampled_from(names), min_size=1, max_size=7))
    delim = draw(st.sampled_from([",", ";", "\t"]))
    rows = draw(
        st.lists(
            st.lists(
                st.one_of(
                    st.floats(allow_nan=True, allow_infinity=True).map(repr),
                    st.integers(-(10**6), 10**9).map(str),
                    CELLS,
                ),
                min_size=0,
                max_size=len(cols) + 2,
            ),
            max_size=30,
        )
    )
    title = draw(st.lists(st.text(max_size=30), max_size=2))
    lines = [*title, delim.join(cols), *(delim.join(r) for r in rows)]
    return "\n".join(lines).encode(draw(st.sampled_from(["utf-8", "utf-16", "cp1252"])), "replace")


@FUZZ
@given(mutated(), st.booleans())
def test_mutated_tool_logs_never_crash(tmp_path: Path, body: bytes, arrow: bool) -> None:
    """Half the cases go through the Arrow fast path (normally only files >= 4 MB)."""
    path = tmp_path / "fuzz.csv"
    path.write_bytes(body)
    saved = formats.FAST_MIN_BYTES
    formats.FAST_MIN_BYTES = 0 if arrow else saved
    try:
        _check(path)
    finally:
        formats.FAST_MIN_BYTES = saved


@FUZZ
@given(built())
def test_built_tables_never_crash(tmp_path: Path, body: bytes) -> None:
    path = tmp_path / "built.csv"
    path.write_bytes(body)
    _check(path)


@pytest.mark.parametrize("name", TEXT_FIXTURES)
def test_every_prefix_of_a_fixture(tmp_path: Path, name: str) -> None:
    """Every truncation point of every fixture (a logger killed mid-write)."""
    data = (DATA / name).read_bytes()
    path = tmp_path / name
    for cut in range(0, len(data), max(1, len(data) // 60)):
        path.write_bytes(data[:cut])
        _check(path)
