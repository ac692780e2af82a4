"""The Pipeline REST API, as docs/platform-api.md describes it (SSO bearer token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from rpa.clients.http import JsonApi, require_fields

SERVICE = "pipeline"
STORAGE_FIELDS = {"id": str, "account": str, "bucket": str, "region": str}
ITEM_FIELDS = {"id": str, "account": str, "name": str}
PipelineKind = Literal["workflows", "datasets", "models", "pipeline-projects"]
# Release order: a pipeline project can only go once its workflows, datasets and models are gone.
PIPELINE_RELEASE_ORDER: tuple[PipelineKind, ...] = ("workflows", "datasets", "models")


@dataclass(frozen=True)
class PipelineItem:
    kind: PipelineKind
    id: str
    account: str
    name: str


@dataclass(frozen=True)
class StorageRegistration:
    """An S3 bucket registered in Pipeline as an account's storage."""

    id: str
    account: str
    bucket: str
    region: str


class PipelineClient:
    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def list_storages(self) -> list[StorageRegistration]:
        """Return every storage registration on the Pipeline, one call per page."""
        where = f"{SERVICE} GET /api/v1/storages"
        return [
            StorageRegistration(**{name: item[name] for name in STORAGE_FIELDS})
            for item in (require_fields(raw, STORAGE_FIELDS, where=where, service=SERVICE)
                         for raw in self.api.list_all("/api/v1/storages"))
        ]

    def register_storage(self, *, account: str, bucket: str, region: str) -> None:
        self.api.request("POST", "/api/v1/storages", idempotent=False,
                         body={"account": account, "bucket": bucket, "region": region})

    def update_storage(self, storage_id: str, *, bucket: str, region: str) -> None:
        self.api.request("PUT", f"/api/v1/storages/{storage_id}", idempotent=True,
                         body={"bucket": bucket, "region": region})

    def delete_storage(self, storage_id: str) -> None:
        self.api.request("DELETE", f"/api/v1/storages/{storage_id}", idempotent=True)

    def list_items(self, kind: PipelineKind) -> list[PipelineItem]:
        """Return every workflow, dataset, model or pipeline project, one call per page."""
        where = f"{SERVICE} GET /api/v1/{kind}"
        return [
            PipelineItem(kind, item["id"], item["account"], item["name"])
            for item in (require_fields(raw, ITEM_FIELDS, where=where, service=SERVICE)
                         for raw in self.api.list_all(f"/api/v1/{kind}"))
        ]

    def delete_item(self, kind: PipelineKind, item_id: str) -> None:
        self.api.request("DELETE", f"/api/v1/{kind}/{item_id}", idempotent=True)
