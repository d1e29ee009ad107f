"""Checks made before any work starts, so bad input fails fast with one line and leaves nothing behind.

* :func:`check_cohort_params` checks a run's cohorts: the discovery cohort is simulated or given as exactly
  one genotype input (bfile, pfile or bgen [+ sample]) with its phenotype table; so is a replication cohort.
* :func:`check_table_columns` checks that the phenotype and covariate tables hold the columns named.
* :func:`check_plan` parses every stage argv of a ``ginn run`` with the stage's own click options
  (types, ranges, choices: the same checks as on the command line) and checks that every input no
  earlier stage makes exists, before the first stage runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from .contract.params import GENOTYPE_KINDS, PARAM_BY_NAME
from .errors import GinnError
from .files import first_repeated
from .genotypes import check_min_info
from .run_params import pheno_names

Genotypes = tuple[str, str, "str | None"]  # (bfile | pfile | bgen, prefix or file, .sample file)


def _flag(name: str) -> str:
    return PARAM_BY_NAME[name].flag


def _genotype_param(params: Mapping[str, Any], prefix: str, cohort: str) -> Genotypes | None:
    """The one genotype input given for a cohort (None: none given)."""
    given = [kind for kind in GENOTYPE_KINDS if params[prefix + kind]]
    if len(given) > 1:
        raise GinnError(_flag(prefix + given[1]), f"give one genotype input of the {cohort} cohort, not "
                        + " and ".join(_flag(prefix + kind) for kind in given))
    sample = params[prefix + "sample"]
    if sample and given != ["bgen"]:
        raise GinnError(_flag(prefix + "sample"), f"only goes with {_flag(prefix + 'bgen')}")
    return (given[0], str(params[prefix + given[0]]), sample) if given else None


def check_cohort_params(params: Mapping[str, Any]) -> tuple[Genotypes | None, Genotypes | None]:
    """The discovery cohort's genotype input (None: simulated) and the replication cohort's (None: none)."""
    discovery = _genotype_param(params, "", "discovery")
    if params["simulate"]:
        if discovery is not None:
            raise GinnError("--simulate", f"simulates the discovery cohort; leave out {_flag(discovery[0])}")
    elif discovery is None:
        raise GinnError("--bfile/--pfile/--bgen", "give the discovery cohort (--bfile PREFIX, --pfile PREFIX or "
                                                  "--bgen FILE, with --pheno FILE) or --simulate")
    elif not params["pheno"]:
        raise GinnError("--pheno", "give the discovery cohort's phenotype table (--pheno FILE)")
    check_min_info(discovery[0] if discovery else None, params["min_info"])
    replication = _genotype_param(params, "repl_", "replication")
    if replication is not None and not params["repl_pheno"]:
        raise GinnError("--repl-pheno", f"the replication cohort ({_flag('repl_' + replication[0])}) needs its "
                                        "phenotype table")
    if params["simulate"] and pheno_names(params) != ["y"]:
        raise GinnError("--pheno-names", "a simulated cohort has one phenotype, y")
    repeated = first_repeated(pheno_names(params))
    if repeated is not None:
        raise GinnError("--pheno-names", f"names phenotype {repeated} twice")
    # covariate names without a table (or the reverse) would leave the phenotype unadjusted, or fail late
    tables = [name for name in ("covar", "repl_covar") if params[name]]
    if params["covar_name"] and not tables:
        raise GinnError("--covar-name", "names covariates, but no --covar (or --repl-covar) table is given")
    if tables and not params["covar_name"]:
        raise GinnError(_flag(tables[0]), "needs --covar-name (which columns to regress out)")
    if tables:
        from .prepare import covariate_names

        covariate_names(params[tables[0]], params["covar_name"])   # a name given twice
    return discovery, replication


def check_table_columns(params: Mapping[str, Any]) -> None:
    """The user's phenotype and covariate tables are read as `prepare` reads them, the columns the run names
    included: a typo would otherwise surface only at the first `prepare`, after QC, gene mapping and pruning
    of the whole cohort. (A table an earlier stage makes, such as a simulated cohort's phenotypes, is not
    there yet.)"""
    from .prepare import covariate_names, read_sample_table

    for name, what in (("pheno", "phenotype"), ("repl_pheno", "phenotype"), ("covar", "covariate"),
                       ("repl_covar", "covariate")):
        if params[name] and Path(params[name]).is_file() and not (name == "pheno" and params["simulate"]):
            columns = pheno_names(params) if what == "phenotype" else covariate_names(params[name], params["covar_name"])
            read_sample_table(params[name], columns, what)


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
