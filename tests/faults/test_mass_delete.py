"""Mass deletion: a run that would delete more than --max-deletes plans the deletions and
applies none of them without --allow-mass-delete, in each job that deletes."""

from __future__ import annotations

from pathlib import Path

from faultkit import (
    JobRun,
    JobRunner,
    add_project,
    aws_client,
    modeler_site,
    platform_writes,
    start_retired_clusters,
    write_inventory,
)

from rpa.sandbox.runtime import Servers, site_key

ACTIVE = ["STARTING", "BOOTSTRAPPING", "RUNNING", "WAITING"]
# 2026-11-20 is inside the periods of trial_user35 and trial_user36, which have both expired
# by 2026-12-04 (the default --now of the runs).
IN_PERIOD = "2026-11-20T10:00+09:00"


def deletions(run: JobRun, kind: str) -> list[str]:
    """The statuses of the run's actions of one kind, in plan order."""
    return [status for _, found, _, status in run.outcomes() if found == kind]


def test_modeler_withholds_mass_delete(sandbox: Servers, run_job: JobRunner,
                                       small_inventory: Path) -> None:
    site = modeler_site("trial_user01")
    for index in range(3):
        add_project(sandbox, site, "trial_user01", f"by-hand-{index}")
    inventory = ("--inventory", str(small_inventory))

    limited = run_job("modeler", "--max-deletes", "2", *inventory)
    kept = [p["name"] for p in sandbox.platform.projects(site_key(site))]
    allowed = run_job("modeler", "--max-deletes", "2", "--allow-mass-delete", *inventory)

    assert limited.status == 1
    assert limited.report["notice"] == ("3 deletions exceed --max-deletes 2: rerun with "
                                        "--allow-mass-delete to apply them")
    assert deletions(limited, "project.delete") == ["skipped"] * 3
    assert {f"by-hand-{index}" for index in range(3)} <= set(kept)
    # The rest of the plan was applied.
    assert limited.statuses("trial_user02") == {"done"}
    assert allowed.status == 0
    assert deletions(allowed, "project.delete") == ["done"] * 3


def test_mcm_withholds_mass_delete(sandbox: Servers, run_job: JobRunner,
                                   small_inventory: Path) -> None:
    start_retired_clusters(sandbox, "trial_user03", 3)
    inventory = ("--inventory", str(small_inventory))

    limited = run_job("mcm", "--max-deletes", "2", *inventory)
    active = aws_client(sandbox, "emr").list_clusters(ClusterStates=ACTIVE)["Clusters"]
    allowed = run_job("mcm", "--max-deletes", "2", "--allow-mass-delete", *inventory)

    assert limited.status == 1
    assert "3 deletions exceed --max-deletes 2" in limited.report["notice"]
    assert deletions(limited, "cluster.terminate") == ["skipped"] * 3
    assert sum(c["Name"].startswith("rpa-trial_user03/retired-") for c in active) == 3
    assert deletions(limited, "cluster.create") == ["done"]
    assert allowed.status == 0
    assert deletions(allowed, "cluster.terminate") == ["done"] * 3


def test_endsvc_withholds_mass_release(sandbox: Servers, run_job: JobRunner,
                                       tmp_path: Path) -> None:
    expired = ["trial_user35", "trial_user36"]
    inventory = write_inventory(tmp_path / "inventory.yaml", expired)
    assert run_job("modeler", "--inventory", str(inventory), now=IN_PERIOD).status == 0

    limited = run_job("endsvc", "--max-deletes", "1", "--inventory", str(inventory))
    owners = {p["owner"] for name in expired
              for p in sandbox.platform.projects(site_key(modeler_site(name)))}
    allowed = run_job("endsvc", "--max-deletes", "1", "--allow-mass-delete",
                      "--inventory", str(inventory))

    assert limited.status == 1
    # The limit counts released accounts, since one release deletes many resources.
    assert "2 deletions exceed --max-deletes 1" in limited.report["notice"]
    assert set(deletions(limited, "project.delete")) == {"skipped"}
    assert deletions(limited, "account.mark_released") == ["skipped"] * 2
    assert set(expired) <= owners
    # Only the run with --allow-mass-delete deleted projects.
    assert platform_writes(sandbox)[("modeler", "DELETE", "/api/v1/projects/{project_id}")] \
        == len(deletions(allowed, "project.delete")) > 0
    assert allowed.status == 0
    assert deletions(allowed, "account.mark_released") == ["done"] * 2
