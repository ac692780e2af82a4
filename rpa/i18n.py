"""Texts of the human-readable output in Korean (the default) and English.

Only what operators read is translated: plan and report lines. Logs, JSON reports and error
reasons from validation stay in English, because log collectors and scripts read them.
"""

from __future__ import annotations

from typing import Literal

Lang = Literal["ko", "en"]

TEXTS: dict[str, dict[Lang, str]] = {
    "title.plan": {"ko": "[{job}] 실행 계획 (dry-run, 변경 없음)", "en": "[{job}] plan (dry-run, nothing changed)"},
    "title.apply": {"ko": "[{job}] 실행 결과", "en": "[{job}] result"},
    "header": {
        "ko": "기준 시각 {now} · 실행 ID {run_id} · 계정 {total}개 (사용 중 {in_use}, 시작 전 {not_started}, 종료 {expired}, 미사용 {free}, 오류 {invalid})",
        "en": "at {now} · run {run_id} · {total} accounts ({in_use} in use, {not_started} not started, {expired} expired, {free} free, {invalid} invalid)",
    },
    "empty_plan": {"ko": "변경할 것이 없습니다.", "en": "Nothing to change."},
    "errors": {"ko": "오류 {count}건 (해당 계정은 건너뜀)", "en": "{count} errors (those accounts were skipped)"},
    "problems": {"ko": "계정 문제 {count}건", "en": "{count} account problems"},
    "notice": {"ko": "주의: {text}", "en": "Notice: {text}"},
    "summary": {
        "ko": "요약: 계획 {planned}, 완료 {done}, 실패 {failed}, 건너뜀 {skipped} · {seconds:.1f}초",
        "en": "Summary: {planned} planned, {done} done, {failed} failed, {skipped} skipped · {seconds:.1f}s",
    },
    "value": {"ko": "값 {value}", "en": "value {value}"},
    "status.planned": {"ko": "계획", "en": "planned"},
    "status.done": {"ko": "완료", "en": "done"},
    "status.failed": {"ko": "실패", "en": "failed"},
    "status.skipped": {"ko": "건너뜀", "en": "skipped"},
    "kind.project.create": {"ko": "프로젝트 생성", "en": "create project"},
    "kind.project.update": {"ko": "프로젝트 자원 변경", "en": "update project resources"},
    "kind.project.delete": {"ko": "프로젝트 삭제", "en": "delete project"},
    "kind.workspace.stop": {"ko": "워크스페이스 중지", "en": "stop workspace"},
    "kind.deployment.stop": {"ko": "배포 중지", "en": "stop deployment"},
    "kind.asg.set_desired": {"ko": "Auto Scaling 희망 용량 설정", "en": "set Auto Scaling desired capacity"},
    "kind.asg.schedule": {"ko": "Auto Scaling 예약 작업 등록", "en": "register Auto Scaling scheduled action"},
    "kind.asg.unschedule": {"ko": "Auto Scaling 예약 작업 삭제", "en": "delete Auto Scaling scheduled action"},
    "kind.schedule_row.upsert": {"ko": "스케줄 행 기록", "en": "write schedule row"},
    "kind.bucket.create": {"ko": "S3 버킷 생성", "en": "create S3 bucket"},
    "kind.bucket.configure": {"ko": "S3 버킷 설정", "en": "configure S3 bucket"},
    "kind.iam.create": {"ko": "IAM 자격 생성", "en": "create IAM identity"},
    "kind.iam.policy": {"ko": "IAM 정책 기록", "en": "write IAM policy"},
    "kind.pipeline.register_storage": {"ko": "Pipeline 스토리지 등록", "en": "register Pipeline storage"},
    "kind.group.add": {"ko": "체험 사용자 그룹 추가", "en": "add to trial user group"},
    "kind.project.item_delete": {"ko": "프로젝트 항목 삭제", "en": "delete project item"},
    "kind.schedule_row.delete": {"ko": "스케줄 행 삭제", "en": "delete schedule row"},
    "kind.pipeline.item_delete": {"ko": "Pipeline 항목 삭제", "en": "delete Pipeline item"},
    "kind.pipeline.storage_delete": {"ko": "Pipeline 스토리지 등록 해제", "en": "remove Pipeline storage"},
    "kind.bucket.empty": {"ko": "S3 버킷 비우기", "en": "empty S3 bucket"},
    "kind.iam.delete_access_key": {"ko": "IAM 액세스 키 삭제", "en": "delete IAM access key"},
    "kind.group.remove": {"ko": "체험 사용자 그룹에서 제거", "en": "remove from trial user group"},
    "kind.password.rotate": {"ko": "비밀번호 변경", "en": "rotate password"},
    "kind.account.mark_released": {"ko": "계정 반납 기록", "en": "mark account released"},
    "kind.cluster.create": {"ko": "EMR 클러스터 생성", "en": "create EMR cluster"},
    "kind.cluster.terminate": {"ko": "EMR 클러스터 종료", "en": "terminate EMR cluster"},
    "kind.cluster.terminate_off_core": {"ko": "코어 타임 외 EMR 클러스터 종료", "en": "terminate EMR cluster outside core time"},
    "kind.cluster.register": {"ko": "MCM 클러스터 등록", "en": "register cluster in MCM"},
    "kind.cluster.assign": {"ko": "MCM 클러스터 계정 할당", "en": "assign cluster to account in MCM"},
    "kind.cluster.unassign": {"ko": "MCM 클러스터 할당 해제", "en": "unassign cluster in MCM"},
    "kind.mcm_schedule.put": {"ko": "MCM 클러스터 코어 타임 기록", "en": "write cluster core time in MCM"},
    "kind.mcm_schedule.delete": {"ko": "MCM 클러스터 코어 타임 삭제", "en": "delete cluster core time in MCM"},
    # The daily report of rpa.noti on Slack (mrkdwn: *bold*).
    "noti.title": {"ko": "📋 Accuinsight+ 체험 계정 일일 보고 · {date} ({weekday})", "en": "📋 Accuinsight+ trial accounts daily report · {weekday} {date}"},
    "noti.count.in_use": {"ko": "사용 중", "en": "In use"},
    "noti.count.starting_today": {"ko": "오늘 시작", "en": "Starting today"},
    "noti.count.ending_soon": {"ko": "7일 이내 종료", "en": "Ending within 7 days"},
    "noti.count.released_today": {"ko": "오늘 반납", "en": "Released today"},
    "noti.count.free": {"ko": "미사용 (풀)", "en": "Free in the pool"},
    "noti.count.failures_24h": {"ko": "최근 24시간 실패", "en": "Failures in 24 h"},
    "noti.ending_soon": {"ko": "*⏳ {days}일 이내 종료 ({count})*", "en": "*⏳ Ending within {days} days ({count})*"},
    "noti.ending_line": {"ko": "• *{account}* · {owner} · {end} 종료 ({dday})", "en": "• *{account}* · {owner} · ends {end} ({dday})"},
    "noti.failures": {"ko": "*❌ 최근 24시간 실패 {count}건 (계정 {accounts}개)*", "en": "*❌ {count} failures in the last 24 hours ({accounts} accounts)*"},
    "noti.failure_line": {"ko": "• [{job}] *{account}* {kind} {target}: {error} ({count}건, 마지막 {at})", "en": "• [{job}] *{account}* {kind} {target}: {error} ({count} times, last at {at})"},
    "noti.unread": {"ko": "*⚠️ 읽지 못한 정보 {count}건 (보고가 불완전함)*", "en": "*⚠️ {count} sources could not be read (the report is incomplete)*"},
    "noti.record_errors": {"ko": "*⚠️ 레코드 오류 {count}건 (해당 계정은 보고에서 빠짐)*", "en": "*⚠️ {count} invalid records (those accounts are left out)*"},
    "noti.in_use": {"ko": "*사용 중 계정 ({count})*", "en": "*Accounts in use ({count})*"},
    "noti.none": {"ko": "없음", "en": "None."},
    "noti.continued": {"ko": "(계속 {number}/{total})", "en": "(continued {number}/{total})"},
    "noti.separator": {"ko": "--- 메시지 {number}/{total} (첫 메시지의 스레드 답글) ---", "en": "--- message {number}/{total} (reply in the first message's thread) ---"},
    "noti.period": {"ko": "기간 {start} ~ {end} ({dday})", "en": "{start} ~ {end} ({dday})"},
    "noti.core_time": {"ko": "오늘 코어타임 {window}", "en": "core time today {window}"},
    "noti.core_time.off": {"ko": "오늘 휴무", "en": "today off"},
    "noti.cluster_core_time": {"ko": "EMR 코어타임 {window}", "en": "EMR core time {window}"},
    "noti.cluster_core_time.off": {"ko": "EMR 오늘 휴무", "en": "EMR off today"},
    "noti.projects": {"ko": "프로젝트 {names}", "en": "projects {names}"},
    "noti.projects.live": {"ko": "프로젝트 {names} (사이트에 {present}/{total})", "en": "projects {names} ({present}/{total} on the site)"},
    "noti.projects.none": {"ko": "프로젝트 없음", "en": "no projects"},
    "noti.workers": {"ko": "워커 노드 희망 {desired} / 실행 {running}", "en": "worker nodes desired {desired} / running {running}"},
    "noti.workers.missing": {"ko": "워커 그룹 {group} 없음", "en": "worker group {group} not found"},
    "noti.workers.unread": {"ko": "워커 노드 조회 실패", "en": "worker nodes not read"},
    "noti.clusters.none": {"ko": "EMR 클러스터 없음", "en": "no EMR clusters"},
    "noti.clusters.unread": {"ko": "EMR 조회 실패", "en": "EMR not read"},
    "noti.clusters.inactive": {"ko": "실행 중 아님", "en": "not running"},
    "noti.posted": {"ko": "Slack 채널 {channel}에 메시지 {count}개를 올렸습니다 (첫 메시지 ts {ts}).", "en": "Posted {count} messages to Slack channel {channel} (first ts {ts})."},
    "noti.sandbox_slack": {"ko": "샌드박스 Slack 서버가 받은 메시지:", "en": "The messages as the sandbox Slack server received them:"},
    "purpose.trial": {"ko": "체험", "en": "trial"},
    "purpose.education": {"ko": "교육", "en": "education"},
    "purpose.demo": {"ko": "데모", "en": "demo"},
    # Failure alerts of the jobs on Slack.
    "alert.title": {"ko": "🚨 [{job}] 실행에 실패가 있습니다 · 실행 ID {run_id} · {at}", "en": "🚨 [{job}] run with failures · run {run_id} · {at}"},
    "alert.accounts": {"ko": "*실패 계정 {count}개*", "en": "*{count} failed accounts*"},
    "alert.more_errors": {"ko": " (외 {count}건)", "en": " (+{count} more)"},
    "alert.more_accounts": {"ko": "… 외 계정 {count}개", "en": "… and {count} more accounts"},
    "alert.rerun": {"ko": "다시 실행하려면:", "en": "To rerun:"},
    "alert.details": {"ko": "자세한 내용: Job 로그와 rpa_action_log의 run_id = '{run_id}'", "en": "Details: the Job's log, and rpa_action_log with run_id = '{run_id}'"},
}


def text(key: str, lang: Lang, **values: object) -> str:
    """Return the text for `key` in `lang` with `values` filled in; unknown keys show as is."""
    entry = TEXTS.get(key)
    if entry is None:
        return key
    return entry[lang].format(**values)
