"""The live instruction holds still and follows a running test."""

from __future__ import annotations

from core.plan.instruction import Instructor
from core.plan.recipe import Recipe
from core.plan.types import PlanView, Suggestion


def sug(kind: str, rpm_lo: float, rpm_hi: float, maps: tuple[float, ...] = ()) -> Suggestion:
    recipe = Recipe(kind, rpm_lo, rpm_hi, maps)
    lo, hi = (min(maps), max(maps)) if maps else (95.0, 95.0)
    return Suggestion(kind, recipe.description, (rpm_lo, rpm_hi), (lo, hi), 0.5, 10.0, 1.0,
                      "high", 1, (), recipe=recipe)  # fmt: skip


HOLD_3000 = sug("steady_state", 3000, 3000, (70.0, 75.0, 95.0))
HOLD_3500 = sug("steady_state", 3500, 3500, (60.0, 65.0))
PULL = sug("wot_pull", 2000, 5800)


def test_no_flip_flop_when_two_suggestions_trade_places() -> None:
    ins = Instructor(switch_s=5.0)
    op = {"rpm": 2500.0, "map_kpa": 40.0}
    lines = []
    for t in range(12):  # the ranking wobbles every second
        top = (HOLD_3000, HOLD_3500) if t % 2 == 0 else (HOLD_3500, HOLD_3000)
        lines.append(ins.update(float(t), PlanView(suggestions=top), None, op))
    assert len(set(lines)) == 1 and "3000 rpm" in lines[0]
    # a challenger that stays on top for 5 s takes over
    for t in range(12, 19):
        line = ins.update(float(t), PlanView(suggestions=(HOLD_3500, HOLD_3000)), None, op)
    assert "3500 rpm" in line


def test_during_a_test_the_instruction_follows_it_then_names_the_next() -> None:
    ins = Instructor()
    view = PlanView(suggestions=(PULL, HOLD_3000))
    assert ins.update(0.0, view, None, {"rpm": 950.0, "map_kpa": 33.0}).startswith("next: WOT pull")
    # mid-pull the plan says the hold is best now: the line still says the pull
    mid = PlanView(suggestions=(HOLD_3000, HOLD_3500))
    line = ins.update(3.0, mid, "wot_pull", {"rpm": 4200.0, "map_kpa": 98.0})
    assert line == "hold WOT to 5800 rpm"
    assert "lower" not in line and "kPa" not in line
    # the pull ends: the next test is named at once, no hysteresis wait
    after = ins.update(4.0, mid, None, {"rpm": 2000.0, "map_kpa": 35.0})
    assert after.startswith("next: hold 3000 rpm")


def test_hold_instruction_steps_through_the_rows() -> None:
    ins = Instructor()
    ins.update(0.0, PlanView(suggestions=(HOLD_3000,)), None, {"rpm": 3000.0, "map_kpa": 50.0})
    line = ins.update(1.0, PlanView(suggestions=(HOLD_3500,)), "steady_state",
                      {"rpm": 3000.0, "map_kpa": 70.4})  # fmt: skip
    assert line == "hold 3000 rpm, MAP 70 kPa until trusted, then 75 kPa"
    # MAP still short of a one-step hold's row: that row is the step, nothing follows it
    one = sug("steady_state", 1000, 1000, (40.0,))
    ins = Instructor()
    ins.update(0.0, PlanView(suggestions=(one,)), None, {"rpm": 1000.0, "map_kpa": 30.0})
    low = ins.update(1.0, PlanView(suggestions=(one,)), "steady_state",
                     {"rpm": 1000.0, "map_kpa": 26.0})  # fmt: skip
    assert low == "hold 1000 rpm, MAP 40 kPa until trusted, then release"


def test_serpentine_instruction_names_the_row_the_ramp_and_the_next_row() -> None:
    recipe = Recipe("part_throttle_sweep", 1875.0, 4750.0, (75.0, 50.0, 80.0), rate_rpm_s=300.0)
    rows = Suggestion("part_throttle_sweep", recipe.description, (1875.0, 4750.0), (50.0, 80.0),
                      1.0, 100.0, 1.0, "high", 1, (), recipe=recipe)  # fmt: skip
    ins = Instructor()
    first = ins.update(0.0, PlanView(suggestions=(rows,)), None, {"rpm": 1000.0, "map_kpa": 30.0})
    assert first == "next: 3 row sweeps 1875<->4750 rpm at 300 rpm/s, 75 kPa first"
    assert len(first) <= 78  # one line of an 80-column terminal
    line = ins.update(9.0, PlanView(suggestions=(HOLD_3000,)), "part_throttle_sweep",
                      {"rpm": 3300.0, "map_kpa": 50.4})  # fmt: skip
    assert line == "hold 50 kPa, ramp down to 1875 rpm at 300 rpm/s, then 80 kPa back"
    last = ins.update(19.0, PlanView(suggestions=(HOLD_3000,)), "part_throttle_sweep",
                      {"rpm": 2000.0, "map_kpa": 80.2})  # fmt: skip
    assert last == "hold 80 kPa, ramp up to 4750 rpm at 300 rpm/s, then release"
    # a down leg is no detected test (rpm falls at part throttle): the line still follows
    down = ins.update(30.0, PlanView(suggestions=(HOLD_3000,)), None,
                      {"rpm": 3000.0, "map_kpa": 50.3})  # fmt: skip
    assert down == "hold 50 kPa, ramp down to 1875 rpm at 300 rpm/s, then 80 kPa back"
    # ... across the turn too (MAP between rows), but not once the engine has left it
    turn = ins.update(31.0, PlanView(suggestions=(HOLD_3000,)), None,
                      {"rpm": 1900.0, "map_kpa": 66.0})  # fmt: skip
    assert turn.startswith("hold ")
    gone = ins.update(40.0, PlanView(suggestions=(HOLD_3000,)), None,
                      {"rpm": 1000.0, "map_kpa": 33.0})  # fmt: skip
    assert gone.startswith("next: hold 3000 rpm")


def test_the_last_row_of_a_closed_serpentine_names_its_closing_hold() -> None:
    # Issue 11: a serpentine without its end column ends inside it on its last row's
    # throttle and holds that column's steps there before the release (``closing_hold``).
    recipe = Recipe(
        "part_throttle_sweep", 2000.0, 4750.0, (85.0, 65.0), rate_rpm_s=400.0,
        hold_steps=(65.0, 80.0),
    )  # fmt: skip
    rows = Suggestion("part_throttle_sweep", recipe.description, (2000.0, 4750.0), (65.0, 85.0),
                      1.0, 100.0, 1.0, "high", 1, (), recipe=recipe)  # fmt: skip
    ins = Instructor()
    ins.update(0.0, PlanView(suggestions=(rows,)), None, {"rpm": 1000.0, "map_kpa": 30.0})
    up = ins.update(9.0, PlanView(suggestions=(HOLD_3000,)), "part_throttle_sweep",
                    {"rpm": 3000.0, "map_kpa": 85.1})  # fmt: skip
    assert up == "hold 85 kPa, ramp up to 4750 rpm at 400 rpm/s, then 65 kPa back"
    last = ins.update(20.0, PlanView(suggestions=(HOLD_3000,)), None,
                      {"rpm": 3500.0, "map_kpa": 65.2})  # fmt: skip
    assert last == "hold 65 kPa, ramp down to 2000 rpm at 400 rpm/s, then hold 65 80 kPa there"
    assert len(last) <= 78


HOLD_1250 = sug("idle_low_map", 1250, 1250, (35.0, 40.0))
HOLD_1500 = sug("steady_state", 1500, 1500, (45.0, 50.0, 55.0))


def test_an_open_throttle_is_the_pull_before_the_detector_has_seen_1000_rpm() -> None:
    # the demo's operator ran a WOT pull while the line said "next: hold 1250 rpm"
    ins = Instructor()
    view = PlanView(suggestions=(HOLD_1250, PULL))
    assert ins.update(0.0, view, None, {"rpm": 1250.0, "map_kpa": 35.0}).startswith(
        "next: hold 1250 rpm"
    )
    line = ins.update(1.0, view, None, {"rpm": 2100.0, "map_kpa": 97.0, "tps_pct": 100.0})
    assert line == "hold WOT to 5800 rpm"
    assert ins.update(2.0, view, "wot_pull", {"rpm": 3500.0, "map_kpa": 98.0}) == line


def test_the_line_follows_the_hold_the_engine_runs_not_the_committed_one() -> None:
    ins = Instructor()
    view = PlanView(suggestions=(HOLD_1250, HOLD_1500))
    assert "1250 rpm" in ins.update(0.0, view, None, {"rpm": 900.0, "map_kpa": 30.0})
    # the tuner holds 1500 rpm at its first step: a passing look is not enough...
    on_1500 = {"rpm": 1502.0, "map_kpa": 45.5, "tps_pct": 6.0}
    assert "1250 rpm" in ins.update(1.0, view, None, on_1500)
    # ...but sitting there is: the line names the hold he runs, before the detector does
    assert ins.update(2.6, view, None, on_1500).startswith("next: hold 1500 rpm")
    line = ins.update(5.0, view, "steady_state", {"rpm": 1499.0, "map_kpa": 50.2})
    assert line == "hold 1500 rpm, MAP 50 kPa until trusted, then 55 kPa"


def test_a_detected_hold_elsewhere_never_names_the_committed_rpm() -> None:
    ins = Instructor()
    ins.update(0.0, PlanView(suggestions=(HOLD_1250,)), None, {"rpm": 900.0, "map_kpa": 30.0})
    # a hold nobody offered (the plan moved on): say what runs, not "hold 1250 rpm"
    line = ins.update(5.0, PlanView(suggestions=(HOLD_1250,)), "steady_state",
                      {"rpm": 2000.0, "map_kpa": 60.0})  # fmt: skip
    assert line == "steady state in progress (2000 rpm, 60 kPa): finish it"
    # an offered one at the engine's rpm is committed to and followed
    line = ins.update(6.0, PlanView(suggestions=(HOLD_1250, HOLD_1500)), "steady_state",
                      {"rpm": 1500.0, "map_kpa": 55.0})  # fmt: skip
    assert line == "hold 1500 rpm, MAP 55 kPa until trusted, then release"
