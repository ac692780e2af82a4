"""Failure alerts of the jobs: the message, and modeler runs posting to a Slack stand-in."""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import pytest

from rpa.alerts import build_alert, rerun_command, send_failure_alert
from rpa.cli import main
from rpa.inventory import RecordError
from rpa.plan import Action, Kind, Outcome, Problem, Status
from rpa.report import RunReport
from rpa.sandbox.runtime import Servers, site_key
from rpa.sandbox.slack import SlackStandIn
from rpa.settings import load_settings

NOW = dt.datetime(2026, 12, 4, 10, 0, tzinfo=dt.timezone(dt.timedelta(hours=9)))
FAILING_SITE = "https://modeler-a.trial.accuinsight.example"
RERUN = ("kubectl create job --from=cronjob/rpa-modeler rpa-modeler-manual-$(date +%s) "
         "-n accuinsight-rpa")


def failed_report(accounts: int = 2, *, dry_run: bool = False) -> RunReport:
    report = RunReport("modeler", "run-abc123", dry_run, NOW)
    for n in range(accounts):
        action = Action(f"trial_user{n:02d}", Kind.PROJECT_CREATE, "churn <x>")
        report.outcomes.append(Outcome(action, Status.FAILED, "HTTP 500 & retry later"))
    return report


def section_texts(message_blocks: list[dict[str, Any]]) -> str:
    return "\n".join(str(b["text"]["text"]) for b in message_blocks if "text" in b)


def test_alert_names_job_run_accounts_rerun() -> None:
    report = failed_report()
    report.record_errors.append(RecordError("trial_user07", "password.end_date", "2027-02-30",
                                            "invalid date"))
    report.problems.append(Problem("trial_user00", "modeler.site", "site unreachable"))

    message = build_alert(report, "ko")

    text = section_texts(message.blocks)
    assert "🚨 [modeler] 실행에 실패가 있습니다 · 실행 ID run-abc123 · 2026-12-04 10:00 KST" in text
    assert "*실패 계정 3개*" in text
    # Problems come before failed actions; the second error is counted.
    assert "• *trial_user00* — modeler.site: site unreachable (외 1건)" in text
    assert ("• *trial_user01* — project.create churn &lt;x&gt;: HTTP 500 &amp; retry later"
            in text)
    assert "• *trial_user07* — password.end_date: invalid date (value: 2027-02-30)" in text
    assert f"```{RERUN}```" in text
    assert message.text.startswith("🚨 [modeler]")


def test_alert_lists_twenty_accounts() -> None:
    message = build_alert(failed_report(25), "en")

    text = section_texts(message.blocks)
    assert "*25 failed accounts*" in text
    assert text.count("• *trial_user") == 20
    assert "… and 5 more accounts" in text


def test_rerun_command() -> None:
    assert rerun_command("endsvc") == ("kubectl create job --from=cronjob/rpa-endsvc "
                                       "rpa-endsvc-manual-$(date +%s) -n accuinsight-rpa")


@pytest.mark.parametrize(("report", "channel"), [
    # a dry-run never alerts
    (failed_report(dry_run=True), "C0ALERTS01"),
    # a run without failures never alerts
    (RunReport("modeler", "run-ok", False, NOW), "C0ALERTS01"),
    # no alert channel configured
    (failed_report(), None),
])
def test_no_alert_posted(slack: SlackStandIn, monkeypatch: pytest.MonkeyPatch,
                         report: RunReport, channel: str | None) -> None:
    if channel:
        monkeypatch.setenv("RPA_SLACK_ALERT_CHANNEL", channel)

    send_failure_alert(report, load_settings(), sandbox=False)

    assert slack.request_count == 0


def test_alert_without_token_logs_error(monkeypatch: pytest.MonkeyPatch,
                                        caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setenv("RPA_SLACK_ALERT_CHANNEL", "C0ALERTS01")
    with caplog.at_level(logging.ERROR):
        send_failure_alert(failed_report(), load_settings(), sandbox=False)
    assert "RPA_SLACK_ALERT_CHANNEL is set but RPA_SLACK_TOKEN is not" in caplog.text


# Whole modeler runs.

def run_modeler(capsys: pytest.CaptureFixture[str]) -> tuple[int, dict[str, Any], str]:
    """Run the modeler job; return its status, its JSON report and its log (stderr)."""
    status = main(["modeler", "--sandbox", "--now", NOW.isoformat(), "--output", "json"])
    out, err = capsys.readouterr()
    report: dict[str, Any] = json.loads(out)
    return status, report, err


def fail_site(sandbox: Servers) -> None:
    sandbox.platform.fail_next(method="GET",
                               path_contains=site_key(FAILING_SITE) + "/api/v1/projects",
                               status=500, times=20)


def test_modeler_failure_posts_alert(sandbox: Servers, slack: SlackStandIn,
                                     monkeypatch: pytest.MonkeyPatch,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_SLACK_ALERT_CHANNEL", "C0ALERTS01")
    fail_site(sandbox)

    status, report, _ = run_modeler(capsys)

    assert status == 1
    [alert] = slack.messages
    assert alert.channel == "C0ALERTS01"
    text = section_texts(alert.blocks)
    assert f"[modeler] 실행에 실패가 있습니다 · 실행 ID {report['run_id']}" in text
    failed = sorted({e["account"] for e in report["errors"]})
    assert failed
    assert f"*실패 계정 {len(failed)}개*" in text
    for account in failed:
        assert f"• *{account}* — modeler.site: modeler GET /api/v1/projects failed" in text
    assert RERUN in text


def test_modeler_success_posts_nothing(sandbox: Servers, slack: SlackStandIn,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_SLACK_ALERT_CHANNEL", "C0ALERTS01")

    status, report, _ = run_modeler(capsys)

    assert status == 0
    assert report["errors"] == []
    assert slack.request_count == 0


@pytest.mark.parametrize("breakage", ["not_in_channel", "server_down"])
def test_slack_failure_keeps_exit_status(sandbox: Servers, slack: SlackStandIn,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str],
                                         breakage: str) -> None:
    monkeypatch.setenv("RPA_SLACK_ALERT_CHANNEL", "C0ALERTS01")
    monkeypatch.setenv("RPA_SLACK_CONNECTION_RETRIES", "0")
    if breakage == "not_in_channel":
        monkeypatch.setenv("RPA_SLACK_ALERT_CHANNEL", "C0OUTSIDE1")
    else:
        slack.stop()
    fail_site(sandbox)

    status, report, log = run_modeler(capsys)

    assert status == 1
    assert report["errors"]
    assert report["summary"]["done"] > 0
    alert_errors = [line for line in log.splitlines() if "failure alert not posted" in line]
    assert len(alert_errors) == 1
    assert " ERROR modeler " in alert_errors[0]
    expected = "not_in_channel" if breakage == "not_in_channel" else "cannot reach"
    assert expected in alert_errors[0]


def test_sandbox_alert_needs_stand_in(sandbox: Servers, monkeypatch: pytest.MonkeyPatch,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_SLACK_ALERT_CHANNEL", "C0ALERTS01")
    monkeypatch.setenv("RPA_SLACK_TOKEN", "xoxb-would-be-real")
    fail_site(sandbox)

    status, _, log = run_modeler(capsys)

    assert status == 1
    assert "sandbox: failure alert not posted" in log
