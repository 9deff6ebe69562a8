"""Tune files: .msq (Speeduino, rusEFI, MegaSquirt) and pasted tables, read and written back.

Fixtures in tests/data/tunes are written from the public description of the .msq layout
(see that folder's README): TunerStudio's own files put the lowest load breakpoint on
the first text line of a table, which is what these tests pin.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.tune import (
    Table,
    Tune,
    TuneError,
    msq_bytes,
    parse_msq,
    parse_table_text,
    paste_block,
    read_tune,
    render_msq,
    table_text,
)

DATA = Path(__file__).parent / "data" / "tunes"


def test_speeduino_tables_axes_and_targets() -> None:
    tune = read_tune(DATA / "speeduino.msq")
    assert tune.names["family"] == "Speeduino"
    assert list(tune.axes.rpm) == [800, 1500, 2500, 3500, 5000]
    assert list(tune.axes.map_kpa) == [30, 50, 70, 100]
    # First text line is the lowest load row.
    assert list(tune.ve.values[0]) == [40, 42, 45, 44, 41]
    assert tune.ve.values[3, 2] == 92
    assert tune.target_lambda is not None
    assert tune.target_lambda.values[3, 0] == pytest.approx(12.8 / 14.7)
    assert tune.ve_rear is None
    assert tune.digits["veTable"] == 0


def test_rusefi_lambda_targets_stay_lambda() -> None:
    tune = read_tune(DATA / "rusefi.msq")
    assert tune.names == {"ve": "veTable", "family": "rusEFI", "target": "lambdaTable"}
    assert tune.ve.values[0, 0] == 40.5
    assert tune.target_lambda is not None
    assert tune.target_lambda.values[3, 0] == pytest.approx(0.87)


def test_megasquirt_dual_table_is_front_and_rear() -> None:
    tune = read_tune(DATA / "megasquirt_dual.msq")
    assert tune.ve_rear is not None
    np.testing.assert_allclose(tune.ve_rear.values, tune.ve.values * 1.03, atol=0.051)


def test_write_back_changes_only_the_ve_numbers() -> None:
    original = (DATA / "speeduino.msq").read_bytes()
    tune = parse_msq(original, "speeduino.msq")
    new_ve = tune.ve.values * 1.05
    out = msq_bytes(tune.with_ve(new_ve))
    # Everything outside the veTable element is byte-for-byte the same (incl. the 0xE9 byte).
    start = original.index(b'name="veTable"')
    end = original.index(b"</constant>", start)
    o_start = out.index(b'name="veTable"')
    o_end = out.index(b"</constant>", o_start)
    assert original[:start] == out[:o_start]
    assert original[end:] == out[o_end:]
    assert b"\xe9" in out
    back = parse_msq(out)
    # Speeduino VE is a whole percent: written rounded to the ECU's resolution.
    np.testing.assert_array_equal(back.ve.values, np.round(new_ve))
    np.testing.assert_array_equal(back.target_lambda.values, tune.target_lambda.values)  # type: ignore[union-attr]


def test_write_back_both_tables_of_a_twin() -> None:
    tune = read_tune(DATA / "megasquirt_dual.msq")
    out = parse_msq(msq_bytes(tune.with_ve(tune.ve.values + 1.25, tune.ve_rear.values - 2.0)))  # type: ignore[union-attr]
    np.testing.assert_allclose(out.ve.values, np.round(tune.ve.values + 1.25, 1))
    np.testing.assert_allclose(out.ve_rear.values, np.round(tune.ve_rear.values - 2.0, 1))  # type: ignore[union-attr]


def test_render_round_trips_every_family() -> None:
    ve = Table.of([1000, 2000, 3000], [30, 60, 90, 100], np.arange(12.0).reshape(4, 3) + 40.25)
    target = ve.with_values(np.full((4, 3), 0.88))
    spark = ve.with_values(np.full((4, 3), 24.5))
    for family in ("Speeduino", "rusEFI", "MegaSquirt"):
        tune = Tune(ve=ve, target_lambda=target, spark=spark)
        back = parse_msq(render_msq(tune, family=family))
        assert back.names["family"] == family
        assert back.spark is not None and back.spark.values[0, 0] == 24.5
        np.testing.assert_allclose(back.ve.values, np.round(ve.values, 1))
        assert back.axes == ve.axes
        np.testing.assert_allclose(back.target_lambda.values, 0.88, atol=0.004)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"not xml at all", "not a TunerStudio .msq"),
        (b"<html><body/></html>", "root element is <html>"),
        (b'<msq xmlns="http://www.msefi.com/:msq"><page/></msq>', "no VE table"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;">]>'
            b"<msq>&lol2;</msq>",
            "refused unsafe XML",
        ),
    ],
)
def test_bad_files_are_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(TuneError, match=message):
        parse_msq(data, "x.msq")


def test_wrong_value_count_and_alpha_n_are_named() -> None:
    text = (DATA / "speeduino.msq").read_text(encoding="latin-1")
    short = text.replace("         80.0 85.0 92.0 90.0 84.0 \n", "         80.0 85.0 \n")
    with pytest.raises(TuneError, match=r"veTable declares 4 x 5 = 20 values but holds 17"):
        parse_msq(short.encode("latin-1"))
    alpha_n = text.replace(
        'name="fuelLoadBins" rows="4" units="kPa"', 'name="fuelLoadBins" rows="4" units="%"'
    )
    with pytest.raises(TuneError, match="alpha-N"):
        parse_msq(alpha_n.encode("latin-1"))
    garbage = text.replace("92.0", "9x2")
    with pytest.raises(TuneError, match="'9x2', not a number"):
        parse_msq(garbage.encode("latin-1"))


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(TuneError, match="no such file"):
        read_tune(tmp_path / "nope.msq")


# -- pasted tables ---------------------------------------------------------------------

TS_COPY = (
    "\t800\t1500\t2500\n"  # TunerStudio style: high load at the top, rpm across
    "100\t80\t85\t92\n"
    "70\t68\t72\t78\n"
    "30\t40\t42\t45\n"
)


def test_paste_with_load_descending_is_sorted() -> None:
    t = parse_table_text(TS_COPY)
    assert list(t.axes.map_kpa) == [30, 70, 100]
    assert list(t.values[0]) == [40, 42, 45]
    assert list(t.values[2]) == [80, 85, 92]


def test_paste_transposed_with_axis_row_last() -> None:
    # rpm down the first column, MAP breakpoints in a trailing row (bottom axis).
    text = "800;40;68;80\n1500;42;72;85\n2500;45;78;92\nRPM/kPa;30;70;100\n"
    t = parse_table_text(text)
    np.testing.assert_array_equal(t.values, parse_table_text(TS_COPY).values)


def test_csv_round_trip_and_paste_block_order() -> None:
    t = parse_table_text(TS_COPY)
    assert parse_table_text(table_text(t)).values.tolist() == t.values.tolist()
    block = paste_block(t.values, decimals=0)
    assert block.splitlines()[0] == "80\t85\t92"  # highest MAP first, like the editors
    assert "\t" in block and "800" not in block


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("1\t2\n3\t4\n5\t6\n", "no axis row"),
        ("\t800\t1500\n30\t40\n50\t41\t42\n", "row 1 has 1 values, the axis row has 2"),
        ("\t800\t1500\n30\t40\tabc\n50\t41\t42\n", r"row 1, cell 3 \('abc'\) is not a number"),
        ("\t800\t800\n30\t40\t41\n50\t41\t42\n", "not greater than"),
    ],
)
def test_bad_pastes_are_named(text: str, message: str) -> None:
    with pytest.raises(TuneError, match=message):
        parse_table_text(text)


# -- property: any table copied in any of the layouts the tools use reads back the same ----


@st.composite
def tables(draw: st.DrawFn) -> Table:
    n_rpm = draw(st.integers(2, 8))
    n_map = draw(st.integers(2, 8))
    rpm = np.cumsum(draw(st.lists(st.integers(100, 900), min_size=n_rpm, max_size=n_rpm))) + 400
    kpa = np.cumsum(draw(st.lists(st.integers(2, 20), min_size=n_map, max_size=n_map))) + 10
    values = draw(st.lists(st.integers(100, 1200), min_size=n_rpm * n_map, max_size=n_rpm * n_map))
    return Table.of(rpm, kpa, np.array(values, dtype=float).reshape(n_map, n_rpm) / 10.0)


@settings(max_examples=60, deadline=None)
@given(tables(), st.sampled_from(["\t", ",", ";"]), st.booleans(), st.booleans(), st.booleans())
def test_any_layout_reads_back(
    t: Table, sep: str, transpose: bool, flip: bool, axis_last: bool
) -> None:
    rows_axis, cols_axis, vals = t.axes.map_kpa, t.axes.rpm, t.values
    if transpose:
        rows_axis, cols_axis, vals = cols_axis, rows_axis, vals.T
    if flip:
        rows_axis, vals = rows_axis[::-1], vals[::-1]
    header = sep.join(["kPa/RPM", *(f"{v:g}" for v in cols_axis)])
    body = [
        sep.join([f"{a:g}", *(f"{v:g}" for v in row)])
        for a, row in zip(rows_axis, vals, strict=True)
    ]
    lines = [*body, header] if axis_last else [header, *body]
    back = parse_table_text("\n".join(lines) + "\n")
    assert back.axes == t.axes
    np.testing.assert_allclose(back.values, t.values)
