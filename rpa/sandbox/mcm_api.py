"""Stand-in for the MCM (multi-cloud manager) API: registered clusters and cluster schedules.

It joins `rpa.sandbox.platform.PlatformStandIn` as a route table beside the Modeler one,
follows the "MCM" section of docs/platform-api.md, and keeps its state per site key. Calls
are counted under the api name "mcm".
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from rpa.sandbox.platform import (
    ApiError,
    Reply,
    Request,
    Route,
    build_page,
    read_query_value,
    read_required_text,
    reject_unknown_fields,
)

API: Final = "mcm"
CLUSTER_FIELDS: Final = ("cluster_id", "name", "provider", "region")
SCHEDULE_FIELDS: Final = ("days", "start", "end", "timezone", "holidays", "exclude_dates")
_CLOCK = re.compile(r"[0-2][0-9]:[0-5][0-9]")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


@dataclass
class _McmSite:
    clusters: dict[str, dict[str, Any]] = field(default_factory=dict)
    schedules: dict[str, dict[str, Any]] = field(default_factory=dict)


class McmApi:
    """MCM routes and their state, one `_McmSite` per site key.

    Handlers run under the platform stand-in's lock.
    """

    def __init__(self) -> None:
        self._sites: dict[str, _McmSite] = {}

    def routes(self) -> list[Route]:
        return [
            Route(API, "GET", "/api/v1/clusters", self._list_clusters),
            Route(API, "POST", "/api/v1/clusters", self._register_cluster),
            Route(API, "PUT", "/api/v1/clusters/{cluster_id}/assignment", self._assign),
            Route(API, "DELETE", "/api/v1/clusters/{cluster_id}/assignment", self._unassign),
            Route(API, "GET", "/api/v1/cluster-schedules", self._list_schedules),
            Route(API, "PUT", "/api/v1/accounts/{account}/cluster-schedule",
                  self._put_schedule),
            Route(API, "DELETE", "/api/v1/accounts/{account}/cluster-schedule",
                  self._delete_schedule),
        ]

    def clusters(self, site_key: str) -> list[dict[str, Any]]:
        """Return a copy of the site's registered clusters in registration order."""
        return copy.deepcopy(list(self._site(site_key).clusters.values()))

    def schedules(self, site_key: str) -> dict[str, dict[str, Any]]:
        """Return a copy of the site's cluster schedules by account."""
        return copy.deepcopy(self._site(site_key).schedules)

    def _site(self, site_key: str) -> _McmSite:
        return self._sites.setdefault(site_key, _McmSite())

    # Clusters.

    def _list_clusters(self, request: Request) -> Reply:
        account = read_query_value(request.query, "account")
        clusters = [cluster for cluster in self._site(request.site_key).clusters.values()
                    if account is None or cluster["account"] == account]
        return Reply(200, build_page(clusters, request.query))

    def _register_cluster(self, request: Request) -> Reply:
        body = request.parse_json_object()
        reject_unknown_fields(body, CLUSTER_FIELDS)
        values = {name: read_required_text(body, name) for name in CLUSTER_FIELDS}
        site = self._site(request.site_key)
        if values["cluster_id"] in site.clusters:
            message = f"cluster {values['cluster_id']} is already registered"
            raise ApiError(409, "conflict", message)
        cluster = {**values, "account": None,
                   "registered_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        site.clusters[values["cluster_id"]] = cluster
        return Reply(201, cluster)

    def _assign(self, request: Request) -> Reply:
        cluster = self._find_cluster(request)
        body = request.parse_json_object()
        reject_unknown_fields(body, ("account",))
        cluster["account"] = read_required_text(body, "account")
        return Reply(200, cluster)

    def _unassign(self, request: Request) -> Reply:
        self._find_cluster(request)["account"] = None
        return Reply(204)

    def _find_cluster(self, request: Request) -> dict[str, Any]:
        cluster_id = request.path_params["cluster_id"]
        cluster = self._site(request.site_key).clusters.get(cluster_id)
        if cluster is None:
            raise ApiError(404, "not_found", f"cluster {cluster_id} is not registered")
        return cluster

    # Cluster schedules.

    def _list_schedules(self, request: Request) -> Reply:
        schedules = list(self._site(request.site_key).schedules.values())
        return Reply(200, build_page(schedules, request.query))

    def _put_schedule(self, request: Request) -> Reply:
        account = request.path_params["account"]
        body = request.parse_json_object()
        reject_unknown_fields(body, SCHEDULE_FIELDS)
        schedule = {"account": account, **_read_schedule(body)}
        self._site(request.site_key).schedules[account] = schedule
        return Reply(200, schedule)

    def _delete_schedule(self, request: Request) -> Reply:
        account = request.path_params["account"]
        schedules = self._site(request.site_key).schedules
        if account not in schedules:
            raise ApiError(404, "not_found", f"account {account!r} has no cluster schedule")
        del schedules[account]
        return Reply(204)


def _read_schedule(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a schedule body and return its fields, with the optional ones filled in."""
    values: dict[str, Any] = {name: read_required_text(body, name)
                              for name in ("days", "start", "end", "timezone")}
    for name in ("start", "end"):
        if not _CLOCK.fullmatch(values[name]):
            message = f"field {name} must be a time as HH:MM, got {values[name]!r}"
            raise ApiError(400, "invalid_request", message)
    holidays = body.get("holidays")
    if holidays is not None and not isinstance(holidays, str):
        raise ApiError(400, "invalid_request", "field holidays must be a string or null")
    dates = body.get("exclude_dates", [])
    if not isinstance(dates, list) or not all(
            isinstance(date, str) and _DATE.fullmatch(date) for date in dates):
        message = "field exclude_dates must be a list of dates as YYYY-MM-DD"
        raise ApiError(400, "invalid_request", message)
    return {**values, "holidays": holidays, "exclude_dates": dates}
