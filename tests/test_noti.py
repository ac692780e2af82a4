"""The noti job: the pure daily report, and whole runs against the sandbox and a Slack stand-in."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from rpa import cli, noti
from rpa.blocks import MAX_BLOCKS, MAX_SECTION_CHARS, Block
from rpa.clients.aws import GroupState
from rpa.clients.db import AuditEntry
from rpa.daily_report import Observed, build_report, render_account, render_messages
from rpa.inventory import Inventory, load_file, validate_records
from rpa.sandbox.runtime import Servers, site_key
from rpa.sandbox.slack import Channel, SlackStandIn

EXAMPLES = Path(__file__).resolve().parent.parent / "examples" / "inventory.yaml"
KST = dt.timezone(dt.timedelta(hours=9))
# Friday 2026-12-04 10:00 in Seoul, the day the examples are written for.
NOW = dt.datetime(2026, 12, 4, 10, 0, tzinfo=KST)
IN_USE = [f"trial_user{n:02d}" for n in range(1, 31)]
RAW_MARKUP = re.compile(r"<|>|&(?!amp;|lt;|gt;)")
HOSTILE_OWNER = "R&D <팀> @here"


def example_inventory(**owners: str) -> Inventory:
    raw = load_file(EXAMPLES)
    for account, owner in owners.items():
        raw["password"][account]["owner"] = owner
    return validate_records(raw)


def mrkdwn_texts(blocks: list[Block]) -> list[str]:
    """Every mrkdwn text of the blocks: section texts, fields and context elements."""
    found = []
    for block in blocks:
        for item in [block.get("text"), *block.get("fields", []), *block.get("elements", [])]:
            if isinstance(item, dict) and item.get("type") == "mrkdwn":
                found.append(str(item["text"]))
    return found


def account_mentions(texts: list[str], names: list[str]) -> dict[str, int]:
    """How often each account's line starts (`*name* · …`) across the texts."""
    joined = "\n".join(texts)
    return {name: len(re.findall(rf"^\*{re.escape(name)}\* · ", joined, re.MULTILINE))
            for name in names}


# The report itself, without any client.

def test_counts_for_examples() -> None:
    report = build_report(example_inventory(), Observed(audit=[]), NOW)

    assert report.counts() == {"in_use": 30, "starting_today": 0, "ending_soon": 3,
                               "released_today": 0, "free": 7, "failures_24h": 0}
    assert [line.account for line in report.in_use] == IN_USE
    # Sorted by end date: trial_user21 ends today, 12 on Sunday, 05 on Monday.
    assert [(line.account, line.days_left) for line in report.ending_soon] == [
        ("trial_user21", 0), ("trial_user12", 2), ("trial_user05", 3)]
    assert report.is_complete


def test_starting_today_counted() -> None:
    monday = dt.datetime(2026, 12, 14, 9, 10, tzinfo=KST)
    report = build_report(example_inventory(), Observed(audit=[]), monday)
    assert report.starting_today == ["trial_user31", "trial_user32", "trial_user33"]
    assert report.counts()["starting_today"] == 3


def audit(account: str, status: str, hours_ago: float, *, job: str = "modeler",
          kind: str = "project.create", detail: str = "cpu 4 | modeler POST failed") -> AuditEntry:
    return AuditEntry("run-1", job, account, kind, "churn", status, detail,
                      (NOW - dt.timedelta(hours=hours_ago)).astimezone(dt.UTC))


def test_failures_in_window_grouped() -> None:
    entries = [
        audit("trial_user02", "failed", 1, detail="cpu 4 | first error"),
        audit("trial_user02", "failed", 0.5, detail="cpu 4 | latest error"),
        # older than 24 hours: left out
        audit("trial_user02", "failed", 25),
        audit("trial_user03", "failed", 2, job="mcm", kind="cluster.create"),
        audit("trial_user04", "done", 1),
    ]

    report = build_report(example_inventory(), Observed(audit=entries), NOW)

    assert report.failure_count == 3
    assert report.failures is not None
    assert [(f.job, f.account, f.count, f.error) for f in report.failures] == [
        ("mcm", "trial_user03", 1, "modeler POST failed"),
        ("modeler", "trial_user02", 2, "latest error"),
    ]


def test_released_today_from_record_and_audit() -> None:
    raw = load_file(EXAMPLES)
    raw["password"]["trial_user40"]["released_at"] = "2026-12-04T00:05:00+00:00"
    # Released yesterday in Seoul: not counted.
    raw["password"]["trial_user41"]["released_at"] = "2026-12-03T14:59:00+00:00"
    entries = [audit("trial_user36", "done", 1, job="endsvc", kind="account.mark_released"),
               audit("trial_user37", "failed", 1, job="endsvc", kind="account.mark_released")]

    report = build_report(validate_records(raw), Observed(audit=entries), NOW)

    assert report.released_today == ["trial_user36", "trial_user40"]


def test_unread_sources_make_report_incomplete() -> None:
    observed = Observed(audit=None, groups=None, clusters=None,
                        unread=[("Auto Scaling groups", "autoscaling failed: Throttling")])

    report = build_report(example_inventory(), observed, NOW)
    line = render_account(report.in_use[2], "ko")

    assert not report.is_complete
    assert report.counts()["failures_24h"] is None
    assert "워커 노드 조회 실패" in line
    assert "EMR 조회 실패" in line


def test_account_line_korean_and_english() -> None:
    groups = {"eks-trial-user03-workers": GroupState("eks-trial-user03-workers", 0, 4, 2, 1)}
    observed = Observed(audit=[], groups=groups,
                        clusters={("trial_user03", "spark"): ["RUNNING"]},
                        site_projects={"https://modeler-b.trial.accuinsight.example": {
                            "trial_user03": {"claims-triage-03"}}})
    report = build_report(example_inventory(), observed, NOW)
    line = next(item for item in report.in_use if item.account == "trial_user03")

    assert render_account(line, "ko").splitlines() == [
        "*trial_user03* · 최유나 (스마트팩토리 PoC) · 체험",
        "기간 2026-11-18 ~ 2026-12-18 (D-14) · 오늘 코어타임 09:00-18:00",
        "프로젝트 claims-triage-03 (사이트에 1/1) · 워커 노드 희망 2 / 실행 1 · EMR spark: RUNNING",
    ]
    assert render_account(line, "en").splitlines() == [
        "*trial_user03* · 최유나 (스마트팩토리 PoC) · trial",
        "2026-11-18 ~ 2026-12-18 (D-14) · core time today 09:00-18:00",
        "projects claims-triage-03 (1/1 on the site) · worker nodes desired 2 / running 1 · "
        "EMR spark: RUNNING",
    ]


@pytest.mark.parametrize(("account", "expected"), [
    # MON-THU schedule on a Friday
    ("trial_user01", "오늘 휴무"),
    # a window that runs past midnight
    ("trial_user09", "오늘 코어타임 22:00-06:00(+1)"),
])
def test_core_time_today(account: str, expected: str) -> None:
    report = build_report(example_inventory(), Observed(audit=[]), NOW)
    line = next(item for item in report.in_use if item.account == account)
    assert expected in render_account(line, "ko").splitlines()[1]


def test_owner_escaped_in_every_text() -> None:
    inventory = example_inventory(trial_user05=HOSTILE_OWNER, trial_user21=HOSTILE_OWNER)

    messages = render_messages(build_report(inventory, Observed(audit=[]), NOW), "ko")

    texts = [text for message in messages for text in mrkdwn_texts(message.blocks)]
    texts += [message.text for message in messages]
    joined = "\n".join(texts)
    assert "R&amp;D &lt;팀&gt; @here" in joined
    assert [text for text in texts if RAW_MARKUP.search(text)] == []
    # Both accounts are listed in use and, ending within 7 days, in their own section too.
    assert joined.count("R&amp;D &lt;팀&gt; @here") == 4


# Whole runs through the command line.

def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = noti.main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def run_json(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, dict[str, Any]]:
    status, out, _ = run(capsys, "--output", "json", *args)
    return status, json.loads(out)


def test_dry_run_posts_nothing(sandbox: Servers, slack: SlackStandIn,
                               capsys: pytest.CaptureFixture[str]) -> None:
    status, document = run_json(capsys, "--sandbox", "--dry-run", "--now", NOW.isoformat())

    assert status == 0
    assert slack.request_count == 0
    assert document["dry_run"] is True
    assert document["counts"] == {"in_use": 30, "starting_today": 0, "ending_soon": 3,
                                  "released_today": 0, "free": 7, "failures_24h": 0}
    texts = [text for message in document["messages"] for text in mrkdwn_texts(
        message["blocks"])]
    assert set(account_mentions(texts, IN_USE).values()) == {1}
    assert all(len(message["blocks"]) <= MAX_BLOCKS for message in document["messages"])


def test_dry_run_text_korean_and_english(sandbox: Servers,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    status, korean, _ = run(capsys, "--sandbox", "--dry-run", "--now", NOW.isoformat())
    _, english, _ = run(capsys, "--sandbox", "--dry-run", "--now", NOW.isoformat(),
                        "--lang", "en")

    assert status == 0
    assert "체험 계정 일일 보고 · 2026-12-04 (금)" in korean
    assert "*사용 중 계정 (30)*" in korean
    assert "*7일 이내 종료* 3" in korean
    assert "R&D센터" in korean  # unescaped for the terminal
    assert "daily report · Fri 2026-12-04" in english
    assert "*Accounts in use (30)*" in english


def test_posts_korean_intact(sandbox: Servers, slack: SlackStandIn,
                             capsys: pytest.CaptureFixture[str]) -> None:
    status, document = run_json(capsys, "--sandbox", "--now", NOW.isoformat())

    assert status == 0
    received = slack.messages
    assert [m.ts for m in received] == [m["ts"] for m in document["messages"]]
    assert {m.channel for m in received} == {"C0REPORT01"}
    first = received[0]
    title = first.blocks[0]["text"]["text"]
    assert title == "📋 Accuinsight+ 체험 계정 일일 보고 · 2026-12-04 (금)"
    assert first.text.startswith("📋 Accuinsight+ 체험 계정 일일 보고")
    texts = [text for message in received for text in mrkdwn_texts(message.blocks)]
    joined = "\n".join(texts)
    assert "*trial_user01* · 이서연 (데이터플랫폼팀) · 교육" in joined
    assert "강하은 (R&amp;D센터)" in joined
    assert set(account_mentions(texts, IN_USE).values()) == {1}


def test_hostile_owner_reaches_slack_escaped(sandbox: Servers, slack: SlackStandIn,
                                             tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    raw = load_file(EXAMPLES)
    raw["password"]["trial_user03"]["owner"] = HOSTILE_OWNER
    path = tmp_path / "inventory.yaml"
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")

    status, _, _ = run(capsys, "--sandbox", "--inventory", str(path), "--now", NOW.isoformat())

    assert status == 0
    texts = [text for message in slack.messages for text in mrkdwn_texts(message.blocks)]
    assert "*trial_user03* · R&amp;D &lt;팀&gt; @here · 체험" in "\n".join(texts)
    assert [text for text in texts if RAW_MARKUP.search(text)] == []


def generated_inventory(path: Path, count: int) -> list[str]:
    """Write `count` accounts in use, each with a long Korean owner and two projects."""
    names = [f"gen_user_{n:03d}" for n in range(count)]
    raw: dict[str, dict[str, Any]] = {"password": {}, "modeler": {}, "mcm": {}}
    for n, name in enumerate(names):
        raw["password"][name] = {
            "username": name, "password": f"Generated-{n}-x!", "purpose": "education",
            "owner": f"사용자 {n} (교육 과정 & 실습 <{n % 7}반>) " + "가나다" * 10,
            "start_date": "2026-11-01", "end_date": "2027-01-31"}
        raw["modeler"][name] = {
            "site": f"https://modeler-{n % 3}.trial.example",
            "schedule": {"days": "MON-FRI", "start": "09:00", "end": "18:00"},
            "projects": [{"name": f"project-{n}-{k}", "cpu": 2, "memory_gib": 8, "gpu": 0,
                          "storage_gib": 20} for k in range(2)]}
    path.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")
    return names


def test_200_accounts_split_in_thread(sandbox: Servers, slack: SlackStandIn, tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    names = generated_inventory(tmp_path / "inventory.yaml", 200)

    status, out, err = run(capsys, "--sandbox", "--inventory", str(tmp_path / "inventory.yaml"),
                           "--now", NOW.isoformat())

    assert status == 0, err
    received = slack.messages
    assert len(received) >= 5
    assert all(len(m.blocks) <= MAX_BLOCKS for m in received)
    sections = [b["text"]["text"] for m in received for b in m.blocks if b.get("text")]
    assert max(len(text) for text in sections) <= MAX_SECTION_CHARS
    assert [m.thread_ts for m in received[1:]] == [received[0].ts] * (len(received) - 1)
    texts = [text for message in received for text in mrkdwn_texts(message.blocks)]
    assert set(account_mentions(texts, names).values()) == {1}
    assert f"메시지 {len(received)}개를 올렸습니다" in out


def test_rate_limit_retried(sandbox: Servers, slack: SlackStandIn,
                            capsys: pytest.CaptureFixture[str]) -> None:
    slack.rate_limit_next(1, retry_after_seconds=0)

    status, document = run_json(capsys, "--sandbox", "--now", NOW.isoformat())

    assert status == 0
    assert slack.request_count == len(document["messages"]) + 1
    assert len(slack.messages) == len(document["messages"])


@pytest.mark.parametrize(("variable", "value", "phrases"), [
    # unknown channel: name it, ask for the ID, say how to invite the bot
    ("RPA_SLACK_CHANNEL", "#trial-report", [
        "channel_not_found", "'#trial-report'", "RPA_SLACK_CHANNEL", "channel ID",
        "/invite @"]),
    # the bot is not in the channel
    ("RPA_SLACK_CHANNEL", "C0OUTSIDE1", ["not_in_channel", "'C0OUTSIDE1'", "/invite @"]),
    # the token is not valid
    ("RPA_SLACK_TOKEN", "xoxb-revoked-0000", ["invalid_auth", "RPA_SLACK_TOKEN"]),
])
def test_slack_errors_exit_1(sandbox: Servers, slack: SlackStandIn,
                             monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str], variable: str, value: str,
                             phrases: list[str]) -> None:
    monkeypatch.setenv(variable, value)

    status, out, err = run(capsys, "--sandbox", "--now", NOW.isoformat())

    assert status == 1
    message = err.splitlines()[-1]
    assert message.startswith("error: Slack chat.postMessage failed: ")
    for phrase in phrases:
        assert phrase in message
    assert slack.messages == []
    assert "xoxb-revoked-0000" not in out + err
    assert slack.token not in out + err


def test_missing_scope_exit_1(sandbox: Servers, monkeypatch: pytest.MonkeyPatch,
                              capsys: pytest.CaptureFixture[str]) -> None:
    channel = Channel("C0REPORT01", "accuinsight-trial")
    with SlackStandIn(token="xoxb-no-scope", channels=[channel],
                      scopes=["channels:read", "users:read"]) as server:
        monkeypatch.setenv("RPA_SLACK_BASE_URL", server.base_url)
        monkeypatch.setenv("RPA_SLACK_TOKEN", "xoxb-no-scope")
        monkeypatch.setenv("RPA_SLACK_CHANNEL", channel.id)

        status, out, err = run(capsys, "--sandbox", "--now", NOW.isoformat())

    assert status == 1
    assert "missing_scope" in err
    assert "RPA_SLACK_TOKEN lacks the scope chat:write (it has channels:read,users:read)" in err
    assert "xoxb-no-scope" not in out + err


def test_token_never_printed_or_logged(sandbox: Servers, slack: SlackStandIn,
                                       monkeypatch: pytest.MonkeyPatch,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    # The run logs to stderr; at DEBUG that includes slack_sdk's request lines.
    monkeypatch.setenv("RPA_LOG_LEVEL", "DEBUG")

    status, out, err = run(capsys, "--sandbox", "--now", NOW.isoformat())

    assert status == 0
    assert "chat.postMessage" in err
    assert slack.token not in out + err


def test_missing_channel_setting_exits_2(monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_SLACK_TOKEN", "xoxb-set-but-no-channel")

    status, _, err = run(capsys, "--inventory", str(EXAMPLES), "--now", NOW.isoformat())

    assert status == 2
    assert "RPA_SLACK_CHANNEL is not set" in err
    assert "xoxb-set-but-no-channel" not in err


def test_sandbox_without_base_url_uses_own_stand_in(sandbox: Servers,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, "--sandbox", "--now", NOW.isoformat())

    assert status == 0
    assert "Slack 채널 C0SANDBOX01에 메시지 1개를 올렸습니다" in out
    assert "샌드박스 Slack 서버가 받은 메시지:" in out
    assert "*trial_user30* · 김민준 (AI교육센터) · 체험" in out


def test_rpa_noti_command(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["noti", "--sandbox", "--dry-run", "--now", NOW.isoformat(),
                       "--account", "trial_user03", "--account", "trial_user40"])
    out = capsys.readouterr().out

    assert status == 0
    assert "*trial_user03* · 최유나 (스마트팩토리 PoC) · 체험" in out
    assert "*사용 중* 1" in out
    assert "*미사용 (풀)* 1" in out


def failing_site_run(sandbox: Servers, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    """Run the modeler job with every project create on one site failing; return its report."""
    site = "https://modeler-a.trial.accuinsight.example"
    sandbox.platform.fail_next(method="POST", path_contains=site_key(site) + "/api/v1/projects",
                               status=500, times=200)
    status = cli.main(["modeler", "--sandbox", "--now", NOW.isoformat(), "--output", "json"])
    report: dict[str, Any] = json.loads(capsys.readouterr().out)
    assert status == 1
    return report


def test_failures_from_audit_table(sandbox: Servers, slack: SlackStandIn,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    modeler = failing_site_run(sandbox, capsys)
    failed = [a for a in modeler["actions"] if a["status"] == "failed"]

    # The audit rows carry the real time of the run, so noti reads them as of now.
    status, document = run_json(capsys, "--sandbox", "--dry-run")

    assert failed
    assert status == 0
    assert document["counts"]["failures_24h"] == len(failed)
    texts = "\n".join(text for message in document["messages"]
                      for text in mrkdwn_texts(message["blocks"]))
    assert f"최근 24시간 실패 {len(failed)}건" in texts
    for account in {a["account"] for a in failed}:
        assert f"• [modeler] *{account}* project.create" in texts


def test_failures_from_mariadb(sandbox: Servers, mysql_url: str,
                               monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("RPA_DB_URL", mysql_url)
    modeler = failing_site_run(sandbox, capsys)
    failed = [a for a in modeler["actions"] if a["status"] == "failed"]

    status, document = run_json(capsys, "--sandbox", "--dry-run")

    assert failed
    assert status == 0
    assert document["counts"]["failures_24h"] == len(failed)
