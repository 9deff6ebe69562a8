"""The planner's result types (suggestions, filtered tests, live targets), carried by snapshots."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Target:
    """A cell the tuner should visit next."""

    map_index: int
    rpm_index: int
    rpm: float
    map_kpa: float
    priority: int
    """1 (highest) .. 3."""
    deficit: int
    """Hits still missing to reach the target."""


@dataclass(frozen=True, slots=True)
class Suggestion:
    """One candidate test, ranked."""

    test_type: str
    """``wot_pull``, ``part_throttle_sweep``, ``steady_state``, ``tip_in``, ``idle_low_map``, ``street_cruise``."""
    description: str
    rpm_range: tuple[float, float]
    map_range: tuple[float, float]
    minutes: float
    expected_gain: float
    efficiency: float
    """Gain per minute normalised to 0..1 over the candidates of this plan."""
    band: str
    """``high`` (>= 0.7), ``medium`` (0.4-0.7), ``low`` (< 0.4)."""
    priority: int
    cells: tuple[tuple[int, int], ...]
    """(map_index, rpm_index) pairs the test is expected to fill."""
    expected_hits: tuple[tuple[int, int, float], ...] = ()
    """(map_index, rpm_index, hits) the test is expected to add after the filters: the
    prediction checked against what the test then adds (``core.plan.predictions``)."""
    recipe: object = None
    """How to run it (``core.plan.recipe.Recipe``): the guided operator executes this."""
    knock_cells: tuple[tuple[int, int], ...] = ()
    """(map_index, rpm_index) of the cells it loads where knock was seen (stored runs and
    this one): knock raises a cell's priority, and the panel says so before the test
    loads it again (a tuner takes timing out there first)."""


@dataclass(frozen=True, slots=True)
class FilteredTest:
    """A candidate test the vehicle's constraints removed, with the constraint that did."""

    test_type: str
    description: str
    reason: str
    """The constraint that removed it, e.g. ``max_rpm 5500 < 6000 needed``."""


@dataclass(frozen=True, slots=True)
class PlanView:
    """The planner's result: ranked suggestions, filtered tests, live targets, the instruction."""

    suggestions: tuple[Suggestion, ...] = ()
    filtered: tuple[FilteredTest, ...] = ()
    targets: tuple[Target, ...] = ()
    """The next cells (the panel's list, the heatmap's ◆). On the dashboard, the cells of
    the test the instruction names, in its order (``core.plan.marks``)."""
    instruction: str = ""
    """One plain instruction from the current operating point, e.g. 'hold 3000 rpm, raise MAP to 85 kPa'."""
    prediction_error_pct: float | None = None
    """The planner's mean absolute error of predicted vs actual hits so far."""
    errors_by_type: tuple[tuple[str, float, int], ...] = ()
    """(test type, mean error %, tests checked): suggestions checked before the fact."""
    running: bool = False
    """The first suggestion is the test the line follows as it runs (listed first, shown
    as running: ``core.plan.instruction.running_first``)."""
    opening_only: bool = False
    """Planned on a new vehicle's opening work alone (the rest of its tests were still
    being simulated): a short log's summary named "hold 1000 rpm (high)" where
    ``dynoai plan`` run after it, on every test, led with MAP ramps."""
    reachable: tuple[bool, ...] = ()
    """Per cell (flat, rows = MAP): trusted already, or some test on offer alone makes it
    trusted (:func:`core.plan.simplan._reachable_cells`); empty when not known (the
    kinematic planner). The coverage a tuner can reach here: QA read "covered as far as
    this engine reaches" beside "56 % covered", the rest cells no engine of the kind
    holds (the 105-kPa row, 20 kPa at 6000 rpm, above the redline)."""
    estimate: bool = False
    """The kinematic planner's quick answer while this vehicle's tests are still being
    simulated (a stored vehicle's warm-up): the panel and the line say so. QA followed
    its "steady-state hold at 2000 rpm" for the ~25 s before the simulated plan came."""
