"""`ginn run`: the whole workflow in one process, reusing stages whose argv and inputs did not change."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from _pipeline_data import TINY, dosage_cohort, imputed_dosages, run_before, simulated_cohort, tiny_plan, tiny_run_dir
from ginn.dataset import Dataset
from ginn.cli import cli
from ginn.errors import GinnError
from ginn.contract.params import PARAMS
from ginn.contract.stages import SEED
from ginn.plan import permutation_ranges, plan
from ginn.run import remove_stale, stamp_of
from ginn.run_params import load_params

REPO = Path(__file__).resolve().parents[1]
SPLITS = [(1, 1), (10, 3), (100, 4), (7, 7), (5, 9), (0, 4)]


def _params_file(tmp_path, **changes):
    path = tmp_path / "params.yaml"
    plan_params = tiny_plan()[0].params  # TINY plus the replication cohort
    values = {k: v for k, v in plan_params.items() if v != next(p.default for p in PARAMS if p.name == k)}
    path.write_text(yaml.safe_dump(values | {"outdir": str(tiny_run_dir())} | changes))
    return path


def _run(path):
    return CliRunner().invoke(cli, ["run", "--config", str(path)], prog_name="ginn", catch_exceptions=False)


def test_run_writes_every_stage_then_reuses_them(tmp_path):
    result = _run(_params_file(tmp_path))
    assert result.exit_code == 0, result.output
    for call in tiny_plan():
        for output in call.outputs():
            assert output.exists(), f"{call.module}: {output} missing"
    assert "<html" in (tiny_run_dir() / "report" / "report.html").read_text().lower()

    stamps = sorted((tiny_run_dir() / ".ginn-run").rglob("*.json"))
    assert len(stamps) == len(tiny_plan())
    before = {p: p.stat().st_mtime_ns for call in tiny_plan() for p in call.outputs()}
    assert _run(_params_file(tmp_path)).exit_code == 0
    assert before == {p: p.stat().st_mtime_ns for call in tiny_plan() for p in call.outputs()}, \
        "an unchanged run rewrote outputs"
    assert "stage/s" not in result.stderr and "s/stage" not in result.stderr, "a progress bar reached a log file"


def test_changed_param_reruns_only_the_stages_it_reaches(tmp_path):
    assert _run(_params_file(tmp_path)).exit_code == 0
    before = {call.module: call.output().stat().st_mtime_ns for call in tiny_plan()}
    assert _run(_params_file(tmp_path, fdr=0.5)).exit_code == 0
    after = {call.module: call.output().stat().st_mtime_ns for call in tiny_plan(TINY | {"fdr": 0.5})}
    rerun = {module for module in before if before[module] != after[module]}
    assert rerun == {"test", "baselines", "replicate", "report"}   # fdr decides the calls, then the candidates
    assert _run(_params_file(tmp_path)).exit_code == 0  # back to the shared tiny run's params


def test_stamp_follows_input_content(tmp_path):
    call = run_before("test")
    copies = []
    for source in call.inputs["scores"]:
        shutil.copy(source, tmp_path / source.name)
        copies.append(tmp_path / source.name)
    call.inputs["scores"] = copies
    first = stamp_of(call)
    assert stamp_of(call) == first
    copies[0].write_text(copies[0].read_text() + "\n")
    assert stamp_of(call) != first
    assert json.loads(json.dumps(first))["argv"][0] == "test"


def test_flags_override_the_params_file(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("members: 3\npheno_names: [HDL, LDL]\n")
    params = load_params(path, {"members": 7, "seed": None})
    assert params["members"] == 7 and params["pheno_names"] == "HDL,LDL" and params["seed"] == SEED  # stages' default


@pytest.mark.parametrize("content, problem", [
    ("membrs: 3\n", "unknown parameter(s): membrs (did you mean members?)"),
    ("members: many\n", "members must be of type integer, got 'many'"),
    ("gene_layer: cnn\n", "gene_layer must be one of mlp, linear, got 'cnn'"),
    ("- a\n- b\n", "a params file is a YAML mapping of parameter: value"),
])
def test_bad_params_file_is_one_line_error(tmp_path, content, problem):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    result = CliRunner().invoke(cli, ["run", "--config", str(path), "--outdir", str(tmp_path / "out")],
                                prog_name="ginn")
    assert result.exit_code == 2
    assert result.output.strip() == f"ginn run: error: {path}: {problem}"
    assert not (tmp_path / "out").exists()


def test_missing_cohort_is_one_line_naming_the_flag(tmp_path):
    result = CliRunner().invoke(cli, ["run", "--outdir", str(tmp_path / "out")], prog_name="ginn")
    assert result.exit_code == 2
    assert result.output.strip() == ("ginn run: error: --bfile/--pfile/--bgen: give the discovery cohort (--bfile "
                                     "PREFIX, --pfile PREFIX or --bgen FILE, with --pheno FILE) or --simulate")
    with pytest.raises(GinnError, match="--pheno FILE"):
        plan(load_params(None, {"bfile": "cohort"}), tmp_path)


@pytest.mark.parametrize("values, problem", [
    ({"bfile": "c", "pfile": "c", "pheno": "p"}, "--pfile: give one genotype input of the discovery cohort, not "
                                                 "--bfile and --pfile"),
    ({"pfile": "c", "bgen": "c.bgen", "pheno": "p"}, "--bgen: give one genotype input of the discovery cohort, not "
                                                     "--pfile and --bgen"),
    ({"pfile": "c", "sample": "c.sample", "pheno": "p"}, "--sample: only goes with --bgen"),
    ({"bgen": "c.bgen"}, "--pheno: give the discovery cohort's phenotype table (--pheno FILE)"),
    ({"simulate": True, "pfile": "c"}, "--simulate: simulates the discovery cohort; leave out --pfile"),
    ({"pfile": "c", "pheno": "p", "min_info": 0.4}, "--min-info: needs genotype probabilities (--bgen); other "
                                                    "inputs carry no INFO score"),
    ({"simulate": True, "repl_bfile": "r", "repl_bgen": "r.bgen", "repl_pheno": "p"},
     "--repl-bgen: give one genotype input of the replication cohort, not --repl-bfile and --repl-bgen"),
    ({"simulate": True, "repl_pfile": "r"}, "--repl-pheno: the replication cohort (--repl-pfile) needs its "
                                            "phenotype table"),
    ({"simulate": True, "repl_bfile": "r", "repl_sample": "r.sample", "repl_pheno": "p"},
     "--repl-sample: only goes with --repl-bgen"),
])
def test_genotype_inputs_are_checked_before_any_stage(tmp_path, values, problem):
    """Exactly one genotype input per cohort (a .sample only with a BGEN): one line, exit 2, nothing written."""
    config = tmp_path / "params.yaml"
    config.write_text(yaml.safe_dump(values | {"outdir": str(tmp_path / "out")}))
    result = CliRunner().invoke(cli, ["run", "--config", str(config)], prog_name="ginn")
    assert result.exit_code == 2
    assert result.output.strip() == f"ginn run: error: {problem}"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("n, chunks", SPLITS)
def test_permutation_ranges_cover_each_permutation_once(n, chunks):
    ranges = permutation_ranges(n, chunks)
    covered = [k for r in ranges for k in range(int(r.split("-")[0]), int(r.split("-")[1]) + 1)]
    assert covered == list(range(1, n + 1))
    assert len(ranges) == min(chunks, n)
    sizes = {int(r.split("-")[1]) - int(r.split("-")[0]) + 1 for r in ranges}
    assert not sizes or max(sizes) - min(sizes) <= 1


def test_nextflow_permutation_split_equals_ginn_run(tmp_path):
    """Run the workflow's own Groovy permutationRanges (Groovy ships in the language-server jar)."""
    from _language_server import language_server_jar

    source = (REPO / "workflows" / "gene_interactions.nf").read_text()
    function = re.search(r"^def permutationRanges\(n, chunks\) \{\n.*?^\}\n", source, re.M | re.S).group(0)
    script = tmp_path / "ranges.groovy"
    script.write_text(function + "println(groovy.json.JsonOutput.toJson(["
                      + ", ".join(f"permutationRanges({n}, {c})" for n, c in SPLITS) + "]))\n")
    result = subprocess.run(["java", "-cp", str(language_server_jar()), "groovy.ui.GroovyMain", str(script)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == [permutation_ranges(n, c) for n, c in SPLITS]


def test_outputs_of_calls_no_longer_planned_are_removed(tmp_path):
    """A run with 2 chunks after a run with 1: the 1-chunk permutation outputs must not reach the report."""
    params = TINY | {"permutations": 2, "permutation_chunks": 2}
    old = next(c for c in plan(TINY, tmp_path) if c.module == "score" and c.meta["chunk"] == "perm-1-2")
    kept = next(c for c in plan(params, tmp_path) if c.module == "score" and c.meta["chunk"] == "observed")
    for call in (old, kept):
        call.out_dir.mkdir(parents=True, exist_ok=True)
        for name in (f"{call.outputs_prefix}scores.tsv", f"{call.outputs_prefix}scores.main.tsv"):
            (call.out_dir / name).write_text("x\n")
        stamp = tmp_path / ".ginn-run" / "score" / f"{call.label.replace(' ', '_')}.json"
        stamp.parent.mkdir(parents=True, exist_ok=True)
        stamp.write_text(json.dumps({"outputs_prefix": call.outputs_prefix}))
    removed = remove_stale(tmp_path, plan(params, tmp_path))
    assert sorted(p.name for p in removed) == ["y.perm-1-2.scores.main.tsv", "y.perm-1-2.scores.tsv"]
    assert sorted(p.name for p in (tmp_path / "score").iterdir()) == ["y.observed.scores.main.tsv",
                                                                      "y.observed.scores.tsv"]


def test_failing_stage_is_one_line_error_naming_the_stage(tmp_path, qc_fileset):
    pheno = tmp_path / "pheno.tsv"
    fam = (qc_fileset.parent / f"{qc_fileset.name}.fam").read_text().split("\n")
    pheno.write_text("FID IID HDL\n" + "".join(f"{line.split()[0]} {line.split()[1]} 1.0\n" for line in fam if line))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["run", "--bfile", str(qc_fileset), "--pheno", str(pheno), "--pheno-names", "HDL",
                                      "--outdir", str(out)], prog_name="ginn")   # prepare: HDL is constant
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if "error" in line]
    assert len(lines) == 1 and lines[0].startswith("ginn run: error: ") and "stage " in lines[0], result.output
    failed = lines[0].split("stage ")[1].split(":")[0].split()[0]
    assert not list((out / ".ginn-run").glob(f"{failed}/*.json")), "a failed stage must not be stamped"


@pytest.mark.parametrize("kind", ["pfile", "bgen"])
def test_run_keeps_dosages_from_pgen_and_bgen_to_the_dataset(tmp_path, kind):
    """The discovery and replication cohorts given as imputed dosages (.pgen, or BGEN + .sample with an INFO
    filter): qc writes a .pgen, the later stages read it with --pfile, and the prepared dataset holds the
    dosages themselves, not hard calls."""
    simulated = simulated_cohort()
    genotypes = dosage_cohort(kind)
    replication = {f"repl_{key}": value for key, value in genotypes.items()}
    small = {key: TINY[key] for key in ("pcs", "folds", "l1_grid", "members", "predictor_hidden", "max_epochs",
                                        "patience")}
    out = tmp_path / "run"
    config = tmp_path / "params.yaml"
    config.write_text(yaml.safe_dump({
        **genotypes, **replication, **small, "pheno": f"{simulated}.pheno.tsv", "genes": f"{simulated}.genes.tsv",
        "repl_pheno": f"{simulated}.pheno.tsv", "permutations": 0, "pairtest_members": 1, "outdir": str(out),
        **({"min_info": 0.3} if kind == "bgen" else {})}))
    result = _run(config)
    assert result.exit_code == 0, result.output

    assert sorted(p.name for p in (out / "qc").glob("imputed.passed.*") if p.suffix in (".bed", ".pgen")) == \
        ["imputed.passed.pgen"]
    summary = json.loads((out / "qc" / "imputed.passed.provenance.json").read_text())["summary"]
    assert summary["output"] == "pfile" and summary["n_variants_pass"] > 0
    for stage in ("map_genes", "prune", "prepare"):
        (stamp,) = (out / ".ginn-run" / stage).glob("*.json")
        words = json.loads(stamp.read_text())["argv"]
        assert words[words.index("--pfile") + 1] == str(out / "qc" / "imputed.passed") and "--bfile" not in words
    (stamp,) = (out / ".ginn-run" / "replicate").glob("*.json")
    assert f"--{kind}" in json.loads(stamp.read_text())["argv"]
    assert (out / "replicate" / "y.replication.tsv").exists() and (out / "report" / "report.html").exists()

    data = Dataset.load(out / "prepare" / "y.data")
    assert data.genotypes.dtype == np.float16
    ours = np.asarray(data.genotypes, dtype=np.float64)
    present = ours >= 0
    assert np.mean(np.abs(ours[present] - np.rint(ours[present])) > 0.001) > 0.2, "hard calls, not dosages"
    dosages, bim, fam = imputed_dosages()
    rows = pd.Series(np.arange(len(fam)), index=fam["iid"]).loc[data.samples["iid"]].to_numpy()
    columns = pd.Series(np.arange(len(bim)), index=bim["snp"]).loc[data.snps["snp"]].to_numpy()
    expected = dosages[np.ix_(columns, rows)].T
    np.testing.assert_array_equal(present, expected >= 0)
    # float16 holds a dosage in [1, 2] within 2^-11; BGEN's 16-bit probabilities move it by at most ~2^-15
    np.testing.assert_allclose(ours[present], expected[present], rtol=0, atol=2 ** -11 + 2 ** -14)
