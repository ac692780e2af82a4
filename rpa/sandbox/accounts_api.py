"""Stand-ins for the account-level platform APIs: Pipeline storages, portal groups and SSO.

They join `rpa.sandbox.platform.PlatformStandIn` as route tables beside the Modeler one and
follow docs/platform-api.md. State is kept per site key, like the Modeler stand-in.
"""

from __future__ import annotations

import collections
import copy
import functools
import secrets
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


PIPELINE_KINDS: Final = ("workflows", "datasets", "models", "pipeline-projects")
# Pipeline projects hold the other kinds, so a project goes last and only when empty.
PIPELINE_ID_PREFIXES: Final = {"workflows": "wf", "datasets": "ds", "models": "mdl",
                               "pipeline-projects": "ppj"}


@dataclass
class _AccountsSite:
    storages: dict[str, dict[str, str]] = field(default_factory=dict)
    groups: dict[str, list[str]] = field(default_factory=dict)
    pipeline: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)
    # CloudZ users by username: their password and open session tokens.
    passwords: dict[str, str] = field(default_factory=dict)
    sessions: dict[str, str] = field(default_factory=dict)


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
            *self._pipeline_routes(),
            Route("pipeline", "GET", "/api/v1/storages", self._list_storages),
            Route("pipeline", "POST", "/api/v1/storages", self._create_storage),
            Route("pipeline", "PUT", "/api/v1/storages/{storage_id}", self._update_storage),
            Route("pipeline", "DELETE", "/api/v1/storages/{storage_id}", self._delete_storage),
            Route("portal", "GET", "/api/v1/groups/{group}/members", self._list_members),
            Route("portal", "PUT", "/api/v1/groups/{group}/members/{account}", self._add_member),
            Route("portal", "DELETE", "/api/v1/groups/{group}/members/{account}",
                  self._remove_member),
            Route("sso", "POST", "/oauth2/token", self._issue_token, public=True),
            Route("cloudz", "POST", "/api/v1/sessions", self._create_session, public=True),
            Route("cloudz", "POST", "/api/v1/users/{username}/password", self._change_password,
                  public=True),
        ]

    def _pipeline_routes(self) -> list[Route]:
        routes = []
        for kind in PIPELINE_KINDS:
            routes += [
                Route("pipeline", "GET", f"/api/v1/{kind}",
                      functools.partial(self._list_pipeline, kind)),
                Route("pipeline", "POST", f"/api/v1/{kind}",
                      functools.partial(self._create_pipeline, kind)),
                Route("pipeline", "DELETE", f"/api/v1/{kind}/{{item_id}}",
                      functools.partial(self._delete_pipeline, kind)),
            ]
        return routes

    def pipeline_items(self, site_key: str, kind: str) -> list[dict[str, str]]:
        return copy.deepcopy(list(self._site(site_key).pipeline.get(kind, {}).values()))

    def cloudz_password(self, site_key: str, username: str) -> str | None:
        return self._site(site_key).passwords.get(username)

    def set_cloudz_password(self, site_key: str, username: str, password: str) -> None:
        self._site(site_key).passwords[username] = password

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

    # Pipeline workflows, datasets, models and projects of the accounts.

    def _list_pipeline(self, kind: str, request: Request) -> Reply:
        accounts = request.query.get("account")
        account = accounts[0] if accounts else None
        items = [item for item in self._site(request.site_key).pipeline.get(kind, {}).values()
                 if account is None or item["account"] == account]
        return Reply(200, build_page(items, request.query))

    def _create_pipeline(self, kind: str, request: Request) -> Reply:
        body = request.parse_json_object()
        reject_unknown_fields(body, ("account", "name"))
        values = {name: read_required_text(body, name) for name in ("account", "name")}
        self._ids[kind] += 1
        item = {"id": f"{PIPELINE_ID_PREFIXES[kind]}-{self._ids[kind]:06d}", **values}
        self._site(request.site_key).pipeline.setdefault(kind, {})[item["id"]] = item
        return Reply(201, item)

    def _delete_pipeline(self, kind: str, request: Request) -> Reply:
        site = self._site(request.site_key)
        item_id = request.path_params["item_id"]
        item = site.pipeline.get(kind, {}).get(item_id)
        if item is None:
            raise ApiError(404, "not_found", f"{kind} item {item_id} not found")
        if kind == "pipeline-projects" and any(
                other["account"] == item["account"]
                for other_kind in PIPELINE_KINDS if other_kind != "pipeline-projects"
                for other in site.pipeline.get(other_kind, {}).values()):
            raise ApiError(409, "project_not_empty",
                           f"pipeline project {item_id} still has workflows, datasets or models")
        del site.pipeline[kind][item_id]
        return Reply(204)

    # CloudZ. NOTE: the stand-in learns a user's password at the user's first login, because
    # the sandbox starts empty and the example records hold the passwords.

    def _create_session(self, request: Request) -> Reply:
        body = request.parse_json_object()
        reject_unknown_fields(body, ("username", "password"))
        username = read_required_text(body, "username")
        password = read_required_text(body, "password")
        site = self._site(request.site_key)
        known = site.passwords.setdefault(username, password)
        if known != password:
            raise ApiError(401, "invalid_credentials", "username or password is wrong")
        session = f"cz-{secrets.token_hex(8)}"
        site.sessions[session] = username
        return Reply(201, {"session": session})

    def _change_password(self, request: Request) -> Reply:
        site = self._site(request.site_key)
        username = request.path_params["username"]
        session = (request.authorization or "").removeprefix("Bearer ").strip()
        if site.sessions.get(session) != username:
            raise ApiError(401, "invalid_session", "no valid session for this user")
        body = request.parse_json_object()
        reject_unknown_fields(body, ("new_password",))
        site.passwords[username] = read_required_text(body, "new_password")
        del site.sessions[session]
        return Reply(204)
