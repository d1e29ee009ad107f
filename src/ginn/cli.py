"""The ``ginn`` console script: one subcommand per pipeline stage.

Subcommands are imported lazily, so ``ginn qc`` never pays for importing torch, and a stage module
stays the single place that defines its command.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import sys
from collections.abc import Iterator

import click

from .errors import GinnError

# command name -> "module:attribute" of its click command, in pipeline order.
COMMANDS: dict[str, str] = {
    "simulate": "ginn.simulate:simulate_command",
    "qc": "ginn.qc:qc_command",
    "map-genes": "ginn.genes:map_genes_command",
    "prune": "ginn.prune:prune_command",
    "prepare": "ginn.prepare:prepare_command",
    "tune": "ginn.train:tune_command",
    "train": "ginn.train:train_command",
    "pairtest": "ginn.pairtest:pairtest_command",
    "score": "ginn.score:score_command",
    "test": "ginn.permtest:test_command",
    "baselines": "ginn.baselines:baselines_command",
    "evaluate": "ginn.evaluate:evaluate_command",
    "replicate": "ginn.replicate:replicate_command",
    "report": "ginn.report:report_command",
    "run": "ginn.run:run_command",
    "bgs": "ginn.bgs.cli:bgs_group",
}


# Subcommands that call no BLAS: numpy is imported for them with OpenBLAS's pool at one thread, since the
# pool's threads spin for a while after they start (60 ms of CPU, a tenth of `ginn qc` on a 2-core machine).
NO_BLAS = {"qc"}


@contextlib.contextmanager
def _one_blas_thread(wanted: bool) -> Iterator[None]:
    """OpenBLAS's pool at one thread for the numpy imported inside, unless numpy is already in or the user
    chose a size; the environment is as it was afterwards (a later ``threadpool_limits`` can still grow it)."""
    if not wanted or "numpy" in sys.modules or "OPENBLAS_NUM_THREADS" in os.environ:
        yield
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"
    try:
        yield
    finally:
        del os.environ["OPENBLAS_NUM_THREADS"]


class LazyGroup(click.Group):
    """A group whose subcommands (name -> "module:attribute") are imported only when used."""

    def __init__(self, *args, lazy_commands: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy_commands = lazy_commands

    def list_commands(self, ctx: click.Context) -> list[str]:
        return [name for name in self.lazy_commands if self.get_command(ctx, name) is not None]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = self.lazy_commands.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            with _one_blas_thread(name in NO_BLAS):
                module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                return None  # stage not part of this build
            raise
        return getattr(module, attr)

    def invoke(self, ctx: click.Context):
        """Bad input, whether a GinnError or a flag click rejects, is one stderr line and exit code 2."""
        try:
            return super().invoke(ctx)
        except (GinnError, click.UsageError) as exc:
            where = " ".join(filter(None, [ctx.command_path, ctx.invoked_subcommand]))
            message = exc.format_message() if isinstance(exc, click.UsageError) else str(exc)
            click.echo(f"{where}: error: {' '.join(message.split())}", err=True)
            sys.exit(2)


def _show_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """``ginn --version``, as click.version_option prints it, reading the version only when asked."""
    if value and not ctx.resilient_parsing:
        from . import __version__

        click.echo(f"ginn, version {__version__}")
        ctx.exit()


@click.group("ginn", cls=LazyGroup, lazy_commands=COMMANDS, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_show_version,
              help="Show the version and exit.")
@click.option("-v", "--verbose", count=True, help="More log output on stderr (-vv for debug).")
@click.option("-q", "--quiet", is_flag=True, help="Only warnings and errors on stderr.")
def cli(verbose: int, quiet: bool) -> None:
    """Gene-gene interactions with interpretable neural networks (ginn).

    Each subcommand is one pipeline stage over files on disk; `ginn run` runs them all.
    """
    level = logging.WARNING if quiet else (logging.DEBUG if verbose > 1 else logging.INFO)
    logging.basicConfig(level=level, format="ginn: %(message)s", stream=sys.stderr, force=True)


def main() -> None:
    cli(prog_name="ginn")


if __name__ == "__main__":
    main()
