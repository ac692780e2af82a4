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
}


def text(key: str, lang: Lang, **values: object) -> str:
    """Return the text for `key` in `lang` with `values` filled in; unknown keys show as is."""
    entry = TEXTS.get(key)
    if entry is None:
        return key
    return entry[lang].format(**values)
