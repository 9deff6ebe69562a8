import numpy as np
import pytest

from core.config import ConfigError
from core.coverage.axes import DEFAULT_MAP_KPA, DEFAULT_RPM, AxesError, TableAxes


def small() -> TableAxes:
    return TableAxes(np.array([1000.0, 2000.0, 4000.0]), np.array([20.0, 60.0, 100.0]))


def test_default_axes_cover_the_documented_range():
    axes = TableAxes.default()
    assert axes.shape == (16, 16)
    assert axes.rpm[0] == 750 and axes.rpm[-1] == 7000
    assert axes.map_kpa[0] == 20 and axes.map_kpa[-1] == 105
    assert list(axes.rpm) == list(DEFAULT_RPM) and list(axes.map_kpa) == list(DEFAULT_MAP_KPA)
    assert np.all(np.diff(axes.rpm) > 0) and np.all(np.diff(axes.map_kpa) > 0)


def test_arrays_are_read_only_and_not_shared_with_caller():
    rpm = np.array([1000.0, 2000.0])
    axes = TableAxes(rpm, np.array([20.0, 100.0]))
    rpm[0] = 5.0
    assert axes.rpm[0] == 1000.0
    with pytest.raises(ValueError):
        axes.rpm[0] = 1.0


def test_sample_on_a_breakpoint_goes_to_that_cell():
    axes = TableAxes.default()
    for mi, map_kpa in enumerate(axes.map_kpa):
        for ri, rpm in enumerate(axes.rpm):
            m, r = axes.nearest(rpm, map_kpa)
            assert (int(m), int(r)) == (mi, ri)


def test_nearest_midpoint_goes_up_and_neighbours_split_correctly():
    axes = small()
    m, r = axes.nearest([1499.0, 1500.0, 2999.0, 3000.0], [39.0, 40.0, 79.0, 80.0])
    assert list(r) == [0, 1, 1, 2]
    assert list(m) == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("rpm", "map_kpa", "inside"),
    [
        (500.0, 60.0, True),  # exactly half a cell below the first rpm breakpoint
        (499.9, 60.0, False),
        (5000.0, 60.0, True),  # half of the last (2000 rpm) step above 4000
        (5000.1, 60.0, False),
        (2000.0, 0.0, True),  # 20 - 40/2 kPa
        (2000.0, -0.1, False),
        (2000.0, 120.0, True),
        (2000.0, 120.1, False),
        (float("nan"), 60.0, False),
        (2000.0, float("nan"), False),
    ],
)
def test_half_cell_rule_at_all_four_edges(rpm, map_kpa, inside):
    axes = small()
    m, r = axes.nearest(rpm, map_kpa)
    assert bool(axes.inside(rpm, map_kpa)) is inside
    if inside:
        assert int(m) >= 0 and int(r) >= 0
    else:
        assert int(m) == -1 and int(r) == -1


def test_cell_center_inverts_nearest():
    axes = TableAxes.default()
    rpm, map_kpa = axes.cell_center(3, 7)
    assert (rpm, map_kpa) == (3000.0, 35.0)
    m, r = axes.nearest(rpm, map_kpa)
    assert (int(m), int(r)) == (3, 7)
    rpms, maps = axes.cell_center(np.array([0, 15]), np.array([0, 15]))
    assert list(rpms) == [750.0, 7000.0] and list(maps) == [20.0, 105.0]
    with pytest.raises(IndexError):
        axes.cell_center(16, 0)


def test_not_increasing_message_names_axis_and_indices():
    rpm = [750, 1000, 1500, 2000, 2500, 3000, 3000, 3500]
    with pytest.raises(AxesError) as err:
        TableAxes(np.array(rpm, float), np.array([20.0, 100.0]))
    assert str(err.value) == (
        "rpm axis: value 3000 at index 6 is not greater than 3000 at index 5; "
        "breakpoints must be strictly increasing"
    )
    assert isinstance(err.value, ConfigError)


@pytest.mark.parametrize(
    ("rpm", "map_kpa", "fragment"),
    [
        ([1000.0], [20.0, 100.0], "rpm axis: needs at least 2 breakpoints, got 1"),
        ([1000.0, float("inf")], [20.0, 100.0], "rpm axis: value at index 1 is inf"),
        ([1000.0, 2000.0], [0.0, 100.0], "map_kpa axis: breakpoints must be greater than 0"),
        ([1000.0, 2000.0], [[20.0, 30.0]], "map_kpa axis: expected a flat list"),
        ([1000.0, 2000.0], [60.0, 40.0], "map_kpa axis: value 40 at index 1"),
        ("fast", [20.0, 100.0], "rpm axis: expected a list of numbers"),
        ([1000.0, "x"], [20.0, 100.0], "rpm axis: expected a list of numbers"),
    ],
)
def test_bad_axes_say_what_is_wrong(rpm, map_kpa, fragment):
    with pytest.raises(AxesError) as err:
        TableAxes.from_dict({"rpm": rpm, "map_kpa": map_kpa})
    assert fragment in str(err.value)


def test_from_dict_round_trip_and_key_errors():
    axes = TableAxes.default()
    again = TableAxes.from_dict(axes.to_dict())
    assert again == axes and hash(again) == hash(axes)
    assert again != small()
    with pytest.raises(AxesError, match="missing 'map_kpa'"):
        TableAxes.from_dict({"rpm": [1000, 2000]})
    with pytest.raises(AxesError, match="unknown key 'map'"):
        TableAxes.from_dict({"rpm": [1000, 2000], "map": [20, 100]})
    with pytest.raises(AxesError, match="expected a table"):
        TableAxes.from_dict([1, 2])  # type: ignore[arg-type]


def test_linear_axes():
    axes = TableAxes.linear(1000, 6000, 11, 20, 100, 9)
    assert axes.shape == (9, 11)
    assert axes.rpm[1] == 1500 and axes.map_kpa[1] == 30
    assert list(axes.rpm_edges[[0, -1]]) == [750.0, 6250.0]
    with pytest.raises(AxesError, match="rpm axis: needs an integer count"):
        TableAxes.linear(1000, 6000, 1, 20, 100, 9)
