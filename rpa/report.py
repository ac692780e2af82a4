"""The result of one job run: its JSON document, its human rendering and its exit status.

Nothing here may hold a secret: actions carry no passwords, and record errors mask them.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal

from rpa.i18n import Lang, text
from rpa.inventory import Account, Inventory, RecordError, today_in_service_zone
from rpa.plan import Outcome, Problem, Status, count_by_status

AccountState = Literal["in_use", "not_started", "expired", "free", "invalid"]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def account_state(account: Account, today: dt.date) -> AccountState:
    period = account.password
    if period.start_date is None or period.end_date is None:
        return "free"
    if today < period.start_date:
        return "not_started"
    if today > period.end_date:
        return "expired"
    return "in_use"


@dataclass
class RunReport:
    job: str
    run_id: str
    dry_run: bool
    now: dt.datetime
    account_states: dict[str, AccountState] = field(default_factory=dict)
    outcomes: list[Outcome] = field(default_factory=list)
    record_errors: list[RecordError] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notice: str | None = None
    seconds: float = 0.0
    # True when SIGTERM stopped the run before every action was applied.
    interrupted: bool = False

    @classmethod
    def start(cls, *, job: str, run_id: str, dry_run: bool, now: dt.datetime,
              inventory: Inventory) -> RunReport:
        today = today_in_service_zone(now)
        states: dict[str, AccountState] = {
            name: account_state(account, today) for name, account in inventory.accounts.items()
        }
        for error in inventory.errors:
            states[error.account] = "invalid"
        return cls(job, run_id, dry_run, now, dict(sorted(states.items())),
                   record_errors=list(inventory.errors))

    def exit_status(self) -> int:
        failed = any(outcome.status is Status.FAILED for outcome in self.outcomes)
        if failed or self.record_errors or self.problems or self.notice or self.interrupted:
            return EXIT_FAILED
        return EXIT_OK

    def failed_accounts(self) -> list[str]:
        names = {o.action.account for o in self.outcomes if o.status is Status.FAILED}
        names |= {e.account for e in self.record_errors} | {p.account for p in self.problems}
        return sorted(names)

    def to_json(self) -> dict[str, Any]:
        errors = [{"account": e.account, "field": e.field, "message": e.message()}
                  for e in self.record_errors]
        errors += [{"account": p.account, "field": p.field, "message": p.message}
                   for p in self.problems]
        return {
            "job": self.job,
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "now": self.now.isoformat(),
            "accounts": [{"account": name, "state": state}
                         for name, state in self.account_states.items()],
            "actions": [_action_json(outcome) for outcome in self.outcomes],
            "errors": errors,
            "notice": self.notice,
            "summary": {**count_by_status(self.outcomes), "seconds": round(self.seconds, 3)},
        }


def _action_json(outcome: Outcome) -> dict[str, Any]:
    action = outcome.action
    item: dict[str, Any] = {
        "account": action.account,
        "kind": action.kind.value,
        "target": action.target,
        "status": outcome.status.value,
        "detail": action.detail,
    }
    if outcome.error or action.blocked:
        item["error"] = outcome.error or action.blocked
    return item


def render_text(report: RunReport, lang: Lang) -> str:
    """Render the plan or the result for a terminal, grouped by account."""
    title = "title.plan" if report.dry_run else "title.apply"
    states = Counter(report.account_states.values())
    lines = [
        text(title, lang, job=report.job),
        text("header", lang, now=report.now.isoformat(timespec="minutes"), run_id=report.run_id,
             total=len(report.account_states), in_use=states["in_use"],
             not_started=states["not_started"], expired=states["expired"], free=states["free"],
             invalid=states["invalid"]),
        "",
    ]
    lines += _render_actions(report, lang)
    if report.record_errors or report.problems:
        lines += ["", text("errors", lang, count=len(report.record_errors) + len(report.problems))]
        for error in report.record_errors:
            value = f" ({text('value', lang, value=error.value)})" if error.value else ""
            lines.append(f"  {error.account}  {error.field}{value}: {error.reason}")
        for problem in report.problems:
            lines.append(f"  {problem.account}  {problem.field}: {problem.message}")
    if report.notice:
        lines += ["", text("notice", lang, text=report.notice)]
    lines += ["", text("summary", lang, seconds=report.seconds, **count_by_status(report.outcomes))]
    return "\n".join(lines)


def _render_actions(report: RunReport, lang: Lang) -> list[str]:
    if not report.outcomes:
        return [text("empty_plan", lang)]
    lines: list[str] = []
    account = None
    for outcome in report.outcomes:
        action = outcome.action
        if action.account != account:
            account = action.account
            lines.append(account)
        status = text(f"status.{outcome.status.value}", lang)
        kind = text(f"kind.{action.kind.value}", lang)
        line = f"  [{status}] {kind}  {action.target}"
        if action.detail:
            line += f"  ({action.detail})"
        reason = outcome.error or action.blocked
        if reason:
            line += f"  — {reason}"
        lines.append(line)
    return lines
