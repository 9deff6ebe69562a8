"""MLG binary import: real files from mlg-converter, plus written files for the rare cases.

Expected values for the real files were checked independently: record counts,
stamps and marker texts with a plain ``struct`` walk of the bytes, and the first
record of markers.mlg against the values mlg-converter's README prints for it.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from core.formats import LogImportError, open_log
from core.formats.mlg import parse_header, read_mlg
from core.formats.mlg_writer import FieldSpec, build_mlg
from core.frames import Block
from core.source import SourceEvent

DATA = Path(__file__).parent / "data"
SHORT = DATA / "short.mlg"
MARKERS = DATA / "markers.mlg"


def test_short_header_fields_and_info() -> None:
    header = parse_header(SHORT.read_bytes(), "short.mlg")
    assert header.version == 1
    assert header.started_at == 1609089075  # 2020-12-27 17:11:15 UTC
    assert (header.info_start, header.data_start, header.record_bytes) == (3927, 4019, 148)
    assert len(header.fields) == 71
    first = header.fields[0]
    assert (first.name, first.units, first.type_id, first.digits) == ("Time", "s", 7, 3)
    afr = next(f for f in header.fields if f.name == "AFR")
    assert (afr.type_id, afr.units, afr.scale, afr.digits) == (0, "O2", 0.1, 3)
    assert header.info.splitlines()[0] == "speeduino 202009-dev: Speeduino 2020.09-dev"


def test_short_records_and_values() -> None:
    raw = read_mlg(SHORT)
    assert raw.t_s.size == 66 and raw.checksum_errors == 0 and raw.markers == []
    col = dict(zip(raw.names, raw.values, strict=True))
    assert col["RPM"][0] == 431
    # first two stamps 15749 and 19162 (10 us ticks)
    assert raw.t_s[1] - raw.t_s[0] == pytest.approx((19162 - 15749) * 1e-5)
    assert np.all(np.diff(raw.t_s) > 0)


def test_markers_first_record_matches_mlg_converter() -> None:
    raw = read_mlg(MARKERS)
    col = dict(zip(raw.names, raw.values, strict=True))
    first = {name: float(values[0]) for name, values in col.items()}
    assert first["SecL"] == 8 and first["RPM"] == 0 and first["MAP"] == 10
    assert first["AFR"] == pytest.approx(11.0)  # raw 110 x 0.1
    assert first["Lambda"] == pytest.approx(0.7482993006706238)
    assert first["IAT"] == 54 and first["CLT"] == 68 and first["Advance"] == 24
    assert first["Battery V"] == pytest.approx(7.1)  # raw 71 x 0.1
    assert first["Idle Target RPM"] == pytest.approx(850)  # raw 85 x 10
    assert first["Boost PSI"] == pytest.approx(-13.198457717895508)
    assert first["Odometer Miles"] == pytest.approx(11.340239524841309)


def test_markers_file_markers_in_time_order() -> None:
    log = open_log(MARKERS)
    assert log.summary.rows == 43
    texts = [m.text for m in log.markers]
    assert len(texts) == 9
    assert texts[0] == "MARK 000 - Manual - Mon Dec 28 13:30:44 CET 2020"
    assert texts[-1].startswith("MARK 008 - Manual")
    # first marker stamp 24906, first record stamp 15081
    assert log.markers[0].t == pytest.approx((24906 - 15081) * 1e-5)
    times = [r.t[0] if isinstance(r, Block) else r.t for r in log.records()]
    assert times == sorted(times)
    kinds = [type(r) for r in log.records()]
    assert kinds.count(SourceEvent) == 9
    assert sum(len(r) for r in log.records() if isinstance(r, Block)) == 43


def test_stamp_wrap_inside_real_file_is_unwrapped() -> None:
    raw = read_mlg(MARKERS)  # stamps go 60084 -> 5933 between two records
    assert np.all(np.diff(raw.t_s) > 0)
    assert raw.t_s[-1] == pytest.approx(1.46952, abs=1e-6)


def test_mapped_canonical_values() -> None:
    log = open_log(MARKERS)
    c = log.columns
    assert c["map_kpa"][0] == 10 and c["iat_c"][0] == 54 and c["spark_deg"][0] == 24
    assert c["afr"][0] == pytest.approx(11.0)
    assert c["lambda"][0] == pytest.approx(0.7482993)  # the log's own Lambda, not AFR/14.7
    assert c["batt_v"][0] == pytest.approx(7.1)
    conv = {m.canonical: m.conversion for m in log.summary.mapped}
    assert conv["vehicle_speed_kph"] == "mph -> km/h x 1.609"
    assert conv["torque_nm"].startswith("lb-ft -> N·m")
    assert "Boost PSI" in log.summary.unmapped
    assert log.header.sources["import"]["channels"]["rpm"] == "rpm"
    assert log.header.created_at == 1609158643.0


def test_detected_by_content_not_extension(tmp_path: Path) -> None:
    renamed = tmp_path / "log.csv"
    shutil.copy(SHORT, renamed)
    assert open_log(renamed).summary.format_name.startswith("MLG v1")


FIELDS = [
    FieldSpec("Time", "s", 7, digits=3),
    FieldSpec("RPM", "rpm", 2),
    FieldSpec("MAP", "kPa", 2, scale=0.1, digits=1),
    FieldSpec("CLT", "°F", 3, scale=0.1, transform=-400.0, category="Sensors"),
    FieldSpec("AFR", "AFR", 0, scale=0.1, digits=1),
    FieldSpec("Status", "", 10),
]


def _values(n: int, dt_s: float = 0.02) -> np.ndarray:
    t = np.arange(n) * dt_s
    return np.column_stack(
        [
            t,
            1000 + 10 * np.arange(n),
            np.full(n, 95.5),
            np.full(n, 185.0),
            np.full(n, 13.2),
            np.arange(n) % 4,
        ]
    )


def _write(tmp_path: Path, data: bytes, name: str = "w.mlg") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def test_v2_scale_transform_bits_category(tmp_path: Path) -> None:
    n = 50
    stamps = (np.arange(n) * 2000) % 65536
    path = _write(tmp_path, build_mlg(FIELDS, _values(n), stamps, version=2, info="rusEFI test"))
    header = parse_header(path.read_bytes(), "w")
    assert header.version == 2 and header.fields[3].category == "Sensors"
    assert header.fields[5].is_bits
    raw = read_mlg(path)
    col = dict(zip(raw.names, raw.values, strict=True))
    assert col["MAP"][0] == pytest.approx(95.5)
    assert col["CLT"][0] == pytest.approx(185.0)  # (raw + transform) * scale
    assert col["Status"].tolist()[:5] == [0, 1, 2, 3, 0]
    log = open_log(path)
    assert log.columns["clt_c"][0] == pytest.approx(85.0)  # degF -> degC
    assert log.summary.sample_rate_hz == pytest.approx(50.0)


def test_bad_checksum_counted_and_skipped(tmp_path: Path) -> None:
    n = 20
    data = bytearray(build_mlg(FIELDS, _values(n), np.arange(n) * 2000))
    header = parse_header(bytes(data), "w")
    stride = header.record_bytes + 5
    bad = header.data_start + 7 * stride + 6  # a payload byte of record 7 (RPM)
    data[bad] ^= 0x40
    log = open_log(_write(tmp_path, bytes(data)))
    assert log.summary.checksum_errors == 1 and log.summary.rows == n - 1
    assert 1070 not in log.columns["rpm"]
    assert "1 record damaged and skipped" in log.summary.to_text()


def test_lost_wraps_restored_from_time_field(tmp_path: Path) -> None:
    n = 10
    vals = _values(n, dt_s=1.0)  # one record a second: every gap hides a wrap
    stamps = np.rint(vals[:, 0] / 1e-5).astype(np.int64) % 65536
    log = open_log(_write(tmp_path, build_mlg(FIELDS, vals, stamps)))
    assert np.diff(log.t_s) == pytest.approx(np.ones(n - 1), abs=1e-4)
    assert any("wraps restored" in note for note in log.summary.notes)


def test_truncated_tail_recovers_complete_records(tmp_path: Path) -> None:
    n = 30
    data = build_mlg(FIELDS, _values(n), np.arange(n) * 2000)
    header = parse_header(data, "w")
    cut = header.data_start + 12 * (header.record_bytes + 5) + 5
    log = open_log(_write(tmp_path, data[:cut]))
    assert log.summary.rows == 12
    assert any("file ends inside a block" in note for note in log.summary.notes)


def test_truncated_header_is_one_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path, SHORT.read_bytes()[:1000])
    with pytest.raises(LogImportError, match=r"truncated MLG file"):
        open_log(path)


def test_unknown_version_and_garbage_block(tmp_path: Path) -> None:
    data = bytearray(build_mlg(FIELDS, _values(10), np.arange(10) * 2000))
    data[7] = 9
    with pytest.raises(LogImportError, match="version 9 is not supported"):
        open_log(_write(tmp_path, bytes(data), "v9.mlg"))
    data[7] = 1
    header = parse_header(bytes(data), "w")
    at = header.data_start + 4 * (header.record_bytes + 5)
    damaged = bytes(data[:at]) + b"\xee" * 7 + bytes(data[at:])
    log = open_log(_write(tmp_path, damaged, "junk.mlg"))
    assert log.summary.rows == 10
    assert any("unknown block type 238" in note for note in log.summary.notes)


def test_progress_reaches_total(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    open_log(SHORT, progress=lambda done, total: seen.append((done, total)))
    assert seen[-1] == (SHORT.stat().st_size, SHORT.stat().st_size)


def test_speeduino_accel_enrich_of_100_percent_means_none():
    """short.mlg logs 'Accel Enrich' = 100 % of base fuel throughout: no enrichment."""
    log = open_log(DATA / "short.mlg")
    assert np.all(log.columns["accel_enrich_pct"] == 0.0)
    notes = [m.conversion for m in log.summary.mapped if m.canonical == "accel_enrich_pct"]
    assert notes and "100 = none" in notes[0]


def test_a_target_of_0_is_no_target_logged() -> None:
    # QA: markers.mlg logs "AFR Target" and "Lambda Target" as 0.0 (no target table in the
    # ECU); imported as a real target of 0.0 the dashboard read "AFR 10.8/0.0"
    log = open_log(MARKERS)
    for name in ("afr_target", "lambda_target"):
        assert np.isnan(log.columns[name]).all(), name
    conv = {m.canonical: m.conversion for m in log.summary.mapped}
    assert conv["afr_target"] == "every value 0: no target logged, taken as no data"
    assert np.isfinite(log.columns["afr"]).all()  # the measured AFR is kept
    real = open_log(SHORT)  # a log with targets keeps them
    assert float(np.nanmin(real.columns["afr_target"])) == pytest.approx(10.8)
    assert np.isfinite(real.columns["afr_target"]).all()
