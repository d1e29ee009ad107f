"""``ginn bgs results``: one table comparing CNN scores and IDP baselines, and the HTML report section.

``RESULTS.tsv``: method snp [planted region] + the metrics columns (balanced accuracy with CI, macro F1,
MCC, dosage r with CI, ECE overall and per class, Brier) + min_p_calibrated (smallest control-calibrated
association p over measures), max_abs_t, n_measures_significant (beyond the controls, Bonferroni within
method) and control_fpr (the method's control heads' rate of calibrated p < 0.05: the calibration check).
The genotype-only baseline has association columns only.
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import click
import pandas as pd

from ..errors import GinnError
from ..files import atomic_outputs, is_true, provenance_path, provenance_record, read_table, write_json, write_tsv
from .associate import control_false_positive_rate
from ..contract import stage_options

log = logging.getLogger(__name__)

BGS_FOLDER = "bgs"


def results_table(metrics: pd.DataFrame, assoc: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame:
    """Per method x SNP: prediction metrics joined with the strongest cognition association."""
    assoc = assoc.assign(p_calibrated=pd.to_numeric(assoc["p_calibrated"]), abs_t=pd.to_numeric(assoc["t"]).abs(),
                         significant=is_true(assoc["significant"]),
                         control=is_true(assoc["control"]))
    fpr = control_false_positive_rate(assoc).rename("control_fpr").reset_index()
    summary = assoc[~assoc["control"]].groupby(["method", "snp"], sort=False).agg(
        min_p_calibrated=("p_calibrated", "min"), max_abs_t=("abs_t", "max"),
        n_measures_significant=("significant", "sum")).reset_index()
    table = metrics.merge(summary, on=["method", "snp"], how="outer").merge(fpr, on="method", how="left")
    if truth is not None:
        table = table.merge(truth[["snp", "planted", "region"]], on="snp", how="left")
        front = ["method", "snp", "planted", "region"]
        table = table[front + [c for c in table.columns if c not in front]]
    return table


def run_results(metrics_paths: list[str | Path], assoc_path: str | Path, out: str | Path,
                truth_path: str | Path | None = None) -> pd.DataFrame:
    metrics = pd.concat([read_table(p, required=["method", "snp", "balanced_accuracy"], what="metrics")
                         for p in metrics_paths], ignore_index=True)
    assoc = read_table(assoc_path, required=["method", "snp", "control", "t", "p_calibrated", "significant"],
                       what="association")
    truth = read_table(truth_path, required=["snp", "planted", "region"], what="truth") if truth_path else None
    table = results_table(metrics, assoc, truth)
    if table.empty:
        raise GinnError(assoc_path, "no method/SNP in common between the metrics and association tables")
    out = Path(out)
    with atomic_outputs() as outputs:
        write_tsv(outputs.file(out), table)
        inputs = {f"metrics{i}": p for i, p in enumerate(metrics_paths)} | {"assoc": assoc_path}
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "bgs results", {"metrics": [str(p) for p in metrics_paths], "assoc": str(assoc_path),
                            "truth": str(truth_path) if truth_path else None, "out": str(out)}, inputs=inputs))
    return table


def _image_tag(path: Path, caption: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return (f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(caption)}" style="max-width:100%">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _first(root: Path, pattern: str) -> Path | None:
    found = sorted(root.rglob(pattern))
    return found[0] if found else None


def _bgs_root(outdir: str | Path) -> Path:
    return Path(outdir) / BGS_FOLDER if (Path(outdir) / BGS_FOLDER).is_dir() else Path(outdir)


def find_bgs_results(outdir: str | Path) -> Path | None:
    """The ``bgs results`` table of a run (under ``outdir/bgs``, the workflow's publish folder, or ``outdir``)."""
    root = _bgs_root(outdir)
    for path in sorted(root.rglob("*results.tsv")):
        with open(path, encoding="utf-8", errors="replace") as handle:
            if {"method", "snp", "min_p_calibrated"} <= set(handle.readline().split()):
                return path
    return None


def _html_table(table: pd.DataFrame) -> str:
    return table.to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="NA", border=0)


def bgs_report_section(outdir: str | Path, results_path: Path | None) -> str:
    """HTML fragment summarising a brain-genotype-scores run under ``outdir`` whose ``bgs results`` table
    :func:`find_bgs_results` found ('' if there is none).

    Shows the ``bgs results`` table, cross-seed agreement (``*agreement.tsv``), the training ``curves.png``,
    reliability plots, saliency ``figures/*.png`` and the top regions of the saliency ``regions.tsv``.
    """
    if results_path is None:
        return ""
    root = _bgs_root(outdir)
    results = pd.read_csv(results_path, sep="\t")
    shown = [c for c in ("method", "snp", "planted", "region", "n", "balanced_accuracy", "bacc_lo", "bacc_hi",
                         "macro_f1", "dosage_r", "r_lo", "r_hi", "ece", "ece_class0", "ece_class1", "ece_class2",
                         "brier", "min_p_calibrated", "max_abs_t", "n_measures_significant", "control_fpr")
             if c in results.columns]
    parts = ['<section id="brain-genotype-scores">', "<h2>Brain-genotype scores</h2>",
             "<p>Held-out prediction of each SNP's genotype from T1 images (multi-task 3D CNN) against regional-IDP "
             "baselines, and the association of each score with cognition. Every association t is referred to the "
             "t of negative-control heads (permuted genotypes trained beside the SNPs): <i>min_p_calibrated</i> "
             "tests H0 'this score is no more associated with cognition than a head without genotype signal', "
             "<i>n_measures_significant</i> counts measures where it is rejected after Bonferroni over the method's "
             "SNPs x measures, and <i>control_fpr</i> is the controls' own rate of calibrated p &lt; 0.05 "
             "(leave-one-out; near 0.05 when the test is calibrated). Method <i>genotype</i> is the SNP dosage "
             "itself. Balanced-accuracy CIs are percentile bootstrap, dosage-correlation CIs Fisher-z, both 95%; ECE "
             "per class is one-vs-rest.</p>", _html_table(results[shown])]
    agreement = _first(root, "*agreement.tsv")
    if agreement:
        parts += ["<h3>Agreement across training seeds</h3>", _html_table(pd.read_csv(agreement, sep="\t"))]
    curves = _first(root, "curves.png")
    if curves:
        parts.append(_image_tag(curves, "Training curves: loss and per-SNP validation balanced accuracy"))
    for figure in sorted(root.rglob("*.reliability.png")):
        parts.append(_image_tag(figure, f"Reliability per genotype class: {figure.name.removesuffix('.reliability.png')}"))
    for figure in sorted(root.rglob("figures/*.png")):
        parts.append(_image_tag(figure, f"Group SmoothGrad saliency for {figure.stem} on the MNI template"))
    saliency_tables = [p for p in sorted(root.rglob("regions.tsv")) if (p.parent / "group").is_dir()]
    if saliency_tables:
        regions = pd.read_csv(saliency_tables[0], sep="\t")
        top = regions[regions["group"] == "all"].sort_values("mean_saliency", ascending=False).groupby("snp").head(3)
        parts += ["<h3>Most salient atlas regions (top 3 per SNP)</h3>",
                  _html_table(top[["snp", "n_subjects", "region", "mean_saliency", "top1_share"]])]
    parts.append("</section>")
    return "\n".join(parts)


@click.command("results")
@stage_options("bgs results")
def results_command(metrics_paths, assoc_path, truth_path, out):
    """Compare methods per SNP: prediction metrics with CIs and cognition associations in one table."""
    run_results(list(metrics_paths), assoc_path, out, truth_path=truth_path)
