"""The report's figures (the paper's Figs. 6-7 and model-fit plots), each returned as PNG bytes.

Figures are drawn on ``matplotlib.figure.Figure`` objects with the Agg canvas directly, so no pyplot
state or display backend is involved and a figure cannot leak into another.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

# Fig. 7's colouring of individuals by predicted interaction: low, medium, high (tertiles).
TERTILE_COLOURS = ("#3b6fb6", "#8e44ad", "#e6b422")
TERTILE_LABELS = ("low", "medium", "high")
CANDIDATE_COLOUR = "#1f5fbf"
OTHER_COLOUR = "#9a9a9a"
DPI = 100


def _png(figure: Figure) -> bytes:
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _figure(width: float = 5.5, height: float = 4.2) -> tuple[Figure, object]:
    figure = Figure(figsize=(width, height), layout="constrained")
    return figure, figure.add_subplot()


def null_quantiles(null_scores: np.ndarray, n_observed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected null score at each observed rank (largest first) and its 95% band over permutations.

    Row k of ``null_scores`` holds permutation k's scores of all pairs; the r-th largest score of each
    permutation estimates the null distribution of the r-th largest observed score (Fig. 6b's bars).
    """
    ranked = -np.sort(-np.asarray(null_scores, dtype=float), axis=1)
    if ranked.shape[1] != n_observed:  # permutations scored other pair counts: match by quantile
        positions = np.linspace(0, ranked.shape[1] - 1, n_observed)
        ranked = np.stack([np.interp(positions, np.arange(ranked.shape[1]), row) for row in ranked])
    return ranked.mean(axis=0), np.quantile(ranked, 0.025, axis=0), np.quantile(ranked, 0.975, axis=0)


def qq_plot(observed: np.ndarray, null_scores: np.ndarray, candidate: np.ndarray, title: str = "") -> bytes:
    """Fig. 6b: observed vs expected-under-permutation interaction scores with the 95% null band.

    ``observed`` (P,) and ``candidate`` (P,) bool are in any order; ``null_scores`` is (B, P).
    """
    order = np.argsort(-np.asarray(observed, dtype=float), kind="stable")
    observed_sorted = np.asarray(observed, dtype=float)[order]
    chosen = np.asarray(candidate, dtype=bool)[order]
    expected, low, high = null_quantiles(null_scores, len(observed_sorted))
    figure, ax = _figure()
    ax.vlines(expected, low, high, colors="#c8c8c8", linewidth=3, label="95% of permuted scores")
    ax.scatter(expected[~chosen], observed_sorted[~chosen], s=14, color=OTHER_COLOUR, zorder=3, label="other pairs")
    ax.scatter(expected[chosen], observed_sorted[chosen], s=22, color=CANDIDATE_COLOUR, zorder=4,
               label="candidates")
    limits = [min(expected.min(), observed_sorted.min()), max(high.max(), observed_sorted.max())]
    ax.plot(limits, limits, color="black", linewidth=0.8, linestyle="--")
    ax.set_xlabel("expected score under permutation")
    ax.set_ylabel("observed interaction score")
    ax.set_title(title or "Q-Q plot of interaction scores")
    ax.legend(loc="upper left", fontsize=8, frameon=False)
    return _png(figure)


def fdr_histogram(q_values: np.ndarray, threshold: float = 0.1, title: str = "", width: float = 0.05) -> bytes:
    """Fig. 6a: how many more pairs become findings as the FDR threshold rises (bars of ``width``),
    beside a zoom into FDR < 0.45 at half the bar width."""
    q = np.asarray(q_values, dtype=float)
    q = q[np.isfinite(q)]
    figure = Figure(figsize=(7.0, 3.4), layout="constrained")
    full, zoom = figure.subplots(1, 2, width_ratios=[3, 2])
    for ax, upper, step in ((full, 1.0, width), (zoom, 0.45, width / 2)):
        ax.hist(q[q <= upper], bins=np.arange(0, upper + step / 2, step), color=CANDIDATE_COLOUR, edgecolor="white")
        ax.axvline(threshold, color="#c0392b", linestyle="--", linewidth=1)
        ax.set_xlim(0, upper)
        ax.set_xlabel("false discovery rate (q-value)")
    full.set_ylabel("pairs added")
    zoom.set_title("zoom: FDR < 0.45", fontsize=9)
    figure.suptitle(title or f"Findings by FDR: {int((q <= threshold).sum())} pairs at FDR <= {threshold:g} "
                             "(dashed line)", fontsize=11)
    return _png(figure)


def tertile_groups(values: np.ndarray) -> np.ndarray:
    """0/1/2 for low/medium/high thirds of ``values`` (Fig. 7's colouring)."""
    cuts = np.quantile(values, [1 / 3, 2 / 3])
    return np.searchsorted(cuts, values, side="right")


def interaction_surface(grid_a: np.ndarray, grid_b: np.ndarray, surface: np.ndarray, points_a: np.ndarray,
                        points_b: np.ndarray, points_interaction: np.ndarray, gene_a: str, gene_b: str) -> bytes:
    """Fig. 7b: the learned interaction h - h_i - h_j over two gene values, individuals overlaid.

    ``grid_a``/``grid_b``/``surface`` are (G, G) arrays (meshgrid, ij indexing); individuals are
    coloured by the tertile of their predicted interaction, as in the replication scatter.
    """
    figure, ax = _figure(5.6, 4.6)
    centred = surface - np.median(surface)
    bound = max(float(np.abs(centred).max()), 1e-12)
    mesh = ax.pcolormesh(grid_a, grid_b, centred, shading="gouraud", cmap="PiYG",
                         norm=TwoSlopeNorm(0.0, -bound, bound))
    figure.colorbar(mesh, ax=ax, label="learned interaction (centred; pink = low)")
    groups = tertile_groups(points_interaction)
    inside = ((points_a >= grid_a.min()) & (points_a <= grid_a.max()) &
              (points_b >= grid_b.min()) & (points_b <= grid_b.max()))
    for group, (colour, label) in enumerate(zip(TERTILE_COLOURS, TERTILE_LABELS)):
        chosen = inside & (groups == group)
        ax.scatter(points_a[chosen], points_b[chosen], s=7, color=colour, alpha=0.8, edgecolors="#222222",
                   linewidths=0.2, label=f"{label} predicted interaction")
    ax.set_xlabel(f"{gene_a} gene value")
    ax.set_ylabel(f"{gene_b} gene value")
    ax.set_title(f"Learned interaction {gene_a} x {gene_b}")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize=7, markerscale=2.5, frameon=False)
    return _png(figure)


def replication_scatter(predicted: np.ndarray, residual: np.ndarray, alpha: float, intercept: float,
                        p_value: float, gene_a: str, gene_b: str) -> bytes:
    """Fig. 7a: replication residual (after linear main effects) vs the interaction predicted from the
    discovery model, with the Eq. 5 fit; background bands mark low/medium/high predicted interaction."""
    figure, ax = _figure()
    cuts = np.quantile(predicted, [0, 1 / 3, 2 / 3, 1])
    for (lo, hi), colour in zip(zip(cuts[:-1], cuts[1:]), TERTILE_COLOURS):
        ax.axvspan(lo, hi, color=colour, alpha=0.12, linewidth=0)
    groups = tertile_groups(predicted)
    for group, colour in enumerate(TERTILE_COLOURS):
        chosen = groups == group
        ax.scatter(predicted[chosen], residual[chosen], s=5, color=colour, alpha=0.5, linewidths=0)
    if np.isfinite(alpha):
        line = np.array([cuts[0], cuts[-1]])
        ax.plot(line, intercept + alpha * line, color="black", linewidth=1.5,
                label=f"alpha = {alpha:.3g}, one-sided p = {p_value:.2g}")
        ax.legend(loc="upper left", fontsize=8, frameon=False)
    ax.set_xlabel("predicted interaction (discovery model)")
    ax.set_ylabel("residual after main effects (replication)")
    ax.set_title(f"Replication of {gene_a} x {gene_b}")
    return _png(figure)


def member_r2(r2: Mapping[str, Sequence[float]], title: str = "") -> bytes:
    """R^2 of every ensemble member per part (train / val / test), one dot per member."""
    figure, ax = _figure(4.2, 3.0)
    rng = np.random.default_rng(0)  # horizontal jitter only
    for position, (part, values) in enumerate(r2.items()):
        values = np.asarray(values, dtype=float)
        ax.scatter(position + rng.uniform(-0.12, 0.12, len(values)), values, s=16, color=CANDIDATE_COLOUR,
                   alpha=0.8)
        if np.isfinite(values).any():
            ax.hlines(np.nanmean(values), position - 0.25, position + 0.25, color="black", linewidth=1.5)
    ax.set_xticks(range(len(r2)), list(r2))
    ax.set_ylabel("R²")
    ax.set_title(title or "R² per ensemble member (bar: mean)")
    return _png(figure)


def training_curves(curves: Mapping[str, Mapping[str, Sequence[float]]], title: str = "") -> bytes:
    """Per-epoch loss of each network: ``curves[network][series]`` (e.g. train_mse, val_mse)."""
    figure, ax = _figure(5.6, 3.6)
    styles = {"train": "-", "val": "--"}
    for index, (network, series) in enumerate(curves.items()):
        colour = f"C{index % 10}"
        for name, values in series.items():
            style = next((s for key, s in styles.items() if name.startswith(key)), ":")
            ax.plot(np.arange(1, len(values) + 1), values, style, color=colour, linewidth=1,
                    label=f"{network} {name}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean squared error")
    ax.set_title(title or "Training curves")
    if len(curves) <= 6:
        ax.legend(fontsize=7, frameon=False)
    return _png(figure)
