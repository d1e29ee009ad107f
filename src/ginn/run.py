"""``ginn run``: the whole gene-interaction workflow in one process, without a workflow engine.

The parameters are :mod:`ginn.run_params`, the stage calls :func:`ginn.plan.plan` (each with the argv its
Nextflow module runs, both rendered from the stage contract); this module executes them. A finished stage
leaves a stamp in ``DIR/.ginn-run/``: the hash of its argv and of its inputs' contents; a later run with the
same stamp and outputs in place skips the stage.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import click
from tqdm import tqdm

from . import files
from .errors import GinnError
from .files import atomic_outputs, write_json
from .plan import StageCall, plan
from .run_params import load_params, param_options
from .runguard import checksum, output_checksums, output_lock, remove_stale_temporaries
from .threads import threads_default, threads_option
from .validation import check_plan, check_table_columns

log = logging.getLogger(__name__)


# ---- running with stamps ---------------------------------------------------------------------------

def _input_paths(call: StageCall) -> list[Path]:
    """Files a call reads: its declared inputs and what it reads without naming it (``depends``)."""
    paths: list[Path] = list(call.depends)
    for key, value in call.inputs.items():
        if value is None or key == "run":
            continue
        paths.extend(Path(item) for item in (value if isinstance(value, list) else [value]))
    return paths


def stamp_of(call: StageCall) -> dict[str, Any]:
    """What a stage's result is a function of: its argv and its inputs' contents."""
    inputs = {}
    for path in _input_paths(call):
        if not path.exists():
            raise GinnError(path, f"input of stage {call.module} not found")
        inputs[str(path)] = checksum(path)
    return {"argv": call.argv, "inputs": inputs, "outputs_prefix": call.outputs_prefix}


def _stamp_path(outdir: Path, call: StageCall) -> Path:
    return outdir / ".ginn-run" / call.module / f"{call.label.replace(' ', '_')}.json"


def is_current(outdir: Path, call: StageCall, stamp: Mapping[str, Any]) -> bool:
    """Same argv and input contents as the stamped run, and its outputs unchanged since (not damaged)."""
    path = _stamp_path(outdir, call)
    if not path.exists() or not all(out.exists() for out in call.outputs()):
        return False
    try:
        recorded = json.loads(path.read_text())
    except json.JSONDecodeError:
        return False
    outputs = recorded.pop("outputs", None)
    return recorded == json.loads(json.dumps(stamp)) and outputs == output_checksums(call.outputs())


def record_stamp(outdir: Path, call: StageCall, stamp: Mapping[str, Any] | None = None) -> None:
    """Mark a call finished: a later run with the same argv and input contents reuses its outputs."""
    with atomic_outputs() as out:
        write_json(out.file(_stamp_path(outdir, call)),
                   {**(stamp or stamp_of(call)), "outputs": output_checksums(call.outputs())})


@contextlib.contextmanager
def _quiet_stages(verbose: bool) -> Iterator[None]:
    """Keep one progress display: stages' INFO logs and tqdm bars are hidden unless -vv."""
    if verbose:
        yield
        return
    logger, level, env = logging.getLogger("ginn"), logging.getLogger("ginn").level, os.environ.get("TQDM_DISABLE")
    logger.setLevel(logging.WARNING)
    os.environ["TQDM_DISABLE"] = "1"
    try:
        yield
    finally:
        logger.setLevel(level)
        if env is None:
            os.environ.pop("TQDM_DISABLE", None)
        else:
            os.environ["TQDM_DISABLE"] = env


def invoke_stage(argv: list[str]) -> None:
    """Run one ``ginn`` subcommand in this process, with exactly the argv Nextflow would use."""
    from .cli import cli

    command = cli.get_command(click.Context(cli), argv[0])
    if command is None:
        raise GinnError(None, f"this ginn build has no `ginn {argv[0]}` command")
    try:
        command.main(args=argv[1:], prog_name=f"ginn {argv[0]}", standalone_mode=False)
    except click.ClickException as exc:
        raise GinnError(None, f"ginn {' '.join(argv)}: {exc.format_message()}") from None


def run_calls(calls: list[StageCall], outdir: Path, verbose: bool = False) -> list[tuple[str, str]]:
    """Run (or reuse) stage calls in order; returns (stage label, "ran" | "reused") per call."""
    done: list[tuple[str, str]] = []
    with _quiet_stages(verbose):
        bar = tqdm(calls, desc="ginn run", unit="stage", disable=None, dynamic_ncols=True)  # a terminal only
        for call in bar:
            name = f"{call.module} {call.label}".strip()
            bar.set_postfix_str(name)
            stamp = stamp_of(call)
            if is_current(outdir, call, stamp):
                done.append((name, "reused"))
                continue
            files.RUN_CONTEXT["argv"] = ["ginn", *call.argv]  # provenance records the stage's own command
            try:
                invoke_stage(call.argv)
            except GinnError as exc:
                raise GinnError(exc.path, f"stage {name}: {exc.problem}") from None
            finally:
                files.RUN_CONTEXT.pop("argv")
            record_stamp(outdir, call, stamp)
            done.append((name, "ran"))
    return done


def remove_stale(outdir: Path, calls: list[StageCall]) -> list[Path]:
    """Delete outputs an earlier run made for calls this plan no longer has (e.g. other permutation chunks).

    The report reads whole stage folders, so outputs of a different chunking, phenotype list or baseline
    list would otherwise show up in it. Only outputs recorded by a stamp are touched.
    """
    current = {_stamp_path(outdir, call) for call in calls}
    removed = []
    for stamp in sorted((outdir / ".ginn-run").glob("*/*.json")):
        if stamp in current:
            continue
        try:
            prefix = json.loads(stamp.read_text())["outputs_prefix"]
        except (json.JSONDecodeError, KeyError):
            prefix = None
        stage_dir = outdir / stamp.parent.name
        for path in sorted(stage_dir.glob("*")) if prefix else []:
            if path.name.startswith(prefix):
                shutil.rmtree(path) if path.is_dir() else path.unlink()
                removed.append(path)
        stamp.unlink()
    for path in removed:
        log.info("run: removed %s (not part of this run's plan)", path)
    return removed


def run_workflow(params: Mapping[str, Any], outdir: Path, verbose: bool = False) -> list[tuple[str, str]]:
    """Plan and check the run, then, holding the folder's lock, drop temporaries of killed stages and
    outputs of calls it no longer has, and run (or reuse) every stage."""
    calls = plan(params, outdir)
    check_plan(calls, _input_paths)
    check_table_columns(params)
    with output_lock(outdir):
        remove_stale_temporaries(outdir)
        remove_stale(outdir, calls)
        return run_calls(calls, outdir, verbose)


@click.command("run")
@click.option("--config", "config", type=click.Path(dir_okay=False), default=None,
              help="YAML params file (keys = the flags below in snake_case = Nextflow params).")
@threads_option
@param_options
@click.pass_context
def run_command(ctx: click.Context, config, threads, **overrides):
    """Run the gene-interaction workflow in one process: (simulate) -> qc -> map-genes -> prune -> prepare ->
    tune -> train (main, interaction: observed + permutations) -> score -> test -> (baselines, replicate) -> report.

    Each stage writes into OUTDIR/<stage>/ with the argv the Nextflow module uses; a stage whose argv and
    input contents are unchanged since its last success is reused. Flags override the params file.
    """
    params = load_params(config, overrides)
    if params["workflow"] != "gene_interactions":
        raise GinnError(config or "--workflow", f"`ginn run` runs gene_interactions; run {params['workflow']} "
                        "with `ginn bgs` or the Nextflow pipeline")
    outdir = Path(params["outdir"])
    files.RUN_CONTEXT["config"] = {"path": config, "contents": Path(config).read_text() if config else None,
                                   "params": params}
    root_level = logging.getLogger().getEffectiveLevel()
    try:
        with threads_default(threads):
            done = run_workflow(params, outdir, verbose=root_level <= logging.DEBUG)
    finally:
        files.RUN_CONTEXT.clear()
    ran = sum(1 for _, how in done if how == "ran")
    log.info("run: %d stages ran, %d reused -> %s (report: %s)", ran, len(done) - ran, outdir,
             outdir / "report" / "report.html")
