"""Fault-injection kit shared by tests/test_faults.py and bench/bench_dynolog_faults.py.

* :func:`live_recording` writes a .dynolog the way a live session does: an ECU at
  100 Hz and a wideband at 12.5 Hz handed to the writer every 30 ms engine tick,
  the writer's clock following the data, markers now and then.
* :func:`flip_trials` flips one random byte after the header, many times, and
  measures the samples the reader still returns; :func:`schema_flip_trials` flips
  a bit inside each schema record (the worst place: a lost schema makes its source's
  blocks unreadable until the writer repeats it).
* :func:`mutate` is a structure-aware mutator: it knows the record framing, so
  besides raw byte damage it re-frames records with a *valid* checksum around
  hostile content (absurd counts, wrong types, NaN header values, huge axes,
  duplicated or reordered records), which random flips almost never reach.
* :func:`consume` is what ``dynoai replay`` does with a file: read the header,
  derive the config, fuse, filter and bin every record.
"""

from __future__ import annotations

import contextlib
import math
import random
import signal
import subprocess
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgpack
import numpy as np

from core.config import ConfigError
from core.frames import Block
from core.record import LogFileError, LogHeader, LogReader, LogWriter
from core.record.format import frame, frame_length, unframe
from core.source import SourceEvent
from sim.source import generate

ECU_CHANNELS = ("rpm", "map_kpa", "tps_pct", "iat_c", "clt_c", "spark_deg", "knock_retard_deg")
TICK_S = 0.03


def live_recording(
    path: Path, seconds: float = 60.0, seed: int = 1, marker_every_s: float = 10.0
) -> int:
    """Write a live-like recording; returns the number of samples written."""
    header = LogHeader(
        created_at=1_790_000_000.0,
        vehicle="fault-rig",
        sources={
            "ecu": {"uri": "sim:", "channels": {c: "" for c in ECU_CHANNELS}},
            "lc2": {"uri": "innovate:/dev/ttyUSB1", "channels": {"lambda": "lambda"}},
        },
        axes={"rpm": [1000.0, 2000.0, 3000.0, 4000.0, 5000.0], "map_kpa": [30.0, 60.0, 100.0]},
        metadata={"stoich": 14.7, "lambda_delay_ms": 90, "hit_target": 10, "run_id": "live"},
    )
    now = [0.0]
    total = 0
    next_marker = marker_every_s
    with LogWriter(path, header, clock=lambda: now[0]) as writer:
        for block in generate(duration_s=seconds, block_s=TICK_S, seed=seed):
            now[0] = float(block.t[-1])
            ecu = Block("ecu", block.t, {c: block.columns[c] for c in ECU_CHANNELS})
            writer.write_block(ecu)
            total += len(ecu)
            keep = np.flatnonzero(np.round(block.t * 100).astype(np.int64) % 8 == 0)
            if keep.size:
                lam = Block("lc2", block.t[keep], {"lambda": block.columns["lambda"][keep]})
                writer.write_block(lam)
                total += len(lam)
            if now[0] >= next_marker:
                writer.write_event(SourceEvent("user", "marker", now[0], f"t={next_marker:g}"))
                next_marker += marker_every_s
            writer.tick()
    return total


def record_spans(data: bytes) -> list[tuple[int, int]]:
    """(start, end) of every record of an undamaged file."""
    spans, pos = [], 0
    while pos < len(data):
        found = frame_length(data, pos)
        assert found is not None
        head, size = found
        spans.append((pos, pos + head + size))
        pos += head + size
    return spans


def samples_in(path: Path) -> int:
    with LogReader(path) as reader:
        return sum(len(item) for item in reader if isinstance(item, Block))


def flip_trials(path: Path, trials: int, seed: int = 0) -> list[float]:
    """Fraction of samples kept after one random byte flip after the header, per trial."""
    data = path.read_bytes()
    header_end = record_spans(data)[0][1]
    total = samples_in(path)
    rng = random.Random(seed)
    damaged = path.with_name(path.stem + "-flipped.dynolog")
    kept = []
    for _ in range(trials):
        buf = bytearray(data)
        buf[rng.randrange(header_end, len(buf))] ^= 1 << rng.randrange(8)
        damaged.write_bytes(bytes(buf))
        kept.append(samples_in(damaged) / total)
    damaged.unlink()
    return kept


def schema_flip_trials(path: Path, bits_per_record: int = 4, seed: int = 0) -> list[float]:
    """Fraction of samples kept after one flipped bit inside a schema record, per trial.

    Every schema record of the file is hit ``bits_per_record`` times (random bits,
    its framing bytes included).
    """
    data = path.read_bytes()
    spans = record_spans(data)
    schemas = [(a, b) for a, b in spans[1:] if _kind(data, a, b) == "s"]
    total = samples_in(path)
    rng = random.Random(seed)
    damaged = path.with_name(path.stem + "-schema-flipped.dynolog")
    kept = []
    for start, end in schemas:
        for _ in range(bits_per_record):
            buf = bytearray(data)
            buf[rng.randrange(start, end)] ^= 1 << rng.randrange(8)
            damaged.write_bytes(bytes(buf))
            kept.append(samples_in(damaged) / total)
    damaged.unlink(missing_ok=True)
    return kept


def _kind(data: bytes, start: int, end: int) -> str:
    found = frame_length(data, start)
    assert found is not None
    return str(unframe(data[start + found[0] : end])["k"])


# -- structure-aware mutation ------------------------------------------------------


def _hostile_value(rng: random.Random) -> Any:
    return rng.choice(
        [
            0, -1, 1.5, 2**31, 2**63 - 1, -(2**63), math.nan, math.inf, -math.inf, "", "x" * 300,
            b"", b"\x00" * 17, [], [1, 2], {}, {"a": 1}, None, True, "rpm",
            list(range(5000)), [math.nan, 1.0], {"rpm": "fast"},
        ]
    )  # fmt: skip


def _mutate_body(body: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    body = dict(body)
    keys = list(body)
    op = rng.randrange(6)
    if op == 0 and keys:
        body[rng.choice(keys)] = _hostile_value(rng)
    elif op == 1 and keys:
        del body[rng.choice(keys)]
    elif op == 2:
        body[rng.choice(["k", "n", "z", "i", "p", "zz"])] = _hostile_value(rng)
    elif op == 3 and body.get("k") == "h":
        meta = dict(body.get("metadata") or {})
        meta[rng.choice(["stoich", "hit_target", "lambda_delay_ms", "run_id"])] = _hostile_value(
            rng
        )
        body["metadata"] = meta
    elif op == 4 and body.get("k") == "h":
        pick = rng.randrange(4)
        if pick == 0:
            body["axes"] = {"rpm": [float(i + 1) for i in range(5000)], "map_kpa": [1.0, 2.0]}
        elif pick == 1:
            body["sources"] = {"ecu": {"uri": "sim:", "channels": "rpm,map_kpa"}}
        elif pick == 2:
            body["sources"] = {"ecu": "sim:"}
        else:
            body["axes"] = {"rpm": [3.0, 2.0, 1.0], "map_kpa": [1.0, math.nan]}
    elif op == 5 and body.get("k") == "b":
        n = rng.choice([1, 2, 10**6, 5 * 10**6, 2**40])
        body["n"] = n
        body["z"] = 1
        raw = bytes(min(n, 10**6) * 12)
        packer = zlib.compressobj(9, zlib.DEFLATED, -15)
        body["p"] = packer.compress(raw) + packer.flush()
    return body


def mutate(data: bytes, rng: random.Random) -> bytes:
    """One structure-aware mutation of a valid recording."""
    spans = record_spans(data)
    records = [data[a:b] for a, b in spans]
    op = rng.randrange(10)
    i = rng.randrange(len(records))
    if op == 0:  # flip bits anywhere
        buf = bytearray(data)
        for _ in range(rng.randint(1, 4)):
            buf[rng.randrange(len(buf))] ^= 1 << rng.randrange(8)
        return bytes(buf)
    if op == 1:  # truncate
        return data[: rng.randrange(len(data))]
    if op == 2:  # delete a record
        del records[i]
    elif op == 3:  # duplicate a record
        records.insert(rng.randrange(len(records) + 1), records[i])
    elif op == 4:  # swap two records
        j = rng.randrange(len(records))
        records[i], records[j] = records[j], records[i]
    elif op == 5:  # random bytes in between
        records.insert(i, bytes(rng.randrange(256) for _ in range(rng.randint(1, 64))))
    elif op == 6:  # a valid frame around garbage
        records.insert(i, frame({"k": rng.choice("hbse"), "x": _hostile_value(rng)}))
    elif op in (7, 8):  # re-frame a real record with hostile content and a good checksum
        head, size = frame_length(records[i], 0) or (0, 0)
        body = unframe(records[i][head : head + size])
        with contextlib.suppress(TypeError, ValueError, OverflowError):
            records[i] = frame(_mutate_body(body, rng))
    else:  # the length field lies
        rec = bytearray(records[i])
        if rec[0] == 0xC4:
            rec[1] = rng.randrange(256)
        elif rec[0] == 0xC5:
            rec[1:3] = rng.randrange(65536).to_bytes(2, "big")
        else:
            rec[1:5] = rng.randrange(2**32).to_bytes(4, "big")
        records[i] = bytes(rec)
    return b"".join(records)


def consume(path: Path) -> str:
    """Read, configure and bin ``path`` as ``dynoai replay`` does; '' or the clean error."""
    from core.pipeline import bin_log
    from core.source import SourceError
    from core.vehicle import VehicleConfig
    from dynoai_tui.commands.replay import config_for_log

    try:
        with LogReader(path) as reader:
            header = reader.header
            for _ in reader:
                pass
    except LogFileError as exc:
        return str(exc)
    try:
        cfg = config_for_log(header, VehicleConfig(), explicit=False)
    except ConfigError as exc:
        return str(exc)
    try:
        bin_log(path, cfg)
    except SourceError as exc:  # the replay's clean "bad file" error
        return str(exc)
    return ""


def fuzz(
    seed_file: Path, cases: int, seed: int = 0, on_crash: Callable[[int, str], None] | None = None
) -> int:
    """Run ``cases`` mutations of ``seed_file`` through :func:`consume`; returns crashes."""
    data = seed_file.read_bytes()
    rng = random.Random(seed)
    case = seed_file.with_name("fuzz-case.dynolog")
    crashes = 0
    for n in range(cases):
        mutated = mutate(data, rng)
        for _ in range(rng.randrange(3)):
            try:
                mutated = mutate(mutated, rng)
            except (AssertionError, msgpack.UnpackException, ValueError):
                break  # the first mutation broke the framing the next one walks
        case.write_bytes(mutated)
        try:
            consume(case)
        except Exception as exc:  # noqa: BLE001 - counting crashes is the point
            crashes += 1
            if on_crash is not None:
                on_crash(n, repr(exc))
    return crashes


def outlives_ignored_signal(proc: subprocess.Popen[str], path: Path, sig: int) -> str:
    """Send ``sig`` (ignored by the run's parent) once ``path`` is being recorded, check
    the run goes on, then end it with SIGTERM; returns its stdout (exit 0 checked)."""
    deadline = time.monotonic() + 30  # start-up imports are slow on a loaded machine
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(2.0)
    proc.send_signal(sig)
    time.sleep(2.0)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "SIGTERM" in out
    return out
