"""The data layer end to end on msprime genotypes: simulate -> qc -> map-genes -> prune -> prepare."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from ginn.cli import cli
from ginn.dataset import Dataset


def _ginn(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result


def test_simulated_cohort_through_the_data_layer(tmp_path):
    sim = tmp_path / "sim"
    _ginn("simulate", "--model", "complex", "--n-samples", 1500, "--n-genes", 10, "--snr", 1.0, "--seed", 3,
          "--out", sim)
    _ginn("qc", "--bfile", sim, "--out", tmp_path / "q")
    _ginn("map-genes", "--bfile", tmp_path / "q", "--genes", f"{sim}.genes.tsv", "--out", tmp_path / "map.tsv")
    _ginn("prune", "--bfile", tmp_path / "q", "--map", tmp_path / "map.tsv", "--out", tmp_path / "pruned.tsv")
    _ginn("prepare", "--bfile", tmp_path / "q", "--map", tmp_path / "pruned.tsv", "--pheno", f"{sim}.pheno.tsv",
          "--pheno-name", "y", "--pcs", 3, "--seed", 1, "--out", tmp_path / "data")
    data = Dataset.load(tmp_path / "data")
    genes = pd.read_csv(f"{sim}.genes.tsv", sep="\t")
    assert data.genes == list(genes.gene)  # every simulated gene survives, in the annotation's order
    pruned = pd.read_csv(tmp_path / "pruned.genes.tsv", sep="\t")
    assert (pruned.variance_explained >= 0.9).all() and (pruned.n_kept < pruned.n_snps).all()
    # The prepared target is a monotone transform of the simulated phenotype up to the (tiny) PC
    # adjustment of an unstructured sample: rank correlation stays near 1.
    y = pd.read_csv(f"{sim}.pheno.tsv", sep="\t").set_index("IID").loc[data.samples.iid, "y"]
    assert pd.Series(data.target).corr(pd.Series(y.to_numpy()), method="spearman") > 0.98
    # every stage left its provenance
    for record in [tmp_path / "q.provenance.json", tmp_path / "map.provenance.json",
                   tmp_path / "pruned.provenance.json", tmp_path / "data" / "provenance.json"]:
        assert json.loads(record.read_text())["versions"]["ginn"]
    assert np.asarray(data.genotypes).dtype == np.int8
