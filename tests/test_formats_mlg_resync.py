"""MLG logs damaged in the middle: every record outside the damage comes back.

Block layout, from EFI Analytics' "MLG Binary LogFormat" 1.0 / 2.0
(https://www.efianalytics.com/TunerStudio/docs/MLG_Binary_LogFormat_1.0.pdf, as
cited by rusEFI), the rusEFI writer (rusefi/rusefi
``firmware/console/binary_mlg_log/binary_mlg_logging.cpp``, ``writeSdBlock``:
"Offset 0 = Block type", "Offset 1 = rolling counter sequence number", "Offset 2,
size 2 = Timestamp at 10us resolution", then the fields and a one-byte sum of the
field bytes) and mlg-converter (karniv00l/mlg-converter ``src/parser.ts``:
type, counter, u16 timestamp, fields, crc byte; markers 50 bytes of text).

The damaged files are tests/data/short.mlg (a real TunerStudio log, MIT, from
mlg-converter: 66 records of 153 bytes from byte 4019) with bytes inserted,
deleted or flipped, and files written by core.formats.mlg_writer. QA's cases:
13 zero bytes inserted at 6000 used to lose 54 records, 13+ bytes at 8000 or
200 x DEADBEEF at 8000 kept only 26 of 66, and flipped timestamp bytes stretched
the log from 2.31 s to 2.84 s.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.formats import open_log
from core.formats.mlg import read_mlg
from core.formats.mlg_writer import FieldSpec, build_mlg

DATA = Path(__file__).parent / "data"
SHORT = DATA / "short.mlg"
DATA_START, STRIDE, RECORDS = 4019, 153, 66
"""short.mlg's data start, record block size (148 field bytes + 5) and count."""


@pytest.fixture(scope="module")
def clean() -> tuple[np.ndarray, np.ndarray]:
    raw = read_mlg(SHORT)
    assert raw.t_s.size == RECORDS
    return np.column_stack(raw.values), raw.t_s


def _read(tmp_path: Path, data: bytes):
    path = tmp_path / "damaged.mlg"
    path.write_bytes(data)
    return read_mlg(path)


def _damaged_records(lo: int, hi: int) -> set[int]:
    """Records with a byte in [lo, hi); for an insertion (hi == lo) the one it splits."""
    starts = DATA_START + STRIDE * np.arange(RECORDS)
    if hi == lo:
        return set(np.flatnonzero((starts < lo) & (lo < starts + STRIDE)).tolist())
    return set(np.flatnonzero((starts < hi) & (lo < starts + STRIDE)).tolist())


def _assert_recovered(raw, clean, damaged: set[int]) -> None:
    """The records outside the damage, with their values and times, and nothing else."""
    values, t_s = clean
    kept = [i for i in range(RECORDS) if i not in damaged]
    got = np.column_stack(raw.values)
    assert got.shape[0] == len(kept)
    np.testing.assert_array_equal(got, values[kept])
    assert raw.t_s - raw.t_s[0] == pytest.approx(t_s[kept] - t_s[kept[0]], abs=1e-9)
    lost = len(damaged)
    assert raw.checksum_errors == lost
    if lost or raw.damage:
        assert raw.damage[0].startswith(f"{lost} record{'s' * (lost != 1)} damaged and skipped")


FILLERS = {"zeros": b"\x00", "deadbeef": b"\xde\xad\xbe\xef"}


@pytest.mark.parametrize("offset", [6000, 8000])
def test_zeros_inserted_any_length_1_to_400(tmp_path: Path, clean, offset: int) -> None:
    """QA: 13 zeros at 6000 lost records 12..65; 13+ at 8000 kept 26 of 66."""
    data = SHORT.read_bytes()
    for length in range(1, 401):
        raw = _read(tmp_path, data[:offset] + bytes(length) + data[offset:])
        _assert_recovered(raw, clean, _damaged_records(offset, offset))


@pytest.mark.parametrize("filler", FILLERS)
@pytest.mark.parametrize("offset", [DATA_START + 2, 6000, DATA_START + 13 * STRIDE, 8000, 14000])
@pytest.mark.parametrize("repeats", [1, 4, 13, 38, 200])
def test_filler_inserted(tmp_path: Path, clean, filler: str, offset: int, repeats: int) -> None:
    """Zeros or DEADBEEF, inside the first or last record, mid-record, on a boundary."""
    data = SHORT.read_bytes()
    raw = _read(tmp_path, data[:offset] + FILLERS[filler] * repeats + data[offset:])
    _assert_recovered(raw, clean, _damaged_records(offset, offset))


def test_qa_deadbeef_at_8000_keeps_65_of_66(tmp_path: Path, clean) -> None:
    data = SHORT.read_bytes()
    raw = _read(tmp_path, data[:8000] + b"\xde\xad\xbe\xef" * 200 + data[8000:])
    assert raw.t_s.size == 65
    assert raw.damage[0] == "1 record damaged and skipped (953 bytes in 1 damaged place)"
    assert raw.t_s[-1] == pytest.approx(clean[1][-1])


@pytest.mark.parametrize("offset", [DATA_START + 50, 6000, 8100, 12500])
@pytest.mark.parametrize("length", [1, 13, STRIDE, 2 * STRIDE, 400, 1000])
def test_bytes_deleted(tmp_path: Path, clean, offset: int, length: int) -> None:
    """Deletions inside records, up to 1000 bytes (6+ records), none reaching the end.

    Not tested, because no reader can tell: a deletion of whole records' length
    that starts inside a header splices two records into one valid record, and
    records deleted up to the end leave nothing after them to count from.
    """
    data = SHORT.read_bytes()
    raw = _read(tmp_path, data[:offset] + data[offset + length :])
    _assert_recovered(raw, clean, _damaged_records(offset, offset + length))


def test_zero_fill_over_whole_records(tmp_path: Path, clean) -> None:
    """A crash signature: bytes overwritten by zeros (same length), records 20..25 gone."""
    data = bytearray(SHORT.read_bytes())
    lo, hi = DATA_START + 20 * STRIDE + 7, DATA_START + 25 * STRIDE + 100
    data[lo:hi] = bytes(hi - lo)
    raw = _read(tmp_path, bytes(data))
    _assert_recovered(raw, clean, _damaged_records(lo, hi))
    assert "zero" in " ".join(raw.damage) or "bad checksum" in " ".join(raw.damage)


def test_random_byte_flips_fixed_seed(tmp_path: Path, clean) -> None:
    """50 flips: every record without a flipped byte comes back, on the original clock.

    A record with a flip in its header (counter, timestamp) still passes its
    checksum and may be kept when its timestamp is in order; its values are then
    the original ones. A flipped high timestamp byte used to be kept and push
    every later record by a wrap (2.84 s instead of 2.31 s).
    """
    values, t_s = clean
    data = bytearray(SHORT.read_bytes())
    rng = np.random.default_rng(0)
    at = rng.choice(np.arange(DATA_START, len(data)), 50, replace=False)
    for pos in at:
        data[pos] ^= int(rng.integers(1, 256))
    touched = set(((at - DATA_START) // STRIDE).tolist())
    assert (60 in touched) and (DATA_START + 60 * STRIDE + 2 in at)  # a stamp high byte
    raw = _read(tmp_path, bytes(data))
    got = np.column_stack(raw.values)
    index = [int(np.flatnonzero((values == row).all(axis=1))[0]) for row in got]
    assert index == sorted(index)  # every row kept is an original record, in order
    untouched = [i for i in range(RECORDS) if i not in touched]
    assert set(untouched) <= set(index)
    rows = [index.index(i) for i in untouched]
    assert raw.t_s[rows] - raw.t_s[rows[0]] == pytest.approx(
        t_s[untouched] - t_s[untouched[0]], abs=1e-9
    )
    assert np.all(np.diff(raw.t_s) > 0)
    skipped = RECORDS - raw.t_s.size
    assert raw.checksum_errors == skipped
    assert raw.damage[0].startswith(f"{skipped} records damaged and skipped")


def test_flipped_stamp_high_byte_drops_that_record_only(tmp_path: Path, clean) -> None:
    values, t_s = clean
    data = bytearray(SHORT.read_bytes())
    data[DATA_START + 40 * STRIDE + 2] ^= 0x80  # record 40's stamp, +/- 0.33 s
    raw = _read(tmp_path, bytes(data))
    _assert_recovered(raw, clean, {40})
    assert "damaged timestamp" in raw.damage[-1]


FIELDS = [
    FieldSpec("Time", "s", 7, digits=3),
    FieldSpec("RPM", "rpm", 2),
    FieldSpec("MAP", "kPa", 2, scale=0.1, digits=1),
]


def _pull(n: int, dt_s: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(n) * dt_s
    vals = np.column_stack([t, 1000 + 10 * np.arange(n), 60 + 0.1 * np.arange(n)])
    return vals, np.rint(t / 1e-5).astype(np.int64) % 65536


def test_marker_after_damage_is_found(tmp_path: Path) -> None:
    """Zeros inside the record before a marker: the marker and all after it stay."""
    vals, stamps = _pull(40)
    data = build_mlg(FIELDS, vals, stamps, markers=[(20, int(stamps[19]) + 5, "MARK 000")])
    stride = 4 + 2 + 2 + 4 + 1
    data_start = len(data) - 40 * stride - 54
    at = data_start + 19 * stride + 6  # inside record 19, the one before the marker
    raw = _read(tmp_path, data[:at] + bytes(100) + data[at:])
    assert [text for _, text in raw.markers] == ["MARK 000"]
    rpm = raw.values[1]
    assert rpm.tolist() == [1000 + 10 * i for i in range(40) if i != 19]
    assert raw.markers[0][0] == pytest.approx(19 * 0.02 + 5e-5)
    assert raw.damage[0].startswith("1 record damaged and skipped")


def test_long_deletion_counted_past_the_counter_wrap(tmp_path: Path) -> None:
    """600 records deleted: the u8 counter says 88; the Time field's gap says 600."""
    vals, stamps = _pull(1000)
    data = build_mlg(FIELDS, vals, stamps)
    stride = 13
    data_start = len(data) - 1000 * stride
    lo = data_start + 200 * stride
    raw = _read(tmp_path, data[:lo] + data[lo + 600 * stride :])
    assert raw.t_s.size == 400 and raw.checksum_errors == 600
    assert raw.damage[0].startswith("600 records damaged and skipped")
    assert raw.t_s[-1] == pytest.approx(999 * 0.02, abs=1e-6)


def test_counter_restart_keeps_every_record(tmp_path: Path) -> None:
    """A counter that starts again (checksums fine, timestamps in order) loses nothing."""
    vals, stamps = _pull(30)
    data = bytearray(build_mlg(FIELDS, vals, stamps))
    stride = 13
    data_start = len(data) - 30 * stride
    for k in range(15, 30):
        data[data_start + k * stride + 1] = k - 15  # the counter is outside the checksum
    raw = _read(tmp_path, bytes(data))
    assert raw.t_s.size == 30 and raw.checksum_errors == 0 and raw.damage == []
    assert any("the count restarted there, nothing lost" in note for note in raw.notes)


def test_zero_filled_tail_is_no_lost_record(tmp_path: Path) -> None:
    """Space the writer claimed and never filled (power loss) is not counted as records."""
    raw = _read(tmp_path, SHORT.read_bytes() + bytes(4096))
    assert raw.t_s.size == RECORDS and raw.checksum_errors == 0
    assert raw.damage[0].startswith("0 records damaged and skipped (4096 bytes")


def test_bad_time_value_adds_no_wraps(tmp_path: Path) -> None:
    """One record a second (every gap hides a wrap, restored from Time); one Time is wrong."""
    vals, _ = _pull(10, dt_s=1.0)
    stamps = np.rint(vals[:, 0] / 1e-5).astype(np.int64) % 65536
    vals[5, 0] = 3.0  # a damaged Time an 8-bit sum missed: was 5 s
    raw = _read(tmp_path, build_mlg(FIELDS, vals, stamps))
    assert raw.t_s == pytest.approx(np.arange(10.0), abs=1e-4)


def test_damage_warning_reaches_the_import_summary(tmp_path: Path) -> None:
    data = SHORT.read_bytes()
    path = tmp_path / "d.mlg"
    path.write_bytes(data[:6000] + bytes(13) + data[6000:])
    log = open_log(path)
    assert log.summary.rows == 65 and log.summary.checksum_errors == 1
    assert log.summary.damage[0] == "1 record damaged and skipped (166 bytes in 1 damaged place)"
