"""The platform portal's group API, as docs/platform-api.md describes it (SSO bearer token)."""

from __future__ import annotations

from urllib.parse import quote

from rpa.clients.http import JsonApi, require_fields

SERVICE = "portal"


class PortalClient:
    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def list_members(self, group: str) -> set[str]:
        """Return the account names in `group`, one call per page."""
        path = f"/api/v1/groups/{quote(group, safe='')}/members"
        where = f"{SERVICE} GET {path}"
        return {require_fields(item, {"account": str}, where=where, service=SERVICE)["account"]
                for item in self.api.list_all(path)}

    def add_member(self, group: str, account: str) -> None:
        # PUT of a membership is idempotent by contract, so it may be retried.
        self.api.request("PUT", self._member_path(group, account), idempotent=True)

    def remove_member(self, group: str, account: str) -> None:
        self.api.request("DELETE", self._member_path(group, account), idempotent=True)

    @staticmethod
    def _member_path(group: str, account: str) -> str:
        return f"/api/v1/groups/{quote(group, safe='')}/members/{quote(account, safe='')}"
