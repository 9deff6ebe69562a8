"""The real-log manifest: committed real logs checked on every run, and the checker itself.

``tests/data/real_manifest.toml`` lists real logs written by other tools (most of
them not redistributable, so not in the repository) with the import result read
by hand from each file's text; ``bench/check_real_logs.py DIR`` checks copies
fetched by the user. Here the committed ones (MIT: Torque Pro, TunerStudio MLG)
go through the same checks, and the checker is shown to fail on a wrong
expectation, on other bytes under a listed name, and to skip what is absent.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bench import check_real_logs as crl

ENTRIES = crl.load_manifest()


@pytest.mark.parametrize(
    "entry", [e for e in ENTRIES if e.get("committed")], ids=lambda e: e["file"]
)
def test_committed_real_log_matches_manifest(entry: dict[str, object]) -> None:
    copies = list(crl.find(entry, None))
    assert copies, f"{entry['committed']} is missing"
    outcome = crl.check(entry, copies[0])
    assert outcome.ok, crl.report(outcome)


def test_every_entry_says_where_it_comes_from() -> None:
    assert len({e["tool_family"] for e in ENTRIES}) >= 8
    for e in ENTRIES:
        assert re.fullmatch(r"[\w.-]+/[\w.-]+", e["repo"]), e["repo"]
        assert re.fullmatch(r"[0-9a-f]{40}", e["commit"]), e["file"]
        assert e["licence"] and e["path"] and e["format"]
        assert re.fullmatch(r"[0-9a-f]{64}", e.get("sha256_text") or e.get("sha256_bytes", ""))
        assert e["rows"] > 0 and e["duration_s"] > 0 and e["rate_hz"] > 0
        # only files under a licence that allows it are in the repository
        assert not e.get("committed") or e["licence"] == "MIT", e["file"]


def test_checker_fails_on_a_wrong_expectation() -> None:
    entry = dict(next(e for e in ENTRIES if e["file"] == "torque_pro_trackLog.csv"))
    path = next(crl.find(entry, None))
    assert crl.check(entry, path).ok
    for key, wrong in (
        ("rows", 31),
        ("duration_s", 6955.3),
        ("values", {"rpm[0]": 778.0}),
        ("channels", {"rpm": "Engine Speed"}),
        ("lacks", ["no throttle"]),
    ):
        bad = dict(entry, **{key: wrong})
        assert not crl.check(bad, path).ok, key


def test_checker_cuts_excerpts_flags_other_bytes_and_skips_absent(tmp_path: Path) -> None:
    # A file under an excerpt entry's name is cut to the entry's lines; these are
    # not the bytes that were checked, so the sha256 line fails.
    entry = next(e for e in ENTRIES if e["tool_family"] == "HP Tuners VCM Scanner")
    fake = tmp_path / "sub" / entry["file"]
    fake.parent.mkdir()
    fake.write_text("Time (s),RPM (rpm)\n" + "".join(f"{i / 10},{1000 + i}\n" for i in range(99)))
    failures, passing, text = crl.run(tmp_path, only="HP Tuners")
    assert failures == 1 and passing == 0
    assert re.search(r"BAD sha256", text)
    assert re.search(r"ok  rows +expected 45 +measured 45|BAD rows", text)
    # everything else is absent from tmp_path and is skipped, saying so
    _, _, text = crl.run(tmp_path, only="EvoScan")
    assert text.startswith("SKIP  EvoScan CSV")
    assert "got-gutch/got-gutch-evolution" in text
