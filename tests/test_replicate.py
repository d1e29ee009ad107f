"""ginn replicate: allele alignment, Eq. 5 replication power and calibration, bad inputs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from _replicate_data import all_pairs_results, random_ensemble, split_simulation
from ginn.cli import cli
from ginn.dataset import Dataset, write_dataset
from ginn.files import atomic_outputs
from ginn.plink import new_fam, write_plink
from ginn.genotypes import genotype_input
from ginn.replicate import allele_orientation, run_replicate, strand_agrees
from ginn.score import run_score
from ginn.train import TrainSettings, run_train


def test_allele_rules():
    assert allele_orientation("A", "G", "A", "G") == "same"
    assert allele_orientation("A", "G", "G", "A") == "swapped"
    assert allele_orientation("A", "G", "T", "C") == "strand_flipped"
    assert allele_orientation("A", "G", "C", "T") == "strand_flipped_swapped"
    assert allele_orientation("A", "G", "A", "C") is None
    # A/T with A at 10% in discovery: literally 12% in replication -> same strand; 88% -> other strand
    assert strand_agrees(0.10, 0.12, 0.4) is True
    assert strand_agrees(0.10, 0.88, 0.4) is False
    assert strand_agrees(0.45, 0.44, 0.4) is None  # too close to 0.5 to tell


# ---- allele alignment ---------------------------------------------------------------------------------

N_GENES, SNPS_PER_GENE = 3, 12
# Discovery SNP index -> how the messy replication fileset reports it (the rest are clean).
MESSY = {0: "swapped", 1: "renamed", 2: "strand_flipped", 3: "strand_flipped_swapped", 4: "missing",
         5: "palindrome_same", 6: "palindrome_other_strand", 7: "palindrome_mid", 8: "allele_mismatch",
         13: "renamed_swapped", 14: "missing", 25: "palindrome_other_strand", 26: "palindrome_swapped"}
EXPECTED_DECISION = {"swapped": "swapped", "renamed": "same", "strand_flipped": "strand_flipped",
                     "strand_flipped_swapped": "strand_flipped_swapped", "missing": "missing",
                     "palindrome_same": "ambiguous_same", "palindrome_other_strand": "ambiguous_same",
                     "palindrome_mid": "dropped_ambiguous", "allele_mismatch": "dropped_allele_mismatch",
                     "renamed_swapped": "swapped", "palindrome_swapped": "ambiguous_swapped"}
COMPLEMENT = {"A": "T", "T": "A", "C": "G", "G": "C"}


@pytest.fixture(scope="module")
def alignment_case(tmp_path_factory):
    """A discovery dataset with A/T SNPs (frequencies 0.1 and 0.47), a random ensemble, and the
    replication cohort written twice: cleanly, and messily as in MESSY (shuffled variants)."""
    root = tmp_path_factory.mktemp("align")
    rng = np.random.default_rng(11)
    p = N_GENES * SNPS_PER_GENE
    freq = rng.uniform(0.15, 0.35, p)
    freq[[5, 6, 25, 26]], freq[7] = 0.1, 0.47
    alleles = np.array([("A", "G"), ("C", "T"), ("G", "T"), ("A", "C")])[rng.integers(0, 4, p)]
    alleles[[5, 6, 7, 25, 26]] = ("A", "T")
    snps = pd.DataFrame({"snp": [f"rs{100 + i}" for i in range(p)], "chrom": "3", "pos": 5000 + 37 * np.arange(p),
                         "a1": alleles[:, 0], "a2": alleles[:, 1],
                         "gene": np.repeat([f"G{g}" for g in range(N_GENES)], SNPS_PER_GENE)})
    n_disc, n_repl = 1500, 1200
    x = rng.binomial(2, freq, size=(n_disc + n_repl, p)).astype(np.int8)
    x[rng.random(x.shape) < 0.01] = -1                                     # some missing calls
    g = (np.where(x < 0, 0, x) - 2 * freq) @ rng.normal(size=(p, N_GENES)) / np.sqrt(SNPS_PER_GENE)
    y = g.sum(1) + g[:, 0] * g[:, 1] + rng.normal(size=len(g))
    y = (y - y.mean()) / y.std()
    data = root / "data"
    data.mkdir()
    write_dataset(data, x[:n_disc], y[:n_disc], rng.random(n_disc) < 0.3, new_fam(n_disc), snps,
                  [f"G{g}" for g in range(N_GENES)], [SNPS_PER_GENE] * N_GENES)
    dataset = Dataset.load(data)
    models = random_ensemble(root / "models", dataset, members=2, permuted=1)
    results = all_pairs_results(dataset.genes, root / "results.tsv")

    repl_x = x[n_disc:].T.copy()                                           # variant-major
    fam = new_fam(n_repl, prefix="r")
    pd.DataFrame({"FID": fam.fid, "IID": fam.iid, "y": y[n_disc:]}).sample(frac=1, random_state=1).to_csv(
        root / "pheno.tsv", sep="\t", index=False)
    bim = snps.assign(cm="0")[["chrom", "snp", "cm", "pos", "a1", "a2"]].copy()
    dropped = [i for i, how in MESSY.items() if EXPECTED_DECISION[how].startswith(("missing", "dropped"))]
    keep = np.setdiff1d(np.arange(p), dropped)
    with atomic_outputs() as out:
        write_plink(out, root / "clean", repl_x[keep], bim.iloc[keep], fam)

    messy_x, messy_bim = repl_x.copy(), bim.copy()
    for i, how in MESSY.items():
        a1, a2 = bim.at[i, "a1"], bim.at[i, "a2"]
        if how in ("swapped", "renamed_swapped", "strand_flipped_swapped", "palindrome_swapped"):
            messy_x[i] = np.where(repl_x[i] < 0, -1, 2 - repl_x[i])
            a1, a2 = a2, a1
        if how.startswith("strand_flipped"):
            a1, a2 = COMPLEMENT[a1], COMPLEMENT[a2]
        if how == "palindrome_other_strand":  # A/T on the other strand reads T/A, counting the same allele
            a1, a2 = COMPLEMENT[a1], COMPLEMENT[a2]
        if how.startswith("renamed"):
            messy_bim.at[i, "snp"] = f"3:{bim.at[i, 'pos']}"
        if how == "allele_mismatch":  # e.g. A/G in discovery, A/T here: a different variant
            a2 = COMPLEMENT[a1]
        messy_bim.at[i, "a1"], messy_bim.at[i, "a2"] = a1, a2
    present = np.array([MESSY.get(i) != "missing" for i in range(p)])
    order = rng.permutation(np.flatnonzero(present))
    with atomic_outputs() as out:
        write_plink(out, root / "messy", messy_x[order], messy_bim.iloc[order], fam)
    return root, data, models, results


def _replicate(root, data, models, results, bfile, name):
    out = root / f"{name}.tsv"
    table = run_replicate(data, models, results, genotype_input(bfile=bfile), root / "pheno.tsv", "y", out, top=3, seed=4)
    alignment = pd.read_csv(root / f"{name}.alignment.tsv", sep="\t")
    return table, alignment


def test_alignment_gives_the_clean_alpha(alignment_case):
    root, data, models, results = alignment_case
    clean, clean_alignment = _replicate(root, data, models, results, root / "clean", "clean")
    messy, messy_alignment = _replicate(root, data, models, results, root / "messy", "messy")
    # Every decision is reported, per SNP, with the expected outcome.
    decisions = messy_alignment.set_index("snp")["decision"]
    for i, how in MESSY.items():
        assert decisions[f"rs{100 + i}"] == EXPECTED_DECISION[how], (i, how)
    untouched = [f"rs{100 + i}" for i in range(N_GENES * SNPS_PER_GENE) if i not in MESSY]
    assert (decisions[untouched] == "same").all()
    assert messy_alignment.set_index("snp").loc["rs101", "match"] == "position"
    assert messy_alignment.set_index("snp").loc["rs101", "repl_snp"] == "3:5037"
    # The clean fileset lacks exactly the SNPs the messy one loses, so after alignment both cohorts
    # hold identical dosages: alpha, its SE and the top-SNP p agree to float32 rounding of the
    # gene values (1e-5 relative).
    assert clean["alpha"].notna().all()
    for column in ("alpha", "se", "p_one_sided", "topsnp_p_replication"):
        np.testing.assert_allclose(messy[column], clean[column], rtol=1e-5, atol=1e-9, err_msg=column)
    first = messy.iloc[0]
    assert (first["gene_a"], first["gene_b"]) == ("G0", "G1")
    # G0 (SNPs 0-11) flips 0 and 3 and loses 4, 7 and 8; G1 (12-23) flips 13 and loses 14.
    g0 = messy_alignment[messy_alignment["gene"] == "G0"]
    g1 = messy_alignment[messy_alignment["gene"] == "G1"]
    assert first["n_missing"] == int(g0["imputed"].sum() + g1["imputed"].sum()) == 4
    assert first["n_flipped"] == int(g0["flipped"].sum() + g1["flipped"].sum()) == 3
    assert first["n_snps_aligned"] == 2 * SNPS_PER_GENE - 4
    genes = pd.read_csv(root / "messy.gene_alignment.tsv", sep="\t").set_index("gene")
    assert genes.loc["G0", "n_dropped_ambiguous"] == 1 and genes.loc["G2", "n_ambiguous_same"] == 1
    assert genes.loc["G2", "n_ambiguous_swapped"] == 1 and genes.loc["G2", "n_flipped"] == 1


def test_replicate_rejects_bad_inputs(alignment_case, tmp_path):
    root, data, models, results = alignment_case
    fam = new_fam(50, prefix="x")
    elsewhere = pd.DataFrame({"chrom": "9", "snp": ["a", "b"], "cm": "0", "pos": [1, 2], "a1": "A", "a2": "G"})
    with atomic_outputs() as out:
        write_plink(out, tmp_path / "elsewhere", np.zeros((2, 50), dtype=np.int8), elsewhere, fam)
    pd.DataFrame({"FID": fam.fid, "IID": fam.iid, "y": np.arange(50.0)}).to_csv(tmp_path / "x.tsv", sep="\t",
                                                                              index=False)
    pd.DataFrame({"FID": ["q1"], "IID": ["q1"], "y": [1.0]}).to_csv(tmp_path / "nobody.tsv", sep="\t", index=False)
    cases = [(tmp_path / "elsewhere", tmp_path / "x.tsv", "none of the 36 discovery SNPs"),
             (root / "clean", tmp_path / "nobody.tsv", "no sample of clean.fam")]
    for bfile, pheno, message in cases:
        out = tmp_path / "bad.tsv"
        result = CliRunner().invoke(cli, ["replicate", "--data", str(data), "--models", str(models), "--results",
                                          str(results), "--top", "2", "--bfile", str(bfile), "--pheno", str(pheno),
                                          "--pheno-name", "y", "--out", str(out)], prog_name="ginn")
        assert result.exit_code == 2, result.output
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("ginn replicate: error:") and message in lines[0], lines
        assert not list(tmp_path.glob("bad*"))


# ---- replication of planted interactions ------------------------------------------------------------------

@pytest.mark.slow
def test_planted_pairs_replicate_and_null_pairs_do_not(tmp_path):
    """Discovery (n = 8,000: a small interaction ensemble, really trained, and its Shapley scores) and
    an independent replication cohort (n = 5,000, as FINRISK's 4,620) from one complex-interaction
    model. Every pair is tested in the replication cohort (--top 45) so the null pairs' rate is
    measured on all 39 of them."""
    cohorts = split_simulation(tmp_path, 8000, 5000, seed=5, n_genes=10, snps_per_gene=10, snr=2.0)
    models = tmp_path / "models"
    run_train(cohorts.data, models, members=2, predictor_hidden=32, seed=1,
              settings=TrainSettings(seed=1, progress=False, max_epochs=25, batch_size=1000, patience=4, lr=0.01))
    scores = run_score(cohorts.data, models, tmp_path / "scores.tsv")
    ranked = scores.sort_values("score", ascending=False).assign(q_pair=np.nan, called=False)
    ranked[["gene_a", "gene_b", "score", "q_pair", "called"]].to_csv(tmp_path / "results.tsv", sep="\t", index=False)
    table = run_replicate(cohorts.data, models, tmp_path / "results.tsv", genotype_input(bfile=cohorts.repl), cohorts.pheno, "y",
                          tmp_path / "repl.tsv", top=45, seed=2)
    merged = table.merge(cohorts.truth, on=["gene_a", "gene_b"])
    assert len(merged) == 45 and merged["interacting"].sum() == 6
    discovered = merged["interacting"] & (merged.index < 6)   # planted among the NN's top 6 (by score)
    replicated = merged["p_one_sided"] < 0.05
    rate_planted = replicated[discovered].mean()
    rate_null = replicated[~merged["interacting"]].mean()
    print(f"replication rate: discovered planted {rate_planted:.2f} ({discovered.sum()} pairs), "
          f"null {rate_null:.3f} (39 pairs)")
    assert discovered.sum() >= 3
    # Observed here: planted 1.00 (4 discovered), null 0.051 (2 of 39). Bounds: planted >= 0.75;
    # null <= 6/39: under a calibrated test the null count is Binomial(39, 0.05), >= 7 with p < 0.5%.
    assert rate_planted >= 0.75
    assert rate_null <= 6 / 39
