"""The simulated candidates' disk cache (sim.diskcache): what a plan simulated, a later
process reads back, giving the same plan; a new code version, a damaged file or
``DYNOAI_CACHE_DIR=off`` never changes a result."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sim import diskcache
from sim.testsim import cached_sparse


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv(diskcache.ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def counted() -> tuple[list[float], object]:
    calls: list[float] = []

    @cached_sparse(maxsize=8)
    def simulate(x: float) -> dict[str, np.ndarray]:
        calls.append(x)
        hits = np.zeros(256)
        hits[int(x)] = x
        return {"hits": hits, "dwell_s": hits / 100.0}

    return calls, simulate


def test_a_result_simulated_once_is_read_back_from_disk(cache_dir: Path) -> None:
    calls, simulate = counted()
    first = simulate(7.0)  # type: ignore[operator]
    simulate.cache_clear()  # type: ignore[attr-defined]  # as a new process starts
    again = simulate(7.0)  # type: ignore[operator]
    assert calls == [7.0]
    assert set(first) == set(again)
    for name in first:
        np.testing.assert_array_equal(first[name], again[name])
    assert (cache_dir / diskcache.FILE_NAME).is_file()

    # another function with the same arguments is another entry
    @cached_sparse(maxsize=8)
    def other(x: float) -> dict[str, np.ndarray]:
        return {"hits": np.full(256, x)}

    assert other(7.0)["hits"][0] == 7.0


def test_a_new_code_version_simulates_again(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls, simulate = counted()
    simulate(3.0)  # type: ignore[operator]
    simulate.cache_clear()  # type: ignore[attr-defined]
    monkeypatch.setattr(diskcache, "_version", b"another simulator")
    simulate(3.0)  # type: ignore[operator]
    assert calls == [3.0, 3.0]


def test_a_damaged_or_unwritable_cache_is_only_a_miss(
    cache_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir.mkdir()
    (cache_dir / diskcache.FILE_NAME).write_bytes(b"not a database" * 100)
    calls, simulate = counted()
    assert simulate(5.0)["hits"][5] == 5.0  # type: ignore[operator]
    simulate.cache_clear()  # type: ignore[attr-defined]
    assert simulate(5.0)["hits"][5] == 5.0  # type: ignore[operator]
    assert calls == [5.0, 5.0]  # nothing read from the damaged file, no error either
    # a cache directory that cannot be made (a file stands where it would go)
    (tmp_path / "file").write_text("")
    monkeypatch.setenv(diskcache.ENV, str(tmp_path / "file" / "cache"))
    simulate.cache_clear()  # type: ignore[attr-defined]
    assert simulate(5.0)["hits"][5] == 5.0  # type: ignore[operator]


def test_off_turns_it_off(monkeypatch: pytest.MonkeyPatch) -> None:
    for value in ("off", "0", "none", ""):
        monkeypatch.setenv(diskcache.ENV, value)
        assert diskcache.disk_cache() is None
    monkeypatch.delenv(diskcache.ENV)
    assert diskcache.cache_dir() is not None  # the platform's user cache directory


def test_the_oldest_entries_go_past_the_limit(
    cache_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(diskcache, "MAX_ENTRIES", 50)
    cache = diskcache.DiskCache(cache_dir)
    for i in range(260):
        cache.put("f", (i,), i)
    db = cache._connect()
    assert db is not None
    (count,) = db.execute("SELECT COUNT(*) FROM entries").fetchone()
    assert count <= 50 + 100  # pruned at every 100th store
    assert cache.get("f", (259,)) == 259 and cache.get("f", (0,)) is diskcache.MISS
    cache.close()


def test_a_plan_read_from_the_cache_is_the_plan_simulated(tmp_path: Path) -> None:
    # the whole path a tuner meets: `dynoai plan` for a new bike, then again in a new
    # process that reads every candidate back
    env = {**os.environ, diskcache.ENV: str(tmp_path / "cache"),
           "DYNOAI_DATA_DIR": str(tmp_path / "data")}  # fmt: skip
    command = [sys.executable, "-m", "dynoai_tui.cli", "plan", "--vehicle", "NEW", "--json"]

    def plan() -> str:
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr
        return done.stdout

    simulated = plan()
    assert (tmp_path / "cache" / diskcache.FILE_NAME).stat().st_size > 0
    assert plan() == simulated
