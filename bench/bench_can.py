"""CAN throughput: a saturated 1 Mbit/s bus (8,000 frames/s) through the ``can:`` source.

Sender and receiver are two threads on one python-can ``virtual`` bus (a virtual
bus only exists inside one process). The sender replays the seven messages of
tests/data/can_demo_ecu.dbc (one of them, FUELSYS, has no canonical channel and
is skipped after the ID lookup, as unmapped traffic on a real bus is) with changing values, paced to 8 kHz by the clock
(it catches up in bursts every millisecond). The receiver is the real driver:
``CanSource.read`` in a loop, DBC decoding, one Block per call.

CPU: ``time.thread_time()`` inside the receiving thread counts only that
thread's CPU, so the sender's cost (python-can's deepcopy per frame) is not
charged to the driver. The receive queue is bounded like a real controller's
buffer (``rx_queue_size``, 2,048 frames = 256 ms); a frame that finds it full is
dropped and counted as lost, so "zero lost" means the driver kept up.

    python bench/bench_can.py [--seconds 30] [--rate 8000]
"""

from __future__ import annotations

import argparse
import struct
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import can  # noqa: E402

from drivers.registry import create_source  # noqa: E402

DBC = ROOT / "tests" / "data" / "can_demo_ecu.dbc"
QUEUE_FRAMES = 2048


def make_frames(n_cycles: int = 32) -> list[can.Message]:
    """Realistic frames for every message in the demo DBC, values changing per cycle."""
    frames = []
    for i in range(n_cycles):
        rpm = 1000 + i * 180
        frames += [
            can.Message(
                arbitration_id=0x360,
                is_extended_id=False,
                data=struct.pack(">HHHH", rpm, 300 + i * 20, i * 30, 3000 + i * 50),
            ),
            can.Message(
                arbitration_id=0x361,
                is_extended_id=False,
                data=struct.pack("<HHHH", 1000 + i, 1470, 4500, 0),
            ),
            can.Message(
                arbitration_id=0x362,
                is_extended_id=False,
                data=struct.pack(">hhHH", 770 + i, 880, 1000 + i * 5, 0),
            ),
            can.Message(
                arbitration_id=0x368,
                is_extended_id=False,
                data=struct.pack(">HHHH", 1250 + i * 5, 1250, 0, 0),
            ),
            can.Message(
                arbitration_id=0x369,
                is_extended_id=False,
                data=struct.pack("<hHBBH", 250 + i, i % 3, i % 20, 0, 0),
            ),
            can.Message(
                arbitration_id=0x370,
                is_extended_id=False,
                data=struct.pack("<HHBBH", 600 + i, 13800, 1 + i % 5, 0, 0),
            ),
            can.Message(
                arbitration_id=0x18FF5234,
                is_extended_id=True,
                data=struct.pack("<HHHH", 3000 + i, 1200, 0, 0),
            ),
        ]
    return frames


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rate", type=float, default=8000.0, help="frames per second")
    args = parser.parse_args()

    channel = "bench_can"
    source = create_source(f"can:virtual/{channel}?dbc={DBC}&rx_queue_size={QUEUE_FRAMES}", "bench")
    source.open()
    tx = can.Bus(interface="virtual", channel=channel)
    frames = make_frames()
    stop_rx = threading.Event()
    result: dict[str, float] = {
        "rows": 0,
        "blocks": 0,
        "cpu_s": 0.0,
        "wall_s": 0.0,
        "max_lag_s": 0.0,
    }
    sent = dropped = 0

    def receive() -> None:
        cpu0, wall0 = time.thread_time(), time.monotonic()
        rows = blocks = 0
        max_lag = 0.0
        while True:
            block = source.read(0.1)
            if block is None:
                if stop_rx.is_set():
                    break
                continue
            rows += len(block)
            blocks += 1
            max_lag = max(max_lag, time.monotonic() - float(block.t[0]))
        result.update(
            rows=rows,
            blocks=blocks,
            cpu_s=time.thread_time() - cpu0,
            wall_s=time.monotonic() - wall0,
            max_lag_s=max_lag,
        )

    rx_thread = threading.Thread(target=receive, name="can-receiver")
    rx_thread.start()
    start = time.monotonic()
    end = start + args.seconds
    i = 0
    while True:
        now = time.monotonic()
        if now >= end:
            break
        due = int((now - start) * args.rate)
        while sent + dropped < due:
            try:
                tx.send(frames[i % len(frames)], timeout=0)
                sent += 1
            except can.CanOperationError:
                dropped += 1  # receive buffer full: the driver fell behind
            i += 1
        time.sleep(0.001)
    send_wall = time.monotonic() - start
    time.sleep(0.3)  # let the receiver drain what is queued
    stop_rx.set()
    rx_thread.join()
    tx.shutdown()
    source.close()

    offered = sent + dropped
    received = source.frames_received  # type: ignore[attr-defined]
    decoded = int(result["rows"])
    ignored = source.frames_ignored  # type: ignore[attr-defined]
    lost = offered - received + (received - decoded - ignored)
    rate = received / send_wall
    cpu_pct = 100.0 * result["cpu_s"] / result["wall_s"]
    print(
        f"frames offered {offered}, sent {sent}, received {received} (decoded {decoded}, "
        f"not in the DBC map {ignored}), lost {lost} ({dropped} on a full buffer) "
        f"in {send_wall:.1f} s; "
        f"{int(result['blocks'])} blocks, max lag {result['max_lag_s'] * 1000:.0f} ms"
    )
    ok_rate = rate >= 0.99 * args.rate and args.rate >= 8000
    print(f"CAN rate:  {rate:,.0f} frames/s (target >= 8,000/s) {'OK' if ok_rate else 'MISS'}")
    print(f"CAN lost:  {lost} frames (target 0) {'OK' if lost == 0 else 'MISS'}")
    print(
        f"CAN CPU:   {cpu_pct:.1f} % of one core, receiving thread "
        f"(target <= 50 %) {'OK' if cpu_pct <= 50 else 'MISS'}"
    )
    return 0 if ok_rate and lost == 0 and cpu_pct <= 50 else 1


if __name__ == "__main__":
    raise SystemExit(main())
