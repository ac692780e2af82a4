"""The Modeler REST API of one site, as docs/platform-api.md describes it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from rpa.clients.http import JsonApi, require_fields

SERVICE = "modeler"
ItemKind = Literal["workspaces", "deployments", "automl-experiments", "autodl-experiments",
                   "drift-monitors", "deployment-storages", "analysis-images"]
# Item kinds of a project, in the order a release deletes them: running things first.
PROJECT_ITEM_KINDS: tuple[ItemKind, ...] = (
    "workspaces", "deployments", "automl-experiments", "autodl-experiments", "drift-monitors",
    "deployment-storages", "analysis-images")

PROJECT_FIELDS = {"id": str, "name": str, "owner": str, "resources": dict}
ITEM_FIELDS = {"id": str, "project_id": str, "name": str, "status": str}
RESOURCE_FIELDS = ("cpu", "memory_gib", "gpu", "storage_gib")


@dataclass(frozen=True)
class RemoteProject:
    id: str
    name: str
    owner: str
    resources: dict[str, int]


@dataclass(frozen=True)
class RemoteItem:
    """A workspace or a deployment."""

    id: str
    project_id: str
    name: str
    status: str


class ModelerClient:
    def __init__(self, api: JsonApi) -> None:
        self.api = api

    @property
    def site(self) -> str:
        return self.api.base_url

    def list_projects(self) -> list[RemoteProject]:
        return [self._project(item) for item in self.api.list_all("/api/v1/projects")]

    def list_items(self, kind: ItemKind, *, status: str | None = None,
                   project_id: str | None = None) -> list[RemoteItem]:
        params = {key: value for key, value in (("status", status), ("project_id", project_id))
                  if value is not None}
        where = f"{SERVICE} GET /api/v1/{kind}"
        return [
            RemoteItem(**{name: item[name] for name in ITEM_FIELDS})
            for item in (require_fields(raw, ITEM_FIELDS, where=where, service=SERVICE)
                         for raw in self.api.list_all(f"/api/v1/{kind}", params=params))
        ]

    def create_project(self, *, name: str, owner: str, resources: dict[str, int]
                       ) -> RemoteProject:
        reply = self.api.request("POST", "/api/v1/projects", idempotent=False,
                                 body={"name": name, "owner": owner, "resources": resources})
        return self._project(reply)

    def update_project(self, project_id: str, resources: dict[str, int]) -> RemoteProject:
        reply = self.api.request("PATCH", f"/api/v1/projects/{project_id}", idempotent=True,
                                 body={"resources": resources})
        return self._project(reply)

    def delete_project(self, project_id: str) -> None:
        self.api.request("DELETE", f"/api/v1/projects/{project_id}", idempotent=True)

    def stop_item(self, kind: ItemKind, item_id: str) -> None:
        # Stop is idempotent by contract, so it may be retried.
        self.api.request("POST", f"/api/v1/{kind}/{item_id}/stop", idempotent=True)

    def delete_item(self, kind: ItemKind, item_id: str) -> None:
        self.api.request("DELETE", f"/api/v1/{kind}/{item_id}", idempotent=True)

    def _project(self, raw: Any) -> RemoteProject:
        where = f"{SERVICE} project reply from {self.site}"
        item = require_fields(raw, PROJECT_FIELDS, where=where, service=SERVICE)
        resources = require_fields(item["resources"], dict.fromkeys(RESOURCE_FIELDS, int),
                                   where=where, service=SERVICE)
        return RemoteProject(item["id"], item["name"], item["owner"],
                             {name: resources[name] for name in RESOURCE_FIELDS})
