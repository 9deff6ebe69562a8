"""The .dynolog recording format (msgpack stream): writer and tolerant reader.

A recording must survive what happens on a dyno: the laptop is unplugged, the
process is killed, the disk fills. So the writer flushes at least every 250 ms and
fsyncs at least every second, and the reader streams with bounded memory, checks
every record and stops cleanly at the first bad or missing byte, saying how much it
recovered (:class:`Recovery`). Never pickle: every field is plain msgpack
(``raw=False``, ``strict_map_key``) and validated on the way in.

Records, in file order (byte layout and encoding choices in :mod:`core.record.format`):

* ``h`` header (record 0): magic, format version, created-at, vehicle, sources with
  channels and units, axes, metadata -> :class:`LogHeader`.
* ``s`` schema: id, source name, channel names, so a block does not repeat a dozen
  channel names. Written when a (source, channel set) first appears and again, the
  same bytes, after every 4 block records of it (``SCHEMA_REPEAT_BLOCKS``, about
  once a second): a damaged schema record then costs the blocks up to its next copy,
  not the rest of the source's recording. A block whose schema has not been read
  (yet) is skipped as damage. Files of the first writer declare each schema once and
  read the same.
* ``b`` block: schema id, sample count ``n``, one payload of float64 times (first
  value + int64 deltas of the bit patterns) and float32 columns (uint32 deltas),
  raw-deflated at level 1 when that is smaller -> :class:`core.frames.Block`.
* ``e`` event -> :class:`core.source.SourceEvent` (source, kind, t, text, data).

Precision contract: times round-trip bit-exactly as float64. Columns are stored as
float32 (the engine rounds every column to float32 at ingest, so nothing binned is
lost); a float32-representable value, NaN included, round-trips exactly.

Coalescing: a 30 ms engine tick at 100 Hz hands over 3 samples, and per-record
overhead would dominate such a block (it would cost more than CSV). The writer
keeps blocks in memory until its next flush (at most ``flush_interval_s``: the data
an unflushed file buffer would hold anyway) and writes each source's consecutive
blocks with the same channels as one record. Pending blocks also go out once they
span ``flush_interval_s`` of *data* time, so a recording written faster than real time
(a simulation, a fast replay re-recorded) interleaves its sources as a live one does:
a replay fuses records in file order, and one source's 200-s record ahead of the
others' would make the fusion give up on them. The reader therefore returns at most
one block per source and channel set per flush interval; sample values and times
are unchanged, block boundaries are not kept. An event forces pending blocks out
first, so events keep their place relative to the blocks written before them.

The implementation is split to keep files short: :mod:`core.record.format` (header,
errors, byte codec), :mod:`core.record.writer`, :mod:`core.record.reader`. Import from here.
"""

from __future__ import annotations

from core.record.format import (
    FORMAT_VERSION,
    MAGIC,
    LogFileError,
    LogHeader,
    Recovery,
)
from core.record.reader import LogReader, read_log
from core.record.writer import LogWriter

__all__ = [
    "FORMAT_VERSION",
    "MAGIC",
    "LogFileError",
    "LogHeader",
    "LogReader",
    "LogWriter",
    "Recovery",
    "read_log",
]
