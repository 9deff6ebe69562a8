"""Several stores (dynos, shops) exporting into one fleet dataset never delete each other's runs.

QA's report, reproduced as it was run: dyno A records vehicle ``fxbb`` twice with
``dynoai log --duration 5 --vehicle fxbb`` (the simulator) and exports; dyno C (another
``DYNOAI_DATA_DIR``) records one run of a vehicle also named ``fxbb`` and exports
``--all --shop "Second Shop"`` into the same folder. Before the fix C's export removed
A's runs (the export rewrote the vehicle's partitions in every shop) and A's next export
removed C's.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

DYNOAI = [sys.executable, "-m", "dynoai_tui.cli"]


def dynoai(*args: str, data_dir: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DYNOAI_DATA_DIR": str(data_dir)}
    return subprocess.run([*DYNOAI, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300, env=env)  # fmt: skip


def _log(dyno: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "DYNOAI_DATA_DIR": str(dyno / "store")}
    return subprocess.Popen([*DYNOAI, "log", "--duration", "5", "--vehicle", "fxbb"], cwd=dyno,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


def _wait(proc: subprocess.Popen[str]) -> None:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err


@pytest.fixture(scope="module")
def dynos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Dyno A: two simulator runs of fxbb; dyno C: one run of its own fxbb."""
    root = tmp_path_factory.mktemp("dynos")
    a, c = root / "A", root / "C"
    a.mkdir()
    c.mkdir()
    first, other = _log(a), _log(c)  # C records while A does (separate machines)
    _wait(first)
    _wait(other)
    _wait(_log(a))
    return a, c


def _export(dyno: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    done = dynoai("export", "--parquet", str(out), "--all", *extra, data_dir=dyno / "store",
                  cwd=dyno.parent)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def _files(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _sessions(out: Path) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq

    return pq.read_table(out / "sessions").to_pylist()


def _store_runs(dyno: Path) -> set[str]:
    from core.store import VehicleStore

    return {r.run_id for r in VehicleStore(dyno / "store").list_runs("fxbb")}


@pytest.mark.slow
def test_qa_another_shop_exporting_the_same_vehicle_name_keeps_the_first_shops_runs(
    dynos: tuple[Path, Path], tmp_path: Path
) -> None:
    a, c = dynos
    runs_a, runs_c = _store_runs(a), _store_runs(c)
    assert len(runs_a) == 2 and len(runs_c) == 1
    out = tmp_path / "DIR"
    _export(a, out)
    from_a = _files(out)
    done = _export(c, out, "--shop", "Second Shop")
    assert "exported 1 run(s) of 1 vehicle(s)" in done.stdout
    sessions = _sessions(out)
    assert sorted(s["run_id"] for s in sessions) == sorted(runs_a | runs_c)
    shops = {s["run_id"]: s["shop"] for s in sessions}
    assert {shops[r] for r in runs_a} == {"unknown"} and {shops[r] for r in runs_c} == {
        "second-shop"
    }
    # A's files are untouched by C's export
    assert {k: v for k, v in _files(out).items() if k in from_a} == from_a
    # re-exporting from A changes nothing (C's run stays), twice over
    both = _files(out)
    _export(a, out)
    _export(c, out, "--shop", "Second Shop")
    assert _files(out) == both
    # the fleet queries see two vehicles (one fxbb per shop) and all three sessions
    cov = dynoai("fleet", "coverage", str(out), "--json", data_dir=a / "store", cwd=tmp_path)
    assert cov.returncode == 0, cov.stderr
    (row,) = json.loads(cov.stdout)
    assert row["sessions"] == 3 and row["vehicles"] == 2
    from core.fleet.dataset import describe

    marker = json.loads((out / "_dataset.json").read_text(encoding="utf-8"))
    assert marker == describe()


@pytest.mark.slow
def test_two_dynos_of_one_shop_share_a_partition_without_duplicates(
    dynos: tuple[Path, Path], tmp_path: Path
) -> None:
    a, c = dynos
    out = tmp_path / "DIR"
    said = {
        dyno: _export(dyno, out, "--shop", "Main Street V-Twin").stdout for dyno in (a, c, a, c)
    }
    sessions = _sessions(out)
    run_ids = [s["run_id"] for s in sessions]
    assert sorted(run_ids) == sorted(_store_runs(a) | _store_runs(c))  # every run, none twice
    ids = {dyno: re.findall(r"as store ([0-9a-f]+)", text) for dyno, text in said.items()}
    assert len(ids[a]) == len(ids[c]) == 1 and ids[a] != ids[c]
    ids = {dyno: found[0] for dyno, found in ids.items()}
    assert {s["exported_by"] for s in sessions} == {f"dynoai-tui store {i}" for i in ids.values()}
    names = {p.name for p in (out / "sessions").rglob("*.parquet")}
    assert names == {f"part-{ids[a]}.parquet", f"part-{ids[c]}.parquet"}
    before = _files(out)
    _export(c, out, "--shop", "Main Street V-Twin")
    assert _files(out) == before


@pytest.mark.slow
def test_a_run_gone_from_the_store_stays_in_the_dataset_until_prune(
    dynos: tuple[Path, Path], tmp_path: Path
) -> None:
    a, c = dynos
    out = tmp_path / "DIR"
    _export(a, out)
    _export(c, out, "--shop", "Second Shop")
    before = _files(out)
    # dyno C forgets fxbb's runs (a copy of its store, so the other tests keep theirs)
    c2 = tmp_path / "C"
    shutil.copytree(c, c2)
    reset = dynoai("vehicle", "reset", "fxbb", "--yes", data_dir=c2 / "store", cwd=tmp_path)
    assert reset.returncode == 0, reset.stderr
    done = _export(c2, out, "--shop", "Second Shop")
    assert "exported 0 run(s) of 1 vehicle(s)" in done.stdout
    assert "kept 1 run(s) no longer in the store" in done.stdout and "--prune" in done.stdout
    assert _files(out) == before
    done = _export(c2, out, "--shop", "Second Shop", "--prune")
    assert "removed 1 run(s) no longer in the store" in done.stdout
    assert sorted(s["run_id"] for s in _sessions(out)) == sorted(_store_runs(a))
    assert not list(out.rglob("shop=second-shop"))


# -- the writer in-process: crash safety and datasets of dynoai before store ids ---------


@pytest.fixture(scope="module")
def one_run(tmp_path_factory: pytest.TempPathFactory):
    """One analysed simulator run; copies of it under other run ids make the rest."""
    from core.fleet.analyze import analyze_log
    from tests.fleet_sim import make_sim, record_sim

    path = tmp_path_factory.mktemp("run") / "r.dynolog"
    record_sim(path, make_sim("steady", 3, duration_s=20.0), run_id="r0")
    return analyze_log(path, vehicle="fxbb", run_id="r0", shop="Main Street")


def _as(run, run_id: str, *, shop: str | None = None, vehicle: str | None = None):
    """``run`` under another run id (and shop / vehicle name): the rows of another run."""
    from dataclasses import replace

    import numpy as np

    cells = {**run.cells, "run_id": np.full(len(run.cells["run_id"]), run_id, dtype=object)}
    name = vehicle or run.vehicle
    return replace(
        run,
        session={**run.session, "run_id": run_id, "vehicle_name": name,
                 "started_at": run.session["started_at"] + len(run_id)},
        cells=cells,
        tests=[{**t, "run_id": run_id} for t in run.tests],
        patterns=[{**p, "run_id": run_id} for p in run.patterns],
        shop=shop or run.shop,
        vehicle=name,
    )  # fmt: skip


def _run_ids(out: Path, under: str = "sessions") -> list[str]:
    """Run ids of the sessions files under ``out / under`` (a folder or one file)."""
    import pyarrow.parquet as pq

    root = out / under
    files = [root] if root.is_file() else sorted(root.rglob("*.parquet"))
    return sorted(r for p in files for r in pq.read_table(p).column("run_id").to_pylist())


def _rows_without_a_session(out: Path) -> list[str]:
    """Files holding rows of a run that the file's partition has no session of."""
    import pyarrow.parquet as pq

    bad = []
    for path in sorted(out.rglob("*.parquet")):
        table, rel = path.relative_to(out).parts[0], path.relative_to(out).parts[1:]
        sessions = out.joinpath("sessions", *rel)
        ids = set(pq.read_table(path).column("run_id").to_pylist())
        known = (
            set(pq.read_table(sessions).column("run_id").to_pylist())
            if sessions.is_file()
            else set()
        )
        if table != "sessions" and ids - known:
            bad.append(str(path.relative_to(out)))
    return bad


STORE_X, STORE_Y = "aaaaaaaaaaaaaaaa", "bbbbbbbbbbbbbbbb"


def test_a_killed_export_never_leaves_a_run_out(one_run, tmp_path: Path, monkeypatch) -> None:
    """Kill the export at every file operation: each run stays in the dataset at least once."""
    import core.fleet.writer as writer

    start = tmp_path / "start"
    x1, x2, y1 = _as(one_run, "x1"), _as(one_run, "x2-run"), _as(one_run, "y1")
    writer.write_runs([x1, x2], start, store_id=STORE_X)
    writer.write_runs([y1], start, store_id=STORE_Y)
    # the shop of x1 and x2 changed: the next export moves them to another partition
    moved = [_as(one_run, "x1", shop="New Name"), _as(one_run, "x2-run", shop="New Name")]
    everything = ["x1", "x2-run", "y1"]

    real_replace, real_unlink = os.replace, Path.unlink
    operations = 0
    for kill_at in range(100):
        out = tmp_path / f"try{kill_at}"
        shutil.copytree(start, out)
        count = [0]

        def counted(real, *args, count=count, kill_at=kill_at, **kwargs):
            if count[0] == kill_at:
                raise KeyboardInterrupt("killed")
            count[0] += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(writer.os, "replace", lambda *a, f=counted: f(real_replace, *a))
        monkeypatch.setattr(Path, "unlink", lambda *a, f=counted, **k: f(real_unlink, *a, **k))
        try:
            writer.write_runs(moved, out, store_id=STORE_X, scope=["fxbb"])
            finished = True
        except KeyboardInterrupt:
            finished = False
        monkeypatch.undo()
        assert set(_run_ids(out)) == set(everything), f"killed after {kill_at} operations"
        if finished:
            operations = kill_at
            break
        # the next export of the vehicle repairs what the killed one left half done
        writer.write_runs(moved, out, store_id=STORE_X, scope=["fxbb"])
        assert _run_ids(out) == everything, f"killed after {kill_at} operations"
        assert _rows_without_a_session(out) == [], f"killed after {kill_at} operations"
    assert operations > 4  # the moves took several file operations, each one tried
    assert _run_ids(out) == everything  # done: each run once
    assert _rows_without_a_session(out) == []
    shops = {p.parts[-4] for p in out.glob(f"sessions/**/part-{STORE_X}.parquet")}
    assert shops == {"shop=new-name"}
    assert (out / "sessions" / "shop=main-street").is_dir()  # y1 stays where store Y put it


def test_a_dataset_of_dynoai_before_store_ids_loses_only_the_runs_exported_again(
    one_run, tmp_path: Path
) -> None:
    """Files named part-0.parquet (one per partition, no owner): runs written again leave them."""
    from core.fleet.writer import LEGACY_PART, part_name, write_runs

    out = tmp_path / "DIR"
    old_x = [_as(one_run, r) for r in ("x1", "x2-run", "x3-reset")]
    write_runs(old_x, out, store_id=STORE_X)
    write_runs([_as(one_run, "c1", shop="Second Shop")], out, store_id=STORE_Y)
    for path in list(out.rglob("part-*.parquet")):  # as dynoai wrote them before store ids
        path.rename(path.with_name(LEGACY_PART))
    result = write_runs(old_x[:2], out, store_id=STORE_X, scope=["fxbb"])
    assert result.from_legacy == 2
    assert _run_ids(out) == ["c1", "x1", "x2-run", "x3-reset"]  # nothing lost, nothing twice
    (partition,) = (out / "sessions" / "shop=main-street" / "vehicle=fxbb").iterdir()
    assert sorted(p.name for p in partition.iterdir()) == [LEGACY_PART, part_name(STORE_X)]
    assert _run_ids(out, "sessions/shop=main-street") == ["x1", "x2-run", "x3-reset"]
    assert _run_ids(partition, LEGACY_PART) == ["x3-reset"]  # not exported again: left alone
    assert list((out / "sessions" / "shop=second-shop").rglob(LEGACY_PART))
