"""ginn report: a run folder -> one self-contained HTML page that renders in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from matplotlib.image import imread

from _replicate_data import split_simulation
from conftest import make_fileset
from ginn import figures
from ginn.cli import cli
from ginn.permtest import run_test
from ginn.genotypes import genotype_input
from ginn.qc import run_qc
from ginn.replicate import run_replicate
from ginn.train import TrainSettings, run_train

N_PERMUTATIONS = 30


def _scores(truth: pd.DataFrame, rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Observed and permuted SCORES tables shaped like `ginn score`'s: planted pairs score high.

    Stand-in for the score stage, whose exact Shapley scores of 30 permuted ensembles would take
    minutes here; the report only reads the tables.
    """
    pairs = truth[["gene_a", "gene_b"]]
    planted = truth["interacting"].to_numpy()
    observed = pairs.assign(dataset="observed", score=rng.gamma(2, 0.01, len(pairs)) + 0.08 * planted, se=0.002)
    permuted = pd.concat([pairs.assign(dataset=f"perm-{k}", score=rng.gamma(2, 0.01, len(pairs)), se=0.002)
                          for k in range(1, N_PERMUTATIONS + 1)])
    columns = ["dataset", "gene_a", "gene_b", "score", "se"]
    return observed[columns], permuted[columns]


def _pair_tests(truth: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """A PAIRS table shaped like `ginn pairtest`'s: planted pairs get |z| ~ 6 (stand-in for the
    cross-fitted networks, which the pairtest tests train for real)."""
    from scipy import stats

    z = rng.standard_normal(len(truth)) + 6.0 * truth["interacting"].to_numpy()
    return truth[["gene_a", "gene_b"]].assign(z=z, p_pair=2 * stats.norm.sf(np.abs(z)))


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder in `ginn run`'s layout, written by the real stages where they are quick."""
    work, run = tmp_path_factory.mktemp("work"), tmp_path_factory.mktemp("run")
    cohorts = split_simulation(work, 3000, 1500, seed=7, n_genes=10, snps_per_gene=8, snr=2.0)
    for stage in ("simulate", "qc", "map_genes", "prune", "prepare", "pairtest", "train_interaction", "score", "test",
                  "replicate"):
        (run / stage).mkdir()
    cohorts.truth.to_csv(run / "simulate" / "simulated.truth.tsv", sep="\t", index=False)
    run_qc(genotype_input(bfile=make_fileset(work / "raw", n_samples=300, n_variants=120)), run / "qc" / "simulated.passed")
    data = shutil.copytree(cohorts.data, run / "prepare" / "y.data")
    snps = pd.read_json(data / "meta.json", typ="series")["snps"]
    mapping = pd.DataFrame(snps)[["snp", "gene"]]
    mapping.to_csv(run / "map_genes" / "simulated.map.tsv", sep="\t", index=False)
    mapping.iloc[::2].to_csv(run / "prune" / "simulated.pruned.tsv", sep="\t", index=False)
    models = run / "train_interaction" / "y.observed.models"
    run_train(data, models, members=3, predictor_hidden=16, seed=3,
              settings=TrainSettings(seed=3, progress=False, max_epochs=4, batch_size=1000, patience=2))
    observed, permuted = _scores(cohorts.truth, np.random.default_rng(2))
    observed.to_csv(run / "score" / "y.observed.scores.tsv", sep="\t", index=False)
    permuted.to_csv(run / "score" / f"y.perm-1-{N_PERMUTATIONS}.scores.tsv", sep="\t", index=False)
    pairs = run / "pairtest" / "y.pairs"
    pairs.mkdir()
    _pair_tests(cohorts.truth, np.random.default_rng(4)).to_csv(pairs / "pairs.tsv", sep="\t", index=False)
    results = run_test(pairs / "pairs.tsv", run / "test" / "y.results.tsv",
                       score_paths=[run / "score" / "y.observed.scores.tsv",
                                    run / "score" / f"y.perm-1-{N_PERMUTATIONS}.scores.tsv"])
    assert results["called"].sum() >= 3
    run_replicate(data, models, run / "test" / "y.results.tsv", genotype_input(bfile=cohorts.repl), cohorts.pheno, "y",
                  run / "replicate" / "y.replication.tsv", top=3, plot_pairs=2, seed=1)
    return run


def test_report_renders_offline_in_chromium(run_folder, tmp_path):
    out = run_folder / "report" / "report.html"
    result = CliRunner().invoke(cli, ["report", "--outdir", str(run_folder), "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text()
    assert not re.search(r"https?://", page), "the report must not reference anything online"
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:)""", page), "every resource must be inline"
    images = re.findall(r'src="data:image/png;base64,', page)
    # Fig. 6a, Fig. 6b, member R², members' validation curves, and Fig. 7a + 7b for each of the 2
    # plotted replication pairs
    assert len(images) == 8
    for text in ("Quality control and pruning", "Called gene pairs", "Replication", "Provenance", "planted",
                 "y.replication.tsv", "Allele alignment per gene"):
        assert text in page, text
    assert (run_folder / "report" / "report.provenance.json").is_file()

    chromium = shutil.which("chromium")
    assert chromium, "chromium must be installed (Debian package chromium; .ci/run installs it)"
    shot = tmp_path / "report.png"
    subprocess.run([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--no-first-run",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1200,3000",
                    out.as_uri()], check=True, capture_output=True, timeout=120)
    pixels = imread(shot)[..., :3]
    assert pixels.shape[:2] == (3000, 1200)
    # Non-blank: text and embedded figures give thousands of distinct colours (this page: ~11,000), and
    # no colour covers 90% of the screen (here white covers 76%); a blank page or Chromium's error page
    # is one colour nearly everywhere with a few dozen anti-aliasing shades.
    colours, counts = np.unique((pixels.reshape(-1, 3) * 255).astype(np.uint8), axis=0, return_counts=True)
    assert len(colours) > 1000
    assert counts.max() / counts.sum() < 0.9


def test_report_without_results_fails_cleanly(tmp_path):
    (tmp_path / "run" / "qc").mkdir(parents=True)
    out = tmp_path / "report.html"
    result = CliRunner().invoke(cli, ["report", "--outdir", str(tmp_path / "run"), "--out", str(out)], prog_name="ginn")
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ginn report: error:") and "no results found" in lines[0]
    assert not out.exists() and not list(tmp_path.glob("report*"))


def test_figure_helpers():
    rng = np.random.default_rng(0)
    null = rng.gamma(2, 1, (50, 45))
    expected, low, high = figures.null_quantiles(null, 45)
    assert np.all(np.diff(expected) <= 0) and np.all(low <= expected) and np.all(expected <= high)
    # The band of the largest score is the spread of the per-permutation maxima.
    assert np.isclose(high[0], np.quantile(null.max(axis=1), 0.975))
    assert np.bincount(figures.tertile_groups(rng.normal(size=300))).tolist() == [100, 100, 100]
    png = figures.training_curves({"member 0": {"train_mse": [1.0, 0.8, 0.7], "val_mse": [1.1, 0.9, 0.9]}})
    assert png[:8] == b"\x89PNG\r\n\x1a\n"


def test_snps_per_gene_keeps_one_column_per_cohort(tmp_path):
    """A run with a discovery and a replication cohort has two gene maps and two pruning summaries:
    each gets its own column (one label for both made duplicate columns, the last file overwriting)."""
    from ginn.report import RunOutputs, qc_section

    run = RunOutputs(root=tmp_path)
    for name, n_snps, kept in (("discovery", 3, 0.9), ("replication", 2, 0.5)):
        (tmp_path / f"{name}.map.tsv").write_text("snp\tgene\n" + "".join(f"s{i}\tG1\n" for i in range(n_snps)))
        (tmp_path / f"{name}.pruned.tsv").write_text("snp\tgene\ns0\tG1\n")
        (tmp_path / f"{name}.genes.tsv").write_text(f"gene\tvariance_explained\nG1\t{kept}\n")
        run.maps.append(tmp_path / f"{name}.map.tsv")
        run.pruned.append(tmp_path / f"{name}.pruned.tsv")
        run.pruned_genes.append(tmp_path / f"{name}.genes.tsv")
    html = qc_section(run)
    for label in ("mapped (discovery.map.tsv)", "mapped (replication.map.tsv)",
                  "genotype variance kept (discovery.genes.tsv)", "genotype variance kept (replication.genes.tsv)"):
        assert label in html
    assert ">0.9<" in html and ">0.5<" in html
