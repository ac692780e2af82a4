"""EMR in the sandbox: moto's clusters, made a little closer to EMR, and a Spot loss on demand.

moto starts any instance type and never loses a Spot node. The sandbox's boto3 session
therefore checks RunJobFlow's instance types against EMR's own ListSupportedInstanceTypes
and rejects the others with ValidationException, as EMR does. A control route on the
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
from pathlib import Path
from typing import Any, Final, NoReturn

import boto3
import botocore.exceptions
import requests

from rpa.sandbox.platform import ApiError, Reply, Request, Route

# The AWS account id that moto gives every request.
MOTO_ACCOUNT_ID: Final = "123456789012"
DEFAULT_REGION: Final = "ap-northeast-2"
# What EMR reports when a cluster's Spot master node is reclaimed; the mcm job reads it.
SPOT_LOSS_CODE: Final = "INSTANCE_FAILURE"
SPOT_LOSS_MESSAGE: Final = "The master node was terminated"


def register_checks(session: boto3.Session, endpoint_url: str | None) -> None:
    """Make RunJobFlow through `session` reject what EMR rejects and moto accepts."""
    checker = boto3.Session(
        aws_access_key_id="sandbox", aws_secret_access_key="sandbox",
        region_name=session.region_name).client("emr", endpoint_url=endpoint_url)

    def check(params: dict[str, Any], **_: Any) -> None:
        check_instance_types(checker, params)

    session.events.register("before-parameter-build.emr.RunJobFlow", check)


def check_instance_types(client: Any, params: dict[str, Any]) -> None:
    """Raise EMR's ValidationException for an instance type that the release cannot use."""
    release = params.get("ReleaseLabel", "")
    try:
        pages = client.get_paginator("list_supported_instance_types").paginate(
            ReleaseLabel=release)
        supported = {item["Type"] for page in pages for item in page["SupportedInstanceTypes"]}
    except botocore.exceptions.ClientError:
        # moto has no list for an unknown release label; EMR rejects such a label.
        _reject(f"The release label {release!r} is not supported.")
    for group in params.get("Instances", {}).get("InstanceGroups", []):
        instance_type = group.get("InstanceType")
        if instance_type not in supported:
            _reject(f"Instance type '{instance_type}' is not supported with release "
                    f"label {release}.")


def _reject(message: str) -> NoReturn:
    error = {"Error": {"Code": "ValidationException", "Message": message},
             "ResponseMetadata": {"HTTPStatusCode": 400}}
    raise botocore.exceptions.ClientError(error, "RunJobFlow")  # type: ignore[arg-type]


def end_as_spot_loss(cluster_id: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """End a moto cluster of this process as EMR ends one whose Spot master was reclaimed."""
    from moto.emr.models import emr_backends

    cluster = emr_backends[MOTO_ACCOUNT_ID][region].clusters.get(cluster_id)
    if cluster is None:
        raise KeyError(cluster_id)
    cluster.state = "TERMINATED_WITH_ERRORS"
    # moto sends only this message; it has no field for the reason's code.
    cluster.last_state_change_reason = SPOT_LOSS_MESSAGE
    cluster.end_datetime = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    return {"cluster_id": cluster_id, "state": cluster.state, "message": SPOT_LOSS_MESSAGE}


class EmrControlApi:
    """The sandbox's control route: `POST /api/v1/sandbox/emr/clusters/{cluster_id}/interrupt`.

    Any site key works in front of it. The optional body `{"region": "..."}` names moto's
    region, ap-northeast-2 by default.
    """

    def routes(self) -> list[Route]:
        return [Route("sandbox", "POST", "/api/v1/sandbox/emr/clusters/{cluster_id}/interrupt",
                      self._interrupt)]

    def _interrupt(self, request: Request) -> Reply:
        body = request.parse_json_object() if request.body else {}
        region = body.get("region", DEFAULT_REGION)
        cluster_id = request.path_params["cluster_id"]
        try:
            return Reply(200, end_as_spot_loss(cluster_id, str(region)))
        except KeyError:
            message = f"cluster {cluster_id} not found in moto's EMR in {region}"
            raise ApiError(404, "not_found", message) from None


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
        print(f"error: no sandbox is up in {args.dir}; start one with `rpa sandbox up`")
        return 1
    reply = requests.post(
        f"{running.platform_url}/aws/api/v1/sandbox/emr/clusters/{args.cluster_id}/interrupt",
        headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    print(reply.text)
    return 0 if reply.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
