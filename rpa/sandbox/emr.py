"""EMR in the sandbox: moto's clusters, made a little closer to EMR, and a Spot loss on demand.

moto (5.2) starts a cluster with any release label and instance type, and never loses a
Spot node.
The sandbox's boto3 session therefore checks RunJobFlow's release label and instance types
against EMR's own ListReleaseLabels and ListSupportedInstanceTypes, which moto answers, and
rejects the others with ValidationException, as EMR does. A control route on the
platform stand-in ends a cluster as a Spot loss would, so that the mcm job's recovery can be
tried in a running sandbox:

    python -m rpa.sandbox.emr interrupt j-XXXXXXXXXXXXX

The route changes moto's state in place. It works only when moto runs in the same process
as the platform stand-in, which `rpa sandbox up` and the test fixtures do.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any, Final, NoReturn

import boto3
import botocore.exceptions
import requests

from rpa.sandbox.platform import ApiError, Reply, Request, Route

# The AWS account id that moto gives every request.
MOTO_ACCOUNT_ID: Final = "123456789012"
# The message EMR sends when a cluster's Spot master node is reclaimed, as the mcm job reads it.
SPOT_LOSS_MESSAGE: Final = "The master node was terminated"


def register_checks(session: boto3.Session, endpoint_url: str | None) -> None:
    """Make RunJobFlow through `session` reject an unknown release label or instance type."""
    checker = boto3.Session(
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
        region_name=session.region_name).client("emr", endpoint_url=endpoint_url)

    def check(params: dict[str, Any], **_: Any) -> None:
        check_instance_types(checker, params)

    session.events.register("before-parameter-build.emr.RunJobFlow", check)


def check_instance_types(client: Any, params: dict[str, Any]) -> None:
    """Raise EMR's ValidationException for an unknown release or an unusable instance type."""
    release = params.get("ReleaseLabel", "")
    if release not in _read_all(client.list_release_labels, "ReleaseLabels", "NextToken"):
        _reject(f"The release label {release!r} is not supported.")
    pages = _read_all(lambda **token: client.list_supported_instance_types(
        ReleaseLabel=release, **token), "SupportedInstanceTypes", "Marker")
    supported = {item["Type"] for item in pages}
    for group in params.get("Instances", {}).get("InstanceGroups", []):
        instance_type = group.get("InstanceType")
        if instance_type not in supported:
            _reject(f"Instance type '{instance_type}' is not supported with release "
                    f"label {release}.")


def _read_all(operation: Any, key: str, token: str) -> list[Any]:
    """Read every page of an EMR listing that has no boto3 paginator."""
    items: list[Any] = []
    page: dict[str, Any] = {}
    while True:
        page = operation(**({token: page[token]} if page.get(token) else {}))
        items += page.get(key, [])
        if not page.get(token):
            return items


def _reject(message: str) -> NoReturn:
    error = {"Error": {"Code": "ValidationException", "Message": message},
             "ResponseMetadata": {"HTTPStatusCode": 400}}
    raise botocore.exceptions.ClientError(error, "RunJobFlow")  # type: ignore[arg-type]


def find_moto_cluster(cluster_id: str) -> Any:
    """Return moto's cluster of this process with the id, in whichever region it is.

    moto's server takes an EMR request's region from the host name, so clusters made through
    the sandbox's endpoint on 127.0.0.1 land in moto's default region, whatever the client
    asked for. Raises KeyError when no region has the cluster.
    """
    from moto.emr.models import emr_backends

    for backend in emr_backends[MOTO_ACCOUNT_ID].values():
        if cluster_id in backend.clusters:
            return backend.clusters[cluster_id]
    raise KeyError(cluster_id)


def end_as_spot_loss(cluster_id: str) -> dict[str, str]:
    """End a moto cluster of this process as EMR ends one whose Spot master was reclaimed."""
    cluster = find_moto_cluster(cluster_id)
    cluster.state = "TERMINATED_WITH_ERRORS"
    # moto reads this optional attribute for the reason's message and sends no code.
    cluster.last_state_change_reason = SPOT_LOSS_MESSAGE
    cluster.end_datetime = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return {"cluster_id": cluster_id, "state": cluster.state, "message": SPOT_LOSS_MESSAGE}


class EmrControlApi:
    """The sandbox's control route: `POST /api/v1/sandbox/emr/clusters/{cluster_id}/interrupt`.

    Any site key works in front of it.
    """

    def routes(self) -> list[Route]:
        return [Route("sandbox", "POST", "/api/v1/sandbox/emr/clusters/{cluster_id}/interrupt",
                      self._interrupt)]

    def _interrupt(self, request: Request) -> Reply:
        cluster_id = request.path_params["cluster_id"]
        try:
            return Reply(200, end_as_spot_loss(cluster_id))
        except KeyError:
            raise ApiError(404, "not_found", f"cluster {cluster_id} not found in moto's EMR"
                           ) from None


def main(argv: list[str] | None = None) -> int:
    from rpa.sandbox.runtime import TOKEN, read_running

    parser = argparse.ArgumentParser(prog="python -m rpa.sandbox.emr",
                                     description="Control EMR in the running sandbox.")
    commands = parser.add_subparsers(dest="command", required=True)
    interrupt = commands.add_parser("interrupt", help="end a cluster as a Spot loss does")
    interrupt.add_argument("cluster_id")
    interrupt.add_argument("--dir", type=Path,
                           default=Path(os.environ.get("RPA_SANDBOX_DIR", ".rpa-sandbox")),
                           help="state folder (default: RPA_SANDBOX_DIR or ./.rpa-sandbox)")
    args = parser.parse_args(argv)
    running = read_running(args.dir)
    if running is None:
        print(f"error: no sandbox is up in {args.dir}; start one with `rpa sandbox up`",
              file=sys.stderr)
        return 1
    reply = requests.post(
        f"{running.platform_url}/aws/api/v1/sandbox/emr/clusters/{args.cluster_id}/interrupt",
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    print(reply.text)
    return 0 if reply.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
