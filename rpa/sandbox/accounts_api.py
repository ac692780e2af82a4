"""Stand-ins for the account-level platform APIs: Pipeline storages, portal groups and SSO.

They join `rpa.sandbox.platform.PlatformStandIn` as route tables beside the Modeler one and
follow docs/platform-api.md. State is kept per site key, like the Modeler stand-in.
"""

from __future__ import annotations

import collections
import copy
from dataclasses import dataclass, field
from typing import Any, Final
from urllib.parse import parse_qs

from rpa.sandbox.platform import (
    ApiError,
    Reply,
    Request,
    Route,
    build_page,
    read_required_text,
    reject_unknown_fields,
)

# Lifetime of the tokens the SSO stand-in hands out, in seconds.
TOKEN_LIFETIME_SECONDS: Final = 3600


@dataclass
class _AccountsSite:
    storages: dict[str, dict[str, str]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)


class AccountsApi:
    """Routes and state of Pipeline storages, portal group members and the SSO token endpoint.

    Handlers run under the platform stand-in's lock. The SSO endpoint returns the stand-in's
    own bearer token, so every other route accepts what it hands out.
    """

    def __init__(self, token: str) -> None:
        self._token = token
        self._sites: dict[str, _AccountsSite] = {}
        self._ids: collections.Counter[str] = collections.Counter()

    def routes(self) -> list[Route]:
        return [
            Route("pipeline", "GET", "/api/v1/storages", self._list_storages),
            Route("pipeline", "POST", "/api/v1/storages", self._create_storage),
            Route("pipeline", "PUT", "/api/v1/storages/{storage_id}", self._update_storage),
            Route("pipeline", "DELETE", "/api/v1/storages/{storage_id}", self._delete_storage),
            Route("portal", "GET", "/api/v1/groups/{group}/members", self._list_members),
            Route("portal", "PUT", "/api/v1/groups/{group}/members/{account}", self._add_member),
            Route("portal", "DELETE", "/api/v1/groups/{group}/members/{account}",
                  self._remove_member),
            Route("sso", "POST", "/oauth2/token", self._issue_token, public=True),
        ]

    def storages(self, site_key: str) -> list[dict[str, str]]:
        return copy.deepcopy(list(self._site(site_key).storages.values()))

    def members(self, site_key: str, group: str) -> list[str]:
        return list(self._site(site_key).groups.get(group, []))

    def _site(self, site_key: str) -> _AccountsSite:
        return self._sites.setdefault(site_key, _AccountsSite())

    # Pipeline storages.

    def _list_storages(self, request: Request) -> Reply:
        return Reply(200, build_page(list(self._site(request.site_key).storages.values()),
                                     request.query))

    def _create_storage(self, request: Request) -> Reply:
        body = request.parse_json_object()
        reject_unknown_fields(body, ("account", "bucket", "region"))
        values = {name: read_required_text(body, name) for name in ("account", "bucket",
                                                                    "region")}
        site = self._site(request.site_key)
        if any(item["account"] == values["account"] for item in site.storages.values()):
            raise ApiError(409, "conflict",
                           f"account {values['account']!r} already has a storage registered")
        self._ids["stg"] += 1
        storage = {"id": f"stg-{self._ids['stg']:06d}", **values}
        site.storages[storage["id"]] = storage
        return Reply(201, storage)

    def _update_storage(self, request: Request) -> Reply:
        storage = self._find_storage(request)
        body = request.parse_json_object()
        reject_unknown_fields(body, ("bucket", "region"))
        storage.update({name: read_required_text(body, name) for name in ("bucket", "region")})
        return Reply(200, storage)

    def _delete_storage(self, request: Request) -> Reply:
        storage = self._find_storage(request)
        del self._site(request.site_key).storages[storage["id"]]
        return Reply(204)

    def _find_storage(self, request: Request) -> dict[str, str]:
        storage_id = request.path_params["storage_id"]
        storage = self._site(request.site_key).storages.get(storage_id)
        if storage is None:
            raise ApiError(404, "not_found", f"storage {storage_id} not found")
        return storage

    # Portal groups.

    def _list_members(self, request: Request) -> Reply:
        members = self._site(request.site_key).groups.get(request.path_params["group"], [])
        return Reply(200, build_page([{"account": name} for name in members], request.query))

    def _add_member(self, request: Request) -> Reply:
        group = request.path_params["group"]
        account = request.path_params["account"]
        members = self._site(request.site_key).groups.setdefault(group, [])
        if account not in members:
            members.append(account)
        return Reply(200, {"group": group, "account": account})

    def _remove_member(self, request: Request) -> Reply:
        members = self._site(request.site_key).groups.get(request.path_params["group"], [])
        account = request.path_params["account"]
        if account not in members:
            raise ApiError(404, "not_found", f"{account!r} is not a member")
        members.remove(account)
        return Reply(204)

    # SSO.

    def _issue_token(self, request: Request) -> Reply:
        form: dict[str, Any] = {key: values[0] for key, values in
                                parse_qs(request.body.decode("utf-8", "replace")).items()}
        if form.get("grant_type") != "client_credentials":
            raise ApiError(400, "unsupported_grant_type", "grant_type must be client_credentials")
        if not form.get("client_id") or not form.get("client_secret"):
            raise ApiError(401, "invalid_client", "client_id and client_secret are required")
        return Reply(200, {"access_token": self._token, "token_type": "Bearer",
                           "expires_in": TOKEN_LIFETIME_SECONDS})
