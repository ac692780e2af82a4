"""Local stand-in for the platform's private REST APIs.

Serves the Modeler API described in docs/platform-api.md over HTTP on 127.0.0.1, for the
``--sandbox`` mode of the jobs and for integration tests. Every path starts with a site key
segment, as in ``/modeler-a.trial.example/api/v1/projects``, and each site key has its own
projects, workspaces and deployments. Routes live in a table of `Route` values, so another
platform API joins the server by adding its own table next to the Modeler one.
"""

from __future__ import annotations

import collections
import contextlib
import copy
import functools
import http
import json
import logging
import re
import secrets
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Literal, TypedDict, TypeVar
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlsplit

logger = logging.getLogger(__name__)

DEFAULT_PER_PAGE: Final = 100
MAX_PER_PAGE: Final = 500
RESOURCE_FIELDS: Final = ("cpu", "memory_gib", "gpu", "storage_gib")
ITEM_STATUSES: Final = ("RUNNING", "STOPPED")

ItemKind = Literal["workspaces", "deployments", "automl-experiments", "autodl-experiments",
                   "drift-monitors", "deployment-storages", "analysis-images"]
ITEM_ID_PREFIXES: Final[Mapping[ItemKind, str]] = {
    "workspaces": "ws",
    "deployments": "dep",
    "automl-experiments": "aml",
    "autodl-experiments": "adl",
    "drift-monitors": "drm",
    "deployment-storages": "dst",
    "analysis-images": "img",
}
# Only these kinds run and can be stopped; the others are only listed, made and deleted.
STOPPABLE_KINDS: Final[frozenset[str]] = frozenset({"workspaces", "deployments"})

_SITE_PATH = re.compile(r"^/(?P<site_key>[^/]+)(?P<route_path>/.*)$")
_TEMPLATE_PARAMETER = re.compile(r"\{(\w+)\}")
_POSITIVE_INTEGER = re.compile(r"[0-9]{1,18}")
_JSON_HEADERS: Final[Mapping[str, str]] = {"Content-Type": "application/json"}
_BEARER_CHALLENGE: Final[Mapping[str, str]] = {"WWW-Authenticate": "Bearer"}

_T = TypeVar("_T")


class Resources(TypedDict):
    """Resources of a Modeler project: whole cores, GiB and GPU devices."""

    cpu: int
    memory_gib: int
    gpu: int
    storage_gib: int


class Project(TypedDict):
    """Modeler project as the API returns it."""

    id: str
    name: str
    owner: str
    resources: Resources
    created_at: str


class Item(TypedDict):
    """Modeler workspace or deployment as the API returns it."""

    id: str
    project_id: str
    name: str
    status: str


class ApiError(Exception):
    """Failure that the stand-in sends as the contract's error JSON."""

    def __init__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers: Mapping[str, str] = headers or {}


@dataclass(frozen=True)
class Request:
    """Request after routing: the site key, path parameters, query and raw body."""

    site_key: str
    path_params: Mapping[str, str]
    query: Mapping[str, list[str]]
    body: bytes
    # The Authorization header, for public routes that check a credential of their own.
    authorization: str | None = None

    def parse_json_object(self) -> dict[str, Any]:
        """Parse the body as a JSON object, raising a 400 ApiError otherwise."""
        try:
            value = json.loads(self.body.decode("utf-8")) if self.body else None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            message = f"request body is not valid JSON: {error}"
            raise ApiError(400, "invalid_request", message) from error
        if not isinstance(value, dict):
            raise ApiError(400, "invalid_request", "request body must be a JSON object")
        return value


@dataclass(frozen=True)
class Reply:
    """Handler result: a status and a JSON payload, or no body when payload is None."""

    status: int
    payload: object = None


Handler = Callable[[Request], Reply]


@dataclass(frozen=True)
class Route:
    """One entry of the routing table.

    ``template`` is the path after the site key, with ``{name}`` for a path parameter. It is
    also the route's key in `PlatformStandIn.calls`.
    """

    api: str
    method: str
    template: str
    handler: Handler
    # A public route needs no bearer token (the SSO token endpoint, which hands them out).
    public: bool = False
    pattern: re.Pattern[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        regex = _TEMPLATE_PARAMETER.sub(r"(?P<\1>[^/]+)", self.template)
        object.__setattr__(self, "pattern", re.compile(f"^{regex}$"))


@dataclass
class _ModelerSite:
    projects: dict[str, Project] = field(default_factory=dict)
    workspaces: dict[str, Item] = field(default_factory=dict)
    deployments: dict[str, Item] = field(default_factory=dict)

    others: dict[str, dict[str, Item]] = field(default_factory=dict)

    def items(self, kind: ItemKind) -> dict[str, Item]:
        if kind == "workspaces":
            return self.workspaces
        if kind == "deployments":
            return self.deployments
        return self.others.setdefault(kind, {})


class ModelerApi:
    """Modeler routes and their state, one `_ModelerSite` per site key.

    Handlers are not thread-safe on their own: `PlatformStandIn` calls them under its lock.
    """

    name: Final = "modeler"

    def __init__(self) -> None:
        self._sites: dict[str, _ModelerSite] = {}
        self._id_counters: collections.Counter[str] = collections.Counter()

    def routes(self) -> list[Route]:
        """Build the Modeler routing table."""
        routes = [
            Route(self.name, "GET", "/api/v1/health", self._get_health),
            Route(self.name, "GET", "/api/v1/projects", self._list_projects),
            Route(self.name, "POST", "/api/v1/projects", self._create_project),
            Route(self.name, "PATCH", "/api/v1/projects/{project_id}", self._update_project),
            Route(self.name, "DELETE", "/api/v1/projects/{project_id}", self._delete_project),
        ]
        for kind in ITEM_ID_PREFIXES:
            routes += [
                Route(
                    self.name, "GET", f"/api/v1/{kind}", functools.partial(self._list_items, kind)
                ),
                Route(
                    self.name, "POST", f"/api/v1/{kind}", functools.partial(self._create_item, kind)
                ),
                Route(
                    self.name,
                    "DELETE",
                    f"/api/v1/{kind}/{{item_id}}",
                    functools.partial(self._delete_item, kind),
                ),
            ]
            if kind in STOPPABLE_KINDS:
                routes.append(Route(
                    self.name,
                    "POST",
                    f"/api/v1/{kind}/{{item_id}}/stop",
                    functools.partial(self._stop_item, kind),
                ))
        return routes

    def site(self, site_key: str) -> _ModelerSite:
        """Return the state of one site, creating it empty on first use."""
        return self._sites.setdefault(site_key, _ModelerSite())

    def _next_id(self, prefix: str) -> str:
        # One counter per prefix across all sites, so an id never names objects on two sites.
        self._id_counters[prefix] += 1
        return f"{prefix}-{self._id_counters[prefix]:06d}"

    def _get_health(self, request: Request) -> Reply:
        return Reply(200, {"status": "ok"})

    def _list_projects(self, request: Request) -> Reply:
        owner = read_query_value(request.query, "owner")
        projects = [
            project
            for project in self.site(request.site_key).projects.values()
            if owner is None or project["owner"] == owner
        ]
        return Reply(200, build_page(projects, request.query))

    def _create_project(self, request: Request) -> Reply:
        body = request.parse_json_object()
        reject_unknown_fields(body, ("name", "owner", "resources"))
        name = read_required_text(body, "name")
        owner = read_required_text(body, "owner")
        resources = read_resources(body)
        site = self.site(request.site_key)
        if any(project["name"] == name for project in site.projects.values()):
            message = f"a project named {name!r} already exists on site {request.site_key!r}"
            raise ApiError(409, "conflict", message)

        project: Project = {
            "id": self._next_id("prj"),
            "name": name,
            "owner": owner,
            "resources": resources,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        site.projects[project["id"]] = project
        return Reply(201, project)

    def _update_project(self, request: Request) -> Reply:
        project = self._find_project(request)
        body = request.parse_json_object()
        reject_unknown_fields(body, ("resources",))
        project["resources"] = read_resources(body)
        return Reply(200, project)

    def _delete_project(self, request: Request) -> Reply:
        project = self._find_project(request)
        site = self.site(request.site_key)
        for kind in ITEM_ID_PREFIXES:
            if any(item["project_id"] == project["id"] for item in site.items(kind).values()):
                message = f"project {project['id']} still contains {kind}. Delete them first."
                raise ApiError(409, "project_not_empty", message)
        del site.projects[project["id"]]
        return Reply(204)

    def _find_project(self, request: Request) -> Project:
        project_id = request.path_params["project_id"]
        project = self.site(request.site_key).projects.get(project_id)
        if project is None:
            message = f"project {project_id} not found on site {request.site_key!r}"
            raise ApiError(404, "not_found", message)
        return project

    def _list_items(self, kind: ItemKind, request: Request) -> Reply:
        status = read_query_value(request.query, "status")
        if status is not None and status not in ITEM_STATUSES:
            allowed = ", ".join(ITEM_STATUSES)
            message = f"query parameter status must be one of {allowed}, got {status!r}"
            raise ApiError(400, "invalid_request", message)
        project_id = read_query_value(request.query, "project_id")
        items = [
            item
            for item in self.site(request.site_key).items(kind).values()
            if (status is None or item["status"] == status)
            and (project_id is None or item["project_id"] == project_id)
        ]
        return Reply(200, build_page(items, request.query))

    def _create_item(self, kind: ItemKind, request: Request) -> Reply:
        body = request.parse_json_object()
        reject_unknown_fields(body, ("project_id", "name"))
        project_id = read_required_text(body, "project_id")
        name = read_required_text(body, "name")
        site = self.site(request.site_key)
        if project_id not in site.projects:
            message = f"project {project_id} not found on site {request.site_key!r}"
            raise ApiError(404, "not_found", message)

        item: Item = {
            "id": self._next_id(ITEM_ID_PREFIXES[kind]),
            "project_id": project_id,
            "name": name,
            "status": "RUNNING",
        }
        site.items(kind)[item["id"]] = item
        return Reply(201, item)

    def _stop_item(self, kind: ItemKind, request: Request) -> Reply:
        item = self._find_item(kind, request)
        item["status"] = "STOPPED"
        return Reply(200, item)

    def _delete_item(self, kind: ItemKind, request: Request) -> Reply:
        item = self._find_item(kind, request)
        del self.site(request.site_key).items(kind)[item["id"]]
        return Reply(204)

    def _find_item(self, kind: ItemKind, request: Request) -> Item:
        item_id = request.path_params["item_id"]
        item = self.site(request.site_key).items(kind).get(item_id)
        if item is None:
            noun = kind.removesuffix("s")
            message = f"{noun} {item_id} not found on site {request.site_key!r}"
            raise ApiError(404, "not_found", message)
        return item


def reject_unknown_fields(body: Mapping[str, object], allowed: Iterable[str]) -> None:
    """Raise a 400 ApiError naming the first field of ``body`` that is not in ``allowed``."""
    allowed_fields = list(allowed)
    for name in body:
        if name not in allowed_fields:
            message = f"unknown field {name!r}. Allowed fields: {', '.join(allowed_fields)}"
            raise ApiError(400, "invalid_request", message)


def read_required_text(body: Mapping[str, object], name: str) -> str:
    """Return the string field ``name``, raising a 400 ApiError if it is missing or blank."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ApiError(400, "invalid_request", f"field {name} must be a non-empty string")
    return value


def read_resources(body: Mapping[str, object]) -> Resources:
    """Validate the ``resources`` field and return it as a new `Resources` value."""
    value = body.get("resources")
    if not isinstance(value, dict):
        message = f"field resources must be an object with {', '.join(RESOURCE_FIELDS)}"
        raise ApiError(400, "invalid_request", message)
    reject_unknown_fields(value, RESOURCE_FIELDS)
    amounts: dict[str, int] = {}
    for name in RESOURCE_FIELDS:
        amount = value.get(name)
        # bool is a subclass of int, but true is not a number of cores.
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            message = f"field resources.{name} must be a non-negative integer, got {amount!r}"
            raise ApiError(400, "invalid_request", message)
        amounts[name] = amount
    return Resources(
        cpu=amounts["cpu"],
        memory_gib=amounts["memory_gib"],
        gpu=amounts["gpu"],
        storage_gib=amounts["storage_gib"],
    )


def read_query_value(query: Mapping[str, list[str]], name: str) -> str | None:
    """Return the query parameter ``name``, or None if absent. Repeating it is a 400 ApiError."""
    values = query.get(name)
    if values is None:
        return None
    if len(values) > 1:
        message = f"query parameter {name} is given {len(values)} times. Give it once."
        raise ApiError(400, "invalid_request", message)
    return values[0]


def read_query_integer(
    query: Mapping[str, list[str]], name: str, default: int, maximum: int | None = None
) -> int:
    """Return the integer query parameter ``name``, from 1 to ``maximum`` if given."""
    text = read_query_value(query, name)
    if text is None:
        return default
    if _POSITIVE_INTEGER.fullmatch(text) and 1 <= int(text) <= (maximum or sys.maxsize):
        return int(text)
    allowed = "a positive integer" if maximum is None else f"an integer from 1 to {maximum}"
    message = f"query parameter {name} must be {allowed}, got {text!r}"
    raise ApiError(400, "invalid_request", message)


def build_page(items: Sequence[_T], query: Mapping[str, list[str]]) -> dict[str, object]:
    """Build the contract's listing reply for the page that ``page`` and ``per_page`` select."""
    page = read_query_integer(query, "page", 1)
    per_page = read_query_integer(query, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE)
    start = (page - 1) * per_page
    return {
        "items": list(items[start : start + per_page]),
        "page": page,
        "per_page": per_page,
        "total": len(items),
    }


def wait_until(deadline: float) -> None:
    """Sleep until `time.monotonic()` reaches `deadline`; return at once if it has.

    The stand-ins model a network latency this way: a request is handled when it arrives,
    and its reply waits for the rest of the latency. All stand-ins share one Python process,
    so handling each request after a full wait instead would add their CPU time, queued
    behind the GIL, to the latency of requests that arrive together, and only to those.
    """
    remaining = deadline - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def encode_error(status: int, code: str, message: str) -> bytes:
    """Encode the contract's error body."""
    return json.dumps({"error": {"code": code, "message": message}}).encode("utf-8")


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass
class _Fault:
    method: str
    path_contains: str
    status: int
    remaining: int
    body: str | None
    delay_seconds: float

    def build_response(self) -> _Response:
        if self.body is not None:
            return _Response(self.status, self.body.encode("utf-8"), _JSON_HEADERS)
        try:
            code = http.HTTPStatus(self.status).phrase.lower().replace(" ", "_").replace("-", "_")
        except ValueError:
            code = "error"
        message = (
            f"injected fault: status {self.status} for {self.method} requests"
            f" whose path contains {self.path_contains!r}"
        )
        return _Response(self.status, encode_error(self.status, code, message), _JSON_HEADERS)


@dataclass(frozen=True)
class _RouteMatch:
    route: Route
    site_key: str
    path_params: Mapping[str, str]


def _build_error_response(error: ApiError) -> _Response:
    body = encode_error(error.status, error.code, error.message)
    return _Response(error.status, body, {**_JSON_HEADERS, **error.headers})


class PlatformStandIn:
    """HTTP server on 127.0.0.1 that serves the platform REST contract for many sites.

    Each request meets any matching `fail_next` fault, else the bearer token check, routing
    and the handler; its reply leaves no sooner than ``latency_seconds`` after it arrived
    (see `wait_until`), and a fault's delay comes on top. ``calls`` counts every request
    whose method and path match a route, including requests that get a fault or a 401.
    """

    def __init__(
        self, *, token: str = "sandbox-token", latency_seconds: float = 0.0, port: int = 0
    ) -> None:
        if not token:
            raise ValueError("token must be a non-empty string")
        if latency_seconds < 0:
            raise ValueError(f"latency_seconds must be >= 0, got {latency_seconds}")
        if not 0 <= port <= 65535:
            raise ValueError(f"port must be from 0 to 65535, got {port}")
        self._token = token
        self._latency_seconds = latency_seconds
        self._port = port
        self._lock = threading.Lock()
        self._modeler = ModelerApi()
        self._routes: list[Route] = self._modeler.routes()
        # Imported here because the accounts module builds on the routing types above.
        from rpa.sandbox.accounts_api import AccountsApi

        self.accounts = AccountsApi(token)
        self._routes += self.accounts.routes()
        # MCM, and the sandbox's control route that ends a moto EMR cluster as a Spot loss.
        from rpa.sandbox.emr import EmrControlApi
        from rpa.sandbox.mcm_api import McmApi

        self.mcm = McmApi()
        self._routes += self.mcm.routes() + EmrControlApi().routes()
        self._calls: collections.Counter[tuple[str, str, str]] = collections.Counter()
        self._faults: list[_Fault] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> str:
        """Bind 127.0.0.1, serve from a daemon thread and return the base URL."""
        if self._server is not None:
            raise RuntimeError("the platform stand-in is already running")
        self._server = _Server(("127.0.0.1", self._port), self)
        # stop() waits up to one poll interval, and tests start and stop a server each.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.01},
            name="platform-stand-in",
            daemon=True,
        )
        self._thread.start()
        logger.info("platform stand-in listening on %s", self._base_url())
        return self._base_url()

    def stop(self) -> None:
        """Stop serving and close open connections. Does nothing when not running."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.shutdown()
        server.close_connections()
        server.server_close()
        thread.join()
        self._server = self._thread = None
        logger.info("platform stand-in stopped")

    def site_url(self, site_key: str) -> str:
        """Return the base URL of one site, without a trailing slash."""
        if not site_key:
            raise ValueError("site_key must be a non-empty string")
        return f"{self._base_url()}/{quote(site_key, safe='')}"

    @property
    def calls(self) -> collections.Counter[tuple[str, str, str]]:
        """Copy of the request count per (api, method, route template)."""
        with self._lock:
            return collections.Counter(self._calls)

    def reset_calls(self) -> None:
        """Set every request count back to zero."""
        with self._lock:
            self._calls.clear()

    def fail_next(
        self,
        *,
        method: str,
        path_contains: str,
        status: int,
        times: int = 1,
        body: str | None = None,
        delay_seconds: float = 0.0,
    ) -> None:
        """Reply to the next ``times`` matching requests with ``status`` after ``delay_seconds``.

        A request matches when its method equals ``method`` and its path and query contain
        ``path_contains``. The reply body is ``body`` as given, sent as application/json
        whether or not it parses, or else the contract's error JSON. Faults registered
        earlier are used first.
        """
        if not 200 <= status <= 599:
            raise ValueError(f"status must be from 200 to 599, got {status}")
        if times < 1:
            raise ValueError(f"times must be >= 1, got {times}")
        if delay_seconds < 0:
            raise ValueError(f"delay_seconds must be >= 0, got {delay_seconds}")
        fault = _Fault(method.upper(), path_contains, status, times, body, delay_seconds)
        with self._lock:
            self._faults.append(fault)

    def projects(self, site_key: str) -> list[Project]:
        """Return a copy of the site's projects in creation order."""
        with self._lock:
            return copy.deepcopy(list(self._modeler.site(site_key).projects.values()))

    def workspaces(self, site_key: str) -> list[Item]:
        """Return a copy of the site's workspaces in creation order."""
        with self._lock:
            return copy.deepcopy(list(self._modeler.site(site_key).workspaces.values()))

    def items(self, site_key: str, kind: ItemKind) -> list[Item]:
        """Return a copy of the site's items of one kind in creation order."""
        with self._lock:
            return copy.deepcopy(list(self._modeler.site(site_key).items(kind).values()))

    def deployments(self, site_key: str) -> list[Item]:
        """Return a copy of the site's deployments in creation order."""
        with self._lock:
            return copy.deepcopy(list(self._modeler.site(site_key).deployments.values()))

    def _base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the platform stand-in is not running. Call start() first.")
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def _respond(
        self, method: str, target: str, authorization: str | None, body: bytes
    ) -> _Response:
        """Build the response to one HTTP request. ``target`` is the path with its query."""
        arrived = time.monotonic()
        split_target = urlsplit(target)
        match = self._match_route(method, split_target.path)
        if match is not None:
            self._count_call(match.route)
        fault = self._take_fault(method, target)
        response = None if fault is not None else self._handle(
            method, split_target, match, authorization, body)
        wait_until(arrived + self._latency_seconds)
        if fault is not None:
            time.sleep(fault.delay_seconds)
            return fault.build_response()
        assert response is not None
        return response

    def _handle(self, method: str, split_target: SplitResult, match: _RouteMatch | None,
                authorization: str | None, body: bytes) -> _Response:
        try:
            if match is None or not match.route.public:
                self._check_token(authorization)
            if match is None:
                raise self._build_routing_error(method, split_target.path)
            query = parse_qs(split_target.query, keep_blank_values=True)
            request = Request(match.site_key, match.path_params, query, body, authorization)
            with self._lock:
                reply = match.route.handler(request)
                # Encode under the lock, because the payload is live state.
                payload = b"" if reply.payload is None else _encode_json(reply.payload)
        except ApiError as error:
            return _build_error_response(error)
        return _Response(reply.status, payload, _JSON_HEADERS if payload else {})

    def _match_route(self, method: str, path: str) -> _RouteMatch | None:
        site_path = _SITE_PATH.match(path)
        if site_path is None:
            return None
        for route in self._routes:
            route_match = route.pattern.match(site_path["route_path"])
            if route.method == method and route_match is not None:
                site_key = unquote(site_path["site_key"])
                return _RouteMatch(route, site_key, route_match.groupdict())
        return None

    def _count_call(self, route: Route) -> None:
        with self._lock:
            self._calls[(route.api, route.method, route.template)] += 1

    def _take_fault(self, method: str, target: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.method == method and fault.path_contains in target:
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _check_token(self, authorization: str | None) -> None:
        if authorization is None:
            message = "missing Authorization header. Send 'Authorization: Bearer <token>'."
            raise ApiError(401, "unauthorized", message, _BEARER_CHALLENGE)
        scheme, _, token = authorization.partition(" ")
        token_matches = secrets.compare_digest(token.strip().encode(), self._token.encode())
        if scheme.lower() != "bearer" or not token_matches:
            raise ApiError(401, "unauthorized", "invalid bearer token", _BEARER_CHALLENGE)

    def _build_routing_error(self, method: str, path: str) -> ApiError:
        site_path = _SITE_PATH.match(path)
        route_path = "" if site_path is None else site_path["route_path"]
        allowed = sorted(
            {route.method for route in self._routes if route.pattern.match(route_path)}
        )
        if allowed:
            message = f"method {method} is not allowed on {path}. Allowed: {', '.join(allowed)}"
            return ApiError(405, "method_not_allowed", message, {"Allow": ", ".join(allowed)})
        return ApiError(404, "not_found", f"no route for {method} {path}")


def _encode_json(payload: object) -> bytes:
    # Korean and other non-ASCII text travels as UTF-8, not as \u escapes.
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], stand_in: PlatformStandIn) -> None:
        self.stand_in = stand_in
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _RequestHandler)

    def close_connections(self) -> None:
        """Shut down kept-alive connections, so clients see the server go away."""
        with self.connections_lock:
            for connection in self.connections:
                # OSError means that the client has already closed the connection.
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            # A client that timed out during an injected delay closes its end first.
            logger.debug("connection from %s closed early: %s", client_address, error)
        else:
            logger.exception("platform stand-in failed on a request from %s", client_address)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in separate writes. With Nagle's algorithm on, the body of a
    # kept-alive connection waits for the client's delayed ACK, about 40 ms on Linux.
    disable_nagle_algorithm = True
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        with self.server.connections_lock:
            self.server.connections.discard(self.connection)
        super().finish()

    def do_GET(self) -> None:
        self._handle()

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s %s", self.address_string(), format % args)

    def _handle(self) -> None:
        try:
            body = self._read_body()
            response = self.server.stand_in._respond(
                self.command, self.path, self.headers.get("Authorization"), body
            )
        except ApiError as error:
            self.close_connection = True
            response = _build_error_response(error)
        except Exception:
            logger.exception("platform stand-in failed on %s %s", self.command, self.path)
            self.close_connection = True
            failure = ApiError(500, "internal_error", "the platform stand-in failed. See its log.")
            response = _build_error_response(failure)
        self._send(response)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            message = "chunked request bodies are not supported. Send Content-Length."
            raise ApiError(400, "invalid_request", message)
        length_text = self.headers.get("Content-Length", "0")
        if not re.fullmatch(r"[0-9]{1,12}", length_text):
            raise ApiError(400, "invalid_request", f"invalid Content-Length {length_text!r}")
        return self.rfile.read(int(length_text))

    def _send(self, response: _Response) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        if response.status not in (204, 304):
            self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if response.status not in (204, 304):
            self.wfile.write(response.body)
