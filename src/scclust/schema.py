"""Validate pipeline parameters against ``nextflow_schema.json`` (nf-core / nf-schema 2.x format).

The nf-schema plugin cannot be installed where the pipeline runs, so the check is done here with
:mod:`jsonschema`: the grouped nf-core schema is flattened into one object schema and every problem is
reported as a single-line :class:`~scclust.errors.UserError` naming the parameter.

Values are checked as Nextflow hands them over, strictly: ``--n_neighbors 15`` arrives as the integer 15
and passes, a quoted ``"15"`` from a YAML params file is a string and fails, as it does with nf-schema.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from scclust.errors import UserError

__all__ = ["flatten_schema", "load_schema", "schema_defaults", "validate_params"]

# Options of `nextflow` / `nextflow run` that users pass by mistake with two hyphens. Nextflow 25.04 keeps
# `--resume` as `resume` and turns `--with-trace` into `withTrace`, so both spellings are listed.
NEXTFLOW_OPTIONS = frozenset(
    {
        "ansi-log",
        "bg",
        "c",
        "cache",
        "config",
        "dump-channels",
        "dump-hashes",
        "e",
        "entry",
        "latest",
        "log",
        "main-script",
        "name",
        "offline",
        "params-file",
        "plugins",
        "preview",
        "profile",
        "q",
        "quiet",
        "r",
        "resume",
        "revision",
        "stub",
        "stub-run",
        "w",
        "with-apptainer",
        "with-charliecloud",
        "with-conda",
        "with-dag",
        "with-docker",
        "with-notification",
        "with-podman",
        "with-report",
        "with-singularity",
        "with-spack",
        "with-timeline",
        "with-tower",
        "with-trace",
        "with-wave",
        "with-weblog",
        "without-docker",
        "without-podman",
        "work-dir",
    }
)

_VALUE_LIMIT = 60  # longest value quoted in a message
_JSON_TYPES = {
    "string": "a string",
    "number": "a number",
    "integer": "an integer",
    "boolean": "true or false",
    "object": "a mapping",
    "array": "a list",
    "null": "null",
}


def load_schema(path: str | Path) -> dict[str, Any]:
    """Read a ``nextflow_schema.json``.

    Parameters
    ----------
    path
        Path of the schema file.

    Returns
    -------
    The parsed schema.

    Raises
    ------
    UserError
        When the file cannot be read or is not a JSON object.

    """
    path = Path(path)
    try:
        schema = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UserError(f"cannot read the parameter schema {path}: {exc.strerror or exc}") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"the parameter schema {path} is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    if not isinstance(schema, dict):
        raise UserError(f"the parameter schema {path} must hold a JSON object, got {type(schema).__name__}")
    return schema


def _groups(schema: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """Parameter groups of ``schema``: those ``allOf`` references in order, then any others, then the root."""
    defs: Mapping[str, Any] = schema.get("$defs") or schema.get("definitions") or {}
    ordered: list[str] = []
    for item in schema.get("allOf", []):
        ref = item.get("$ref", "") if isinstance(item, Mapping) else ""
        name = ref.rsplit("/", 1)[-1]
        if ref.startswith(("#/$defs/", "#/definitions/")) and name in defs and name not in ordered:
            ordered.append(name)
    ordered += [name for name in defs if name not in ordered]
    return [defs[name] for name in ordered] + [schema]


def flatten_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Merge the properties and required lists of every group of an nf-core schema into one object schema.

    Parameters
    ----------
    schema
        A grouped nf-core schema (``$defs`` groups referenced from ``allOf``).

    Returns
    -------
    A Draft 2020-12 object schema with all parameters under ``properties`` (in group order) and all required
    names under ``required``. It has no ``additionalProperties``: unknown names are reported separately.

    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for group in _groups(schema):
        properties.update(group.get("properties") or {})
        required += [name for name in group.get("required") or [] if name not in required]
    return {
        "$schema": schema.get("$schema", "https://json-schema.org/draft/2020-12/schema"),
        "type": "object",
        "properties": properties,
        "required": required,
    }


def schema_defaults(schema: Mapping[str, Any]) -> dict[str, Any]:
    """Default value of every parameter that declares one, from all groups.

    Parameters
    ----------
    schema
        A grouped nf-core schema.

    Returns
    -------
    ``{parameter: default}`` in schema order (``None`` where the default is ``null``).

    """
    return {
        name: prop["default"]
        for name, prop in flatten_schema(schema)["properties"].items()
        if isinstance(prop, Mapping) and "default" in prop
    }


def _show(value: Any) -> str:
    """A value as the user wrote it (JSON spelling: true, null, "text"), cut to one short line."""
    try:
        text = json.dumps(value, default=str, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    text = " ".join(text.split())
    return text if len(text) <= _VALUE_LIMIT else text[: _VALUE_LIMIT - 3] + "..."


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _camel_to_snake(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).replace("-", "_").lower()


def _unknown_message(name: str, known: list[str]) -> str:
    if name in NEXTFLOW_OPTIONS or _camel_to_snake(name).replace("_", "-") in NEXTFLOW_OPTIONS:
        option = _camel_to_snake(name).replace("_", "-")
        return f"--{name} is a Nextflow option, not a pipeline parameter: pass it with one hyphen (-{option})"
    snake = _camel_to_snake(name)
    if snake != name and snake in known:
        return (
            f"unknown parameter --{name} (did you mean --{snake}? pipeline parameters are spelled with "
            f"underscores; Nextflow reads --{snake.replace('_', '-')} as {name})"
        )
    close = difflib.get_close_matches(name, known, n=1, cutoff=0.6)
    if close:
        return f"unknown parameter --{name} (did you mean --{close[0]}?)"
    return f"unknown parameter --{name}; the parameters are listed in nextflow_schema.json"


def _type_phrase(types: Any) -> str:
    names = [types] if isinstance(types, str) else list(types)
    if len(names) > 1 and "integer" in names and "number" in names:
        names.remove("integer")
    words = [_JSON_TYPES.get(t, t) for t in names]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def _rank(error: ValidationError) -> tuple[int, int, str, str]:
    """Order the errors of one parameter: the value before its entries, its type before other keywords."""
    return (
        len(error.path),
        0 if error.validator == "type" else 1,
        str(error.validator),
        str(list(error.path)),
    )


def _value_message(name: str, error: ValidationError, prop: Mapping[str, Any]) -> str:
    """One line naming the parameter, its value and the rule it breaks."""
    value = error.instance
    shown = _show(value)
    rule = error.validator_value
    # a problem inside a list (e.g. one entry of --resolutions) names the entry
    where = f"--{name}" + "".join(f"[{p}]" for p in list(error.path)[1:])
    if error.validator == "type":
        return f"{where} must be {_type_phrase(rule)}, got {shown} ({_json_type(value)})"
    if prop.get("errorMessage"):
        return f"{where}: {shown} is invalid: {prop['errorMessage']}"
    match error.validator:
        case "minimum":
            rule_text = f"{shown} is less than the minimum of {rule}"
        case "maximum":
            rule_text = f"{shown} is greater than the maximum of {rule}"
        case "exclusiveMinimum":
            rule_text = f"{shown} must be greater than {rule}"
        case "exclusiveMaximum":
            rule_text = f"{shown} must be less than {rule}"
        case "enum":
            rule_text = f"{shown} is not one of {', '.join(_show(v) for v in rule)}"
        case "pattern":
            rule_text = f"{shown} does not match {rule}"
        case _:
            rule_text = " ".join(error.message.split())
    return f"{where}: {rule_text}"


def validate_params(params: Mapping[str, Any], schema: dict[str, Any]) -> None:
    """Check pipeline parameters against an nf-core ``nextflow_schema.json``.

    The first problem found, in this fixed order, is raised: unknown parameters (alphabetically), then
    missing required parameters, then invalid values (both in schema order; the type of a value is checked
    before its range, enum or pattern).

    Parameters
    ----------
    params
        The parameters as Nextflow passes them (``params`` as JSON): CLI values arrive typed (``--seed 3`` is
        an integer, ``--resolutions 0.2,0.5`` a string), ``-params-file`` values as written in the file.
        Keys starting with ``_`` are ignored; ``null`` means "not set" (as with nf-schema), so a required
        parameter that is ``null`` or ``""`` is missing.
    schema
        The grouped nf-core schema (see :func:`load_schema`).

    Raises
    ------
    UserError
        One line naming the parameter, e.g. ``unknown parameter --resolution (did you mean --resolutions?)``,
        ``missing required parameter --outdir: ...`` or ``--n_neighbors: 1 is less than the minimum of 2``.

    """
    flat = flatten_schema(schema)
    properties: dict[str, Any] = flat["properties"]
    known = list(properties)

    for name in sorted(str(k) for k in params):
        if name not in properties and not name.startswith("_"):
            raise UserError(_unknown_message(name, known))

    for name in flat["required"]:
        if params.get(name) is None or params.get(name) == "":
            description = properties.get(name, {}).get("description", "")
            raise UserError(f"missing required parameter --{name}: {description}".rstrip(": "))

    values = {k: v for k, v in params.items() if k in properties and v is not None}
    validator = Draft202012Validator({"type": "object", "properties": properties})
    by_name: dict[str, list[ValidationError]] = {}
    for error in validator.iter_errors(values):
        if error.path:
            by_name.setdefault(str(error.path[0]), []).append(error)
    for name in known:
        if name in by_name:
            error = min(by_name[name], key=_rank)
            raise UserError(_value_message(name, error, properties[name]))
