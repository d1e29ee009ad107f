"""End-to-end calibration of the NN permutation tests on simulations, at a size CI affords.

The paper's Fig. 5 (Perm I p-values are uniform on null simulations, Eq. 3) and Fig. 2 (on complex
interactions, Perm I keeps its specificity while Perm T and Perm R lose it for the NN). Each dataset
goes through the whole procedure: main-effect NN, observed + B permuted interaction ensembles in one
batched training run, exact Shapley interaction scores on the test rows, `ginn test`'s statistics.
`benchmarks/bench_calibration.py` runs the same study at the paper's sizes.

Sizes. 10 genes x 2 SNPs and 2000 samples (1120 fit, 280 early-stopping, 600 scored): Perm I needs
the main-effect NN to estimate the main effects well, and its estimation error shrinks with the
samples per main-effect parameter (~20 SNP weights here; the paper has 80k samples). B = 39
permutations: p-values are multiples of 1/40, so p <= 0.05 (two of forty ranks) has null probability
exactly 0.05, and the maxT p-value can reach 0.025 < 0.05.
"""

from __future__ import annotations

import numpy as np
import pytest

from ginn.studies import NNPermutationSettings, calibration_summary, decision_table, simulation_study
from ginn.train import TrainSettings

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("one_torch_thread")]

PERMUTATIONS = 39
NULL_DATASETS = 20
# Fig. 2 only needs to tell specificity ~1 from ~0: B = 19 (smallest p = 0.05) halves its cost.
FIG2_PERMUTATIONS = 19
SETTINGS = NNPermutationSettings(members=2, main_members=4, predictor_hidden=20, main_gene_layer="linear",
                                 l1_gene=1e-3, l1_predictor=1e-3)
STUDY = dict(n_samples=2000, snps_per_gene=2, snr=1.0, permutations=PERMUTATIONS, settings=SETTINGS)



def train_settings() -> TrainSettings:
    return TrainSettings(lr=0.005, batch_size=128, max_epochs=300, patience=10, progress=False)


def show(kind, d, table):
    print(f"{kind} dataset {d}: {(table['global_p_perm'] <= 0.05).mean():.3f} of pairs with global_p_perm <= 0.05, "
          f"min global_p_maxt {table['global_p_maxt'].min():.3f}")


@pytest.fixture(scope="module")
def null_results(tmp_path_factory):
    return simulation_study(tmp_path_factory.mktemp("null"), model="null", kinds=["perm-I"],
                            datasets=NULL_DATASETS, seed=100, train_settings=train_settings(), report=show, **STUDY)


@pytest.fixture(scope="module")
def null_summary(null_results):
    summary = calibration_summary(null_results, PERMUTATIONS)
    print(f"Perm I on {summary['n_datasets']} null datasets x 45 pairs: fraction p <= 0.05 = "
          f"{summary['fraction_below_alpha']:.4f}; KS D = {summary['ks_statistic']:.4f}, p = "
          f"{summary['ks_pvalue_independent']:.2g} as if independent, p = {summary['ks_pvalue']:.3f} with design "
          f"effect {summary['design_effect']:.1f} (ICC {summary['icc']:.2f}); dataset means of p "
          f"{np.round(summary['dataset_mean_p'], 2).tolist()}, t-test p = {summary['mean_p_ttest_pvalue']:.3f}")
    print("histogram of p (10 bins):", np.histogram(null_results["global_p_perm"], bins=10, range=(0, 1))[0].tolist())
    low, high = summary["family_error_ci"]
    print(f"maxT family-wise error: {summary['family_errors']} of {summary['n_datasets']} datasets "
          f"(95% Clopper-Pearson interval {low:.3f}-{high:.3f})")
    return summary


def test_perm_i_pvalues_are_uniform_on_null_simulations(null_results, null_summary):
    assert len(null_results) == NULL_DATASETS * 45
    # Nominal 0.05; with 900 independent p-values the s.d. is 0.007, so [0.02, 0.08] is about 4 s.d.
    # wide on each side, room for the within-dataset dependence.
    assert 0.02 <= null_summary["fraction_below_alpha"] <= 0.08
    # The 45 p-values of a dataset are NOT independent: they share its observed target and its
    # permutations, and chance curvature of the noise along the main-effect direction raises or
    # lowers the NN's interaction scores of all pairs of main-effect genes together (seen: ICC ~0.3,
    # design effect ~15-20). Referred to the KS distribution for 900 independent values, D rejects a
    # calibrated test most of the time, so the KS test uses the effective sample size; the t-test of
    # the 20 independent dataset means checks the centre without that approximation.
    assert null_summary["ks_pvalue"] > 0.01
    assert null_summary["mean_p_ttest_pvalue"] > 0.01


def test_maxt_controls_the_family_wise_error_on_null_simulations(null_summary):
    # Nominal 0.05. At most 2 of 20 datasets may have a false maxT finding: a calibrated test passes
    # with probability P(Binomial(20, 0.05) <= 2) = 0.92 (maxT with correlated scores is
    # conservative, so higher in practice); 2/20 has the 95% Clopper-Pearson interval 0.012-0.317.
    assert null_summary["family_error_rate"] <= 0.10


def test_perm_i_keeps_specificity_where_perm_t_and_r_lose_it(tmp_path_factory):
    results = simulation_study(tmp_path_factory.mktemp("complex"), model="complex",
                               kinds=["perm-I", "perm-T", "perm-R"], datasets=3, seed=200,
                               train_settings=train_settings(), report=show,
                               **{**STUDY, "permutations": FIG2_PERMUTATIONS})
    table = decision_table(results).set_index("kind")
    print(table.to_string(float_format="%.3f"))
    # Fig. 2a (maxT, p <= 0.05): 3 datasets x 39 false pairs per method. Perm I's specificity
    # stays >= 0.9; Perm T and Perm R train the permuted NNs without the main effects, their null
    # scores are far too small and most false pairs are called. Observed with these seeds: maxT
    # specificity 0.991 (Perm I), 0.274 (T), 0.231 (R); Perm I maxT power 0.22. On 10 datasets
    # (benchmark) Perm I's specificity was 0.915: the 0.9 bound is the issue's, not a wide margin.
    assert table.loc["perm-I", "specificity_maxt"] >= 0.9
    assert table.loc["perm-T", "specificity_maxt"] <= 0.5
    assert table.loc["perm-R", "specificity_maxt"] <= 0.5
    assert table.loc["perm-I", "power_maxt"] > 0
