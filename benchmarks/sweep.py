"""Sweep the paper's simulation grid: simulate -> ginn and the baselines -> evaluate -> tables.

The paper (Figs. 3-4) varies one knob at a time from a default setting: S/N {0.1, 0.5, 1.0}, n {40k,
80k, 120k}, causal SNPs {10, 50, 100}%, M/I {0.25, 1, 4}, 20 datasets each. This driver does the same
at a size you choose: every (phenotype model, knob value, seed) gets one simulated dataset (msprime
genotypes for the packaged lipid genes by default), which each method scores and calls.

``nn`` is ginn with its defaults, through its commands: ``ginn pairtest`` (cross-fitted per-pair test)
then ``ginn test`` (calls at FDR 0.1; with ``--nn-permutations B`` also Perm I's global test). The
baselines' calls are their per-pair p-values with Benjamini-Hochberg (FDR) and Holm (FWER); lasso and
xgb have no per-pair test and only rank.

Per dataset and method: AP and AUROC of the ranking; number called, false discovery proportion (FDP)
and power of the calls at q <= 0.1; whether any non-interacting pair has FWER-adjusted p <= 0.05, and
the power of those calls. Per setting: means with SD and SE over seeds, and paired comparisons of
ginn's AP with every baseline's on the same datasets (wins, losses, mean difference and its 95%
t-interval).

Outputs in --outdir: ``sweep.tsv`` (one row per dataset and method), ``summary.tsv``, ``paired.tsv``,
``<model>.png`` (AP and AUROC per method and knob value, like Figs. 3-4), ``calibration.tsv``/``.png``
(false positive rate of p_pair <= t on the non-interacting pairs, pooled over seeds), and the markdown
tables printed; ``--readme README.md`` also writes them between the README's sweep markers.

The README's table (about 2 hours on a quiet 2-core machine; ``--resume`` continues an interrupted run,
``--first-seed`` runs a later block of seeds on its own)::

    python benchmarks/sweep.py --models complex,simple,null --n-samples 20000 --vary n_samples \
        --n-values 40000 --vary-models complex --seeds 20 --outdir sweep_out --readme README.md
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from ginn.baselines import METHODS, run_baseline
from ginn.dataset import Dataset
from ginn.evaluate import evaluate
from ginn.files import write_tsv
from ginn.simulate import simulate_dataset
from paired import paired_interval

KNOBS = {"snr": "snr_values", "n_samples": "n_values", "causal_prop": "causal_values", "mi_ratio": "mi_values"}


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def settings(args) -> list[tuple[str, dict]]:
    """(knob, simulation params): the base setting, then one knob at a time."""
    base = {"snr": args.snr, "n_samples": args.n_samples, "causal_prop": args.causal_prop, "mi_ratio": args.mi_ratio}
    out = [] if args.varied_only else [("base", base)]
    for knob in args.vary:
        for value in getattr(args, KNOBS[knob]):
            if value != base[knob]:
                out.append((knob, {**base, knob: int(value) if knob == "n_samples" else value}))
    return out


def ginn_executable() -> str:
    exe = Path(sys.executable).with_name("ginn")
    return str(exe) if exe.exists() else shutil.which("ginn")


def run_nn(data: Path, seed: int, args) -> None:
    """ginn with its defaults: the cross-fitted pair tests, then the calls (and Perm I's global test)."""
    ginn = ginn_executable()
    overrides = [flag for flag, value in (("--members", args.nn_members), ("--max-epochs", args.nn_max_epochs),
                                           ("--batch-size", args.nn_batch_size)) if value is not None
                 for flag in (flag, str(value))]

    def call(*argv):
        subprocess.run([ginn, "-q", *argv], check=True, env=os.environ | {"OMP_NUM_THREADS": str(args.threads)})

    if not (args.resume and (data / "nn_pairs" / "pairs.tsv").is_file()):
        call("pairtest", "--data", str(data), "--seed", str(seed), *overrides, "--out", str(data / "nn_pairs"))
    scores = []
    if args.nn_permutations:
        common = ["--data", str(data), "--seed", str(seed), "--members", str(args.nn_perm_members)]
        call("train", *common, "--model", "main", "--out", str(data / "nn_main"))
        call("train", *common, "--model", "interaction", "--out", str(data / "nn"))
        call("train", *common, "--model", "interaction", "--target", "perm-I", "--permutations",
             f"1-{args.nn_permutations}", "--null-model", str(data / "nn_main"), "--out", str(data / "nn_perm"))
        for name in ("nn", "nn_perm"):
            call("score", "--data", str(data), "--models", str(data / name), "--out", str(data / f"{name}_scores.tsv"))
            scores.append(str(data / f"{name}_scores.tsv"))
    call("test", "--pairs", str(data / "nn_pairs" / "pairs.tsv"), *(["--scores", *scores] if scores else []),
         "--fdr", str(args.fdr), "--out", str(data / "nn_results.tsv"))


def run_dataset(folder: Path, model: str, params: dict, seed: int, args) -> list[dict]:
    truth_path = folder / "truth.tsv"
    if not (args.resume and truth_path.is_file() and (folder / "meta.json").is_file()):
        truth = simulate_dataset(folder, model=model, seed=seed, genotypes=args.genotypes,
                                 snps_per_gene=args.snps_per_gene, n_genes=args.n_genes, **params)
        write_tsv(truth_path, truth.assign(interacting=truth["interacting"].astype(int)))
    data = Dataset.load(folder)
    rows = []
    for method in args.methods:
        started = time.time()
        results_path = folder / ("nn_results.tsv" if method == "nn" else f"{method}.tsv")
        if args.resume and results_path.is_file():
            pass   # scored by an earlier run of the same (deterministic) setting
        elif method == "nn":
            try:
                run_nn(folder, seed, args)
            except subprocess.CalledProcessError as exc:
                print(f"  nn failed ({exc}); left out of this dataset's rows", flush=True)
                continue
        else:
            model_kind = method.split("-")[1]
            perm = args.perm if model_kind != "lr" and args.permutations else None
            table = run_baseline(data, method, perm=perm, permutations=args.permutations if perm else 0,
                                 seed=seed, threads=args.threads, fdr=args.fdr)
            write_tsv(results_path, table)
        metrics, _, _ = evaluate([results_path], [truth_path], alpha=args.alpha)
        rows.append({"method": method, "seconds": round(time.time() - started, 1), "results": str(results_path),
                     "truth": str(truth_path),
                     **metrics.iloc[0].drop(["results", "n_pairs", "n_true"]).to_dict()})
        print(f"  {method:14s} AP {rows[-1]['ap']:.3f}  AUROC {rows[-1]['auroc']:.3f}  called {rows[-1]['n_called']:g} "
              f"FDP {rows[-1]['fdp']:.2f}  ({rows[-1]['seconds']} s)", flush=True)
    return rows


def plot(summary: pd.DataFrame, path: Path, model: str, knobs: list[str]) -> None:
    """Bars of AP and AUROC per method: one column per knob (the base setting included), like Figs. 3-4."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = knobs or ["snr"]
    fig, axes = plt.subplots(2, len(panels), figsize=(max(6.5, 4.5 * len(panels)), 7.5), squeeze=False)
    methods = list(dict.fromkeys(summary["method"]))
    width = 0.8 / len(methods)
    for col, knob in enumerate(panels):
        part = summary[summary["knob"].isin([knob, "base"])]
        values = sorted(part[knob].unique())
        for row, metric in enumerate(("ap", "auroc")):
            ax = axes[row, col]
            for m, method in enumerate(methods):
                rows = part[part["method"] == method].set_index(knob).reindex(values)
                ax.bar(np.arange(len(values)) + m * width, rows[f"{metric}_mean"], width,
                       yerr=rows[f"{metric}_sd"], label=method, color="black" if method == "nn" else f"C{m}")
            ax.set_xticks(np.arange(len(values)) + 0.4 - width / 2)
            ax.set_xticklabels([f"{v:g}" for v in values])
            ax.set(xlabel=knob, ylabel=metric.upper(), ylim=(0, 1))
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=min(len(methods), 4), fontsize=8)
    fig.suptitle(f"{model} interactions (mean ± SD over seeds)")
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


def pooled_calibration(table: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Calibration of each method's p-values over the non-interacting pairs of all seeds of a setting."""
    parts = []
    for (model, knob, *values, method), rows in table.groupby(["model", "knob", *KNOBS, "method"], sort=False):
        _, calibration, _ = evaluate(list(rows["results"]), list(rows["truth"]), alpha=alpha)
        parts.append(calibration.assign(model=model, knob=knob, **dict(zip(KNOBS, values)), method=method))
    return pd.concat(parts, ignore_index=True)


def plot_calibration(calibration: pd.DataFrame, path: Path) -> None:
    """p_pair calibration per method on the base setting of each model (Fig. 5 for the null model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = calibration[calibration["knob"] == "base"]
    models = list(dict.fromkeys(base["model"]))
    if not models:
        return
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        for m, (method, rows) in enumerate(base[base["model"] == model].groupby("method", sort=False)):
            if rows["fpr_pair"].notna().any():
                ax.plot(rows["nominal"], rows["fpr_pair"], marker=".", label=method,
                        color="black" if method == "nn" else f"C{m}")
        ax.plot([0, 1], [0, 1], ls="--", color="grey")
        ax.set(title=f"{model}: non-interacting pairs", xlabel="p-value threshold", ylabel="false positive rate",
               xlim=(0, 1), ylim=(0, 1))
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="complex,simple", help="Phenotype models to sweep.")
    parser.add_argument("--n-samples", type=int, default=20_000)
    parser.add_argument("--snr", type=float, default=0.5)
    parser.add_argument("--causal-prop", type=float, default=0.5)
    parser.add_argument("--mi-ratio", type=float, default=1.0)
    parser.add_argument("--n-genes", type=int, default=10)
    parser.add_argument("--vary-models", default="", help="Vary the knobs for these models only (default: all).")
    parser.add_argument("--varied-only", action="store_true",
                        help="Skip the base setting (e.g. a second process for the varied knob values).")
    parser.add_argument("--vary", default="", help="Knobs varied one at a time: snr,n_samples,causal_prop,mi_ratio.")
    parser.add_argument("--snr-values", type=floats, default=[0.1, 0.5, 1.0])
    parser.add_argument("--n-values", type=floats, default=[40_000, 80_000, 120_000])
    parser.add_argument("--causal-values", type=floats, default=[0.1, 0.5, 1.0])
    parser.add_argument("--mi-values", type=floats, default=[0.25, 1.0, 4.0])
    parser.add_argument("--seeds", type=int, default=3, help="Datasets per setting (seeds 1..S).")
    parser.add_argument("--first-seed", type=int, default=1,
                        help="Start at this seed (a second process can share a sweep's seeds; --resume joins them).")
    parser.add_argument("--genotypes", choices=["msprime", "independent"], default="msprime")
    parser.add_argument("--snps-per-gene", type=int, default=20, help="SNPs kept per gene (random subset).")
    parser.add_argument("--methods", default=",".join(["nn", *METHODS]),
                        help="Comma list of baseline methods, plus 'nn' for the neural network.")
    parser.add_argument("--perm", choices=["T", "R"], default="T", help="Permutation null of lasso/xgb.")
    parser.add_argument("--permutations", type=int, default=0, help="Permutations for lasso/xgb p-values.")
    parser.add_argument("--nn-members", type=int, default=None, help="Networks per cross-fitting fold [ginn's default].")
    parser.add_argument("--nn-max-epochs", type=int, default=None, help="[ginn's default]")
    parser.add_argument("--nn-batch-size", type=int, default=None, help="[ginn's default]")
    parser.add_argument("--nn-permutations", type=int, default=0, help="Perm I permutations for ginn's global test.")
    parser.add_argument("--nn-perm-members", type=int, default=5, help="Ensemble members per Perm I dataset.")
    parser.add_argument("--fdr", type=float, default=0.1, help="FDR of every method's calls.")
    parser.add_argument("--readme", type=Path, default=None, help="Write the tables into this README's sweep block.")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--outdir", type=Path, default=Path("sweep_out"))
    parser.add_argument("--resume", action="store_true",
                        help="Reuse results files already in --outdir (same settings and seeds only).")
    args = parser.parse_args(argv)
    args.vary = [k for k in args.vary.split(",") if k]
    unknown = [k for k in args.vary if k not in KNOBS]
    if unknown:
        parser.error(f"unknown knob(s) {unknown}; choose from {list(KNOBS)}")
    args.methods = [m for m in args.methods.split(",") if m]

    args.outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for model in args.models.split(","):
        for knob, params in settings(args):
            if knob != "base" and args.vary_models and model not in args.vary_models.split(","):
                continue
            for seed in range(args.first_seed, args.seeds + 1):
                setting = "base" if knob == "base" else f"{knob}{params[knob]:g}"
                folder = args.outdir / "data" / f"{model}_{setting}_seed{seed}"
                print(f"{model} {setting} seed {seed}: {params}", flush=True)
                for row in run_dataset(folder, model, params, seed, args):
                    rows.append({"model": model, "knob": knob, **params, "seed": seed, **row})
                write_tsv(args.outdir / "sweep.tsv", pd.DataFrame(rows))
    report(pd.DataFrame(rows), args)


METRICS = ["ap", "auroc", "n_called", "fdp", "power_called", "fwer_error", "power_fwer"]
GROUP = ["model", "knob", *KNOBS]


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, SD and SE over seeds of every metric, per setting and method."""
    grouped = table.groupby([*GROUP, "method"], sort=False)[METRICS]
    summary = grouped.agg(["mean", "std", "count"])
    out = summary.xs("mean", axis=1, level=1).add_suffix("_mean")
    sd = summary.xs("std", axis=1, level=1)
    out = out.join(sd.add_suffix("_sd")).join((sd / np.sqrt(summary.xs("count", axis=1, level=1))).add_suffix("_se"))
    return out.join(grouped.size().rename("n_datasets")).reset_index()


def paired_comparison(table: pd.DataFrame, reference: str = "nn") -> pd.DataFrame:
    """Per setting, the reference method's AP minus each other method's on the same datasets: wins,
    losses, ties, mean difference and its 95% t-interval over seeds."""
    rows = []
    for key, part in table.groupby(GROUP, sort=False):
        wide = part.pivot(index="seed", columns="method", values="ap")
        if reference not in wide:
            continue
        for method in [m for m in wide.columns if m != reference]:
            diff = (wide[reference] - wide[method]).dropna()
            if len(diff) < 2:
                continue
            mean, low, high = paired_interval(diff)
            rows.append({**dict(zip(GROUP, key)), "method": method, "n": len(diff), "wins": int((diff > 0).sum()),
                         "losses": int((diff < 0).sum()), "ties": int((diff == 0).sum()),
                         "ap_difference": mean, "ci_low": low, "ci_high": high})
    return pd.DataFrame(rows)


def _setting(row) -> str:
    return f"n={int(row.n_samples):,}" if row.knob in ("base", "n_samples") else f"{row.knob}={getattr(row, row.knob):g}"


def markdown(summary: pd.DataFrame, paired: pd.DataFrame, fdr: float, alpha: float) -> str:
    """The README tables: ranking and calls per method, then ginn's paired AP comparison."""
    def cell(row, metric, digits=3):
        mean, spread = getattr(row, f"{metric}_mean"), getattr(row, f"{metric}_se")
        return "–" if pd.isna(mean) else f"{mean:.{digits}f} ± {spread:.{digits}f}"

    lines = [f"| model | setting | method | datasets | AP | AUROC | called (q ≤ {fdr:g}) | FDP | power | "
             f"FWER (p_fwer ≤ {alpha:g}) | power at FWER |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        name = "**ginn**" if r.method == "nn" else r.method
        lines.append(f"| {r.model} | {_setting(r)} | {name} | {r.n_datasets} | {cell(r, 'ap')} | {cell(r, 'auroc')} | "
                     f"{cell(r, 'n_called', 1)} | {cell(r, 'fdp')} | {cell(r, 'power_called', 2)} | "
                     f"{cell(r, 'fwer_error', 2)} | {cell(r, 'power_fwer', 2)} |")
    lines += ["", "| model | setting | ginn vs | wins / losses / ties | AP difference (95% CI) |", "|---|---|---|---|---|"]
    for r in paired.itertuples():
        lines.append(f"| {r.model} | {_setting(r)} | {r.method} | {r.wins} / {r.losses} / {r.ties} | "
                     f"{r.ap_difference:+.3f} ({r.ci_low:+.3f}, {r.ci_high:+.3f}) |")
    return "\n".join(lines) + "\n"


README_BEGIN, README_END = "<!-- sweep:begin -->", "<!-- sweep:end -->"


def write_readme(path: Path, text: str) -> None:
    readme = path.read_text()
    if README_BEGIN not in readme or README_END not in readme:
        raise SystemExit(f"{path}: no {README_BEGIN} ... {README_END} markers to write the tables between")
    head, rest = readme.split(README_BEGIN, 1)
    _, tail = rest.split(README_END, 1)
    path.write_text(f"{head}{README_BEGIN}\n{text}{README_END}{tail}")


def report(table: pd.DataFrame, args) -> None:
    """summary.tsv, paired.tsv, figures, calibration and the markdown tables (README with --readme)."""
    summary, paired = summarise(table), paired_comparison(table)
    write_tsv(args.outdir / "summary.tsv", summary)
    write_tsv(args.outdir / "paired.tsv", paired)
    for model in summary["model"].unique():
        plot(summary[summary["model"] == model], args.outdir / f"{model}.png", model, args.vary)
    calibration = pooled_calibration(table, args.alpha)
    write_tsv(args.outdir / "calibration.tsv", calibration)
    plot_calibration(calibration, args.outdir / "calibration.png")
    text = markdown(summary, paired, args.fdr, args.alpha)
    print()
    print(text)
    if args.readme:
        write_readme(args.readme, text)


if __name__ == "__main__":
    main()
