"""TunerStudio ini parsing and realtime decoding, from inis written from the format's description.

Fixtures: drivers/ini/speeduino-{202207,202305,202501}.ini (shipped; each cites the
speeduino.ini it took offsets from), tests/data/tsini/rusefi.ini (offsets from rusEFI's
generated output_channels.ini) and tests/data/tsini/ms2extra.ini (MS2 offsets, big
endian, translate). None is a copy of a GPL ini.
"""

from __future__ import annotations

import math
import struct
from pathlib import Path

import pytest

from drivers.speeduino import INI_DIR, realtime_request
from drivers.tschannels import map_channels, needed_end
from drivers.tsexpr import ExprError, parse_expr
from drivers.tsini import IniError, load_ini, parse_ini
from drivers.tunerstudio import TunerStudioSource, frame
from tests.speeduino_blocks import EXPECTED, speeduino_block

DATA = Path(__file__).parent / "data" / "tsini"


def canonical(ini, block: bytes) -> dict[str, float]:
    src = TunerStudioSource.__new__(TunerStudioSource)
    src.stoich = 14.7
    src.mapping = map_channels(ini)
    return src._canonical(ini.decode(block))


@pytest.mark.parametrize("version", ["202207", "202305", "202501"])
def test_each_speeduino_release_decodes_from_its_own_ini(version):
    ini = load_ini(INI_DIR / f"speeduino-{version}.ini")
    assert ini.signature == f"speeduino {version}"
    assert ini.envelope and ini.endianness == "little"
    values = canonical(ini, speeduino_block(version))
    for name, want in EXPECTED.items():
        assert values[name] == pytest.approx(want), name
    if version == "202501":
        assert values["knock_count"] == 2.0 and values["knock_retard_deg"] == 3.0
    else:
        assert "knock_count" not in values


def test_a_202207_block_read_with_the_202501_ini_is_wrong():
    """Why the signature matters: the old fixed table read TPS as advance on 202207."""
    wrong = canonical(load_ini(INI_DIR / "speeduino-202501.ini"), speeduino_block("202207"))
    assert wrong["spark_deg"] == 90.0  # the raw TPS byte
    assert wrong["baro_kpa"] == 0.0


def test_negative_advance_is_signed():
    ini = load_ini(INI_DIR / "speeduino-202305.ini")
    assert canonical(ini, speeduino_block("202305", advance=-5))["spark_deg"] == -5.0


def test_speeduino_request_matches_the_protocols_vector():
    ini = load_ini(INI_DIR / "speeduino-202501.ini")
    assert frame(ini.och_request(0, 139)) == bytes.fromhex("000772003000008B009FCDE77A")
    assert realtime_request(0, 139) == bytes.fromhex("000772003000008B009FCDE77A")
    assert frame(ini.query_request()) == bytes.fromhex("000151CE6E8EEF")


def test_computed_channels_evaluated_or_named_as_not_read():
    ini = load_ini(INI_DIR / "speeduino-202207.ini")
    assert ini.computed_order == ["coolant", "iat"]
    assert ini.skipped == {"lambda": "computed by TunerStudio, needs stoich"}


def test_rusefi_fixture_decodes_scaled_signed_float_and_u32_bits():
    ini = load_ini(DATA / "rusefi.ini")
    assert ini.query_command == "S" and ini.envelope and ini.blocking_factor == 256
    assert ini.och_request(300, 172) == b"O" + struct.pack("<HH", 300, 172)
    block = bytearray(472)
    struct.pack_into("<I", block, 0, 1 << 6)  # isFanOn
    struct.pack_into("<H", block, 4, 6500)
    block[10] = 88
    struct.pack_into("<h", block, 12, 9150)  # 91.5 °C
    struct.pack_into("<h", block, 14, -512)  # -5.12 °C
    struct.pack_into("<h", block, 20, 8840)  # 88.4 %
    struct.pack_into("<H", block, 30, 3000)  # 100 kPa
    struct.pack_into("<H", block, 32, 3030)  # 101 kPa
    struct.pack_into("<H", block, 34, 8700)  # lambda 0.87
    block[36] = 25  # 2.5° knock retard
    struct.pack_into("<H", block, 38, 14100)
    struct.pack_into("<H", block, 48, 12800)
    block[57] = 180  # VE 90 %
    struct.pack_into("<h", block, 84, -250)  # -5.0°
    struct.pack_into("<f", block, 108, 1.25)
    struct.pack_into("<I", block, 112, 70000)
    struct.pack_into("<H", block, 282, 12789)
    struct.pack_into("<H", block, 306, 7)
    struct.pack_into("<I", block, 468, 1 << 7)  # dfcoActive
    raw = ini.decode(bytes(block))
    assert raw["isFanOn"] == 1.0 and raw["sd_present"] == 0.0
    assert raw["knockLevel"] == 1.25 and raw["seconds"] == 70000.0
    assert raw["wheelSlip"] == pytest.approx(6500 / 88)
    values = canonical(ini, bytes(block))
    assert values["rpm"] == 6500 and values["vehicle_speed_kph"] == 88
    assert values["clt_c"] == pytest.approx(91.5) and values["iat_c"] == pytest.approx(-5.12)
    assert values["tps_pct"] == pytest.approx(88.4) and values["map_kpa"] == pytest.approx(100.0)
    assert values["baro_kpa"] == pytest.approx(101.0)
    assert values["lambda"] == pytest.approx(0.87) and values["afr"] == pytest.approx(12.789)
    assert values["knock_retard_deg"] == pytest.approx(2.5) and values["knock_count"] == 7
    assert values["batt_v"] == pytest.approx(14.1) and values["afr_target"] == pytest.approx(12.8)
    assert values["ve_pct"] == 90.0 and values["spark_deg"] == pytest.approx(-5.0)
    assert values["dfco"] == 1.0
    assert ini.skipped["time"] == "computed by TunerStudio, needs timeNow"
    assert ini.skipped["fuelFlowPerRev"] == "computed by TunerStudio, needs fuelingLoad"
    mapped = {name for name, _ in map_channels(ini).values()}
    assert needed_end(ini, mapped) == 472  # dfcoActive's word ends the span


def ms2_block(coolant_f10: int = 1940, afr10: int = 147) -> bytes:
    block = bytearray(30)
    struct.pack_into(">H", block, 6, 4200)
    struct.pack_into(">h", block, 8, 255)  # 25.5°
    block[12] = 125
    struct.pack_into(">h", block, 16, 1005)
    struct.pack_into(">h", block, 18, 852)
    struct.pack_into(">h", block, 20, 770)  # 77.0 °F = 25 °C
    struct.pack_into(">h", block, 22, coolant_f10)  # 194.0 °F = 90 °C
    struct.pack_into(">h", block, 24, 455)
    struct.pack_into(">h", block, 26, 139)
    struct.pack_into(">h", block, 28, afr10)
    return bytes(block)


def test_ms2_big_endian_with_translate_in_celsius():
    ini = load_ini(DATA / "ms2extra.ini")
    assert ini.endianness == "big" and not ini.envelope
    assert ini.och_request(0, 30) == b"r\x00\x07\x00\x00\x00\x1e"
    values = canonical(ini, ms2_block())
    assert values["rpm"] == 4200 and values["spark_deg"] == pytest.approx(25.5)
    assert values["map_kpa"] == pytest.approx(85.2) and values["baro_kpa"] == pytest.approx(100.5)
    # (raw + translate) * scale = (1940 - 320) * 0.05555 = 89.99 °C; 770 -> 25.0 °C
    assert values["clt_c"] == pytest.approx(90.0, abs=0.02)
    assert values["iat_c"] == pytest.approx(25.0, abs=0.02)
    assert values["tps_pct"] == pytest.approx(45.5) and values["afr_target"] == pytest.approx(12.5)
    assert values["lambda"] == pytest.approx(1.0)


def test_unsetting_celsius_takes_the_fahrenheit_branch_and_converts_back():
    ini = load_ini(DATA / "ms2extra.ini", unset_symbols={"CELSIUS"})
    assert "CELSIUS" not in ini.symbols and ini.fields["coolant"].units == "°F"
    values = canonical(ini, ms2_block())
    assert values["clt_c"] == pytest.approx(90.0) and values["iat_c"] == pytest.approx(25.0)


def test_zero_afr_is_no_reading_not_lambda_zero():
    values = canonical(load_ini(DATA / "ms2extra.ini"), ms2_block(afr10=0))
    assert math.isnan(values["afr"]) and math.isnan(values["lambda"])


CONDITIONALS = """
#set FLAG_A
#unset FLAG_B
[SettingGroups]
   settingGroup = mcu, "Controller"
   settingOption = DEFAULT, "Mega"
   settingOption = mcu_stm32, "STM32"
   settingGroup = units, "Units"
   settingOption = units_metric, "Metric"
   settingOption = units_imperial, "Imperial"
   settingGroup = FLAG_B, "a flag"
[OutputChannels]
#if mcu_stm32
   a = scalar, U08, 0, "", 1, 0
#elif units_metric
   #if FLAG_A
   a = scalar, U08, 1, "", 1, 0
   #else
   a = scalar, U08, 2, "", 1, 0
   #endif
#else
   a = scalar, U08, 3, "", 1, 0
#endif
#if FLAG_B
   b = scalar, U08, 0, "", 1, 0
#else
   b = scalar, U08, 4, "", 2, 10
#endif
"""


def test_conditionals_with_setting_group_defaults():
    ini = parse_ini(CONDITIONALS)
    assert ini.fields["a"].offset == 1  # no stm32 (DEFAULT), units_metric is the first option
    assert ini.fields["b"].offset == 4
    assert ini.decode(bytes([0, 0, 0, 0, 5]))["b"] == (5 + 10) * 2  # (raw + translate) * scale
    assert {"FLAG_A", "units_metric", "CELSIUS"} <= ini.symbols and "mcu_stm32" not in ini.symbols


def test_caller_symbols_override_the_file():
    assert parse_ini(CONDITIONALS, set_symbols={"mcu_stm32"}).fields["a"].offset == 0
    assert parse_ini(CONDITIONALS, unset_symbols={"FLAG_A"}).fields["a"].offset == 2
    assert parse_ini(CONDITIONALS, set_symbols={"FLAG_B"}).fields["b"].offset == 0


def test_scale_from_the_tune_is_skipped_and_said():
    ini = parse_ini(
        "[OutputChannels]\n fuelLoad = scalar, S16, 85, { bitStringValue(u, a) }, fuelLoadFeedBack, 0\n"
        ' ok = scalar, U08, 0, "%", { 1 / 2 }, 0\n'
    )
    assert "fuelLoad" not in ini.fields and "scale depends on the tune" in ini.skipped["fuelLoad"]
    assert ini.fields["ok"].scale == 0.5


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        ("[OutputChannels]\nrpm = scalar, U12, 14\n", 2, "unknown type 'U12'"),
        ("[OutputChannels]\nrpm = scalar, U16\n", 2, "needs TYPE and OFFSET"),
        (
            '[OutputChannels]\nrpm = scalar, U16, fourteen, "rpm", 1, 0\n',
            2,
            "offset must be a whole number",
        ),
        ("[OutputChannels]\nx = bits, U08, 1, [3:9]\n", 2, "bit range [3:9] does not fit U08"),
        ("[OutputChannels]\nx = bits, U08, 1\n", 2, "bits needs a [lo:hi] range"),
        ("[OutputChannels]\nx = { a + }\n", 2, "expression ends too early"),
        ("[OutputChannels]\nx = { a + b\n", 2, "no closing '}'"),
        ("[OutputChannels]\nthis is not a setting\n", 2, "expected 'name = value'"),
        ("[OutputChannels\n", 1, "no closing ']'"),
        ("[OutputChannels]\n#endif\n", 2, "#endif without #if"),
        ('[OutputChannels]\n#if A\nx = scalar, U08, 0, "", 1, 0\n', 2, "#if without #endif"),
        ("[OutputChannels]\nochBlockSize = ten\n", 2, "ochBlockSize must be a whole number"),
        ('[OutputChannels]\nochGetCommand = "r\\$pageNo%2o"\n', 2, "unknown variable"),
        ("[Constants]\nendianness = middle\n", 2, "endianness must be little or big"),
        ('[OutputChannels]\n#include "more.ini"\n', 2, "#include is not supported"),
    ],
)
def test_bad_ini_is_one_line_naming_file_and_line(text, line, message):
    with pytest.raises(IniError) as info:
        parse_ini(text, "bad.ini")
    assert str(info.value).startswith(f"bad.ini:{line}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_a_field_past_the_block_is_not_decoded_and_said():
    ini = parse_ini('[OutputChannels]\nochBlockSize = 10\nrpm = scalar, U16, 9, "", 1, 0\n')
    assert "rpm" not in ini.fields
    assert ini.skipped["rpm"] == "U16 at offset 9 ends past ochBlockSize 10 (line 3)"


def test_unreadable_ini_names_the_file(tmp_path):
    with pytest.raises(IniError, match=r"nope\.ini: cannot read the ini"):
        load_ini(tmp_path / "nope.ini")


def test_latin1_ini_reads(tmp_path):
    path = tmp_path / "latin1.ini"
    path.write_bytes('[OutputChannels]\n t = scalar, U08, 0, "°C", 1, -40\n'.encode("latin-1"))
    ini = load_ini(path)
    assert ini.fields["t"].units == "°C" and ini.decode(b"\x41")["t"] == 25.0


@pytest.mark.parametrize(
    ("text", "env", "want"),
    [
        ("coolantRaw - 40", {"coolantRaw": 130}, 90.0),
        ("(coolantRaw - 40) * 1.8 + 32", {"coolantRaw": 130}, 194.0),
        ("rpm ? ( 60000.0 / rpm) : 0", {"rpm": 0}, 0.0),
        ("rpm ? ( 60000.0 / rpm) : 0", {"rpm": 6000}, 10.0),
        ("halfSync + (sync << 1)", {"halfSync": 1, "sync": 1}, 3.0),
        (
            "map < baro ? -map_inhg : map_psi",
            {"map": 50, "baro": 100, "map_inhg": 2, "map_psi": 9},
            -2.0,
        ),
        ("a || b && c", {"a": 0, "b": 1, "c": 0}, 0.0),
        ("1 + 2 * 3 - 4 / 2", {}, 5.0),
        ("!a == 0", {"a": 0}, 0.0),
        ("sd_status & 16", {"sd_status": 0x13}, 16.0),
        ("0x10 | 1", {}, 17.0),
        ("x / 0", {"x": 1}, math.nan),
    ],
)
def test_expressions(text, env, want):
    got = parse_expr(text).evaluate(env)
    assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want)


def test_expression_names_and_functions():
    expr = parse_expr("arrayValue( array.boardFuelOutputs, pinLayout ) + x")
    assert expr.functions == {"arrayValue"} and expr.names == {
        "array.boardFuelOutputs",
        "pinLayout",
        "x",
    }
    with pytest.raises(ExprError):
        parse_expr("a $ b")
