"""The decode benchmark runs and its baseline reads the same payloads: figures are printed by
`python -m benchmarks.device_profiles`, never asserted here (they depend on the machine)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from benchmarks.device_profiles import NAIVE_LAYOUTS, corpus, main, naive_decode
from device_profiles import parse
from device_profiles.registry import DECODERS


def test_corpus_covers_every_decoder() -> None:
    assert set(corpus()) == set(DECODERS)


@pytest.mark.parametrize("uuid", sorted(NAIVE_LAYOUTS))
def test_naive_baseline_reads_what_parse_reads(uuid: str) -> None:
    # A fair race: the baseline accepts the same payloads and walks the same fields.
    for payload in corpus()[uuid]:
        parse(uuid, payload)
        naive = naive_decode(uuid, payload)
        assert naive["flags"] == int.from_bytes(payload[: NAIVE_LAYOUTS[uuid][0]], "little")
        with pytest.raises(ValueError, match="trailing"):
            naive_decode(uuid, payload + b"\x00")


def test_naive_baseline_values() -> None:
    payload = corpus()["2A35"][0]  # 120/80/93 mmHg, time stamp, pulse 60, user 1, status
    decoded = parse("2A35", payload)
    naive = naive_decode("2A35", payload)
    assert [naive["f0"], naive["f1"], naive["f2"], naive["f4"]] == [120.0, 80.0, 93.0, 60.0]
    assert naive["f3"] == decoded.timestamp


def test_main_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--iterations", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["characteristic", "bytes", "parse()/s", "naive/s", "ratio"]
    rows = [line for line in lines[1:] if "(0x" in line or "BerryMed" in line]
    assert len(rows) == len(DECODERS)
    assert sum(line.rstrip().endswith("x") for line in rows) == len(NAIVE_LAYOUTS)
    assert lines[-1].startswith(f"geometric mean ratio over {len(NAIVE_LAYOUTS)} characteristics:")


def test_runs_as_a_module() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.device_profiles", "--iterations", "1"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "Glucose Measurement (0x2A18)" in result.stdout
