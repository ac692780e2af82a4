"""IAM policy documents of the account identities, built from the templates in rpa/templates.

Every document is checked here before any AWS call: it must be well-formed, and its S3
resources must name the account's own bucket exactly, so no template edit can grant one
account another account's data.
"""

from __future__ import annotations

import json
from importlib import resources
from string import Template
from typing import Any

BUCKET_POLICY_TEMPLATE = "iam-bucket-policy.json"
TRUST_POLICY_TEMPLATE = "iam-trust-policy.json"
# Name of the inline policy this tool keeps on each account identity.
BUCKET_POLICY_NAME = "rpa-own-bucket"
POLICY_VERSION = "2012-10-17"


class PolicyError(ValueError):
    """A policy document is malformed or grants more than the account's own bucket."""


def bucket_policy(bucket: str) -> dict[str, Any]:
    """Return the inline policy that grants access to `bucket` and nothing else."""
    document = _render(BUCKET_POLICY_TEMPLATE, bucket=bucket)
    check_bucket_policy(document, bucket)
    return document


def trust_policy(principal: str) -> dict[str, Any]:
    document = _render(TRUST_POLICY_TEMPLATE, trust_principal=principal)
    _check_shape(document)
    return document


def canonical(document: Any) -> str:
    """Return a form of a policy in which equal documents compare equal as strings.

    Key order does not matter; a single statement or action equals a list of one.
    """
    return json.dumps(_normalise(document), sort_keys=True, separators=(",", ":"))


def check_bucket_policy(document: Any, bucket: str) -> None:
    """Raise PolicyError unless every statement is limited to `bucket` and its objects."""
    _check_shape(document)
    bucket_arn = f"arn:aws:s3:::{bucket}"
    for index, statement in enumerate(_as_list(document["Statement"])):
        where = f"statement {index}"
        if "NotResource" in statement or "NotAction" in statement:
            raise PolicyError(f"{where}: NotResource and NotAction are not allowed")
        resources = _as_list(statement.get("Resource"))
        if not resources:
            raise PolicyError(f"{where}: Resource is missing")
        for resource in resources:
            # Wildcards after "<bucket>/" stay inside the bucket; anywhere else they could
            # match another account's bucket.
            inside = isinstance(resource, str) and (
                resource == bucket_arn or resource.startswith(bucket_arn + "/"))
            if not inside:
                raise PolicyError(f"{where}: resource {resource!r} is not the bucket {bucket!r} "
                                  "or an object path inside it")


def _check_shape(document: Any) -> None:
    if not isinstance(document, dict) or document.get("Version") != POLICY_VERSION:
        raise PolicyError(f"a policy must be an object with Version {POLICY_VERSION!r}")
    statements = document.get("Statement")
    if not statements or not all(isinstance(item, dict) for item in _as_list(statements)):
        raise PolicyError("a policy needs at least one statement object")
    for index, statement in enumerate(_as_list(statements)):
        if statement.get("Effect") not in ("Allow", "Deny"):
            raise PolicyError(f"statement {index}: Effect must be Allow or Deny")
        if not statement.get("Action") and not statement.get("NotAction"):
            raise PolicyError(f"statement {index}: Action is missing")


def _render(name: str, **values: str) -> dict[str, Any]:
    text = (resources.files("rpa") / "templates" / name).read_text(encoding="utf-8")
    try:
        rendered: dict[str, Any] = json.loads(Template(text).substitute(values))
    except (KeyError, ValueError) as err:
        raise PolicyError(f"template {name} cannot be rendered: {err}") from err
    return rendered


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _normalise(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _normalise(item) for key, item in value.items()}
    if isinstance(value, list):
        items = [_normalise(item) for item in value]
        return items[0] if len(items) == 1 else items
    return value
