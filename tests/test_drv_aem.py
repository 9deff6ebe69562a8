"""AEM serial ASCII parser: the 9600 "14.7\\r\\n" and 19200 tab-separated forms."""

from __future__ import annotations

import math

import pytest

from core.source import SourceError
from drivers.aem import AemLineParser, AemSerialSource
from drivers.registry import parse_uri


def rows_of(parser: AemLineParser, data: bytes, bytewise: bool = False) -> list[dict[str, float]]:
    out: list[dict[str, float]] = []
    chunks = [bytes([b]) for b in data] if bytewise else [data]
    for chunk in chunks:
        out.extend(v for _, v in parser.feed(chunk, 0.5))
    return out


@pytest.mark.parametrize("bytewise", [False, True])
def test_afr_line_9600(bytewise):
    # The first line after a (re)connect is dropped: it may be a partial one.
    rows = rows_of(AemLineParser("afr"), b"\r\n14.7\r\n13.2\r\n", bytewise)
    assert [r["afr"] for r in rows] == pytest.approx([14.7, 13.2])
    assert rows[0]["lambda"] == pytest.approx(1.0)
    assert rows[1]["lambda"] == pytest.approx(13.2 / 14.7)


def test_first_partial_line_is_dropped():
    rows = rows_of(AemLineParser(), b"7\r\n14.7\r\n")
    assert len(rows) == 1 and rows[0]["afr"] == pytest.approx(14.7)


def test_lambda_line_and_auto_heuristic():
    rows = rows_of(AemLineParser("auto"), b"\n0.85\r\n12.5\r\n")
    assert rows[0]["lambda"] == pytest.approx(0.85)
    assert rows[0]["afr"] == pytest.approx(0.85 * 14.7)
    assert rows[1]["lambda"] == pytest.approx(12.5 / 14.7)
    forced = rows_of(AemLineParser("afr"), b"\n2.5\r\n")  # mode wins over the heuristic
    assert forced[0]["afr"] == pytest.approx(2.5)


@pytest.mark.parametrize("bytewise", [False, True])
def test_tab_separated_19200_form(bytewise):
    parser = AemLineParser("lambda")
    rows = rows_of(parser, b"\r1.000\tReady\tNo-errors\r0.912\tReady\tNo-errors\r", bytewise)
    assert [r["lambda"] for r in rows] == pytest.approx([1.0, 0.912])
    assert parser.status_text == ""


def test_status_other_than_ready_is_invalid_with_text():
    parser = AemLineParser("lambda")
    rows = rows_of(parser, b"\r1.000\tWarming\tNo-errors\r")
    assert math.isnan(rows[0]["lambda"]) and parser.status_text == "Warming"


def test_garbage_lines_skipped_and_resync():
    parser = AemLineParser("afr")
    rows = rows_of(parser, b"\r\n\xff\xfe\x00garbage\r\n" + b"x" * 200 + b"\r\n14.1\r\n")
    assert [r["afr"] for r in rows] == pytest.approx([14.1])
    assert parser.bad_lines >= 2


def test_reset_drops_partial_line():
    parser = AemLineParser("afr")
    rows_of(parser, b"\r\n14.")
    parser.reset()
    rows = rows_of(parser, b"7\r\n14.9\r\n")
    assert [r["afr"] for r in rows] == pytest.approx([14.9])


def test_params_are_checked():
    with pytest.raises(SourceError, match="mode="):
        AemSerialSource(parse_uri("aem:/dev/null?mode=volts"), "aem")
    with pytest.raises(SourceError, match="baud"):
        AemSerialSource(parse_uri("aem:/dev/null?baud=fast"), "aem")
    src = AemSerialSource(parse_uri("aem:/dev/null"), "aem")
    assert src.baud == 9600


def test_loop_url_source_decodes_what_is_written():
    src = AemSerialSource(parse_uri("aem:loop://?mode=afr"), "aem")
    src.open()
    try:
        src.port.write(b"\r\n14.7\r\n12.9\r\n")
        block = src.read(0.3)
        assert block is not None
        assert list(block.column("afr")) == pytest.approx([14.7, 12.9])
    finally:
        src.close()
