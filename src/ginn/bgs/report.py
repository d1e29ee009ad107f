"""``ginn bgs results``: one table comparing CNN scores and IDP baselines, and the HTML report section.

``RESULTS.tsv``: method snp [planted region] n balanced_accuracy bacc_lo bacc_hi chance mcc dosage_r r_lo
r_hi r_p ece brier min_assoc_p max_delta_r2 n_measures_significant (Bonferroni within method).
"""

from __future__ import annotations

import base64
import html
import logging
from pathlib import Path

import click
import pandas as pd

from ..errors import GinnError
from ..files import atomic_outputs, provenance_path, provenance_record, read_table, write_json, write_tsv
from ..contract import stage_options

log = logging.getLogger(__name__)

BGS_FOLDER = "bgs"


def results_table(metrics: pd.DataFrame, assoc: pd.DataFrame, truth: pd.DataFrame | None) -> pd.DataFrame:
    """Per method x SNP: prediction metrics joined with the strongest cognition association."""
    assoc = assoc.assign(p=pd.to_numeric(assoc["p"]), delta_r2=pd.to_numeric(assoc["delta_r2"]),
                         significant=assoc["significant"].astype(str).str.lower() == "true")
    summary = assoc.groupby(["method", "snp"]).agg(min_assoc_p=("p", "min"), max_delta_r2=("delta_r2", "max"),
                                                   n_measures_significant=("significant", "sum")).reset_index()
    table = metrics.merge(summary, on=["method", "snp"], how="left")
    if truth is not None:
        table = table.merge(truth[["snp", "planted", "region"]], on="snp", how="left")
        front = ["method", "snp", "planted", "region"]
        table = table[front + [c for c in table.columns if c not in front]]
    return table


def run_results(metrics_paths: list[str | Path], assoc_path: str | Path, out: str | Path,
                truth_path: str | Path | None = None) -> pd.DataFrame:
    metrics = pd.concat([read_table(p, required=["method", "snp", "balanced_accuracy"], what="metrics")
                         for p in metrics_paths], ignore_index=True)
    assoc = read_table(assoc_path, required=["method", "snp", "p", "delta_r2", "significant"], what="association")
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


def bgs_report_section(outdir: str | Path) -> str:
    """HTML fragment summarising a brain-genotype-scores run under ``outdir`` ('' if there is none).

    Looks under ``outdir/bgs`` (the workflow's publish folder) or else ``outdir`` for ``*results.tsv``,
    the training ``curves.png``, saliency ``figures/*.png`` and the saliency folder's ``regions.tsv``.
    """
    root = Path(outdir) / BGS_FOLDER if (Path(outdir) / BGS_FOLDER).is_dir() else Path(outdir)
    results_path = _first(root, "*results.tsv")
    if results_path is None:
        return ""
    results = pd.read_csv(results_path, sep="\t")
    shown = [c for c in ("method", "snp", "planted", "region", "n", "balanced_accuracy", "bacc_lo", "bacc_hi",
                         "dosage_r", "r_lo", "r_hi", "ece", "brier", "min_assoc_p", "max_delta_r2",
                         "n_measures_significant", "informative") if c in results.columns]
    parts = ['<section id="brain-genotype-scores">', "<h2>Brain-genotype scores</h2>",
             "<p>Held-out prediction of each SNP's genotype from T1 images (multi-task 3D CNN) against regional-IDP "
             "baselines, and the nested-OLS association of the scores with cognition (Bonferroni within method). "
             "Balanced-accuracy CIs are percentile bootstrap, dosage-correlation CIs Fisher-z, both 95%.</p>",
             results[shown].to_html(index=False, float_format=lambda v: f"{v:.3g}", na_rep="NA", border=0)]
    curves = _first(root, "curves.png")
    if curves:
        parts.append(_image_tag(curves, "Training curves: loss and per-SNP validation balanced accuracy"))
    for figure in sorted(root.rglob("figures/*.png")):
        parts.append(_image_tag(figure, f"Group SmoothGrad saliency for {figure.stem} on the MNI template"))
    saliency_tables = [p for p in sorted(root.rglob("regions.tsv")) if (p.parent / "group").is_dir()]
    if saliency_tables:
        regions = pd.read_csv(saliency_tables[0], sep="\t")
        top = regions[regions["group"] == "all"].sort_values("mean_saliency", ascending=False).groupby("snp").head(3)
        parts += ["<h3>Most salient atlas regions (top 3 per SNP)</h3>",
                  top[["snp", "n_subjects", "region", "mean_saliency", "top1_share"]].to_html(
                      index=False, float_format=lambda v: f"{v:.3g}", border=0)]
    parts.append("</section>")
    return "\n".join(parts)


@click.command("results")
@stage_options("bgs results")
def results_command(metrics_paths, assoc_path, truth_path, out):
    """Compare methods per SNP: prediction metrics with CIs and cognition associations in one table."""
    run_results(list(metrics_paths), assoc_path, out, truth_path=truth_path)
