"""The daily report of `rpa.noti`: built purely from records, observations and `now`.

`build_report` decides the report's content and calls no client. `render_messages` turns it
into Slack Block Kit messages in Korean or English: a header with the counts, then the
accounts ending within 7 days, the failures of the last 24 hours and what could not be read,
then one section per account in use. Owner and project names are user text and are escaped,
so they can never form a link or a mention.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from rpa import blocks
from rpa.blocks import Block, Message, escape
from rpa.clients.aws import GroupState
from rpa.clients.db import AuditEntry
from rpa.i18n import Lang, text
from rpa.inventory import SERVICE_ZONE, Account, Inventory, RecordError, today_in_service_zone
from rpa.report import account_state
from rpa.schedule import Schedule

ENDING_SOON_DAYS = 7
FAILURE_WINDOW = dt.timedelta(hours=24)
# The end-of-service job's last action of a release, as its audit rows name it.
RELEASE_KIND = "account.mark_released"
# Audit details are cut to this length in the report; the audit table keeps them whole.
ERROR_MAX_CHARS = 200
WEEKDAYS: dict[Lang, tuple[str, ...]] = {
    "ko": ("월", "화", "수", "목", "금", "토", "일"),
    "en": ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"),
}


@dataclass
class Observed:
    """Data the noti job read beside the records; None marks a source it could not read."""

    # Project names by site, then by owner; a site missing here was not listed.
    site_projects: dict[str, dict[str, set[str]]] = field(default_factory=dict)
    groups: dict[str, GroupState] | None = None
    # States of the active EMR clusters by (account, cluster name) of the mcm job's names.
    clusters: dict[tuple[str, str], list[str]] | None = None
    audit: list[AuditEntry] | None = None
    # (source, error) for every source that failed.
    unread: list[tuple[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class CoreTime:
    """Today's core time of a schedule in its own zone; `opens` None means a day off."""

    opens: str | None = None
    closes: str | None = None
    next_day: bool = False
    zone: str | None = None


@dataclass(frozen=True)
class ProjectView:
    name: str
    # None when the site was not listed.
    on_site: bool | None


@dataclass(frozen=True)
class WorkersView:
    group: str
    state: GroupState | None
    readable: bool


@dataclass(frozen=True)
class ClusterView:
    name: str
    # States of the account's active clusters of this name; empty when none is active.
    states: tuple[str, ...]


@dataclass(frozen=True)
class AccountLine:
    """One account in use as the report shows it; None fields have no record to show."""

    account: str
    owner: str | None
    purpose: str | None
    start: dt.date
    end: dt.date
    days_left: int
    core_time: CoreTime | None
    cluster_core_time: CoreTime | None
    projects: tuple[ProjectView, ...] | None
    workers: WorkersView | None
    clusters: tuple[ClusterView, ...] | None
    clusters_readable: bool = True


@dataclass(frozen=True)
class FailureLine:
    """Failed actions of one job and account in the window, with the latest error."""

    job: str
    account: str
    kind: str
    target: str
    error: str
    count: int
    last_at: dt.datetime


@dataclass
class DailyReport:
    now: dt.datetime
    today: dt.date
    in_use: list[AccountLine] = field(default_factory=list)
    starting_today: list[str] = field(default_factory=list)
    ending_soon: list[AccountLine] = field(default_factory=list)
    released_today: list[str] = field(default_factory=list)
    free: list[str] = field(default_factory=list)
    # None when the audit table could not be read.
    failures: list[FailureLine] | None = None
    failure_count: int | None = None
    record_errors: list[RecordError] = field(default_factory=list)
    unread: list[tuple[str, str]] = field(default_factory=list)

    @property
    def is_complete(self) -> bool:
        """False when a record was invalid or a source could not be read."""
        return not self.record_errors and not self.unread

    def counts(self) -> dict[str, int | None]:
        return {"in_use": len(self.in_use), "starting_today": len(self.starting_today),
                "ending_soon": len(self.ending_soon), "released_today": len(self.released_today),
                "free": len(self.free), "failures_24h": self.failure_count}


# Build: pure.

def build_report(inventory: Inventory, observed: Observed, now: dt.datetime) -> DailyReport:
    """Build the report as of `now`, with dates on Asia/Seoul's calendar."""
    today = today_in_service_zone(now)
    report = DailyReport(now, today, record_errors=list(inventory.errors),
                         unread=list(observed.unread))
    for name, account in sorted(inventory.accounts.items()):
        state = account_state(account, today)
        if state == "in_use":
            report.in_use.append(account_line(account, observed, today))
        elif state == "free":
            report.free.append(name)
        if account.password.start_date == today:
            report.starting_today.append(name)
    report.ending_soon = sorted((line for line in report.in_use
                                 if line.days_left <= ENDING_SOON_DAYS),
                                key=lambda line: (line.end, line.account))
    report.released_today = released_on(inventory, observed.audit or [], today)
    if observed.audit is not None:
        failed = [entry for entry in observed.audit if entry.status == "failed"
                  and now - FAILURE_WINDOW <= entry.created_at <= now]
        report.failures = group_failures(failed)
        report.failure_count = len(failed)
    return report


def account_line(account: Account, observed: Observed, today: dt.date) -> AccountLine:
    password = account.password
    assert password.start_date is not None and password.end_date is not None
    modeler, mcm = account.modeler, account.mcm
    # The Modeler schedule is the account's core time; EMR's is shown apart only when it differs.
    schedule = None
    if modeler is not None:
        schedule = modeler.schedule
    elif mcm is not None:
        schedule = mcm.schedule
    cluster_schedule = None
    if mcm is not None and modeler is not None and mcm.schedule != modeler.schedule:
        cluster_schedule = mcm.schedule
    return AccountLine(
        account=account.name, owner=password.owner, purpose=password.purpose,
        start=password.start_date, end=password.end_date,
        days_left=(password.end_date - today).days,
        core_time=core_time_on(schedule, today) if schedule else None,
        cluster_core_time=core_time_on(cluster_schedule, today) if cluster_schedule else None,
        projects=_projects(account, observed),
        workers=_workers(account, observed),
        clusters=_clusters(account, observed),
        clusters_readable=observed.clusters is not None,
    )


def core_time_on(schedule: Schedule, day: dt.date) -> CoreTime:
    """Return `day`'s window of `schedule` in its zone; a day off or a vanished window has none."""
    window = schedule.window_on(day)
    if window is None:
        return CoreTime()
    zone = ZoneInfo(schedule.timezone)
    opens, closes = (instant.astimezone(zone) for instant in window)
    shown_zone = None if schedule.timezone == SERVICE_ZONE.key else schedule.timezone
    return CoreTime(f"{opens:%H:%M}", f"{closes:%H:%M}", closes.date() > opens.date(),
                    shown_zone)


def _projects(account: Account, observed: Observed) -> tuple[ProjectView, ...] | None:
    if account.modeler is None:
        return None
    listed = observed.site_projects.get(account.modeler.site)
    owned = listed.get(account.name, set()) if listed is not None else None
    return tuple(ProjectView(project.name, None if owned is None else project.name in owned)
                 for project in account.modeler.projects)


def _workers(account: Account, observed: Observed) -> WorkersView | None:
    if account.modeler is None or account.modeler.autoscaling_group is None:
        return None
    name = account.modeler.autoscaling_group.name
    if observed.groups is None:
        return WorkersView(name, None, readable=False)
    return WorkersView(name, observed.groups.get(name), readable=True)


def _clusters(account: Account, observed: Observed) -> tuple[ClusterView, ...] | None:
    if account.mcm is None:
        return None
    found = observed.clusters or {}
    return tuple(ClusterView(spec.name, tuple(found.get((account.name, spec.name), [])))
                 for spec in account.mcm.clusters)


def released_on(inventory: Inventory, audit: Sequence[AuditEntry], today: dt.date) -> list[str]:
    """Accounts released today, by their record's `released_at` or by the audit table.

    The audit row counts too because a released account's record may already be rewritten
    or removed by an operator.
    """
    names = {name for name, account in inventory.accounts.items()
             if account.password.released_at is not None
             and today_in_service_zone(account.password.released_at) == today}
    names |= {entry.account for entry in audit
              if entry.kind == RELEASE_KIND and entry.status == "done"
              and today_in_service_zone(entry.created_at) == today}
    return sorted(names)


def group_failures(entries: Sequence[AuditEntry]) -> list[FailureLine]:
    """Group failed audit rows into one line per job and account, with the latest error."""
    latest: dict[tuple[str, str], AuditEntry] = {}
    counts: Counter[tuple[str, str]] = Counter()
    for entry in entries:
        key = (entry.job, entry.account)
        counts[key] += 1
        if key not in latest or entry.created_at >= latest[key].created_at:
            latest[key] = entry
    lines = []
    for key, entry in sorted(latest.items()):
        # The audit detail is "<change> | <error>" for a failed action.
        error = entry.detail.rpartition(" | ")[2] if " | " in entry.detail else entry.detail
        lines.append(FailureLine(entry.job, entry.account, entry.kind, entry.target,
                                 error[:ERROR_MAX_CHARS], counts[key], entry.created_at))
    return lines


# Render: Block Kit messages in one language.

def render_messages(report: DailyReport, lang: Lang) -> list[Message]:
    """Render the report as Block Kit messages; later ones continue the first, in its thread."""
    content: list[Block] = [blocks.header(_title(report, lang)), _count_fields(report, lang)]
    content += _ending_soon_blocks(report, lang)
    content += _failure_blocks(report, lang)
    content += _problem_blocks(report, lang)
    content.append(blocks.divider())
    content.append(blocks.heading(text("noti.in_use", lang, count=len(report.in_use)), "in-use"))
    for line in report.in_use:
        content += blocks.sections(render_account(line, lang))
    if not report.in_use:
        content += blocks.sections(text("noti.none", lang))
    return blocks.pack_messages(content, text=escape(fallback_text(report, lang)),
                                continued=lambda number, total: text(
                                    "noti.continued", lang, number=number, total=total))


def _title(report: DailyReport, lang: Lang) -> str:
    weekday = WEEKDAYS[lang][report.today.weekday()]
    return text("noti.title", lang, date=report.today.isoformat(), weekday=weekday)


def _count_fields(report: DailyReport, lang: Lang) -> Block:
    counts = report.counts()
    return blocks.fields([
        f"*{text(f'noti.count.{key}', lang)}*\n{'?' if value is None else value}"
        for key, value in counts.items()])


def fallback_text(report: DailyReport, lang: Lang) -> str:
    counts = ", ".join(f"{text(f'noti.count.{key}', lang)} {'?' if value is None else value}"
                       for key, value in report.counts().items())
    return f"{_title(report, lang)}: {counts}"


def _ending_soon_blocks(report: DailyReport, lang: Lang) -> list[Block]:
    if not report.ending_soon:
        return []
    lines = [text("noti.ending_soon", lang, days=ENDING_SOON_DAYS, count=len(report.ending_soon))]
    for line in report.ending_soon:
        owner = escape(line.owner) if line.owner else "-"
        lines.append(text("noti.ending_line", lang, account=escape(line.account), owner=owner,
                          end=line.end.isoformat(), dday=_dday(line.days_left)))
    return blocks.sections("\n".join(lines))


def _failure_blocks(report: DailyReport, lang: Lang) -> list[Block]:
    if not report.failures:
        return []
    accounts = len({item.account for item in report.failures})
    lines = [text("noti.failures", lang, count=report.failure_count, accounts=accounts)]
    for item in report.failures:
        when = item.last_at.astimezone(SERVICE_ZONE).strftime("%H:%M")
        lines.append(text("noti.failure_line", lang, job=escape(item.job),
                          account=escape(item.account), kind=escape(item.kind),
                          target=escape(item.target), error=escape(item.error),
                          count=item.count, at=when))
    return blocks.sections("\n".join(lines))


def _problem_blocks(report: DailyReport, lang: Lang) -> list[Block]:
    lines: list[str] = []
    if report.unread:
        lines.append(text("noti.unread", lang, count=len(report.unread)))
        lines += [f"• {escape(source)}: {escape(error)}" for source, error in report.unread]
    if report.record_errors:
        lines.append(text("noti.record_errors", lang, count=len(report.record_errors)))
        for error in report.record_errors:
            value = f" ({escape(error.value)})" if error.value else ""
            lines.append(f"• *{escape(error.account)}* {escape(error.field)}{value}: "
                         f"{escape(error.reason)}")
    return blocks.sections("\n".join(lines)) if lines else []


def render_account(line: AccountLine, lang: Lang) -> str:
    """Render one account as three mrkdwn lines: who and why, period and core time, resources."""
    purpose = text(f"purpose.{line.purpose}", lang) if line.purpose else "-"
    who = " · ".join([f"*{escape(line.account)}*", escape(line.owner) if line.owner else "-",
                      purpose])
    when = [text("noti.period", lang, start=line.start.isoformat(), end=line.end.isoformat(),
                 dday=_dday(line.days_left))]
    if line.core_time is not None:
        when.append(_core_time(line.core_time, "noti.core_time", lang))
    if line.cluster_core_time is not None:
        when.append(_core_time(line.cluster_core_time, "noti.cluster_core_time", lang))
    what = [part for part in (_projects_text(line, lang), _workers_text(line, lang),
                              _clusters_text(line, lang)) if part]
    return "\n".join([who, " · ".join(when)] + ([" · ".join(what)] if what else []))


def _dday(days_left: int) -> str:
    return "D-day" if days_left == 0 else f"D-{days_left}"


def _core_time(core: CoreTime, key: str, lang: Lang) -> str:
    if core.opens is None:
        return text(f"{key}.off", lang)
    window = f"{core.opens}-{core.closes}{'(+1)' if core.next_day else ''}"
    if core.zone:
        window += f" {core.zone}"
    return text(key, lang, window=window)


def _projects_text(line: AccountLine, lang: Lang) -> str:
    if line.projects is None:
        return ""
    if not line.projects:
        return text("noti.projects.none", lang)
    names = ", ".join(escape(project.name) for project in line.projects)
    if any(project.on_site is None for project in line.projects):
        return text("noti.projects", lang, names=names)
    present = sum(1 for project in line.projects if project.on_site)
    return text("noti.projects.live", lang, names=names, present=present,
                total=len(line.projects))


def _workers_text(line: AccountLine, lang: Lang) -> str:
    workers = line.workers
    if workers is None:
        return ""
    if not workers.readable:
        return text("noti.workers.unread", lang)
    if workers.state is None:
        return text("noti.workers.missing", lang, group=escape(workers.group))
    return text("noti.workers", lang, desired=workers.state.desired,
                running=workers.state.in_service)


def _clusters_text(line: AccountLine, lang: Lang) -> str:
    if line.clusters is None:
        return ""
    if not line.clusters_readable:
        return text("noti.clusters.unread", lang)
    if not line.clusters:
        return text("noti.clusters.none", lang)
    parts = [f"{escape(cluster.name)}: "
             f"{', '.join(cluster.states) or text('noti.clusters.inactive', lang)}"
             for cluster in line.clusters]
    return "EMR " + ", ".join(parts)
