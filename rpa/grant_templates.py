"""Templates of the records that `rpa trial grant` writes for an account.

A template is a YAML file `<name>.yaml` with an optional `description` (ko and en), a
`modeler` section shaped like a `modeler/<account>` record and an optional `mcm` section
shaped like an `mcm/<account>` record. Text values may hold `{account}` (trial_user07) and
`{account_dns}` (trial-user07, the form S3 and EKS names need); a literal brace is written
twice. RPA_GRANT_MODELER_SITE and RPA_GRANT_MCM_SITE replace the sections' `site` when set.

The templates live in the package (rpa/templates/grant/, also reachable as templates/ at the
repository root) unless RPA_GRANT_TEMPLATE_DIR names another folder.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from rpa.inventory import McmRecord, ModelerRecord
from rpa.settings import Settings

TEMPLATE_SUFFIX = ".yaml"
SECTIONS = ("description", "modeler", "mcm")
PLACEHOLDERS = ("account", "account_dns")
# Renders and validates each template for this account, so that a broken template is
# reported before any account is touched.
SAMPLE_ACCOUNT = "trial_user01"


class TemplateError(Exception):
    """A template is missing or invalid; the message names the file and the field."""


@dataclass(frozen=True)
class Template:
    """A loaded template: its name, where it came from and its raw sections."""

    name: str
    source: str
    description: dict[str, str]
    modeler: dict[str, Any]
    mcm: dict[str, Any] | None

    def render(self, account: str, settings: Settings) -> tuple[dict[str, Any],
                                                               dict[str, Any] | None]:
        """Return the modeler and mcm records of `account`, validated, as JSON-ready dicts.

        Raises TemplateError naming the field when a rendered record is invalid.
        """
        values = {"account": account, "account_dns": account_dns(account)}
        modeler = _fill(self.modeler, values, f"{self.source}: modeler")
        if settings.grant_modeler_site:
            modeler["site"] = settings.grant_modeler_site
        mcm = None
        if self.mcm is not None:
            mcm = _fill(self.mcm, values, f"{self.source}: mcm")
            if settings.grant_mcm_site:
                mcm["site"] = settings.grant_mcm_site
        _validate(ModelerRecord, modeler, f"{self.source}: modeler")
        if mcm is not None:
            _validate(McmRecord, mcm, f"{self.source}: mcm")
        return modeler, mcm


def account_dns(account: str) -> str:
    """Return the account name as DNS and S3 names need it: lower case, "_" as "-"."""
    return account.lower().replace("_", "-")


def template_folder(settings: Settings) -> Path:
    if settings.grant_template_dir is not None:
        return settings.grant_template_dir
    return Path(str(resources.files("rpa") / "templates" / "grant"))


def list_templates(settings: Settings) -> list[str]:
    folder = template_folder(settings)
    if not folder.is_dir():
        return []
    return sorted(path.stem for path in folder.glob(f"*{TEMPLATE_SUFFIX}"))


def load_template(name: str, settings: Settings) -> Template:
    """Read and check the template `name`; raises TemplateError when it is missing or invalid."""
    folder = template_folder(settings)
    path = folder / f"{name}{TEMPLATE_SUFFIX}"
    if "/" in name or name.startswith(".") or not path.is_file():
        known = ", ".join(list_templates(settings)) or "none"
        raise TemplateError(f"template {name!r} not found in {folder} (templates there: "
                            f"{known}); set RPA_GRANT_TEMPLATE_DIR for another folder")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise TemplateError(f"template {path} cannot be read: {err}") from None
    template = _parse(name, str(path), data)
    template.render(SAMPLE_ACCOUNT, settings)
    return template


def _parse(name: str, source: str, data: Any) -> Template:
    if not isinstance(data, dict) or not isinstance(data.get("modeler"), dict):
        raise TemplateError(f"template {source} must be a mapping with a modeler section")
    unknown = sorted(set(data) - set(SECTIONS))
    if unknown:
        raise TemplateError(f"template {source} has unknown sections {unknown}; expected "
                            f"{list(SECTIONS)}")
    mcm = data.get("mcm")
    if mcm is not None and not isinstance(mcm, dict):
        raise TemplateError(f"template {source}: mcm must be a mapping")
    description = data.get("description") or {}
    if isinstance(description, str):
        description = {"ko": description, "en": description}
    if not isinstance(description, dict):
        raise TemplateError(f"template {source}: description must be text or ko/en texts")
    return Template(name, source, {str(k): str(v) for k, v in description.items()},
                    data["modeler"], mcm)


def _fill(value: Any, values: dict[str, str], where: str) -> Any:
    """Replace the placeholders in every text of `value`, recursively, in a copy."""
    if isinstance(value, dict):
        return {key: _fill(item, values, f"{where}.{key}") for key, item in value.items()}
    if isinstance(value, list):
        return [_fill(item, values, f"{where}[{index}]") for index, item in enumerate(value)]
    if not isinstance(value, str):
        return value
    try:
        fields = [field for _, field, _, _ in string.Formatter().parse(value)
                  if field is not None]
        unknown = [field for field in fields if field not in PLACEHOLDERS]
        if unknown:
            raise TemplateError(f"template {where}: unknown placeholder {{{unknown[0]}}} in "
                                f"{value!r}; use {{account}} or {{account_dns}}")
        return value.format_map(values)
    except ValueError as err:
        raise TemplateError(f"template {where}: {value!r} is not a valid text with "
                            f"placeholders ({err}); write a literal brace twice") from None


def _validate(model: type[ModelerRecord] | type[McmRecord], record: dict[str, Any],
              where: str) -> None:
    try:
        model.model_validate(record)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']) or 'record'}: {item['msg']}"
            for item in err.errors(include_url=False))
        raise TemplateError(f"template {where} is invalid: {problems}") from None
