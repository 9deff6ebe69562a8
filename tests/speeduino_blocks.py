"""Realtime blocks laid out as each Speeduino release's speeduino.ini [OutputChannels] says.

Offsets (read from the inis, see drivers/ini/speeduino-*.ini for where):
202207: TPSdot U08 22, advance S08 23, tps U08 24 (x0.5), baro 40, pulseWidth U16 75,
veCurr 100, vss U16 102, gear 104. 202305 on: TPSdot S16 22-23 pushes advance to 24,
tps 25, baro 41, pulseWidth 76, veCurr 102, vss 104, gear 106; 202501 adds
knockEventCount 128 and knockCor 129. Common to all: status1 bit 4 DFCO, MAP U16 4,
IAT/CLT U08 6/7 (°C + 40), battery 9 (x0.1), AFR 10 (x0.1), RPM U16 14, AFR target 21.
"""

from __future__ import annotations

import struct

LAYOUTS = {
    "202207": {"advance": 23, "tps": 24, "baro": 40, "pw": 75, "ve": 100, "vss": 102, "gear": 104},
    "202305": {"advance": 24, "tps": 25, "baro": 41, "pw": 76, "ve": 102, "vss": 104, "gear": 106},
    "202501": {"advance": 24, "tps": 25, "baro": 41, "pw": 76, "ve": 102, "vss": 104, "gear": 106},
}
SIZES = {"202207": 123, "202305": 127, "202501": 130}

EXPECTED = {
    "map_kpa": 95.0, "iat_c": 25.0, "clt_c": 90.0, "batt_v": 13.8, "afr": 14.7,
    "lambda": 1.0, "rpm": 3500.0, "afr_target": 13.0, "spark_deg": 28.0, "tps_pct": 45.0,
    "baro_kpa": 101.0, "pw_ms": 4.5, "ve_pct": 87.0, "vehicle_speed_kph": 123.0,
    "gear": 4.0, "dfco": 1.0,
}  # fmt: skip
"""What every block below decodes to (plus knock 2 events / 3° on 202501)."""


def speeduino_block(version: str, advance: int = 28) -> bytes:
    lay = LAYOUTS[version]
    block = bytearray(SIZES[version])
    block[0] = 12  # secl
    block[1] = 0x10  # status1: DFCO on
    struct.pack_into("<H", block, 4, 95)
    block[6] = 25 + 40
    block[7] = 90 + 40
    block[9] = 138
    block[10] = 147
    struct.pack_into("<H", block, 14, 3500)
    block[21] = 130
    struct.pack_into("<b", block, lay["advance"], advance)
    block[lay["tps"]] = 90
    block[lay["baro"]] = 101
    struct.pack_into("<H", block, lay["pw"], 4500)
    block[lay["ve"]] = 87
    struct.pack_into("<H", block, lay["vss"], 123)
    block[lay["gear"]] = 4
    if version == "202501":
        block[127] = 0x08  # knockActive
        block[128] = 2
        block[129] = 3
    return bytes(block)
