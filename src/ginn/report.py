"""``ginn report``: one self-contained HTML page summarising a run folder.

Reads the layout ``ginn run`` writes (``DIR/<stage>/...``; see :mod:`ginn.run`) but finds files by
what they are rather than by exact names, so a folder of hand-run stages works too: result tables
are recognised by their columns, datasets and model folders by the files inside them, and every
file is tied to its phenotype by the part of its name before the first dot (``HDL.results.tsv``,
``HDL.observed.scores.tsv``, ``HDL.data/``). Stages that did not run are left out of the page.

The page has no external references: CSS is inline and every figure is an embedded base64 PNG,
so it opens offline and can be mailed as one file.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as _dt
import html
import json
import logging
import os
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from . import __version__, figures
from .errors import GinnError
from .files import atomic_outputs, is_true, provenance_path, provenance_record, read_table, write_json
from .bgs.report import bgs_report_section, find_bgs_results
from .permtest import merge_score_files
from .contract import stage_options

log = logging.getLogger(__name__)

TOP_ROWS = 25
CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0; color: #1d2330;
       background: #f5f6f8; }
header { background: #1f3a5f; color: white; padding: 18px 32px; }
header h1 { margin: 0 0 4px 0; font-size: 24px; }
header p { margin: 0; opacity: 0.85; font-size: 13px; }
main { padding: 8px 32px 40px 32px; max-width: 1150px; }
section { background: white; border-radius: 6px; padding: 12px 20px 16px 20px; margin-top: 18px;
          box-shadow: 0 1px 2px rgba(0,0,0,0.08); }
h2 { font-size: 19px; border-bottom: 2px solid #e3e7ee; padding-bottom: 4px; }
h3 { font-size: 15px; margin-bottom: 6px; }
table { border-collapse: collapse; font-size: 12.5px; margin: 6px 0 10px 0; }
th, td { border-bottom: 1px solid #e3e7ee; padding: 3px 9px; text-align: right; }
th { background: #eef1f6; }
td.text, th.text { text-align: left; }
tr.hit td { background: #e8f0fd; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
.figures figure { margin: 0; }
.figures img { max-width: 520px; border: 1px solid #e3e7ee; }
figcaption { font-size: 12px; color: #556; max-width: 520px; }
.note { font-size: 12.5px; color: #556; }
.cards { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
details pre { font-size: 11px; background: #f3f4f6; padding: 8px; overflow-x: auto; }
"""


# ---- finding a run's outputs --------------------------------------------------------------------------

def phenotype_key(path: Path) -> str:
    """``HDL.observed.scores.tsv`` -> ``HDL``: the name part before the first dot."""
    return path.name.split(".")[0]


def _header(path: Path) -> set[str]:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return set(handle.readline().split())


@dataclass
class RunOutputs:
    """The files of a run folder, by kind (paths) and phenotype (for per-phenotype kinds)."""

    root: Path
    qc: list[Path] = field(default_factory=list)
    qc_samples: list[Path] = field(default_factory=list)
    maps: list[Path] = field(default_factory=list)
    pruned: list[Path] = field(default_factory=list)
    pruned_genes: list[Path] = field(default_factory=list)   # per gene: SNPs kept and variance they explain
    truth: list[Path] = field(default_factory=list)
    provenance: list[Path] = field(default_factory=list)
    datasets: dict[str, list[Path]] = field(default_factory=lambda: defaultdict(list))
    models: dict[str, list[Path]] = field(default_factory=lambda: defaultdict(list))
    scores: dict[str, list[Path]] = field(default_factory=lambda: defaultdict(list))
    results: dict[str, list[Path]] = field(default_factory=lambda: defaultdict(list))
    baselines: dict[str, list[Path]] = field(default_factory=lambda: defaultdict(list))
    replications: dict[str, list[Path]] = field(default_factory=lambda: defaultdict(list))

    @property
    def phenotypes(self) -> list[str]:
        keys = set(self.results) | set(self.scores) | set(self.replications)
        return sorted(keys)

    def linked(self, kind: dict[str, list[Path]], phenotype: str) -> list[Path]:
        """Files of ``kind`` for a phenotype; with one phenotype in the run, any file of that kind
        (hand-named files such as RESULTS.tsv and SCORES.tsv belong together)."""
        if phenotype in kind:
            return kind[phenotype]
        if len(self.phenotypes) == 1:
            return [p for paths in kind.values() for p in paths]
        return []


def discover(root: Path) -> RunOutputs:
    """Classify every output under ``root`` (hidden and temporary files are skipped)."""
    found = RunOutputs(root)
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if any(part.startswith(".") for part in relative.parts):
            continue
        if path.is_dir():
            if (path / "meta.json").is_file() and (path / "genotypes.npy").is_file():
                found.datasets[phenotype_key(path)].append(path)
            elif (path / "metrics.json").is_file() and (path / "ensemble.json").is_file():
                found.models[phenotype_key(path)].append(path)
            continue
        name = path.name
        if name == "provenance.json" or name.endswith(".provenance.json"):
            found.provenance.append(path)
        elif name.endswith(".qc.tsv"):
            found.qc.append(path)
        elif name.endswith(".qc.samples.tsv"):
            found.qc_samples.append(path)
        elif name.endswith(".tsv"):
            _classify_table(found, path, relative)
    return found


def _classify_table(found: RunOutputs, path: Path, relative: Path) -> None:
    columns = _header(path)
    key = phenotype_key(path)
    if {"alpha", "p_one_sided", "gene_a", "gene_b"} <= columns:
        found.replications[key].append(path)
    elif {"dataset", "gene_a", "gene_b", "score"} <= columns:
        found.scores[key].append(path)
    elif {"gene_a", "gene_b", "score", "called"} <= columns:
        (found.baselines if "baselines" in relative.parts else found.results)[key].append(path)
    elif {"gene_a", "gene_b", "interacting"} <= columns:
        found.truth.append(path)
    elif {"gene", "n_kept", "variance_explained"} <= columns:
        found.pruned_genes.append(path)
    elif columns == {"snp", "gene"}:
        (found.pruned if "prune" in relative.parts or path.name.endswith(".pruned.tsv") else found.maps).append(path)


# ---- HTML helpers -----------------------------------------------------------------------------------

def _esc(value: Any) -> str:
    return html.escape(str(value))


def _format(value: Any) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        if not np.isfinite(value):
            return "NA"
        return f"{value:.3g}" if abs(value) < 1e4 else f"{value:,.0f}"
    return str(value)


def html_table(table: pd.DataFrame, highlight: pd.Series | None = None) -> str:
    """A compact HTML table; text columns left-aligned, rows flagged in ``highlight`` shaded."""
    text_columns = {c for c in table.columns if table[c].dtype == object}
    head = "".join(f'<th class="text">{_esc(c)}</th>' if c in text_columns else f"<th>{_esc(c)}</th>"
                   for c in table.columns)
    rows = []
    for i, (_, row) in enumerate(table.iterrows()):
        cells = "".join(f'<td class="text">{_esc(_format(row[c]))}</td>' if c in text_columns
                        else f"<td>{_esc(_format(row[c]))}</td>" for c in table.columns)
        shaded = highlight is not None and bool(highlight.iloc[i])
        rows.append(f'<tr class="hit">{cells}</tr>' if shaded else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def figure_html(png: bytes, caption: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{_esc(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_esc(caption)}</figcaption></figure>")


def _read_tsv(path: Path) -> pd.DataFrame:
    table = read_table(path)
    for column in table.columns:
        converted = pd.to_numeric(table[column], errors="coerce")
        if converted.notna().sum() == table[column].notna().sum():
            table[column] = converted
    return table


def _note(text: str) -> str:
    return f'<p class="note">{_esc(text)}</p>'


# ---- sections ---------------------------------------------------------------------------------------

def _read_provenance(paths: list[Path]) -> list[tuple[Path, dict]]:
    records = []
    for path in paths:
        try:
            records.append((path, json.loads(path.read_text())))
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("report: %s is not valid JSON; left out", path)
    return records


def summary_section(run: RunOutputs, records: list[tuple[Path, dict]]) -> str:
    rows = [{"stage": rec.get("stage", "?"), "output": str(path.relative_to(run.root)),
             "seed": rec.get("seed"), "finished": rec.get("finished", "")} for path, rec in records]
    table = pd.DataFrame(rows, columns=["stage", "output", "seed", "finished"]).astype(object)
    counts = {"phenotypes": ", ".join(run.phenotypes) or "none",
              "stages with outputs": len({r["stage"] for r in rows})}
    facts = "".join(f"<li><b>{_esc(k)}</b>: {_esc(v)}</li>" for k, v in counts.items())
    return f"<section><h2>Run summary</h2><ul>{facts}</ul>{html_table(table) if rows else ''}</section>"


def _labelled(label: str, paths: list[Path]) -> list[tuple[str, Path]]:
    """One column label per file: the file name is added when a run has several (e.g. a replication cohort),
    its path below their common folder when two share a name (hand-run cohorts in folders of their own)."""
    if len(paths) == 1:
        return [(label, paths[0])]
    names = [path.name for path in paths]
    if len(set(names)) < len(names):
        common = Path(os.path.commonpath(paths))
        names = [str(path.relative_to(common)) for path in paths]
    return [(f"{label} ({name})", path) for name, path in zip(names, paths)]


def qc_section(run: RunOutputs) -> str:
    parts = []
    for path in run.qc:
        table = _read_tsv(path)
        passed = is_true(table["pass"])
        parts.append(f"<h3>Variant QC: {_esc(path.name)}</h3>" + _note(
            f"{int(passed.sum()):,} of {len(table):,} variants pass (missingness, MAF and HWE filters)."))
    for path in run.qc_samples:
        table = _read_tsv(path)
        passed = is_true(table["pass"])
        parts.append(_note(f"{path.name}: {int(passed.sum()):,} of {len(table):,} samples pass the missingness filter."))
    per_gene = []
    for label, path in _labelled("mapped", run.maps) + _labelled("after pruning", run.pruned):
        per_gene.append(read_table(path, required=["snp", "gene"]).groupby("gene").size().rename(label))
    if per_gene:
        genes = pd.concat(per_gene, axis=1).fillna(0).astype(int).reset_index().rename(columns={"index": "gene"})
        for label, path in _labelled("genotype variance kept", run.pruned_genes):
            kept = read_table(path, required=["gene", "variance_explained"]).set_index("gene")["variance_explained"]
            genes[label] = genes["gene"].map(pd.to_numeric(kept, errors="coerce"))
        genes["gene"] = genes["gene"].astype(object)
        parts.append("<h3>SNPs per gene</h3>" + _note("genotype variance kept: share of the gene's standardised "
                                                      "genotype variance the SNPs kept by LD pruning explain.")
                     + html_table(genes))
    if not parts:
        return ""
    return "<section><h2>Quality control and pruning</h2>" + "".join(parts) + "</section>"


@contextlib.contextmanager
def _damage_named(path: Path, what: str) -> Iterator[None]:
    """A damaged stage output read for the page is a one-line error naming it, not a traceback."""
    try:
        yield
    except (ValueError, KeyError, TypeError, AttributeError, OSError) as exc:
        detail = (str(exc).splitlines() or [""])[0]
        raise GinnError(path, f"cannot read this {what} ({type(exc).__name__}: {detail}); rerun its stage") from None


def data_section(paths: list[Path]) -> str:
    parts = []
    for path in paths:
        with _damage_named(path, "dataset folder"):
            parts.append(_data_card(path))
    return "".join(parts)


def _data_card(path: Path) -> str:
    meta = json.loads((path / "meta.json").read_text())
    n_test = int(np.load(path / "is_test.npy").sum())
    facts = {"samples": f"{meta['n_samples']:,} ({n_test:,} test)", "SNPs": f"{meta['n_snps']:,}",
             "genes": meta["n_genes"], "phenotype": meta.get("phenotype", "?"),
             "adjusted for": ", ".join(meta.get("adjusted_for", [])) or "nothing"}
    facts.update({k.removeprefix("n_").replace("_", " "): v for k, v in meta.get("counts", {}).items()
                  if k != "n_samples"})
    return (f"<h3>Dataset {_esc(path.name)}</h3><ul>" +
            "".join(f"<li><b>{_esc(k)}</b>: {_esc(_format(v))}</li>" for k, v in facts.items()) + "</ul>")


def model_section(paths: list[Path]) -> str:
    parts = []
    for path in paths:
        with _damage_named(path, "model folder"):
            parts.append(_model_card(path))
    return f'<div class="cards">{"".join(parts)}</div>'


def _model_card(path: Path) -> str:
    metrics = json.loads((path / "metrics.json").read_text())
    networks = pd.DataFrame(metrics.get("networks", []))
    ensembles = pd.DataFrame(metrics.get("ensembles", []))
    card = [f"<h3>Models {_esc(path.name)} ({_esc(metrics.get('model', '?'))} network)</h3>"]
    if not ensembles.empty:
        observed = ensembles[ensembles["dataset"] == "observed"]
        permuted = ensembles[ensembles["dataset"] != "observed"]
        shown = observed.astype(object)
        if len(permuted):
            shown = pd.concat([shown, pd.DataFrame([{
                "dataset": f"{len(permuted)} permuted (median)", "members": permuted["members"].median(),
                "test_mse": permuted["test_mse"].median(), "test_r2": permuted["test_r2"].median()}])])
        card.append(html_table(shown[["dataset", "members", "test_mse", "test_r2"]]))
    if "fold_sizes" in metrics and not networks.empty:   # `ginn pairtest`: one row per cross-fitting fold
        folds = networks.groupby("fold").agg(networks=("member", "size"), best_val_mse=("best_val_mse", "mean"),
                                             epochs=("epochs", "mean"))
        folds.insert(0, "samples tested", metrics["fold_sizes"])
        card.append(_note("Each fold's samples get gene values from networks trained on the other folds only.")
                    + html_table(folds.reset_index().astype(object)))
    elif not networks.empty and "dataset" in networks:
        card.append(_member_figures(networks))
    return f"<div>{''.join(card)}</div>"


def _member_figures(networks: pd.DataFrame) -> str:
    """R² per member and, when metrics.json records them, per-epoch training curves."""
    members = networks[networks["dataset"] == "observed"]
    if members.empty:
        members = networks
    figs = []
    r2 = {part: members[f"{part}_r2"].to_numpy(dtype=float) for part in ("train", "val", "test")
          if f"{part}_r2" in members}
    if r2:
        figs.append(figure_html(figures.member_r2(r2), f"R² of each of the {len(members)} members"))
    if "history" in members:
        curves = {f"member {int(rec['member'])}": rec["history"] for _, rec in members.iterrows()
                  if isinstance(rec["history"], dict)}
        if curves:
            figs.append(figure_html(figures.training_curves(curves), "Validation loss per epoch of each member "
                                    "(early stopping keeps its best epoch)"))
    return f'<div class="figures">{"".join(figs)}</div>'


def _truth_pairs(run: RunOutputs) -> set[frozenset]:
    pairs = set()
    for path in run.truth:
        table = _read_tsv(path)
        true = is_true(table["interacting"])
        pairs |= {frozenset(p) for p in table.loc[true, ["gene_a", "gene_b"]].itertuples(index=False)}
    return pairs


def results_section(run: RunOutputs, phenotype: str, fdr: float, truth: set[frozenset]) -> str:
    parts = []
    results_paths = run.linked(run.results, phenotype)
    for path in results_paths:
        table = _read_tsv(path).sort_values("score", ascending=False, kind="stable").reset_index(drop=True)
        hits = is_true(table["called"])
        shown = table.head(TOP_ROWS).copy()
        shown.insert(0, "rank", np.arange(1, len(shown) + 1))
        for column in ("gene_a", "gene_b"):
            shown[column] = shown[column].astype(object)
        if truth:
            shown["planted"] = [frozenset(p) in truth for p in zip(shown["gene_a"], shown["gene_b"])]
        planted = f", {sum(frozenset(p) in truth for p in table.loc[hits, ['gene_a', 'gene_b']].itertuples(index=False))} " \
                  f"of them planted" if truth else ""
        global_p = pd.to_numeric(table.get("global_p_maxt"), errors="coerce")
        global_note = (f" Perm I global test (H0: no pair interacts at all): p = {global_p.min():.3g} "
                       f"({int(table['n_permutations'].iloc[0])} permutations); its global_* columns are not per-pair calls."
                       if global_p is not None and global_p.notna().any() else "")
        parts.append(f"<h3>Called gene pairs ({_esc(path.name)})</h3>" + _note(
            f"{int(hits.sum())} of {len(table)} pairs called at FDR <= {fdr:g} (shaded){planted}. "
            "A call answers \"does this pair interact, given the main effects and the other pairs?\": p_pair is the "
            "cross-fitted per-pair test (ginn pairtest), q_pair its Benjamini-Hochberg q-value, p_pair_fwer its Holm "
            f"adjustment; score = |z| ranks the pairs.{global_note} Top {len(shown)} shown.") +
            html_table(shown, hits.head(TOP_ROWS)))
        figs = [figure_html(figures.fdr_histogram(table["q_pair"].to_numpy(dtype=float), fdr),
                            "Number of pairs added per FDR step (q_pair); right: zoom into FDR < 0.45")]
        qq = _qq_figure(run.linked(run.scores, phenotype), table, fdr)
        figs.append(qq if qq else _note("No permuted scores found: the Perm I Q-Q plot needs score files with perm-<k> rows."))
        parts.append(f'<div class="figures">{"".join(figs)}</div>')
    if not results_paths:
        parts.append(_note("No interaction test results (test stage) for this phenotype."))
    return "".join(parts)


def _qq_figure(score_paths: list[Path], results: pd.DataFrame, fdr: float) -> str:
    if not score_paths:
        return ""
    try:
        scores = merge_score_files(score_paths)
    except GinnError as exc:
        log.warning("report: no Q-Q plot: %s", exc)
        return ""
    observed = scores[scores["dataset"] == "observed"]
    null = scores[scores["dataset"] != "observed"].pivot(index="dataset", columns=["first", "second"],
                                                          values="score")
    pair_index = pd.MultiIndex.from_frame(observed[["first", "second"]])
    q = results.assign(first=results[["gene_a", "gene_b"]].min(axis=1), second=results[["gene_a", "gene_b"]].max(axis=1))
    called = q.assign(called=is_true(q["called"])).set_index(["first", "second"])["called"].reindex(pair_index).fillna(False)
    png = figures.qq_plot(observed["score"].to_numpy(), null.reindex(columns=pair_index).to_numpy(dtype=float),
                          called.to_numpy(dtype=bool))
    return figure_html(png, f"Fig. 6b: observed vs Perm I permuted Shapley scores ({len(null)} permutations); "
                            f"bars cover 95% of permuted scores; blue: called by the per-pair test at FDR <= {fdr:g}")


def baselines_section(run: RunOutputs, phenotype: str, fdr: float) -> str:
    rows = []
    for path in run.linked(run.baselines, phenotype):
        table = _read_tsv(path).sort_values("score", ascending=False, kind="stable")
        best = table.iloc[0] if len(table) else None
        rows.append({"method": path.name.removesuffix(".results.tsv").split(".", 1)[-1],
                     f"pairs called at FDR <= {fdr:g}": (int(is_true(table["called"]).sum()) if pd.to_numeric(
                         table["p_pair"], errors="coerce").notna().any() else "no per-pair test"),
                     "top pair": "" if best is None else f"{best['gene_a']} x {best['gene_b']}"})
    if not rows:
        return ""
    return "<h3>Baseline methods</h3>" + html_table(pd.DataFrame(rows).astype(object))


def replication_section(run: RunOutputs, phenotype: str) -> str:
    parts = []
    for path in run.linked(run.replications, phenotype):
        table = _read_tsv(path)
        stem = path.with_name(path.name.removesuffix(".tsv"))
        shown = table.copy()
        for column in ("gene_a", "gene_b"):
            shown[column] = shown[column].astype(object)
        parts.append(f"<h3>Replication ({_esc(path.name)})</h3>" + _note(
            f"{int((table['p_one_sided'] < 0.05).sum())} of {len(table)} candidate pairs replicate at one-sided "
            "p < 0.05 (Eq. 5: replication residual after linear main effects regressed on the interaction "
            "learned in the discovery cohort). topsnp_p: Eq. 4 product term of the genes' top SNPs.") +
            html_table(shown, table["p_one_sided"] < 0.05))
        parts.append(_replication_figures(stem, table))
        alignment = stem.with_name(stem.name + ".gene_alignment.tsv")
        if alignment.is_file():
            genes = _read_tsv(alignment)
            genes["gene"] = genes["gene"].astype(object)
            parts.append("<details><summary>Allele alignment per gene</summary>" + html_table(genes) + "</details>")
    return "".join(parts)


def _replication_figures(stem: Path, table: pd.DataFrame) -> str:
    points_path, surface_path = (stem.with_name(stem.name + suffix) for suffix in (".points.tsv", ".surface.tsv"))
    if not (points_path.is_file() and surface_path.is_file()):
        return _note("No Fig. 7 data next to the replication table.")
    points, surface = _read_tsv(points_path), _read_tsv(surface_path)
    blocks = []
    for _, row in table.iterrows():
        mine = points[(points["gene_a"] == row["gene_a"]) & (points["gene_b"] == row["gene_b"])]
        grid = surface[(surface["gene_a"] == row["gene_a"]) & (surface["gene_b"] == row["gene_b"])]
        if mine.empty or grid.empty or not np.isfinite(row["alpha"]):
            continue
        side = int(round(np.sqrt(len(grid))))
        shape = (side, side)
        predicted, residual = mine["interaction"].to_numpy(), mine["residual"].to_numpy()
        intercept = float(np.mean(residual) - row["alpha"] * np.mean(predicted))
        scatter = figures.replication_scatter(predicted, residual, row["alpha"], intercept, row["p_one_sided"],
                                              row["gene_a"], row["gene_b"])
        heat = figures.interaction_surface(grid["value_a"].to_numpy().reshape(shape),
                                           grid["value_b"].to_numpy().reshape(shape),
                                           grid["interaction"].to_numpy().reshape(shape),
                                           mine["value_a"].to_numpy(), mine["value_b"].to_numpy(), predicted,
                                           row["gene_a"], row["gene_b"])
        blocks.append(f'<div class="figures">{figure_html(scatter, "Fig. 7a: Eq. 5 fit in the replication cohort")}'
                      f'{figure_html(heat, "Fig. 7b: learned interaction over the two gene values, replication individuals as dots")}</div>')
    return "".join(blocks)


def provenance_section(run: RunOutputs, records: list[tuple[Path, dict]]) -> str:
    items = []
    for path, record in records:
        versions = ", ".join(f"{k} {v}" for k, v in record.get("versions", {}).items())
        command = " ".join(map(str, record.get("command", [])))
        items.append(f"<details><summary>{_esc(path.relative_to(run.root))} — {_esc(record.get('stage', '?'))}"
                     f"</summary><p class='note'>command: <code>{_esc(command)}</code><br>versions: {_esc(versions)}</p>"
                     f"<pre>{_esc(json.dumps(record.get('params', {}), indent=1))}</pre></details>")
    return "<section><h2>Provenance</h2>" + "".join(items) + "</section>" if items else ""


def render_report(run: RunOutputs, fdr: float = 0.1, bgs_results: Path | None = None) -> str:
    """The whole page as one HTML string (``bgs_results``: the brain-genotype-scores table, if the run has one)."""
    records = _read_provenance(run.provenance)
    truth = _truth_pairs(run)
    body = [summary_section(run, records), qc_section(run)]
    for phenotype in run.phenotypes:
        body.append(f"<section><h2>Phenotype {_esc(phenotype)}</h2>"
                    + data_section(run.linked(run.datasets, phenotype))
                    + model_section(run.linked(run.models, phenotype))
                    + results_section(run, phenotype, fdr, truth)
                    + baselines_section(run, phenotype, fdr)
                    + replication_section(run, phenotype) + "</section>")
    body.append(bgs_report_section(run.root, bgs_results))
    body.append(provenance_section(run, records))
    when = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>ginn report: {_esc(run.root.name)}'
            f"</title><style>{CSS}</style></head><body><header><h1>ginn report</h1><p>run folder "
            f"{_esc(run.root)} — made {when} by ginn {_esc(__version__)}</p></header><main>{''.join(body)}"
            "</main></body></html>\n")


def run_report(outdir: str | Path, out: str | Path, fdr: float = 0.1) -> Path:
    root = Path(outdir)
    if not root.is_dir():
        raise GinnError(root, "run folder not found")
    run = discover(root)
    bgs_results = find_bgs_results(root)
    if not run.phenotypes and bgs_results is None:
        raise GinnError(root, "no results found (no interaction scores, test results, replication tables or "
                              "brain-genotype-score results under this folder; run `ginn run` or the stages first)")
    page = render_report(run, fdr, bgs_results)
    out = Path(out)
    with atomic_outputs() as outputs:
        outputs.file(out).write_text(page, encoding="utf-8")
        write_json(outputs.file(provenance_path(out)), provenance_record(
            "report", {"outdir": str(root), "out": str(out), "fdr": fdr},
            extra={"phenotypes": run.phenotypes, "n_inputs": len(run.provenance)}))
    log.info("report: %d phenotype(s), %d provenance records -> %s (%.0f kB)", len(run.phenotypes),
             len(run.provenance), out, len(page) / 1024)
    return out


@click.command("report")
@stage_options("report")
def report_command(outdir, fdr, out):
    """Write one self-contained HTML page (figures embedded) summarising a run folder."""
    run_report(outdir, out, fdr)
