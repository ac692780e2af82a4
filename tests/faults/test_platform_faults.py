"""Platform API faults for one account: 500, a timeout or malformed JSON. That account fails
with the error, the others are done, and a create is never sent twice."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from faultkit import JobRunner, modeler_site, platform_writes

from rpa.sandbox.runtime import Servers, site_key

# trial_user02 is the only account of the small inventory on Modeler site A.
SITE_A = site_key(modeler_site("trial_user02"))
CREATE = ("modeler", "POST", "/api/v1/projects")
LIST = ("modeler", "GET", "/api/v1/projects")
UPDATE = ("modeler", "PATCH", "/api/v1/projects/{project_id}")
# Projects the records of the small inventory list: two, two and one.
WANTED_PROJECTS = 5


def project_names(sandbox: Servers) -> list[str]:
    sites = {site_key(modeler_site(name)) for name in ("trial_user01", "trial_user02")}
    return sorted(p["name"] for site in sites for p in sandbox.platform.projects(site))


@pytest.mark.parametrize(("status", "body", "delay", "message"), [
    # the API fails inside
    (500, None, 0.0, "modeler POST /api/v1/projects failed with HTTP 500"),
    # the reply never comes within RPA_HTTP_TIMEOUT_SECONDS
    (503, None, 4.0, "modeler POST /api/v1/projects timed out"),
    # success with a body that is not JSON
    (201, '{"id": "prj-1", "name": ', 0.0,
     "modeler POST /api/v1/projects returned a body that is not JSON"),
    # success with JSON of the wrong shape
    (201, '["prj-1"]', 0.0, "returned list, not an object"),
])
def test_create_fault_fails_one_account(sandbox: Servers, run_job: JobRunner,
                                        small_inventory: Path,
                                        monkeypatch: pytest.MonkeyPatch, status: int,
                                        body: str | None, delay: float, message: str) -> None:
    if delay:
        # Short enough to give up on the delayed reply, long enough for every other call on
        # a loaded machine.
        monkeypatch.setenv("RPA_HTTP_TIMEOUT_SECONDS", "1.5")
    sandbox.platform.fail_next(method="POST", path_contains=f"{SITE_A}/api/v1/projects",
                               status=status, body=body, delay_seconds=delay)

    result = run_job("modeler", "--inventory", str(small_inventory))
    again = run_job("modeler", "--inventory", str(small_inventory))

    assert result.status == 1
    failed = [a for a in result.report["actions"] if a["status"] == "failed"]
    assert [(a["account"], a["kind"]) for a in failed] == [("trial_user02", "project.create")]
    assert message in failed[0]["error"]
    assert result.statuses("trial_user01") == {"done"}
    assert result.statuses("trial_user03") == {"done"}
    # One POST per project: the failed one was not sent again within the run, and the next
    # run sent it once.
    assert result.report["summary"]["failed"] == 1
    assert platform_writes(sandbox)[CREATE] == WANTED_PROJECTS + 1
    assert again.status == 0
    assert [a["kind"] for a in again.report["actions"]] == ["project.create"]
    assert len(project_names(sandbox)) == WANTED_PROJECTS


@pytest.mark.parametrize(("method", "route", "path", "status", "delay", "calls"), [
    # a listing fails once with 500: two sites listed, one of them twice
    ("GET", LIST, f"{SITE_A}/api/v1/projects", 500, 0.0, 3),
    # the reply to a listing comes too late once
    ("GET", LIST, f"{SITE_A}/api/v1/projects", 200, 4.0, 3),
    # a resource update (PATCH, idempotent) fails with 503 once, then is sent again
    ("PATCH", UPDATE, f"{SITE_A}/api/v1/projects/", 503, 0.0, 2),
])
def test_idempotent_call_retried(sandbox: Servers, run_job: JobRunner, small_inventory: Path,
                                 monkeypatch: pytest.MonkeyPatch, method: str,
                                 route: tuple[str, str, str], path: str, status: int,
                                 delay: float, calls: int) -> None:
    if delay:
        # Short enough to give up on the delayed reply, long enough for every other call on
        # a loaded machine.
        monkeypatch.setenv("RPA_HTTP_TIMEOUT_SECONDS", "1.5")
    monkeypatch.setenv("RPA_HTTP_BACKOFF_SECONDS", "0")
    first = run_job("modeler", "--inventory", str(small_inventory))
    shrink_first_project(small_inventory, "trial_user02")
    before = sandbox.platform.calls[route]
    sandbox.platform.fail_next(method=method, path_contains=path, status=status,
                               body='{"items": [], "total": 0}' if status == 200 else None,
                               delay_seconds=delay)

    result = run_job("modeler", "--inventory", str(small_inventory))

    assert first.status == 0
    assert result.status == 0, result.report.get("errors")
    assert [(a["kind"], a["status"]) for a in result.report["actions"]] == [
        ("project.update", "done")]
    # The faulty call was sent again: one call more than the run needs.
    assert sandbox.platform.calls[route] - before == calls


def shrink_first_project(inventory: Path, account: str) -> None:
    """Lower the cpu of the account's first project in the record, so a run updates it."""
    raw = yaml.safe_load(inventory.read_text(encoding="utf-8"))
    raw["modeler"][account]["projects"][0]["cpu"] -= 1
    inventory.write_text(yaml.safe_dump(raw, allow_unicode=True), encoding="utf-8")


@pytest.mark.parametrize(("body", "message"), [
    # a listing that is not JSON
    ("<html>Bad gateway</html>", "returned a body that is not JSON"),
    # a listing of the wrong shape
    ('{"items": "none", "total": 0}', "returned a listing of unexpected shape"),
])
def test_malformed_listing_fails_its_site(sandbox: Servers, run_job: JobRunner,
                                          small_inventory: Path, body: str,
                                          message: str) -> None:
    sandbox.platform.fail_next(method="GET", path_contains=f"{SITE_A}/api/v1/projects",
                               status=200, body=body)

    result = run_job("modeler", "--inventory", str(small_inventory))

    assert result.status == 1
    errors = [e for e in result.report["errors"] if e["field"] == "modeler.site"]
    assert [e["account"] for e in errors] == ["trial_user02"]
    assert message in errors[0]["message"]
    assert "project.create" not in {kind for _, kind, _, _ in result.outcomes("trial_user02")}
    assert result.statuses("trial_user01") == {"done"}
    assert result.statuses("trial_user03") == {"done"}
