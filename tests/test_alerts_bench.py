"""`python -m benchmarks.alerts` prints its table and cross-checks the vectorized tick against the loops."""

from __future__ import annotations

import pytest

from benchmarks import alerts as bench


def test_bench_prints_a_row_per_patient_count_and_agrees_with_the_scalar_loops() -> None:
    lines: list[str] = []
    status = bench.run([300, 600], repeat=2, scalar_patients=40, twin_patients=10, tune_malloc=False,
                       out=lines.append)  # fmt: skip
    assert status == 0, "\n".join(lines)
    rows = [line.split() for line in lines if line.split() and line.split()[0].isdigit()]
    assert [int(r[0]) for r in rows] == [300, 600]
    for r in rows:
        ratios = [float(token.rstrip("x")) for token in r if token.endswith("x")]
        assert float(r[1]) > 0 and r[2] == "ms"
        assert r[3:5] == ["not", "run"]  # malloc left alone in the test process
        assert len(ratios) == 2 and min(ratios) > 1  # vectorized wins even at a few hundred patients
    assert not any("MISMATCH" in line for line in lines)
    assert any("extrapolated linearly" in line for line in lines)


def test_bench_refuses_too_few_vitals_for_news2() -> None:
    with pytest.raises(ValueError, match="first five feed NEWS2"):
        bench.run([10], vitals=4, out=lambda _: None)
