"""Sweep the paper's simulation grid: simulate -> baselines (and the NN) -> evaluate -> AP/AUROC table.

The paper (Figs. 3-4) varies one knob at a time from a default setting: S/N {0.1, 0.5, 1.0}, n {40k,
80k, 120k}, causal SNPs {10, 50, 100}%, M/I {0.25, 1, 4}, 20 datasets each. This driver does the same
at a size you choose: every (phenotype model, knob value, seed) gets one simulated dataset (msprime
genotypes for the packaged lipid genes by default), which each method scores; evaluation compares
the ranking with the truth. The NN runs through the `ginn train/score[/test]` commands when those
stages are installed (``--nn``); with ``--nn-permutations B`` it also gets Perm I p-values.

Outputs in --outdir: ``sweep.tsv`` (one row per dataset and method), ``summary.tsv`` (mean and SD
over seeds), ``<model>.png`` (AP and AUROC per method and knob value, like Figs. 3-4),
``calibration.tsv``/``.png`` (false positive rate of p <= t on the non-interacting pairs, pooled over
seeds; on ``--models null`` this is Fig. 5), and the summary printed as a markdown table.

Example (CPU, ~15 min for the base setting with 3 seeds and the six baselines)::

    python benchmarks/sweep.py --n-samples 20000 --snr 0.5 --seeds 3 --outdir sweep_out
"""

from __future__ import annotations

import argparse
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

KNOBS = {"snr": "snr_values", "n_samples": "n_values", "causal_prop": "causal_values", "mi_ratio": "mi_values"}


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def settings(args) -> list[tuple[str, dict]]:
    """(knob, simulation params): the base setting, then one knob at a time."""
    base = {"snr": args.snr, "n_samples": args.n_samples, "causal_prop": args.causal_prop, "mi_ratio": args.mi_ratio}
    out = [("base", base)]
    for knob in args.vary:
        for value in getattr(args, KNOBS[knob]):
            if value != base[knob]:
                out.append((knob, {**base, knob: int(value) if knob == "n_samples" else value}))
    return out


def ginn_executable() -> str:
    exe = Path(sys.executable).with_name("ginn")
    return str(exe) if exe.exists() else shutil.which("ginn")


def nn_available() -> bool:
    import importlib.util

    return all(importlib.util.find_spec(f"ginn.{m}") is not None for m in ("train", "score", "permtest"))


def run_nn(data: Path, seed: int, args) -> None:
    """Train, score (and with permutations, Perm I test) the NN through the ginn commands."""
    ginn = ginn_executable()
    common = ["--data", str(data), "--seed", str(seed), "--max-epochs", str(args.nn_max_epochs),
              "--batch-size", str(args.nn_batch_size)]

    def call(*argv):
        subprocess.run([ginn, "-q", *argv], check=True)

    call("train", *common, "--model", "interaction", "--members", str(args.nn_members), "--out", str(data / "nn"))
    call("score", "--data", str(data), "--models", str(data / "nn"), "--out", str(data / "nn_scores.tsv"))
    results = data / "nn_results.tsv"
    if args.nn_permutations:
        perms = f"1-{args.nn_permutations}"
        call("train", *common, "--model", "main", "--members", str(args.nn_members), "--out", str(data / "nn_main"))
        call("train", *common, "--model", "interaction", "--members", str(args.nn_members), "--target", "perm-I",
             "--permutations", perms, "--null-model", str(data / "nn_main"), "--out", str(data / "nn_perm"))
        call("score", "--data", str(data), "--models", str(data / "nn_perm"), "--out", str(data / "nn_perm_scores.tsv"))
        call("test", "--scores", str(data / "nn_scores.tsv"), str(data / "nn_perm_scores.tsv"), "--out", str(results))
    else:
        scores = pd.read_csv(data / "nn_scores.tsv", sep="\t")
        write_tsv(results, scores.loc[scores["dataset"] == "observed", ["gene_a", "gene_b", "score"]])


def run_dataset(folder: Path, model: str, params: dict, seed: int, args) -> list[dict]:
    truth = simulate_dataset(folder, model=model, seed=seed, genotypes=args.genotypes,
                             snps_per_gene=args.snps_per_gene, n_genes=args.n_genes, **params)
    truth_path = folder / "truth.tsv"
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
                                 seed=seed, threads=args.threads)
            write_tsv(results_path, table)
        metrics, _, _ = evaluate([results_path], [truth_path], alpha=args.alpha)
        rows.append({"method": method, "seconds": round(time.time() - started, 1), "results": str(results_path),
                     "truth": str(truth_path),
                     **metrics.iloc[0].drop(["results", "n_pairs", "n_true"]).to_dict()})
        print(f"  {method:14s} AP {rows[-1]['ap']:.3f}  AUROC {rows[-1]['auroc']:.3f}  ({rows[-1]['seconds']} s)",
              flush=True)
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
    """p_perm calibration per method on the base setting of each model (Fig. 5 for the null model)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    base = calibration[calibration["knob"] == "base"]
    models = list(dict.fromkeys(base["model"]))
    fig, axes = plt.subplots(1, len(models), figsize=(4.5 * len(models), 4.2), squeeze=False)
    for ax, model in zip(axes[0], models):
        for m, (method, rows) in enumerate(base[base["model"] == model].groupby("method", sort=False)):
            if rows["fpr_perm"].notna().any():
                ax.plot(rows["nominal"], rows["fpr_perm"], marker=".", label=method,
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
    parser.add_argument("--vary", default="", help="Knobs varied one at a time: snr,n_samples,causal_prop,mi_ratio.")
    parser.add_argument("--snr-values", type=floats, default=[0.1, 0.5, 1.0])
    parser.add_argument("--n-values", type=floats, default=[40_000, 80_000, 120_000])
    parser.add_argument("--causal-values", type=floats, default=[0.1, 0.5, 1.0])
    parser.add_argument("--mi-values", type=floats, default=[0.25, 1.0, 4.0])
    parser.add_argument("--seeds", type=int, default=3, help="Datasets per setting (seeds 1..S).")
    parser.add_argument("--genotypes", choices=["msprime", "independent"], default="msprime")
    parser.add_argument("--snps-per-gene", type=int, default=30, help="SNPs kept per gene (random subset).")
    parser.add_argument("--methods", default=",".join(METHODS),
                        help="Comma list of baseline methods, plus 'nn' for the neural network.")
    parser.add_argument("--perm", choices=["T", "R"], default="T", help="Permutation null of lasso/xgb.")
    parser.add_argument("--permutations", type=int, default=0, help="Permutations for lasso/xgb p-values.")
    parser.add_argument("--nn-members", type=int, default=5)
    parser.add_argument("--nn-max-epochs", type=int, default=200)
    parser.add_argument("--nn-batch-size", type=int, default=1000,
                        help="NN mini-batch (the paper's 30,000 gives one step per epoch at CPU sizes).")
    parser.add_argument("--nn-permutations", type=int, default=0, help="Perm I permutations for the NN.")
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
    if "nn" in args.methods and not nn_available():
        parser.error("the NN stages (ginn.train, ginn.score, ginn.permtest) are not installed")

    args.outdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for model in args.models.split(","):
        for knob, params in settings(args):
            for seed in range(1, args.seeds + 1):
                setting = "base" if knob == "base" else f"{knob}{params[knob]:g}"
                folder = args.outdir / "data" / f"{model}_{setting}_seed{seed}"
                print(f"{model} {setting} seed {seed}: {params}", flush=True)
                for row in run_dataset(folder, model, params, seed, args):
                    rows.append({"model": model, "knob": knob, **params, "seed": seed, **row})
                write_tsv(args.outdir / "sweep.tsv", pd.DataFrame(rows))
    table = pd.DataFrame(rows)
    metrics = ["ap", "auroc", "power_perm", "specificity_perm", "power_maxt", "specificity_maxt"]
    summary = table.groupby(["model", "knob", *KNOBS, "method"], sort=False)[metrics].agg(["mean", "std"])
    summary.columns = [f"{m}_{'sd' if s == 'std' else s}" for m, s in summary.columns]
    summary = summary.reset_index()
    write_tsv(args.outdir / "summary.tsv", summary)
    for model in summary["model"].unique():
        plot(summary[summary["model"] == model], args.outdir / f"{model}.png", model, args.vary)
    calibration = pooled_calibration(table, args.alpha)
    write_tsv(args.outdir / "calibration.tsv", calibration)
    plot_calibration(calibration, args.outdir / "calibration.png")
    print()
    print(f"| model | setting | method | AP (mean ± sd) | AUROC (mean ± sd) | power / specificity, p_perm < {args.alpha:g} |")
    print("|---|---|---|---|---|---|")
    for r in summary.itertuples():
        setting = "base" if r.knob == "base" else f"{r.knob}={getattr(r, r.knob):g}"
        print(f"| {r.model} | {setting} | {r.method} | {r.ap_mean:.3f} ± {r.ap_sd:.3f} | "
              f"{r.auroc_mean:.3f} ± {r.auroc_sd:.3f} | {r.power_perm_mean:.2f} / {r.specificity_perm_mean:.2f} |")


if __name__ == "__main__":
    main()
