"""The .dynolog writer and tolerant reader: round trip, precision, damage, durability."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import msgpack
import numpy as np
import pytest

import core.record.writer
from core.frames import Block, concat
from core.record import (
    FORMAT_VERSION,
    LogFileError,
    LogHeader,
    LogReader,
    LogWriter,
    read_log,
)
from core.record.format import frame, frame_length, unframe
from core.source import SourceEvent

REPO = Path(__file__).resolve().parents[1]


def header() -> LogHeader:
    return LogHeader(
        created_at=1_700_000_000.25,
        t0=12.5,
        vehicle="sv650",
        sources={
            "sim": {"uri": "sim:vtwin", "channels": {"rpm": "rpm", "map_kpa": "kPa"}},
            "lc2": {"uri": "innovate:/dev/ttyUSB0", "channels": {"lambda": "λ"}},
        },
        axes={"rpm": [750.0, 1500.0, 3000.0], "map_kpa": [20.0, 60.0, 105.0]},
        metadata={"stoich": 14.7, "lambda_delay_ms": 80},
    )


def sim_block(start: int, n: int) -> Block:
    k = np.arange(start, start + n, dtype=np.float64)
    t = 12.5 + k * 0.01
    return Block("sim", t, {"rpm": 1000.0 + 7.0 * k, "map_kpa": np.round(30.0 + 0.1 * k, 1)})


def items_equal(a: Block | SourceEvent, b: Block | SourceEvent) -> bool:
    if isinstance(a, SourceEvent) or isinstance(b, SourceEvent):
        return a == b
    return (
        a.source == b.source
        and np.array_equal(a.t, b.t)
        and a.channels == b.channels
        and all(np.array_equal(a.columns[k], b.columns[k], equal_nan=True) for k in a.columns)
    )


def frame_at(data: bytes, pos: int) -> tuple[int, int]:
    found = frame_length(data, pos)
    assert found is not None
    return found


def small_log(path: Path) -> None:
    """A few records of every kind, each block flushed as its own record."""
    with LogWriter(path, header()) as writer:
        writer.write_block(sim_block(0, 3))
        writer.flush()
        writer.write_event(SourceEvent("lc2", "disconnect", 12.53, "no data for 1 s"))
        writer.write_block(
            Block("lc2", np.array([12.54, 12.56]), {"lambda": np.array([0.98, np.nan])})
        )
        writer.flush()
        writer.write_block(sim_block(3, 4))
        writer.write_event(SourceEvent("user", "marker", 12.6, "pull 1", {"gear": 4}))


def test_round_trip_several_sources_and_events(tmp_path: Path) -> None:
    path = tmp_path / "run.dynolog"
    expected_events = [
        SourceEvent("sim", "pull_start", 12.6, "WOT", {"gear": 3, "ramp_rpm_s": 600.0}),
        SourceEvent("lc2", "reconnect", 13.0, "", {"tries": [1, 2]}),
    ]
    with LogWriter(path, header()) as writer:
        for i in range(40):  # 30 ms ticks: 3 sim samples, 1 wideband sample
            writer.write_block(sim_block(3 * i, 3))
            lam = np.array([0.9 + i / 1000])
            writer.write_block(Block("lc2", np.array([12.5 + 0.03 * i]), {"lambda": lam}))
            if i == 10:
                writer.write_event(expected_events[0])
        writer.write_event(expected_events[1])
        assert writer.bytes_written > 0
    got_header, blocks, events, recovery = read_log(path)

    assert got_header == header()
    assert events == expected_events
    sim = concat([b for b in blocks if b.source == "sim"])
    assert np.array_equal(sim.t, sim_block(0, 120).t)
    assert np.array_equal(sim.columns["rpm"], sim_block(0, 120).columns["rpm"])
    lc2 = concat([b for b in blocks if b.source == "lc2"])
    assert np.array_equal(lc2.t, 12.5 + 0.03 * np.arange(40))
    assert np.array_equal(lc2.columns["lambda"], np.float32(0.9 + np.arange(40) / 1000))
    assert recovery.complete and not recovery.truncated and recovery.error == ""
    assert recovery.samples == 160 and recovery.events == 2
    assert recovery.message.endswith("file complete")


def test_event_splits_coalesced_blocks_in_file_order(tmp_path: Path) -> None:
    path = tmp_path / "order.dynolog"
    with LogWriter(path, header()) as writer:
        writer.write_block(sim_block(0, 3))
        writer.write_block(sim_block(3, 3))
        writer.write_event(SourceEvent("sim", "marker", 12.56))
        writer.write_block(sim_block(6, 3))
    with LogReader(path) as reader:
        kinds = [len(item) if isinstance(item, Block) else item.kind for item in reader]
    assert kinds == [6, "marker", 3]


def test_times_exact_and_float32_columns_exact_including_nan(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    t = np.cumsum(rng.exponential(0.01, 500)) + 1e5  # irregular, full float64 mantissa
    t[100] = t[99]  # repeated stamp
    special = np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45, 3.4e38], dtype=np.float32)
    col = rng.normal(0, 1e3, 500).astype(np.float32)
    col[:6] = special
    col[250] = np.float32(np.nan)
    not_f32 = np.linspace(0.1, 0.9, 500)  # float64 values float32 cannot hold
    path = tmp_path / "exact.dynolog"
    with LogWriter(path, header()) as writer:
        writer.write_block(Block("x", t, {"a": col.astype(np.float64), "b": not_f32}))
    _, blocks, _, _ = read_log(path)
    (block,) = blocks
    assert block.t.tobytes() == t.tobytes()
    assert block.columns["a"].tobytes() == col.astype(np.float64).tobytes()
    assert np.array_equal(block.columns["b"], not_f32.astype(np.float32).astype(np.float64))


def test_truncation_at_every_byte_recovers_a_prefix(tmp_path: Path) -> None:
    full = tmp_path / "full.dynolog"
    small_log(full)
    data = full.read_bytes()
    _, blocks, events, _ = read_log(full)
    boundaries, kinds, pos = [], [], 0
    while pos < len(data):
        head, size = frame_at(data, pos)
        kinds.append(unframe(data[pos + head : pos + head + size])["k"])
        pos += head + size
        boundaries.append(pos)
    original = list(LogReader(full))
    assert len(original) == len(blocks) + len(events) == sum(k in "be" for k in kinds)

    cut = tmp_path / "cut.dynolog"
    for offset in range(len(data)):
        cut.write_bytes(data[:offset])
        if offset < boundaries[0]:
            with pytest.raises(LogFileError, match="cut.dynolog"):
                LogReader(cut)
            continue
        with LogReader(cut) as reader:
            got = list(reader)
            rec = reader.recovery
        whole = [b for b in boundaries if b <= offset]
        assert rec.bytes_read == whole[-1]
        assert rec.truncated == (offset != whole[-1])
        assert rec.error == ""
        n_items = sum(k in "be" for k in kinds[: len(whole)])
        assert len(got) == n_items
        assert all(items_equal(a, b) for a, b in zip(got, original, strict=False))
        if rec.truncated:
            assert rec.message.endswith(f"{offset - whole[-1]} bytes of truncated tail ignored")


def test_any_flipped_byte_after_header_costs_only_the_damaged_record(tmp_path: Path) -> None:
    full = tmp_path / "full.dynolog"
    small_log(full)
    data = full.read_bytes()
    original = list(LogReader(full))
    records, pos = [], 0  # (start, end, kind, schema id of a schema record)
    while pos < len(data):
        head, size = frame_at(data, pos)
        body = unframe(data[pos + head : pos + head + size])
        records.append((pos, pos + head + size, body["k"], body.get("i"), body.get("s")))
        pos += head + size
    item_of = {}  # record index -> index in original of the item it yields
    for index, rec in enumerate(r for r in records if r[2] in "be"):
        item_of[records.index(rec)] = index
    bad = tmp_path / "bad.dynolog"
    for offset in range(records[0][1], len(data)):
        damaged = bytearray(data)
        damaged[offset] ^= 0x55
        bad.write_bytes(bytes(damaged))
        with LogReader(bad) as reader:
            got = list(reader)
            recovery = reader.recovery
        hit = next(i for i, r in enumerate(records) if r[0] <= offset < r[1])
        if records[hit][2] == "s":  # the blocks declared by a lost schema cannot be read
            source = records[hit][4]
            expected = [x for x in original if isinstance(x, SourceEvent) or x.source != source]
        else:
            expected = [x for i, x in enumerate(original) if i != item_of.get(hit)]
        assert len(got) == len(expected), offset
        assert all(items_equal(a, b) for a, b in zip(got, expected, strict=True)), offset
        assert not recovery.complete and recovery.error == ""
        if recovery.truncated and not recovery.skips:
            # a longer length in the last record reads as a tail cut short by a crash
            assert hit == len(records) - 1, offset
        else:
            assert recovery.first_skip.startswith(f"byte {records[hit][0]}: "), (offset, recovery)


def test_garbage_appended_keeps_everything_and_says_so(tmp_path: Path) -> None:
    path = tmp_path / "garbage.dynolog"
    small_log(path)
    size = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\x00not a record\xff" * 3)
    with LogReader(path) as reader:
        got = list(reader)
        rec = reader.recovery
        assert list(reader) == []  # never resumes past the end
    assert len(got) == 5
    assert rec.bytes_read == size and not rec.complete
    assert rec.skips == 1 and rec.skipped_bytes == rec.file_size - size
    assert rec.first_skip == f"byte {size}: byte 0x00 does not start a record"
    assert rec.message == (
        f"recovered 3 blocks (9 samples, 0.1 s) and 2 events; skipped {rec.skipped_bytes} "
        f"damaged bytes in 1 place (first at byte {size}: byte 0x00 does not start a record)"
    )


def test_garbage_in_the_middle_is_skipped_and_reading_goes_on(tmp_path: Path) -> None:
    first, second = tmp_path / "a.dynolog", tmp_path / "b.dynolog"
    small_log(first)
    small_log(second)
    data = first.read_bytes()
    head, size = frame_at(data, 0)
    tail = second.read_bytes()[head + size :]
    noise = np.random.default_rng(7).integers(0, 256, 5000, dtype=np.uint8).tobytes()
    spliced = tmp_path / "spliced.dynolog"
    spliced.write_bytes(data + noise + tail)
    with LogReader(spliced) as reader:
        got = list(reader)
        rec = reader.recovery
    original = list(LogReader(first))
    # the second copy redeclares the same schemas with the same ids: accepted
    assert len(got) == 2 * len(original)
    assert rec.skips == 1 and rec.skipped_bytes == len(noise)
    assert rec.bytes_read == len(data) + len(tail)


def test_absurd_record_length_rejected_without_allocating(tmp_path: Path) -> None:
    path = tmp_path / "huge.dynolog"
    with LogWriter(path, header()) as writer:
        writer.write_block(sim_block(0, 3))
    good = path.stat().st_size
    with path.open("ab") as f:
        f.write(b"\xc6\xff\xff\xff\xf0" + b"x" * 100)
    tracemalloc.start()
    try:
        with LogReader(path) as reader:
            got = list(reader)
            rec = reader.recovery
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(got) == 1
    assert peak < 4 << 20
    assert rec.bytes_read == good
    assert "4294967280 bytes" in rec.first_skip and "limit" in rec.first_skip


def test_block_whose_payload_does_not_match_its_count_is_corruption(tmp_path: Path) -> None:
    path = tmp_path / "lying.dynolog"
    with LogWriter(path, header()) as writer:
        writer.write_block(sim_block(0, 3))
    with path.open("ab") as f:
        f.write(frame({"k": "b", "i": 0, "n": 1000, "z": 0, "p": b"\x00" * 32}))
        f.write(frame({"k": "e", "s": "a", "y": "note", "t": 1.0, "x": "", "d": {}}))
    with LogReader(path) as reader:
        got = list(reader)
    assert len(got) == 2  # the event after the bad block is still read
    assert "expected 16000 for 1000 samples x 2 channels" in reader.recovery.first_skip


def test_bad_field_types_are_corruption_not_exceptions(tmp_path: Path) -> None:
    path = tmp_path / "types.dynolog"
    with LogWriter(path, header()):
        pass
    with path.open("ab") as f:
        f.write(frame({"k": "e", "s": "a", "y": ["not", "a", "str"], "t": 1.0, "x": "", "d": {}}))
    with LogReader(path) as reader:
        assert list(reader) == []
    assert "field 'y' is not str" in reader.recovery.first_skip


def test_small_chunks_and_large_blocks_split_into_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(core.record.writer, "MAX_RECORD_PAYLOAD_BYTES", 1000)
    path = tmp_path / "big.dynolog"
    with LogWriter(path, header()) as writer:
        writer.write_block(sim_block(0, 500))  # 16 bytes/sample -> 62 samples/record
    with LogReader(path, chunk_bytes=7) as reader:
        sizes = [len(b) for b in reader if isinstance(b, Block)]
    assert sizes == [62] * 8 + [4]
    with LogReader(path, max_record_bytes=500) as reader:
        assert [len(b) for b in reader if isinstance(b, Block)] == [
            4
        ]  # the only record under the limit
    assert reader.recovery.skips == 8 and "limit" in reader.recovery.first_skip


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty, not a .dynolog"),
        (b"time_s,rpm\n0.000,1000\n", "is not a .dynolog recording"),
        (frame({"k": "h", "magic": "MLG", "v": 1}), r"not a .dynolog recording \(wrong magic\)"),
        (frame({"k": "h", "magic": "DYNOLOG", "v": 9}), "format version 9; .* upgrade"),
        (frame({"k": "h", "magic": "DYNOLOG", "v": 1}), "damaged recording header"),
        (frame(header().to_record())[:20], "header is cut short"),
    ],
)
def test_files_that_are_not_recordings(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "other.dynolog"
    path.write_bytes(content)
    with pytest.raises(LogFileError, match=message) as err:
        LogReader(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(LogFileError, match="does not exist"):
        LogReader(tmp_path / "nope.dynolog")
    with pytest.raises(LogFileError, match="is a directory"):
        LogReader(tmp_path)


def test_writer_refuses_existing_file_and_missing_directory(tmp_path: Path) -> None:
    path = tmp_path / "a.dynolog"
    LogWriter(path, header()).close()
    with pytest.raises(LogFileError, match="already exists"):
        LogWriter(path, header())
    with LogWriter(path, header(), overwrite=True) as writer:
        writer.write_block(sim_block(0, 2))
    assert read_log(path)[3].samples == 2
    with pytest.raises(LogFileError, match="directory .*nowhere does not exist"):
        LogWriter(tmp_path / "nowhere" / "a.dynolog", header())
    with (
        pytest.raises(LogFileError, match="cannot be recorded"),
        LogWriter(tmp_path / "b.dynolog", header()) as writer,
    ):
        writer.write_event(SourceEvent("a", "note", 1.0, data={"obj": object()}))
    writer.close()  # idempotent
    with pytest.raises(LogFileError, match="already closed"):
        writer.write_block(sim_block(0, 1))


def test_flush_and_fsync_cadence_follow_the_clock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fsyncs: list[int] = []
    real_fsync = os.fsync

    def counting_fsync(fd: int) -> None:
        fsyncs.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", counting_fsync)
    now = [100.0]
    path = tmp_path / "cadence.dynolog"
    writer = LogWriter(path, header(), clock=lambda: now[0])
    header_size = path.stat().st_size
    assert len(fsyncs) == 1  # the header is made durable at once

    on_disk = []
    for step in range(1, 21):  # 20 ticks of 50 ms with a 3-sample block each
        now[0] = 100.0 + 0.05 * step
        writer.write_block(sim_block(3 * step, 3))
        writer.tick()
        on_disk.append(path.stat().st_size)
    assert on_disk[:4] == [header_size] * 4  # held for < 250 ms
    assert on_disk[4] > header_size  # flushed at 250 ms
    assert len(set(on_disk)) == 5  # one flush per 250 ms: 0.25, 0.5, 0.75, 1.0 s
    assert len(fsyncs) == 2  # one more fsync, at 1.0 s

    now[0] += 0.05
    writer.write_block(sim_block(63, 3))
    assert len(fsyncs) == 2 and path.stat().st_size == on_disk[-1]
    now[0] += 5.0
    writer.tick()  # a quiet source's last samples still reach the disk
    assert len(fsyncs) == 3 and path.stat().st_size > on_disk[-1]
    now[0] += 5.0
    writer.tick()  # idle and nothing new: no fsync
    assert len(fsyncs) == 3
    writer.close()
    writer.close()
    assert len(fsyncs) == 3
    assert read_log(path)[3].samples == 63


CHILD = """
import sys, time
import numpy as np
from core.frames import Block
from core.record import LogHeader, LogWriter

writer = LogWriter(sys.argv[1], LogHeader(created_at=time.time()))
print("ready", flush=True)
start = time.monotonic()
k = 0
next_print = start
while True:
    t = np.arange(k, k + 3) * 0.01
    writer.write_block(Block("sim", t, {"rpm": 1000.0 + t, "map_kpa": t}))
    writer.tick()
    k += 3
    now = time.monotonic()
    if now >= next_print:
        print(repr(float(t[-1])), flush=True)
        next_print += 0.1
    time.sleep(max(0.0, start + k * 0.01 - time.monotonic()))
"""


@pytest.mark.slow
def test_sigkill_loses_at_most_the_last_second(tmp_path: Path) -> None:
    path = tmp_path / "killed.dynolog"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path)], stdout=subprocess.PIPE, text=True, env=env
    )
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "ready"
    reports: list[tuple[float, float]] = []

    def collect() -> None:
        assert child.stdout is not None
        for line in child.stdout:
            reports.append((time.monotonic(), float(line)))

    reader_thread = threading.Thread(target=collect, daemon=True)
    reader_thread.start()
    time.sleep(2.0)
    killed_at = time.monotonic()
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=5)
    reader_thread.join(timeout=5)

    safe = [t for seen_at, t in reports if seen_at <= killed_at - 1.0]
    assert safe, "the child reported nothing in its first second"
    _, blocks, _, recovery = read_log(path)
    got = concat(blocks)
    assert np.array_equal(got.t, np.arange(len(got)) * 0.01)  # an unbroken prefix
    assert got.t[-1] >= max(safe), recovery.message
    assert recovery.error == ""


def test_record_bodies_are_plain_msgpack(tmp_path: Path) -> None:
    path = tmp_path / "plain.dynolog"
    small_log(path)
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=True)
    unpacker.feed(path.read_bytes())
    bodies = [msgpack.unpackb(content[4:], raw=False) for content in unpacker]
    assert bodies[0]["magic"] == "DYNOLOG" and bodies[0]["v"] == FORMAT_VERSION
    assert [b["k"] for b in bodies] == ["h", "s", "b", "e", "s", "b", "b", "e"]


def test_schema_records_repeat_so_a_damaged_one_costs_about_a_second(tmp_path: Path) -> None:
    """One flipped bit in a schema record: >= 95 % of a 60 s recording's samples kept.

    Before schema records repeated, the writer declared each schema once and a flip
    there lost every block of that source: 11 % kept when it hit the ECU's schema.
    """
    from tests.faultkit import live_recording, record_spans, schema_flip_trials

    path = tmp_path / "live.dynolog"
    live_recording(path, seconds=60.0)
    kept = schema_flip_trials(path, bits_per_record=2)
    assert len(kept) > 50
    assert min(kept) >= 0.95, f"worst {min(kept):.3f}"
    data = path.read_bytes()
    kinds = [unframe(data[a + frame_at(data, a)[0] : b])["k"] for a, b in record_spans(data)]
    blocks_between = [len(run) for run in "".join(kinds[1:]).replace("e", "").split("s")[1:]]
    assert max(blocks_between) <= 2 * core.record.writer.SCHEMA_REPEAT_BLOCKS  # two sources


def test_old_single_schema_recording_still_reads() -> None:
    """A file from the writer before schema records repeated (each schema declared once).

    tests/data/format-v1-single-schema.dynolog was written by that writer's code
    (core/record/writer.py at main 23851d8): ten flushes of a 3-sample ``sim`` block
    and a 1-sample ``lc2`` block, then a marker.
    """
    path = REPO / "tests" / "data" / "format-v1-single-schema.dynolog"
    with LogReader(path) as reader:
        items = list(reader)
        recovery = reader.recovery
    assert recovery.complete and recovery.records == 1 + 2 + 20 + 1
    blocks = [x for x in items if isinstance(x, Block)]
    sim = concat([b for b in blocks if b.source == "sim"])
    k = np.arange(30, dtype=np.float64)
    assert np.array_equal(sim.t, 12.5 + k * 0.01)
    assert np.array_equal(sim.columns["rpm"], 1000.0 + 7.0 * k)
    assert np.array_equal(
        sim.columns["map_kpa"], np.round(30.0 + 0.1 * k, 1).astype(np.float32).astype(np.float64)
    )
    lam = concat([b for b in blocks if b.source == "lc2"])
    assert np.array_equal(
        lam.columns["lambda"], (0.9 + 0.01 * np.arange(10)).astype(np.float32).astype(np.float64)
    )
    assert items[-1] == SourceEvent("user", "marker", 12.8, "pull 1", {"gear": 4})


@pytest.mark.parametrize("pace", ["instant", "machine"])
def test_a_recording_written_faster_than_real_time_analyses_as_a_live_one(
    tmp_path: Path, pace: str
) -> None:
    """Two widebands beside the simulator, written live (1x) and faster than real time.

    The writer used to coalesce blocks by wall time only: written at machine speed, one
    source's 200-s record came ahead of the others' and the replay's fusion gave up
    waiting for them, so the same data binned differently from run to run (CI saw 11
    front/rear imbalance cells where a quiet machine saw 50). Records now close after a
    flush interval of data time as well, so the file interleaves as a live one does.
    """
    from core.fleet.analyze import analyze_log
    from tests.fleet_sim import make_sim, record_sim

    def wbs(block: Block) -> tuple[np.ndarray, np.ndarray]:
        lam = block.columns["lambda"].astype(np.float64)
        return lam * 0.99, lam * 1.01

    record = {"widebands": {"front": "wbf", "rear": "wbr"}}
    runs = {}
    for p in ("live", pace):
        path = record_sim(
            tmp_path / f"{p}.dynolog", make_sim("steady", 8, duration_s=120.0),
            run_id="r", record=record, widebands=wbs, pace=p,
        )  # fmt: skip
        with LogReader(path) as reader:
            spans = [b.t[-1] - b.t[0] for b in reader if isinstance(b, Block)]
        assert max(spans) < 1.0, p  # 0.25 s of data plus the 0.5-s block that closed it
        runs[p] = analyze_log(path, vehicle="v", run_id="r")
    live, fast = runs["live"], runs[pace]
    assert live.session["rows_kept"] > 0.5 * live.session["rows"]
    assert fast.session["rows_kept"] == live.session["rows_kept"]
    assert np.array_equal(fast.cells["hits"], live.cells["hits"])
    imb = [sorted((p["rpm_lo"], p["map_lo_kpa"], p["samples"]) for p in r.patterns
                  if p["kind"] == "imbalance") for r in (live, fast)]  # fmt: skip
    assert imb[0] == imb[1] and len(imb[0]) >= 10


@pytest.mark.parametrize("cut", [12, 16, 20, 40])
def test_a_recording_cut_before_its_magic_is_still_read_as_a_recording(
    tmp_path: Path, cut: int
) -> None:
    # QA: `head -c 20 pulls.dynolog` replayed as "unknown log format (no MLG signature,
    # and no header row with a time column)"; at 64 bytes it said the header was cut short
    from core.record.replay import RecordedLog
    from core.source import SourceError

    path = tmp_path / "cut.dynolog"
    path.write_bytes(frame(header().to_record())[:cut])
    with pytest.raises(SourceError, match="header is cut short"):
        RecordedLog(path)
