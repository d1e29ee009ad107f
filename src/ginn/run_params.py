"""``ginn run``'s parameters: defaults from the stage contract, then a YAML params file, then flags.

The parameters themselves (names, types, defaults, ranges) are :data:`ginn.contract.params.PARAMS`, the same
list Nextflow's params block and nextflow_schema.json are generated from; values are checked here the way
nf-schema checks them for Nextflow.
"""

from __future__ import annotations

import difflib

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import yaml

from .contract.params import PARAM_BY_NAME, PARAMS, Param
from .errors import GinnError


def default_params() -> dict[str, Any]:
    return {p.name: p.default for p in PARAMS}


def _coerce(param: Param, value: Any, source: str) -> Any:
    """Check one value against its parameter's type, choices and range."""
    if value is None:
        return None
    kinds = {"string": (str,), "integer": (int,), "number": (int, float), "boolean": (bool,)}[param.type]
    if param.name == "pheno_names" and isinstance(value, list):
        value = ",".join(str(v) for v in value)
    if param.type == "string" and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, kinds) or (isinstance(value, bool) and param.type != "boolean"):
        raise GinnError(source, f"{param.name} must be of type {param.type}, got {value!r}")
    if param.choices and value not in param.choices:
        raise GinnError(source, f"{param.name} must be one of {', '.join(param.choices)}, got {value!r}")
    if param.pattern and not re.match(param.pattern, value):
        raise GinnError(source, f"{param.name} must match {param.pattern}, got {value!r}")
    low, high = param.minimum, param.maximum
    if low is not None and (value <= low if param.exclusive_minimum else value < low):
        raise GinnError(source, f"{param.name} ({param.flag}) must be {'>' if param.exclusive_minimum else '>='} {low}, "
                                f"got {value!r}")
    if high is not None and (value >= high if param.exclusive_maximum else value > high):
        raise GinnError(source, f"{param.name} ({param.flag}) must be {'<' if param.exclusive_maximum else '<='} {high}, "
                                f"got {value!r}")
    return float(value) if param.type == "number" else value


def load_params(config: str | Path | None, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Defaults, then the YAML params file, then flags given on the command line."""
    params = default_params()
    if config is not None:
        try:
            loaded = yaml.safe_load(Path(config).read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise GinnError(config, f"cannot read the params file: {exc}") from None
        if not isinstance(loaded, dict):
            raise GinnError(config, "a params file is a YAML mapping of parameter: value")
        unknown = sorted(set(loaded) - set(PARAM_BY_NAME))
        if unknown:
            hints = [f"{name} (did you mean {close[0]}?)" if (close := difflib.get_close_matches(name, PARAM_BY_NAME, 1))
                     else name for name in unknown]
            raise GinnError(config, f"unknown parameter(s): {', '.join(hints)}")
        params.update({k: _coerce(PARAM_BY_NAME[k], v, str(config)) for k, v in loaded.items()})
    params.update({k: _coerce(PARAM_BY_NAME[k], v, PARAM_BY_NAME[k].flag) for k, v in overrides.items()
                   if v is not None})
    return params


def pheno_names(params: Mapping[str, Any]) -> list[str]:
    return [name.strip() for name in str(params["pheno_names"]).split(",") if name.strip()]


def _param_option(param: Param):
    if param.type == "boolean":
        return click.option(f"{param.flag}/--no-{param.flag[2:]}", param.name, default=None, help=param.help)
    kind = {"string": str, "integer": int, "number": float}[param.type]
    if param.choices:
        kind = click.Choice(param.choices)
    shown = f" [default: {param.default}]" if param.default not in (None, "") else ""
    return click.option(param.flag, param.name, type=kind, default=None, help=param.help + shown)


def param_options(func):
    """One ``ginn run`` flag per parameter (default None: the params file or the default decides)."""
    for param in reversed(PARAMS):
        func = _param_option(param)(func)
    return func
