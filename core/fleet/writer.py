"""Writing runs into a fleet dataset that several stores (dynos, shops) export into.

Decisions:

* **A store writes only its own files.** In every partition a store's runs live in
  ``part-<store id>.parquet`` (the id is kept in the store,
  ``core.fleet.records_store.store_id``), so an export cannot delete or rewrite a run
  another store or shop exported, and two stores exporting at once do not write the
  same file. A run is identified by the store that exported it and its run id.
* **An export adds and replaces, it does not mirror.** A store's file is rewritten
  with the runs exported now plus the runs it held before and did not export now
  (carried over unchanged: a run deleted or reset in the store, a run whose recording
  could not be read this time, another vehicle of the same slug). Only ``drop`` (the
  export's ``--prune``) removes a carried run. Rows are ordered by (start, run id) with
  each run's rows in their own order, so re-exporting the same runs writes
  byte-identical files whether a run was re-analysed or carried.
* **Crash-safe in two phases.** Each file is written to a temporary name and renamed.
  Phase 1 writes every partition that gains runs, still holding the runs that move out
  of it (a changed shop moves a run to another partition); phase 2 then removes the
  moved runs from their old partitions and from files of dynoai before store ids
  (``part-0.parquet``). A killed export leaves every run at least once (at worst a
  moved run twice, or rows of a run it was removing, until the next export of that
  vehicle from that store); never none.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.fleet.analyze import RunData
from core.fleet.dataset import TABLES, DatasetError, prepare, schemas, slug, table_of

LEGACY_PART = "part-0.parquet"
"""The one file per partition that dynoai wrote before stores had ids."""

Partition = tuple[str, str, str]
"""(shop slug, vehicle slug, date): the folder ``shop=../vehicle=../date=..``."""
Drop = Callable[[str, str], bool]
"""(vehicle name, run id) of a carried run -> remove it from the dataset."""


def part_name(store_id: str) -> str:
    """The file name of a store's part in every partition."""
    if not re.fullmatch(r"[0-9a-f]{8,32}", store_id):
        raise DatasetError(f"store id {store_id!r}: use 8-32 lower-case hex digits")
    return f"part-{store_id}.parquet"


def exported_by(store_id: str) -> str:
    """The ``sessions.exported_by`` value of a store's runs."""
    return f"dynoai-tui store {store_id}"


@dataclass(slots=True)
class WriteResult:
    """What one write did."""

    runs: int = 0
    files: int = 0
    bytes: int = 0
    partitions: int = 0
    carried: list[tuple[str, str]] = field(default_factory=list)
    """(vehicle name, run id) the store exported before, kept though not written now."""
    dropped: list[tuple[str, str]] = field(default_factory=list)
    """(vehicle name, run id) removed by ``drop``."""
    from_legacy: int = 0
    """Runs taken out of ``part-0.parquet`` files because this store wrote them now."""


def write_runs(
    runs: Iterable[RunData],
    out_dir: str | Path,
    *,
    store_id: str,
    scope: Iterable[str] = (),
    drop: Drop | None = None,
) -> WriteResult:
    """Add ``runs`` to the dataset as ``store_id``'s, replacing that store's earlier copies.

    ``scope``: vehicle names whose files of this store are revisited even without a
    run written now, for ``drop`` and the carried count.
    Files of other stores are never written; ``part-0.parquet`` files lose only the
    runs written now.
    """
    out = Path(out_dir)
    prepare(out)
    name = part_name(store_id)
    groups: dict[Partition, list[RunData]] = defaultdict(list)
    for run in runs:
        groups[(slug(run.shop), slug(run.vehicle), run.date)].append(run)
    written = {(vehicle, r.session["run_id"]) for (_, vehicle, _), rs in groups.items() for r in rs}
    slugs = {slug(v) for v in scope} | {v for _, v, _ in groups}
    old = {p: _read_runs(out, p, name) for p in _partitions(out, name, slugs)}
    result = WriteResult(runs=len(written), partitions=len(groups))
    touched: set[Path] = set()
    moving: dict[Partition, set[str]] = {}
    final: dict[Partition, tuple[list[RunData], set[str]]] = {}
    for part in sorted(set(groups) | set(old)):
        members = groups.get(part, [])
        here = {r.session["run_id"] for r in members}
        before, orphans = old.get(part, ({}, set()))
        moved = {rid for rid in before if rid not in here and (part[1], rid) in written}
        dropped = {rid for rid in before if rid not in here and rid not in moved
                   and drop is not None and drop(before[rid], rid)}  # fmt: skip
        keep = set(before) - here - dropped
        result.carried += [(before[rid], rid) for rid in sorted(keep - moved)]
        result.dropped += [(before[rid], rid) for rid in sorted(dropped)]
        if members or dropped or orphans:  # phase 1: gains, still holding what moves out
            touched |= _write_partition(out, part, name, members, keep, store_id)
        if moved:
            moving[part] = moved
        final[part] = (members, keep - moved)
    for part, _moved in sorted(moving.items()):  # phase 2: moved runs leave their old home
        members, keep = final[part]
        touched |= _write_partition(out, part, name, members, keep, store_id)
    result.from_legacy = _leave_legacy(out, written)
    sizes = [p.stat().st_size for p in touched if p.is_file()]
    result.files, result.bytes = len(sizes), sum(sizes)
    return result


def _partitions(out: Path, name: str, slugs: set[str]) -> set[Partition]:
    found = set()
    for table in TABLES:
        for vehicle in sorted(slugs):
            for path in (out / table).glob(f"shop=*/vehicle={vehicle}/date=*/{name}"):
                date, veh, shop = path.parent, path.parent.parent, path.parent.parent.parent
                found.add((shop.name.removeprefix("shop="), veh.name.removeprefix("vehicle="),
                           date.name.removeprefix("date=")))  # fmt: skip
    return found


def _folder(out: Path, table: str, part: Partition) -> Path:
    shop, vehicle, date = part
    return out / table / f"shop={shop}" / f"vehicle={vehicle}" / f"date={date}"


def _read(path: Path, columns: Sequence[str] | None = None) -> Any:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path, columns=list(columns) if columns else None)
    except (OSError, pa.ArrowInvalid) as exc:
        raise DatasetError(f"{path} is unreadable ({exc}); move it away and export again") from None


def _read_runs(out: Path, part: Partition, name: str) -> tuple[dict[str, str], set[str]]:
    """A store's runs in a partition: run id -> vehicle name, and orphans.

    Orphans are run ids in the other tables without a ``sessions`` row: what a killed
    rewrite leaves of a run it was removing (``sessions`` is written first). Rewriting
    the partition drops them.
    """
    runs: dict[str, str] = {}
    path = _folder(out, "sessions", part) / name
    if path.is_file():
        table = _read(path, ["run_id", "vehicle_name"]).to_pydict()
        runs = dict(zip(table["run_id"], table["vehicle_name"], strict=True))
    orphans: set[str] = set()
    for table_name in TABLES[1:]:
        path = _folder(out, table_name, part) / name
        if path.is_file():
            ids = _read(path, ["run_id"]).column("run_id").unique().to_pylist()
            orphans.update(rid for rid in ids if rid not in runs)
    return runs, orphans


def _write_partition(
    out: Path,
    part: Partition,
    name: str,
    members: list[RunData],
    keep: set[str],
    store_id: str,
) -> set[Path]:
    """Write the store's files of a partition: ``members`` plus its old rows of ``keep``."""
    schema = schemas()
    members = [_stamped(r, store_id) for r in members]
    old_sessions = None
    touched = set()
    path = _folder(out, "sessions", part) / name
    if keep and path.is_file():
        old_sessions = _conform(_read(path), schema["sessions"])
    started = {r.session["run_id"]: int(round(r.session["started_at"] * 1e6)) for r in members}
    if old_sessions is not None:
        ids = old_sessions.column("run_id").to_pylist()
        times = old_sessions.column("started_at").cast("int64").to_pylist()
        started.update({rid: t for rid, t in zip(ids, times, strict=True) if rid in keep})
    order = sorted(started, key=lambda r: (started[r], r))
    for table in TABLES:
        target = _folder(out, table, part) / name
        new = table_of(table, members, schema[table])
        parts = [new] if new is not None and new.num_rows else []
        if keep and target.is_file():
            old = old_sessions if table == "sessions" else None
            carried = _carried(target, schema[table], keep, old)
            if carried.num_rows:
                parts.append(carried)
        if not parts:
            if target.exists():
                target.unlink()
                _prune(target.parent, out)
            continue
        _write_file(target, _ordered(parts, order))
        touched.add(target)
    return touched


def _stamped(run: RunData, store_id: str) -> RunData:
    from dataclasses import replace

    return replace(run, session={**run.session, "exported_by": exported_by(store_id)})


def _carried(path: Path, schema: Any, keep: set[str], table: Any | None) -> Any:
    import pyarrow as pa
    import pyarrow.compute as pc

    if table is None:
        table = _conform(_read(path), schema)
    return table.filter(pc.is_in(table.column("run_id"), value_set=pa.array(sorted(keep))))


def _conform(table: Any, schema: Any) -> Any:
    """An old file's rows in this version's schema (a column it lacks is null)."""
    import pyarrow as pa

    columns = []
    for f in schema:
        if f.name in table.column_names:
            columns.append(table.column(f.name).cast(f.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _ordered(parts: list[Any], order: list[str]) -> Any:
    """Rows in ``order`` of their run id, each run's rows in their own order."""
    import pyarrow as pa
    import pyarrow.compute as pc

    table = pa.concat_tables(parts).combine_chunks()
    rank = pc.index_in(table.column("run_id"), value_set=pa.array(order, type=pa.string()))
    rank = pc.fill_null(rank, len(order)).to_numpy(zero_copy_only=False)
    return table.take(pa.array(np.argsort(rank, kind="stable"))).combine_chunks()


def _write_file(target: Path, table: Any) -> None:
    import pyarrow.parquet as pq

    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    for attempt in (1, 2):  # another store may remove an empty folder as this one is made
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            pq.write_table(table, tmp, compression="zstd", write_statistics=True)
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    os.replace(tmp, target)


def _leave_legacy(out: Path, written: set[tuple[str, str]]) -> int:
    """Take the runs written now out of ``part-0.parquet`` files (dynoai before store ids)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not written:
        return 0
    ids_by_vehicle: dict[str, set[str]] = defaultdict(set)
    for vehicle, rid in written:
        ids_by_vehicle[vehicle].add(rid)
    moved: set[tuple[str, str]] = set()
    for table in TABLES:
        for vehicle, ids in sorted(ids_by_vehicle.items()):
            for path in sorted(
                (out / table).glob(f"shop=*/vehicle={vehicle}/date=*/{LEGACY_PART}")
            ):
                rows = _read(path)
                hit = pc.is_in(rows.column("run_id"), value_set=pa.array(sorted(ids)))
                if not pc.any(hit).as_py():
                    continue
                if table == "sessions":
                    moved |= {(vehicle, r) for r in rows.filter(hit).column("run_id").to_pylist()}
                rest = rows.filter(pc.invert(hit))
                if rest.num_rows:
                    _write_file(path, rest)
                else:
                    path.unlink()
                    _prune(path.parent, out)
    return len(moved)


def _prune(folder: Path, root: Path) -> None:
    """Remove empty folders up to the dataset root (another store may be filling one)."""
    while folder != root and folder.is_dir():
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent
