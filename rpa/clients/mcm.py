"""The MCM (multi-cloud manager) REST API of one site, as docs/platform-api.md describes it.

MCM lists the clusters that users of the platform can reach. The mcm job registers the EMR
clusters it creates, assigns each to its account, unassigns it when the cluster ends, and
keeps the account's cluster core time that MCM shows.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from rpa.clients import errors
from rpa.clients.http import JsonApi, require_fields

log = logging.getLogger(__name__)

SERVICE = "mcm"
PROVIDER_EMR = "aws-emr"
# MCM allows up to 500 items a page; large pages keep the listing of every registered
# cluster to a few calls.
PER_PAGE = 500

CLUSTER_FIELDS = {"cluster_id": str, "name": str, "provider": str, "region": str}
SCHEDULE_FIELDS = {"account": str, "days": str, "start": str, "end": str, "timezone": str,
                   "exclude_dates": list}


@dataclass(frozen=True)
class McmCluster:
    """A cluster registered in MCM; `account` is None while it is not assigned."""

    cluster_id: str
    name: str
    provider: str
    region: str
    account: str | None


@dataclass(frozen=True)
class ClusterSchedule:
    """The cluster core time that MCM shows for one account.

    `days` is "MON-FRI" for a range or "TUE,THU" for a list; times are "HH:MM".
    """

    account: str
    days: str
    start: str
    end: str
    timezone: str
    holidays: str | None
    exclude_dates: tuple[str, ...]

    def body(self) -> dict[str, Any]:
        return {"days": self.days, "start": self.start, "end": self.end,
                "timezone": self.timezone, "holidays": self.holidays,
                "exclude_dates": list(self.exclude_dates)}

    def describe(self) -> str:
        return (f"{self.days} {self.start}-{self.end} {self.timezone}"
                f"{' holidays ' + self.holidays if self.holidays else ''}")


class McmClient:
    def __init__(self, api: JsonApi) -> None:
        self.api = api

    @property
    def site(self) -> str:
        return self.api.base_url

    def list_clusters(self) -> list[McmCluster]:
        """Return every registered cluster, one call per page of 500."""
        return [self._cluster(item)
                for item in self.api.list_all("/api/v1/clusters", per_page=PER_PAGE)]

    def register_cluster(self, *, cluster_id: str, name: str, region: str) -> bool:
        """Register an EMR cluster; returns False when MCM already has it (409).

        A create is never retried, so a lost reply shows up as 409 on the next attempt,
        which is why a conflict counts as done.
        """
        body = {"cluster_id": cluster_id, "name": name, "provider": PROVIDER_EMR,
                "region": region}
        try:
            self._cluster(self.api.request("POST", "/api/v1/clusters", idempotent=False,
                                           body=body))
        except errors.Conflict:
            log.info("cluster %s was already registered in MCM at %s", cluster_id, self.site)
            return False
        return True

    def assign_cluster(self, cluster_id: str, account: str) -> McmCluster:
        return self._cluster(self.api.request(
            "PUT", f"/api/v1/clusters/{cluster_id}/assignment", idempotent=True,
            body={"account": account}))

    def unassign_cluster(self, cluster_id: str) -> None:
        """Remove the cluster's assignment; a cluster that MCM does not know is left as is."""
        try:
            self.api.request("DELETE", f"/api/v1/clusters/{cluster_id}/assignment",
                             idempotent=True)
        except errors.NotFound:
            log.info("cluster %s is not registered in MCM at %s; nothing to unassign",
                     cluster_id, self.site)

    def list_schedules(self) -> list[ClusterSchedule]:
        """Return the cluster core time of every account that has one, one call per page."""
        return [self._schedule(item)
                for item in self.api.list_all("/api/v1/cluster-schedules", per_page=PER_PAGE)]

    def put_schedule(self, schedule: ClusterSchedule) -> ClusterSchedule:
        return self._schedule(self.api.request(
            "PUT", f"/api/v1/accounts/{schedule.account}/cluster-schedule", idempotent=True,
            body=schedule.body()))

    def delete_schedule(self, account: str) -> None:
        """Delete the account's cluster core time; an account without one is left as is."""
        try:
            self.api.request("DELETE", f"/api/v1/accounts/{account}/cluster-schedule",
                             idempotent=True)
        except errors.NotFound:
            log.info("MCM at %s has no cluster schedule for %s", self.site, account)

    def _cluster(self, raw: Any) -> McmCluster:
        where = f"{SERVICE} cluster reply from {self.site}"
        item = require_fields(raw, CLUSTER_FIELDS, where=where, service=SERVICE)
        account = item.get("account")
        if account is not None and not isinstance(account, str):
            raise errors.InvalidResponse(f"{where} has an account that is not a string",
                                         service=SERVICE)
        return McmCluster(item["cluster_id"], item["name"], item["provider"], item["region"],
                          account)

    def _schedule(self, raw: Any) -> ClusterSchedule:
        where = f"{SERVICE} cluster schedule reply from {self.site}"
        item = require_fields(raw, SCHEDULE_FIELDS, where=where, service=SERVICE)
        holidays = item.get("holidays")
        dates = item["exclude_dates"]
        if (holidays is not None and not isinstance(holidays, str)) or not all(
                isinstance(date, str) for date in dates):
            raise errors.InvalidResponse(f"{where} has holidays or exclude_dates of the "
                                         "wrong type", service=SERVICE)
        return ClusterSchedule(item["account"], item["days"], item["start"], item["end"],
                               item["timezone"], holidays, tuple(dates))
