"""Failure alerts: one short Slack message per job run that ended with failures.

`rpa.job.execute` calls `send_failure_alert` once the run's report is built. The alert names
the job, the run id, each failed account with its first error, and the kubectl command that
reruns the job. It is posted only when RPA_SLACK_ALERT_CHANNEL is set, never in dry-run, and
never for a run without failures. A Slack failure is logged as an error and changes nothing
else: the job has already done its work and keeps its exit status.
"""

from __future__ import annotations

import logging

from rpa import blocks
from rpa.blocks import Message, escape
from rpa.clients import errors
from rpa.i18n import Lang, text
from rpa.inventory import SERVICE_ZONE
from rpa.plan import Status
from rpa.report import EXIT_OK, RunReport
from rpa.settings import SLACK_API_URL, Settings

log = logging.getLogger(__name__)

NAMESPACE = "accuinsight-rpa"
# Accounts listed in one alert; the rest are counted, so the alert stays short.
MAX_ALERT_ACCOUNTS = 20
ERROR_MAX_CHARS = 200


def send_failure_alert(report: RunReport, settings: Settings, *, sandbox: bool) -> None:
    """Post the alert for a run with failures; a Slack failure is logged and not raised."""
    channel = settings.slack_alert_channel
    if report.dry_run or report.exit_status() == EXIT_OK or not channel:
        return
    if sandbox and settings.slack_base_url == SLACK_API_URL:
        # Sandbox runs use example records; their alerts go only to a Slack stand-in.
        log.info("sandbox: failure alert not posted; set RPA_SLACK_BASE_URL to a Slack "
                 "stand-in to see it")
        return
    if settings.slack_token is None:
        log.error("failure alert not posted: RPA_SLACK_ALERT_CHANNEL is set but "
                  "RPA_SLACK_TOKEN is not")
        return
    message = build_alert(report, settings.lang)
    parts = blocks.pack_messages(message.blocks, text=message.text,
                                 continued=lambda number, total: f"({number}/{total})")
    # Imported here: slack_sdk is needed only by a run that failed, and every job starts
    # faster without it.
    from rpa.clients.slack import SlackClient

    try:
        SlackClient.from_settings(settings).post_thread(
            channel, parts, channel_setting="RPA_SLACK_ALERT_CHANNEL")
    except errors.ClientError as err:
        log.error("failure alert not posted to Slack channel %s: %s", channel, err)
        return
    log.info("posted the failure alert to Slack channel %s", channel)


def build_alert(report: RunReport, lang: Lang) -> Message:
    """Build the alert as one message: title, failed accounts with errors, rerun command."""
    at = report.now.astimezone(SERVICE_ZONE).strftime("%Y-%m-%d %H:%M KST")
    title = text("alert.title", lang, job=report.job, run_id=report.run_id, at=at)
    failures = account_errors(report)
    lines = [f"*{escape(title)}*", text("alert.accounts", lang, count=len(failures))]
    for account, messages in list(failures.items())[:MAX_ALERT_ACCOUNTS]:
        more = text("alert.more_errors", lang, count=len(messages) - 1) if len(messages) > 1 \
            else ""
        lines.append(f"• *{escape(account)}* — {escape(messages[0][:ERROR_MAX_CHARS])}{more}")
    if len(failures) > MAX_ALERT_ACCOUNTS:
        lines.append(text("alert.more_accounts", lang, count=len(failures) - MAX_ALERT_ACCOUNTS))
    if report.notice:
        lines.append(escape(text("notice", lang, text=report.notice)))
    content = blocks.sections("\n".join(lines))
    content += blocks.sections(f"{text('alert.rerun', lang)}\n```{rerun_command(report.job)}```")
    content.append(blocks.context(escape(text("alert.details", lang, run_id=report.run_id))))
    return Message(escape(title), content)


def account_errors(report: RunReport) -> dict[str, list[str]]:
    """Collect each failed account's errors: record errors, then problems, then actions."""
    found: dict[str, list[str]] = {}
    for error in report.record_errors:
        found.setdefault(error.account, []).append(f"{error.field}: {error.message()}")
    for problem in report.problems:
        found.setdefault(problem.account, []).append(f"{problem.field}: {problem.message}")
    for outcome in report.outcomes:
        if outcome.status is Status.FAILED:
            action = outcome.action
            found.setdefault(action.account, []).append(
                f"{action.kind.value} {action.target}: {outcome.error}")
    return dict(sorted(found.items()))


def rerun_command(job: str) -> str:
    """Return the kubectl command that starts the job's CronJob once, now."""
    return (f"kubectl create job --from=cronjob/rpa-{job} rpa-{job}-manual-$(date +%s) "
            f"-n {NAMESPACE}")
