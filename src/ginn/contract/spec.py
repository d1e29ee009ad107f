"""The vocabulary of the stage contract: a flag of a stage command, and how one becomes a click option.

A :class:`Flag` says everything a stage command's option is: name, type, default, range, choices and
help. :func:`click_options` turns a stage's flags into the decorators of its click command, so a flag is
written once, in :mod:`ginn.contract.stages`, and the command, ``ginn run``, the Nextflow params, schema
and module scripts are all derived from it.
"""

from __future__ import annotations

import functools
import importlib
import math
import os
import re
from dataclasses import dataclass
from typing import Any

import click

from ..errors import GinnError

# A torch device: the resolver (ginn.device) and nf-schema both accept exactly these.
DEVICE_PATTERN = r"^(auto|cpu|cuda(:[0-9]+)?)$"

# JSON-schema type of each flag kind (what nf-schema and `ginn run --config` check).
SCHEMA_TYPE = {"text": "string", "grid": "string", "choice": "string", "device": "string", "path": "string", "file": "string", "dir": "string",
               "int": "integer", "float": "number", "bool": "boolean"}


class _Finite:
    """Float flags refuse nan and inf: click reads both as numbers, and nan passes any range check
    (every comparison with it is false); no stage has a use for either."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number.", param, ctx)
        return number


class FiniteFloat(_Finite, click.types.FloatParamType):
    pass


class FiniteFloatRange(_Finite, click.FloatRange):
    pass


class StrengthGrid(click.ParamType):
    """Comma-separated finite numbers >= 0, none twice (a grid of penalty strengths), as a list of floats.
    A click type, so that `ginn run` refuses a bad grid with every other flag before its first stage."""

    name = "grid"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> list[float]:
        if isinstance(value, list):
            return value
        try:
            values = [float(v) for v in str(value).split(",") if v.strip()]
        except ValueError:
            self.fail(f"expected comma-separated numbers, not {value!r}.", param, ctx)
        if not values or min(values) < 0 or not all(math.isfinite(v) for v in values):
            self.fail(f"expected one or more finite numbers >= 0, not {value!r}.", param, ctx)
        from ..files import first_repeated

        repeated = first_repeated(values)
        if repeated is not None:          # a typo for another strength, and one setting trained twice
            self.fail(f"lists {repeated:g} twice in {value!r}.", param, ctx)
        return values


@dataclass(frozen=True)
class Flag:
    """One option of a stage command.

    ``kind``: text, int, float, bool (an on/off switch), choice, device (a torch device), grid (comma-separated
    strengths, :class:`StrengthGrid`), or a filesystem path: path (file or
    folder), file, dir. ``exists`` asks click to check a path exists. ``minimum``/``maximum`` bound ints
    and floats (``open_min``/``open_max`` exclude the bound). ``dest`` is the Python argument name when it
    differs from the flag's. ``negatable`` makes a bool ``--x/--no-x``. ``argument`` is a variadic
    positional argument (``nargs=-1``) instead of an option.
    """

    name: str
    kind: str
    help: str
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    open_min: bool = False
    open_max: bool = False
    multiple: bool = False
    exists: bool = False
    dest: str | None = None
    negatable: bool = False
    show_default: bool | str = True
    argument: bool = False
    into: str | None = None  # flags with the same ``into`` reach the command as one argument (see click_options)
    writes: bool = False  # a file the command writes besides --out (so not one of its inputs)
    at_most_cpus: bool = False  # also bounded by this machine's CPU count (checked by click, not in the schema)

    @property
    def option(self) -> str:
        return "--" + self.name

    @property
    def python_name(self) -> str:
        return self.dest or self.name.replace("-", "_")

    @property
    def schema_type(self) -> str:
        return SCHEMA_TYPE[self.kind]

    def click_type(self) -> click.ParamType | type | None:
        if self.kind == "choice":
            return click.Choice(self.choices)
        if self.at_most_cpus:
            return click.IntRange(self.minimum, os.cpu_count() or 1)
        if self.kind in ("int", "float") and (self.minimum is not None or self.maximum is not None):
            ranged = click.IntRange if self.kind == "int" else FiniteFloatRange
            return ranged(self.minimum, self.maximum, min_open=self.open_min, max_open=self.open_max)
        if self.kind == "device":
            return DeviceType()
        if self.kind == "grid":
            return StrengthGrid()
        if self.kind == "path":
            return click.Path(exists=self.exists)
        if self.kind == "file":
            return click.Path(exists=self.exists, dir_okay=False)
        if self.kind == "dir":
            return click.Path(exists=self.exists, file_okay=False)
        return {"text": str, "int": int, "float": FiniteFloat(), "bool": None}[self.kind]

    def click_decorator(self):
        if self.argument:
            return click.argument(self.python_name, nargs=-1, type=self.click_type())
        names = [self.option + (f"/--no-{self.name}" if self.negatable else ""), self.python_name]
        kwargs: dict[str, Any] = {"help": self.help, "required": self.required, "multiple": self.multiple}
        if self.kind == "bool":
            kwargs["is_flag"] = True
            kwargs["default"] = bool(self.default)
        else:
            kwargs["type"] = self.click_type()
            # no default at all for a required flag: click >= 8.3 takes an explicit None as a value given
            if not self.required:
                kwargs["default"] = () if self.multiple and self.default is None else self.default
        if self.default is not None and not self.required:
            kwargs["show_default"] = self.show_default
        return click.option(*names, **kwargs)


def _input_paths(flags: tuple[Flag, ...], groups: dict[str, list[str]], kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """(flag, path) of what a command reads: its path flags but --out and those it writes, and the paths
    a combined argument names (the genotype input, by its ``as_params``)."""
    paths = []
    for flag in flags:
        if flag.kind in ("path", "file", "dir") and flag.name != "out" and not flag.writes:
            value = kwargs.get(flag.python_name)
            label = flag.name.upper() if flag.argument else flag.option
            paths += [(label, v) for v in (value if isinstance(value, tuple) else (value,)) if v]
    for name in groups:
        paths += [(f"--{kind}", v) for kind, v in kwargs[name].as_params().items() if v]
    return paths


class DeviceType(click.ParamType):
    """A torch device name, checked by its form (whether CUDA is there is the resolver's question)."""

    name = "device"

    def convert(self, value, param, ctx):
        if not re.match(DEVICE_PATTERN, str(value)):
            raise GinnError("--device", f"expected cpu, cuda, cuda:N or auto, not {value!r}")
        return str(value)


def click_options(flags: tuple[Flag, ...], combiners: dict[str, str] | None = None):
    """A decorator adding ``flags`` to a click command, in order (the --help order).

    Flags with ``into=NAME`` are passed to the command as one argument NAME, built from their values (in
    flag order) by ``combiners[NAME]`` ("module:function", imported when the command runs).
    """
    groups: dict[str, list[str]] = {}
    for flag in flags:
        if flag.into:
            groups.setdefault(flag.into, []).append(flag.python_name)
    out = next((flag for flag in flags if flag.name == "out"), None)

    def decorate(func):
        @functools.wraps(func)
        def command(*args, **kwargs):
            for name, members in groups.items():
                module, attr = combiners[name].split(":")
                kwargs[name] = getattr(importlib.import_module(module), attr)(*(kwargs.pop(m) for m in members))
            if out is not None and kwargs.get(out.python_name):
                # Before any work: the output can be written and replaces nothing of the user's (a file
                # output is a 'file' flag, a folder output a 'dir' flag, anything else a prefix), least of
                # all one of the command's own inputs.
                from ..files import check_not_an_input, check_output_path

                folder = {"dir": True, "file": False}.get(out.kind)
                check_output_path(kwargs[out.python_name], out.option, folder=folder)
                check_not_an_input(kwargs[out.python_name], out.option, _input_paths(flags, groups, kwargs),
                                   folder=bool(folder))
            return func(*args, **kwargs)

        for flag in reversed(flags):
            command = flag.click_decorator()(command)
        return command
    return decorate
