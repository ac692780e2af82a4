"""The CloudZ account API, where the platform logins and their passwords live.

A password is changed as its user would change it: a session is created with the current
password, then the change is posted with that session. Neither call is retried, because
both change state; passwords appear in request bodies only, never in messages or logs.
"""

from __future__ import annotations

from urllib.parse import quote

from rpa.clients import errors
from rpa.clients.http import JsonApi, require_fields

SERVICE = "cloudz"


class CloudzClient:
    def __init__(self, api: JsonApi) -> None:
        self.api = api

    def create_session(self, username: str, password: str) -> str:
        """Log in; raises Unauthorized when CloudZ rejects the password."""
        reply = self.api.request("POST", "/api/v1/sessions", idempotent=False,
                                 body={"username": username, "password": password})
        item = require_fields(reply, {"session": str}, where="cloudz POST /api/v1/sessions",
                              service=SERVICE)
        session: str = item["session"]
        return session

    def accepts(self, username: str, password: str) -> bool:
        """True when CloudZ accepts `password` for `username` (it opens a session to check)."""
        try:
            self.create_session(username, password)
        except errors.Unauthorized:
            return False
        return True

    def change_password(self, username: str, *, current: str, new: str) -> None:
        session = self.create_session(username, current)
        self.api.request("POST", f"/api/v1/users/{quote(username, safe='')}/password",
                         idempotent=False, body={"new_password": new},
                         headers={"Authorization": f"Bearer {session}"})
