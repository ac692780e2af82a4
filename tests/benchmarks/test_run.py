"""The benchmark's speed-up rows, from measures made up for the test, and its job errors."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from benchmarks import scenario
from benchmarks.run import _fastest_wall, _speed_up_rows, parse_args
from benchmarks.scenario import BenchmarkError, Measure, Scenario

LATENCY = 0.03


def measure(concurrency: int, seconds: float, run_seconds: float) -> Measure:
    return Measure(job="mcm", run="first", accounts=45, concurrency=concurrency,
                   seconds=seconds, run_seconds=run_seconds, exit_status=0, actions={},
                   platform={"mcm": {"read": 2, "write": 40}},
                   aws={"emr": {"read": 2, "write": 10}}, listing_calls=4, resource_reads=0,
                   writes=50, repeated_aws_reads=0, lower_bound_seconds=0.81, peak_rss_mib=90,
                   schedule_row_writes=0, vault_calls=111, aws_operations={})


def test_fastest_wall_overlaps_every_call() -> None:
    # 165 calls, 8 at a time: 21 round trips of 30 ms, plus 0.37 s outside the run.
    assert round(_fastest_wall(measure(8, 1.37, 1.00), LATENCY), 2) == 1.0


def test_speed_up_row_gives_ceiling() -> None:
    rows = _speed_up_rows([measure(8, 1.37, 1.00), measure(1, 5.80, 5.46)], LATENCY)

    assert rows[0] == ("| mcm, 45 accounts, first run: at least 6x faster than with "
                       "concurrency 1 | 4.2x wall, 5.5x run (at most 5.8x) | no |")


def test_speed_up_rows_need_both_runs() -> None:
    assert _speed_up_rows([measure(8, 1.37, 1.00)], LATENCY) == []


def test_job_without_report_is_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The job exits 2 before printing its report, as it does on a configuration error.
    calls = SimpleNamespace(reset_calls=lambda: None)
    servers = SimpleNamespace(platform=calls, aws=calls)
    run = Scenario(servers, calls, "", tmp_path, tmp_path / "inventory.json", 45, 8, {})
    monkeypatch.setattr(scenario, "job_environment", lambda *args: {})
    monkeypatch.setattr(scenario.subprocess, "run",
                        lambda command, **kwargs: subprocess.CompletedProcess(command, 2))

    with pytest.raises(BenchmarkError) as raised:
        scenario.run_job(run, "mcm", "first")

    assert str(raised.value) == ("python -m rpa.mcm (first run, 45 accounts) exited 2 "
                                 "without a report; its error is printed above")


@pytest.mark.parametrize(("markdown", "message"), [
    ("taken/out.md", "argument --markdown: {tmp}/taken is a file, not a folder"),
    (".", "argument --markdown: {tmp} is a folder, not a file"),
])
def test_markdown_path_checked_first(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     markdown: str, message: str) -> None:
    (tmp_path / "taken").write_text("", encoding="utf-8")

    with pytest.raises(SystemExit) as exited:
        parse_args(["--markdown", str(tmp_path / markdown)])

    assert exited.value.code == 2
    assert capsys.readouterr().err.splitlines()[-1].endswith(message.format(tmp=tmp_path))
