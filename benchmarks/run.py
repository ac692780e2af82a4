"""Measure the modeler and mcm jobs: time, calls, memory and the bound that latency allows.

    python -m benchmarks.run [--accounts 45 1000] [--latency-ms 30] [--markdown PATH]

For each pool size it runs the scenario of `benchmarks.scenario` with RPA_CONCURRENCY 8 and,
for pools of at most `--sequential-max` accounts, with 1, so the speed-up is measured in the
same run. Those small pools run `--repeat` times and each row keeps the run of median wall
time, because a run of a few seconds varies by a tenth of a second from one try to the next.
It prints one Markdown table per pool size and the targets, and writes the same to
`--markdown`. docs/benchmarks.md records the figures of a run and explains each column.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import math
import os
import platform
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from benchmarks.scenario import BenchmarkError, Measure, run_scenario

DEFAULT_MARKDOWN = Path("benchmarks/results.md")
# Targets of docs/benchmarks.md.
MAX_NO_CHANGE_SECONDS = 60.0
MAX_BOUND_RATIO = 2.0
MIN_SPEED_UP = 6.0
MAX_PEAK_MIB = 300.0
SPEED_UP_ACCOUNTS = 45
BOUND_ACCOUNTS = 1000


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--accounts", type=at_least(1), nargs="+", default=[45, 1000],
                        help="pool sizes to generate (default: 45 1000)")
    parser.add_argument("--latency-ms", type=float, default=30.0,
                        help="latency of every platform, AWS and Vault request, in ms "
                             "(default: 30)")
    parser.add_argument("--concurrency", type=at_least(1), default=8,
                        help="RPA_CONCURRENCY of the concurrent runs (default: 8)")
    parser.add_argument("--sequential-max", type=at_least(0), default=SPEED_UP_ACCOUNTS,
                        help="also run with concurrency 1 for pools up to this size "
                             f"(default: {SPEED_UP_ACCOUNTS})")
    parser.add_argument("--repeat", type=at_least(1), default=3,
                        help="runs of each pool of at most --sequential-max accounts; each "
                             "row keeps the median (default: 3)")
    parser.add_argument("--markdown", type=Path, default=DEFAULT_MARKDOWN,
                        help=f"file to write the tables to (default: {DEFAULT_MARKDOWN})")
    args = parser.parse_args(argv)
    if not 0 <= args.latency_ms < math.inf:
        parser.error(f"argument --latency-ms: must be 0 or more, got {args.latency_ms:g}")
    # Checked before the runs, which take minutes, rather than when the tables are written.
    folder = args.markdown.parent
    if folder.exists() and not folder.is_dir():
        parser.error(f"argument --markdown: {folder} is a file, not a folder")
    try:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        parser.error(f"argument --markdown: cannot create the folder of {args.markdown}: "
                     f"{err.strerror}")
    if args.markdown.is_dir():
        parser.error(f"argument --markdown: {args.markdown} is a folder, not a file")
    return args


def at_least(lowest: int) -> Callable[[str], int]:
    """Return an argparse type for whole numbers of at least `lowest`."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < lowest:
            raise argparse.ArgumentTypeError(f"must be {lowest} or more, got {value}")
        return value

    return parse


def collect(args: argparse.Namespace) -> list[Measure]:
    measures: list[Measure] = []
    for accounts in args.accounts:
        small = accounts <= args.sequential_max
        levels = [args.concurrency] + ([1] if small else [])
        for concurrency in levels:
            tries = []
            for number in range(1, (max(1, args.repeat) if small else 1) + 1):
                print(f"running {accounts} accounts, concurrency {concurrency}, "
                      f"try {number} ...", file=sys.stderr, flush=True)
                tries.append(run_scenario(accounts, concurrency, args.latency_ms / 1000))
            measures += [median_wall(list(same)) for same in zip(*tries, strict=True)]
    return measures


def median_wall(tries: list[Measure]) -> Measure:
    """Return the try of median wall time (the upper one of an even number)."""
    return sorted(tries, key=lambda measure: measure.seconds)[len(tries) // 2]


def render(measures: list[Measure], args: argparse.Namespace) -> str:
    command = " ".join(["python -m benchmarks.run", *sys.argv[1:]])
    lines = [f"# Benchmark of the modeler and mcm jobs, {dt.date.today().isoformat()}", "",
             f"Machine: {os.cpu_count()} cores, Python {platform.python_version()}, "
             f"{platform.system()} {platform.machine()}. Latency {args.latency_ms:g} ms per "
             f"platform, AWS and Vault request. Pools of at most {args.sequential_max} "
             f"accounts: median of {args.repeat} tries. Command: `{command}`.", ""]
    for accounts in dict.fromkeys(measure.accounts for measure in measures):
        lines += [f"## {accounts} accounts", ""]
        lines += measure_table([m for m in measures if m.accounts == accounts])
        lines += [""]
    lines += ["## Targets", "", *target_table(measures, args), ""]
    lines += ["## AWS operations of the no-change runs", "", *operation_table(measures)]
    return "\n".join(lines) + "\n"


def measure_table(measures: list[Measure]) -> list[str]:
    header = ("| job | run | conc. | wall s | run s | bound s | wall / bound | Vault r "
              "| platform r/w | AWS r/w | listings | resource reads | writes | calls / account "
              "| repeated reads | peak MiB | exit |")
    rows = [header, "|" + " --- |" * (header.count("|") - 1)]
    for m in measures:
        platform_calls = _read_write(m.platform)
        aws_calls = _read_write(m.aws)
        calls = sum(platform_calls) + sum(aws_calls)
        rows.append(
            f"| {m.job} | {m.run} | {m.concurrency} | {m.seconds:.2f} | {m.run_seconds:.2f} "
            f"| {m.lower_bound_seconds:.2f} | {_ratio(m.seconds, m.lower_bound_seconds)} "
            f"| {m.vault_calls} | {platform_calls[0]}/{platform_calls[1]} "
            f"| {aws_calls[0]}/{aws_calls[1]} "
            f"| {m.listing_calls} | {m.resource_reads} | {m.writes} "
            f"| {calls / m.accounts:.2f} | {m.repeated_aws_reads} | {m.peak_rss_mib:.0f} "
            f"| {m.exit_status} |")
    return rows


def _read_write(calls: dict[str, dict[str, int]]) -> tuple[int, int]:
    return (sum(kinds.get("read", 0) for kinds in calls.values()),
            sum(kinds.get("write", 0) for kinds in calls.values()))


def _ratio(value: float, bound: float) -> str:
    return f"{value / bound:.2f}" if bound else "-"


def target_table(measures: list[Measure], args: argparse.Namespace) -> list[str]:
    rows = ["| target | measured | met |", "| --- | --- | --- |"]
    no_change = [m for m in measures if m.run == "no-change"]
    writes = sum(m.writes for m in no_change) + sum(m.schedule_row_writes for m in no_change)
    rows.append(_target("no-change runs make 0 write calls (platform, AWS, schedule rows)",
                        f"{writes} writes", writes == 0))
    repeated = sum(m.repeated_aws_reads for m in measures)
    rows.append(_target("no AWS read is sent twice with the same request", f"{repeated}",
                        repeated == 0))
    rows += _bound_rows(measures)
    rows += _speed_up_rows(measures, args.latency_ms / 1000)
    peak = max((m.peak_rss_mib for m in measures if m.accounts == BOUND_ACCOUNTS), default=None)
    if peak is not None:
        rows.append(_target(f"peak memory of a job under {MAX_PEAK_MIB:.0f} MiB at "
                            f"{BOUND_ACCOUNTS} accounts", f"{peak:.0f} MiB",
                            peak < MAX_PEAK_MIB))
    return rows


def _bound_rows(measures: list[Measure]) -> list[str]:
    runs = [m for m in measures if m.accounts == BOUND_ACCOUNTS and m.run == "no-change"
            and m.concurrency > 1]
    rows = []
    for label, chosen in [*[(m.job, [m]) for m in runs], ("both jobs", runs)]:
        if not chosen:
            continue
        wall = sum(m.seconds for m in chosen)
        bound = sum(m.lower_bound_seconds for m in chosen)
        rows.append(_target(f"{label}, {BOUND_ACCOUNTS} accounts, no-change: under "
                            f"{MAX_NO_CHANGE_SECONDS:.0f} s and within {MAX_BOUND_RATIO:g}x "
                            "of the bound", f"{wall:.2f} s, {_ratio(wall, bound)}x of "
                            f"{bound:.2f} s", wall < MAX_NO_CHANGE_SECONDS
                            and wall <= MAX_BOUND_RATIO * bound))
    return rows


def _speed_up_rows(measures: list[Measure], latency_seconds: float) -> list[str]:
    """Build the speed-up rows of the first runs, each with the highest its calls allow."""
    first = [m for m in measures if m.accounts == SPEED_UP_ACCOUNTS and m.run == "first"]
    sequential = [m for m in first if m.concurrency == 1]
    concurrent = [m for m in first if m.concurrency > 1]
    if not sequential or not concurrent:
        return []
    rows = []
    pairs = [(m.job, [m], [c for c in concurrent if c.job == m.job]) for m in sequential]
    for label, slow, fast in [*pairs, ("both jobs", sequential, concurrent)]:
        wall = sum(m.seconds for m in slow) / sum(m.seconds for m in fast)
        run = sum(m.run_seconds for m in slow) / sum(m.run_seconds for m in fast)
        ceiling = sum(m.seconds for m in slow) / sum(_fastest_wall(m, latency_seconds)
                                                    for m in fast)
        rows.append(_target(f"{label}, {SPEED_UP_ACCOUNTS} accounts, first run: at least "
                            f"{MIN_SPEED_UP:g}x faster than with concurrency 1",
                            f"{wall:.1f}x wall, {run:.1f}x run (at most {ceiling:.1f}x)",
                            wall >= MIN_SPEED_UP))
    return rows


def _fastest_wall(measure: Measure, latency_seconds: float) -> float:
    """Return the wall time of a run whose calls all overlap, with no CPU time of its own.

    Its calls go out `concurrency` at a time with none waiting for another. Python's start,
    the imports and the exit (wall minus run time) are kept as measured.
    """
    calls = (measure.vault_calls + sum(_read_write(measure.platform))
             + sum(_read_write(measure.aws)))
    round_trips = math.ceil(calls / measure.concurrency)
    return measure.seconds - measure.run_seconds + round_trips * latency_seconds


def _target(text: str, measured: str, met: bool) -> str:
    return f"| {text} | {measured} | {'yes' if met else 'no'} |"


def operation_table(measures: list[Measure]) -> list[str]:
    rows = ["| accounts | job | operation | calls |", "| --- | --- | --- | --- |"]
    for m in measures:
        if m.run == "no-change" and m.concurrency > 1:
            rows += [f"| {m.accounts} | {m.job} | {operation} | {count} |"
                     for operation, count in m.aws_operations.items()]
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    try:
        measures = collect(args)
    except BenchmarkError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    text = render(measures, args)
    print(text)
    try:
        args.markdown.write_text(text, encoding="utf-8")
    except OSError as err:
        print(f"error: cannot write {args.markdown}: {err.strerror}; the tables are above",
              file=sys.stderr)
        return 1
    print(f"written to {args.markdown}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
