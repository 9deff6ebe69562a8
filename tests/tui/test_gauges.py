"""Pilot tests: gauges keep their unit at every size, knock and overrun read right, AFR strip.

QA at 80 x 24 and 100 x 30 during WOT pulls of ``dynoai run --vehicle W``: the unit
went when the number grew ("Torque 156.9", "Power 101.8"), "Knock 11" read as degrees
beside "KNOCK: 1.9 deg retard", torque read -47.8 on every decel, and the AFR strip
was a solid block scaled 11.0-25.0 by fuel cut.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
from textual.geometry import Region
from textual.widget import Widget

from core.snapshot import History
from dynoai_tui.tui.app import DynoApp
from dynoai_tui.tui.screens.dashboard import make_gauges
from dynoai_tui.tui.widgets.chart import StripChart
from dynoai_tui.tui.widgets.gauges import Gauge
from tests.tui.helpers import ScriptedSession, snapshot, sync

SIZES = [(80, 24), (100, 30), (160, 48)]
WOT = {"rpm": 5480.0, "map_kpa": 99.0, "tps_pct": 100.0, "power_hp": 101.8,
       "torque_nm": 156.9, "knock_count": 11.0}  # fmt: skip
"""A WOT reading of vehicle W where QA saw "Power 101.8" and "Torque 156.9" unitless."""
PART = {"power_hp": 15.3, "torque_nm": 106.2, "knock_count": 0.0}
CROWDED = {**WOT, "rpm": 9850.0, "map_kpa": 101.0, "egt_c": 1012.0}
"""Every gauge on (EGT too) and the widest numbers: less room than the gauges ask for."""


def shown(widget: Widget) -> str:
    """The widget's lines as they are painted (clipped to its size), joined by newlines."""
    width, height = widget.outer_size
    return "\n".join(s.text for s in widget.render_lines(Region(0, 0, width, height)))


def pull_app(values: dict[str, float], history: History | None = None) -> DynoApp:
    snap = snapshot(values=values)
    if history is not None:
        snap = replace(snap, history=history)
    return DynoApp(ScriptedSession(replace(snap, in_pull=True)))


def visible(app: DynoApp) -> list[Gauge]:
    return [g for g in app.dashboard.gauges if g.region.width > 0]


@sync
@pytest.mark.parametrize("values", [WOT, PART, CROWDED], ids=["wot", "part", "crowded"])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_gauge_shows_its_unit_at_every_size(
    size: tuple[int, int], values: dict[str, float]
) -> None:
    app = pull_app(values)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        compact = app.dashboard.has_class("-compact")
        gauges = visible(app)
        assert {"gauge-rpm", "gauge-power_hp"} <= {g.id for g in gauges}
        for gauge in gauges:
            text = shown(gauge)
            if gauge.channel != "afr" and not (compact and gauge.unit_implied):
                assert gauge.heading("") in text or gauge.repeats(gauge.label), (gauge.id, text)
            if not gauge.has_class("-primary") or not app.dashboard.has_class("-big"):
                assert gauge.text in text, (gauge.id, text)  # the whole number, not cut


@sync
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_power_and_torque_drop_their_decimal_from_100_not_their_unit(
    size: tuple[int, int],
) -> None:
    app = pull_app(WOT)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        power = app.dashboard.query_one("#gauge-power_hp", Gauge)
        assert "102 hp" in shown(power)
        torque = app.dashboard.query_one("#gauge-torque_nm", Gauge)
        if torque.region.width:  # hidden in the compact layout
            assert "157 N·m" in shown(torque)


@sync
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_knock_shows_the_ecus_retard_in_degrees_when_it_reports_it(
    size: tuple[int, int],
) -> None:
    app = pull_app({"knock_count": 11.0, "knock_retard_deg": 1.9})
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        text = shown(app.dashboard.query_one("#gauge-knock_count", Gauge))
        assert "1.9 °" in text and "ret" in text, text
        assert "11" not in text  # the count read as degrees


@sync
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("retard", [0.03, 0.0345, 0.012, 0.099, 0.1, 0.26, 4.5])
async def test_a_small_knock_retard_reads_as_the_alarm_words_it(
    size: tuple[int, int], retard: float
) -> None:
    # QA: "KNOCK: 0.03 deg retard" on the alarm line, "Knock ret 0.0 °" on the gauge
    from core.alarms import retard_text

    app = pull_app({"knock_count": 1.0, "knock_retard_deg": retard})
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        text = shown(app.dashboard.query_one("#gauge-knock_count", Gauge))
        said = retard_text(retard)  # the alarm's own figure: "KNOCK: {said} deg retard"
        assert f"{said} °" in text and "ret" in text, (said, text)
        assert said != "0.0" and (retard >= 0.1 or said == f"{retard:.2g}")


def test_no_gauge_label_repeats_its_unit() -> None:
    # QA at 160 x 48: the RPM gauge read "RPM rpm" over its big digits
    for gauge in make_gauges():
        for label in (gauge.label, gauge.short):
            words = gauge.heading(label).casefold().split()
            assert len(words) == len(set(words)), gauge.heading(label)


@sync
async def test_the_big_rpm_gauge_is_headed_rpm_once() -> None:
    app = pull_app(WOT)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause(0.2)
        assert app.dashboard.has_class("-big")
        head = shown(app.dashboard.query_one("#gauge-rpm", Gauge)).splitlines()[0]
        assert head.split() == ["RPM"], head
        head = shown(app.dashboard.query_one("#gauge-map_kpa", Gauge)).splitlines()[0]
        assert head.split() == ["MAP", "kPa"], head


@sync
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_a_knock_count_says_it_is_a_count(size: tuple[int, int]) -> None:
    app = pull_app({"knock_count": 11.0})  # no knock_retard_deg channel
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        text = shown(app.dashboard.query_one("#gauge-knock_count", Gauge))
        assert "11 cnt" in text and "Knock" in text, text


@sync
@pytest.mark.parametrize("size", [(100, 30), (160, 48)], ids=["100x30", "160x48"])
async def test_overrun_shows_no_negative_torque(size: tuple[int, int]) -> None:
    # the absorber motoring the engine on decel: -44.4 N·m beside "0.0 hp"
    app = pull_app({"rpm": 4246.0, "tps_pct": 0.0, "power_hp": 0.0, "torque_nm": -44.4})
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        torque = shown(app.dashboard.query_one("#gauge-torque_nm", Gauge))
        power = shown(app.dashboard.query_one("#gauge-power_hp", Gauge))
        assert "-" not in torque and "0.0 N·m" in torque, torque
        assert "0.0 hp" in power, power


EVERY = {**CROWDED, "lambda": 0.87, "iat_c": 35.0, "clt_c": 88.0, "afr": 12.8, "afr_target": 12.9}
"""Every gauge on, EGT included: at 100 x 30 this read "5480rpm", "102hp", "157N·m"."""
EVERY_PART = {**EVERY, "rpm": 5480.0, "power_hp": 15.3, "torque_nm": 26.2, "knock_retard_deg": 1.9}
"""The same with decimals to give up and knock on its longer label ("Knock ret")."""
ALL_SIZES = [(80, 24), (100, 30), (120, 40), (160, 48)]


@sync
@pytest.mark.parametrize("values", [EVERY, EVERY_PART], ids=["wot", "part"])
@pytest.mark.parametrize("size", ALL_SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_every_gauge_keeps_a_space_between_its_number_and_its_unit(
    size: tuple[int, int], values: dict[str, float]
) -> None:
    app = pull_app(values)
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        compact = app.dashboard.has_class("-compact")
        big = app.dashboard.has_class("-big")
        gauges = visible(app)
        shown_ids = {g.id for g in gauges}
        assert {"gauge-rpm", "gauge-map_kpa", "gauge-tps_pct", "gauge-afr"} <= shown_ids
        assert {"gauge-knock_count", "gauge-power_hp"} <= shown_ids
        if not compact:  # the compact line hides these by design
            every = {f"gauge-{c}" for c in ("lambda", "iat_c", "clt_c", "egt_c", "torque_nm")}
            assert every <= shown_ids, shown_ids
        for gauge in gauges:
            text = shown(gauge)
            if gauge.channel == "afr":  # the AFR gauge shows the target, not a unit
                assert "12.9" in text and (big or "12.8" in text), (gauge.id, text)
                continue
            if big and gauge.has_class("-primary"):  # large digits under "MAP kPa", "RPM"
                assert gauge.heading(gauge.label) in text, (gauge.id, text)
                continue
            if compact and gauge.unit_implied and gauge.unit not in text:
                assert gauge.text in text, (gauge.id, text)  # "RPM 5480"
                continue
            # a decimal may go when the line is short (not from 120 columns), the space never
            fewer = [gauge.number(d) for d in range(gauge.decimals)] if size[0] < 120 else []
            numbers = [gauge.text, *fewer]
            assert any(f"{n} {gauge.unit}" in text for n in numbers), (gauge.id, text)
            assert not any(f"{n}{gauge.unit}" in text for n in numbers), (gauge.id, text)


@pytest.mark.parametrize(
    "gauge", [g for g in make_gauges() if g.channel != "afr"], ids=lambda g: g.id
)
def test_the_two_line_gauge_never_runs_its_number_into_its_unit(gauge: Gauge) -> None:
    # the last resort at any width moves the unit up beside the label, not onto the digits
    for width in range(1, 20):
        top, decimals, unit = gauge.fit_lines(width)
        assert unit == "" or unit == " " + gauge.unit, (width, top, unit)
        assert decimals >= gauge.decimals - 1, (width, decimals)


def pull_history() -> History:
    """30 s: idle at 14.7, a WOT pull at 12.5, then fuel cut at 25.0, and idle again."""
    t = np.linspace(-30.0, 0.0, 600)
    afr = np.where(t < -20, 14.7, np.where(t < -10, 12.5, np.where(t < -5, 25.0, 14.7)))
    return History(t, np.full(t.size, 3000.0), afr, np.full(t.size, 13.0))


@sync
@pytest.mark.parametrize("size", [(100, 30), (160, 48)], ids=["100x30", "160x48"])
async def test_the_afr_strip_keeps_a_tuners_scale_and_marks_fuel_cut(
    size: tuple[int, int],
) -> None:
    app = pull_app({"afr": 14.7}, pull_history())
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        chart = app.dashboard.query_one("#chart-afr", StripChart)
        lines = shown(chart).splitlines()
        assert lines[-1].strip().startswith("10.0-16.0")  # not stretched to 25.0 by fuel cut
        plot = [line[1 + 12 : -1] for line in lines]  # inside the padding, past the label
        n = len(plot[0])

        def column(frac: float) -> str:
            """The column at ``frac`` of the window, top to bottom."""
            x = min(n - 1, math.floor(frac * n))
            return "".join(row[x] for row in plot)

        cut, wot, idle = column(0.75), column(0.5), column(0.9)
        assert cut[0] == "▲" and cut[1:].strip() == "", cut  # marked at the top, not a block
        assert wot[0] == " " and wot[-1] == "█", wot  # 12.5 is a low bar
        rows = len(plot)
        assert idle.count("█") > wot.count("█") and idle.count("█") < rows, idle


@sync
@pytest.mark.parametrize("target", [0.0, math.nan])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_no_afr_target_shows_dashes_not_0(size: tuple[int, int], target: float) -> None:
    # QA: a log whose "AFR Target" was 0.0 (none logged) read "AFR 10.8/0.0"
    app = pull_app({"afr": 10.8, "afr_target": target})
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        gauge = app.dashboard.query_one("#gauge-afr", Gauge)
        text = shown(gauge)
        assert "--" in text and "0.0" not in text, text
        assert not gauge.has_class("-lean") and not gauge.has_class("-rich")


@sync
@pytest.mark.parametrize("target", [0.0, -1.0, float("nan")])
@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
async def test_no_afr_target_reads_dashes_not_zero(size: tuple[int, int], target: float) -> None:
    # QA: a log imported from another tool logged 0.0 for "no target": "AFR 10.8/0.0",
    # and the gauge judged 10.8 against it
    from dynoai_tui.tui.widgets.gauges import AfrGauge

    app = pull_app({"afr": 10.8, "afr_target": target})
    async with app.run_test(size=size) as pilot:
        await pilot.pause(0.2)
        gauge = app.dashboard.query_one(AfrGauge)
        text = shown(gauge)
        assert "--" in text and "0.0" not in text and "-1.0" not in text, text
        assert gauge.state == "unknown" and not {"LEAN", "RICH"} & set(text.split()), text
