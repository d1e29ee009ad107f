"""Checks made before any work starts, so bad input fails fast with one line and leaves nothing behind.

* :func:`check_plan` parses every stage argv of a ``ginn run`` with the stage's own click options
  (types, ranges, choices: the same checks as on the command line) and checks that every input no
  earlier stage makes exists, before the first stage runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .errors import GinnError


def check_plan(calls: list[Any], input_paths) -> None:
    """Before any stage runs: every stage's argv parses (types, ranges, choices) and every input that
    no earlier stage makes exists. ``input_paths(call)`` lists the files a call reads."""
    from .cli import cli

    made: set[str] = set()
    for call in calls:
        argv = call.argv
        command = cli.get_command(click.Context(cli), argv[0])
        if command is None:
            raise GinnError(None, f"this ginn build has no `ginn {argv[0]}` command")
        try:
            command.make_context(f"ginn {argv[0]}", list(argv[1:]), resilient_parsing=False)
        except click.ClickException as exc:
            raise GinnError(None, f"stage {call.module} {call.label}: {exc.format_message()} "
                                  f"(from the run's params)") from None
        for path in input_paths(call):
            if str(path) not in made and not _made_inside(path, made) and not Path(path).exists():
                raise GinnError(path, f"input of stage {call.module} not found")
        made.update(str(p) for p in call.outputs())


def _made_inside(path: Path, made: set[str]) -> bool:
    return any(str(path).startswith(m.rstrip("/") + "/") for m in made)
