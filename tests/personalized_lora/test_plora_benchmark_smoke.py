"""The overhead benchmark runs end to end on a tiny model (figures are not checked)."""

import json

import pytest

from tests.benchmark_scripts import load_benchmark

TINY = ["--tiny", "--batch", "2", "--tokens", "8", "--warmup", "0", "--memory-steps", "1"]


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("personalized_lora_overhead")


def test_timing_run_ends_with_one_json_line(bench, capsys):
    bench.main([*TINY, "--repeats", "2", "--skip-memory"])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["time_ratio"] > 0 and record["output_time_ratio"] > 0
    assert record["batch"] == 2 and record["tokens"] == 8
    assert set(record["step_s_median"]) == {"vanilla", "parameter", "output"}


def test_memory_worker_reports_a_peak(bench, capsys):
    bench.main([*TINY, "--memory-worker", "parameter"])
    result = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert result["peak_mib"] >= result["rss_before_mib"] > 0
    assert result["delta_mib"] == pytest.approx(result["peak_mib"] - result["rss_before_mib"])


def test_vanilla_arm_is_required(bench):
    with pytest.raises(SystemExit):
        bench.parse_args(["--arms", "parameter"])
