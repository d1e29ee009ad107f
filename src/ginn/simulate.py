"""``ginn simulate``: genotypes with known gene-gene interactions, to check methods on data like yours.

Phenotype models follow the paper's simulation studies:

* ``complex`` (Eq. 1): gene values ``g_i = sum_j alpha_ij x_ij``, six interactions of three kinds among
  genes (1,2) max, (7,9) max, (3,5) squared difference, (4,8) squared difference, (6,7) product,
  (8,10) product (1-based, as in the paper), plus linear main effects ``sum_k w_k g_k``.
* ``simple`` (Eq. 2): main effects ``sum_i sum_j alpha_ij x_ij`` and products of the genes' top SNPs
  for the same six pairs. The paper's top SNP is "the SNP with the largest main effect" and, it says,
  the one the top-SNP approach finds. We take the SNP most correlated with the gene's main effect,
  ``argmax_j |corr(x_ij, g_i)|``: without LD and on standardised SNPs this is the printed
  ``argmax_j |alpha_ij|``; with LD, a SNP tagging several causal SNPs has the larger marginal effect,
  and a rare SNP with a large weight but a negligible effect is not "top". The printed Eq. 2 pairs
  gene 6 with gene 8 under the weight ``w_67``; the text says "the same setting as complex", so we
  use (6,7).
* ``null`` (Eq. 3): main effects ``sum_i sum_j alpha_ij x_ij`` only.

All weights are standard Gaussian and every draw comes from one seeded numpy Generator. Choices the
paper leaves open, made so that the knobs mean what they say:

* complex: each ``g_i`` is standardised before the interaction functions, so that max and squared
  difference act on comparable scales across genes;
* every interaction term is standardised before its Gaussian weight, so each true pair's expected
  share of the interaction variance is the same whatever its kind. Terms are used as printed, so
  their additive parts count as interaction (for Gaussian g, 85% of a max term's variance and 50% of
  a squared difference's is additive; what is left is ~90-100% correlated with g_i g_j);
  ``summary["pair_variance"]`` gives each true pair's share of var(y);
* the main and interaction parts are scaled so that var(main)/var(interaction) equals ``mi_ratio`` on
  the simulated sample, and the noise is drawn Gaussian, made orthogonal to the signal and scaled so
  var(signal)/var(noise) equals ``snr`` exactly; y is then standardised (all parts by the same factor).
* ``n_interacting`` (the paper's Supplementary "only 2 or 5 genes interact", and its 50/100-gene
  scaling): the six pairs repeat in blocks of ten genes, and a pair is kept when both its genes are
  among the first ``n_interacting`` genes.

Genotypes: independent binomial SNPs (fast, for tests), msprime coalescent simulations with
recombination per gene region (realistic LD; each gene's region has its real length ± flank from a
glist, and SNPs sit at the gene's real coordinates), or a user's PLINK fileset with a SNP-to-gene map.
Each gene is simulated on its own: a pool of haplotypes is drawn once and individuals take two
haplotypes from it at random, which keeps n = 20,000 fast while the LD within each gene stays real.
Genes are independent of each other, also where the real ones are neighbours.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd

from .dataset import write_dataset
from .errors import GinnError
from .files import atomic_outputs, provenance_path, provenance_record, read_table, write_json, write_tsv
from .genes import packaged_data, read_gene_names, read_genes
from .genotypes import genotype_input
from .plink import CHROMOSOMES, new_fam, write_plink
from .contract import stage_options

log = logging.getLogger(__name__)

MODELS = ("complex", "simple", "null")
# The paper's six interacting pairs of Eq. 1 (1-based gene numbers) and the kind of each interaction.
PAPER_PAIRS: tuple[tuple[int, int, str], ...] = (
    (1, 2, "max"), (7, 9, "max"), (3, 5, "sqdiff"), (4, 8, "sqdiff"), (6, 7, "product"), (8, 10, "product"))
MIN_GENES = 10

# msprime parameters for human-like genealogies (diploid).
EFFECTIVE_SIZE = 10_000
RECOMBINATION_RATE = 1e-8
MUTATION_RATE = 1.25e-8


# --------------------------------------------------------------------------------------------------
# Phenotypes
# --------------------------------------------------------------------------------------------------

@dataclass
class SimulatedPhenotype:
    """y = main + interaction + noise (all centred, y standardised), and what produced it."""

    y: np.ndarray
    main: np.ndarray
    interaction: np.ndarray
    noise: np.ndarray
    pairs: list[tuple[int, int, str]]        # 0-based gene indices and interaction kind
    alphas: list[np.ndarray]                 # per gene SNP weights (0 for non-causal SNPs)
    top_snps: list[int]                      # per gene argmax_j |corr(x_ij, g_i)|
    summary: dict[str, Any] = field(default_factory=dict)


def interaction_pairs(n_genes: int, n_interacting: int = 10) -> list[tuple[int, int, str]]:
    """The paper's six pairs repeated per block of ten genes, kept where both genes < n_interacting."""
    limit = min(n_genes, n_interacting)
    pairs = []
    for block in range(0, limit, 10):
        for a, b, kind in PAPER_PAIRS:
            if block + b <= limit and block + a <= limit:
                pairs.append((block + a - 1, block + b - 1, kind))
    return pairs


def _centre(dosages: np.ndarray) -> np.ndarray:
    """Centred float64 dosages, a missing call (-1) becoming the SNP mean (0 after centring)."""
    x = np.array(dosages, dtype=np.float64)
    missing = x < 0
    called = (~missing).sum(axis=0)
    x[missing] = 0.0
    x -= np.divide(x.sum(axis=0), called, out=np.zeros(x.shape[1]), where=called > 0)
    x[missing] = 0.0
    return x


def _standardise(values: np.ndarray, what: str) -> np.ndarray:
    centred = values - values.mean()
    sd = centred.std()
    if not np.isfinite(sd) or sd <= 1e-12 * max(1.0, np.abs(values).max(initial=0.0)):
        raise GinnError(None, f"{what} does not vary in the simulated sample (too few samples or SNPs?)")
    return centred / sd


def _interaction_term(a: np.ndarray, b: np.ndarray, kind: str) -> np.ndarray:
    if kind == "max":
        return np.maximum(a, b)
    if kind == "sqdiff":
        return (a - b) ** 2
    return a * b


def check_model_params(model: str, n_genes: int, snr: float, causal_prop: float, mi_ratio: float,
                       n_interacting: int) -> None:
    """GinnError for a setting the simulators cannot honour."""
    if model not in MODELS:
        raise GinnError(None, f"unknown phenotype model {model!r} (choose {', '.join(MODELS)})")
    if model != "null" and n_genes < MIN_GENES:
        raise GinnError("--n-genes", f"the {model} model needs at least {MIN_GENES} genes (the paper's six pairs "
                              f"span genes 1-10), got {n_genes}")
    if not (np.isfinite(snr) and snr > 0):
        raise GinnError("--snr", f"S/N must be a positive number, got {snr}")
    if not (0 < causal_prop <= 1):
        raise GinnError("--causal-prop", f"the proportion of causal SNPs must be in (0, 1], got {causal_prop}")
    if not (np.isfinite(mi_ratio) and mi_ratio >= 0):
        raise GinnError("--mi-ratio", f"M/I must be a non-negative number, got {mi_ratio}")
    if model != "null" and not interaction_pairs(n_genes, n_interacting):
        raise GinnError("--n-interacting", f"{n_interacting} interacting genes give none of the paper's pairs "
                              f"(the smallest is genes 1 and 2)")


def simulate_phenotype(gene_genotypes: Sequence[np.ndarray], *, model: str = "complex", snr: float = 1.0,
                       causal_prop: float = 0.5, mi_ratio: float = 1.0, n_interacting: int = 10,
                       rng: np.random.Generator, gene_names: Sequence[str] | None = None) -> SimulatedPhenotype:
    """Simulate y from per-gene genotype matrices (N, p_i) with the Eq. 1/2/3 model (see module doc)."""
    n_genes = len(gene_genotypes)
    check_model_params(model, n_genes, snr, causal_prop, mi_ratio, n_interacting)
    names = list(gene_names) if gene_names is not None else [f"g{i + 1}" for i in range(n_genes)]
    centred = [_centre(x) for x in gene_genotypes]
    n = centred[0].shape[0]

    alphas, top_snps, gene_values = [], [], []
    for x in centred:
        p = x.shape[1]
        if p == 0:
            raise GinnError(None, "a gene has no SNPs")
        causal = rng.choice(p, size=max(1, int(round(causal_prop * p))), replace=False)
        alpha = np.zeros(p)
        alpha[causal] = rng.standard_normal(len(causal))
        alphas.append(alpha)
        value = x @ alpha
        norms = np.linalg.norm(x, axis=0)
        top_snps.append(int(np.argmax(np.abs(value @ x) / np.where(norms > 0, norms, np.inf))))
        gene_values.append(value)

    if model == "complex":
        g = [_standardise(v, f"gene {name}'s value g") for v, name in zip(gene_values, names)]
        main = np.column_stack(g) @ rng.standard_normal(n_genes)
    else:
        main = np.sum(gene_values, axis=0)

    pairs = [] if model == "null" else interaction_pairs(n_genes, n_interacting)
    interaction = np.zeros(n)
    weights = rng.standard_normal(len(pairs))   # each pair's term has unit variance: w^2 is its weight
    for (a, b, kind), w in zip(pairs, weights):
        if model == "complex":
            term = _interaction_term(g[a], g[b], kind)
        else:
            term = centred[a][:, top_snps[a]] * centred[b][:, top_snps[b]]
        interaction += w * _standardise(term, f"interaction {names[a]} x {names[b]}")
    if pairs:
        interaction_sd = interaction.std()
        interaction = _standardise(interaction, "the interaction part")

    if model == "null" or mi_ratio > 0:
        main = _standardise(main, "the main-effect part") * np.sqrt(mi_ratio if pairs else 1.0)
    else:
        main = np.zeros(n)
    signal = main + interaction
    noise = rng.standard_normal(n)
    noise -= noise.mean()
    noise -= signal * (noise @ signal) / (signal @ signal)   # orthogonal: var(y) = var(signal) + var(noise)
    noise *= np.sqrt(signal.var() / snr) / noise.std()
    scale = 1.0 / (signal + noise).std()
    main, interaction, noise = main * scale, interaction * scale, noise * scale
    y = main + interaction + noise

    summary = {
        "model": model, "snr": snr, "causal_prop": causal_prop, "mi_ratio": mi_ratio,
        "n_interacting": n_interacting if pairs else 0,
        "realised_snr": float((main + interaction).var() / noise.var()),
        "realised_mi_ratio": float(main.var() / interaction.var()) if pairs else None,
        "signal_fraction": float((main + interaction).var() / y.var()),
        "n_causal_snps": [int(np.count_nonzero(a)) for a in alphas],
        "top_snps": top_snps,   # per gene, column index (within the gene) of its top SNP
        "pairs": [[names[a], names[b], kind if model == "complex" else "top-SNP product"] for a, b, kind in pairs],
        # var(w_ij * term_ij) in units of var(y): how detectable each true pair is.
        "pair_variance": [float((w * scale / interaction_sd) ** 2) for w in weights] if pairs else [],
    }
    return SimulatedPhenotype(y, main, interaction, noise, pairs, alphas, top_snps, summary)


def truth_table(gene_names: Sequence[str], pairs: Sequence[tuple[int, int, str]]) -> pd.DataFrame:
    """One row per unordered gene pair (gene_a earlier in the gene order), interacting True/False."""
    true_pairs = {(min(a, b), max(a, b)) for a, b, _ in pairs}
    rows = [(gene_names[i], gene_names[j], (i, j) in true_pairs)
            for i in range(len(gene_names)) for j in range(i + 1, len(gene_names))]
    return pd.DataFrame(rows, columns=["gene_a", "gene_b", "interacting"])


# --------------------------------------------------------------------------------------------------
# Genotypes
# --------------------------------------------------------------------------------------------------

@dataclass
class SimulatedGenotypes:
    """Per-gene sample-major int8 dosages and one SNP table row per column (snp chrom pos a1 a2 gene)."""

    per_gene: list[np.ndarray]
    snps: pd.DataFrame
    genes: list[str]
    regions: pd.DataFrame    # chrom start end gene

    def matrix(self) -> np.ndarray:
        return np.concatenate(self.per_gene, axis=1)


def independent_genotypes(n_samples: int, n_genes: int, snps_per_gene: int,
                          rng: np.random.Generator) -> SimulatedGenotypes:
    """Unlinked binomial SNPs with MAF ~ U(0.05, 0.5) for genes g1..gM on synthetic coordinates."""
    genes = [f"g{i + 1}" for i in range(n_genes)]
    per_gene, rows, regions = [], [], []
    for i, gene in enumerate(genes):
        maf = rng.uniform(0.05, 0.5, snps_per_gene)
        # Two Bernoulli(maf) alleles per genotype: a binomial(2, maf) dosage, ~10x faster than rng.binomial.
        per_gene.append(((rng.random((n_samples, snps_per_gene)) < maf).astype(np.int8)
                         + (rng.random((n_samples, snps_per_gene)) < maf)))
        start = (i + 1) * 1_000_000
        pos = start + 100 * np.arange(1, snps_per_gene + 1)
        rows.append(pd.DataFrame({"snp": [f"{gene}_{j + 1}" for j in range(snps_per_gene)], "chrom": "1",
                                  "pos": pos, "a1": "A", "a2": "G", "gene": gene}))
        regions.append(("1", start, int(pos[-1]) + 100, gene))
    return SimulatedGenotypes(per_gene, pd.concat(rows, ignore_index=True), genes,
                              pd.DataFrame(regions, columns=["chrom", "start", "end", "gene"]))


def gene_regions(names: Sequence[str], glist: str | Path) -> pd.DataFrame:
    """chrom start end gene of each named gene (its first locus in the glist), in the order given."""
    table = read_genes(glist)
    first = table.drop_duplicates("gene").set_index("gene")
    missing = [g for g in names if g not in first.index]
    if missing:
        raise GinnError(glist, f"gene(s) not in the gene list: {', '.join(missing[:10])}")
    regions = first.loc[list(names), ["chrom", "start", "end"]].reset_index()
    return regions[["chrom", "start", "end", "gene"]]


def msprime_genotypes(regions: pd.DataFrame, n_samples: int, rng: np.random.Generator, *,
                      flank: int = 10_000, maf: float = 0.01, pool_haplotypes: int = 2000,
                      snps_per_gene: int = 0) -> SimulatedGenotypes:
    """Coalescent genotypes per gene region (real length ± flank); see the module doc for the pool."""
    import msprime

    logging.getLogger("msprime").setLevel(max(logging.WARNING, log.getEffectiveLevel()))  # per-replicate chatter
    per_gene, rows = [], []
    for region in regions.itertuples(index=False):
        first_bp = max(1, int(region.start) - flank)
        length = int(region.end) + flank - first_bp + 1
        ts = msprime.sim_ancestry(samples=pool_haplotypes // 2, ploidy=2, population_size=EFFECTIVE_SIZE,
                                  recombination_rate=RECOMBINATION_RATE, sequence_length=length,
                                  random_seed=int(rng.integers(1, 2**31 - 1)))
        ts = msprime.sim_mutations(ts, rate=MUTATION_RATE, random_seed=int(rng.integers(1, 2**31 - 1)))
        biallelic = [v for v in ts.variants() if len(v.alleles) == 2]
        haplotypes = np.array([v.genotypes for v in biallelic], dtype=np.int8).reshape(len(biallelic), -1)
        pick = rng.integers(0, haplotypes.shape[1], size=(2, n_samples))
        dosages = (haplotypes[:, pick[0]] + haplotypes[:, pick[1]]).T      # (N, sites), derived allele
        freq = dosages.mean(axis=0) / 2
        keep = np.flatnonzero(np.minimum(freq, 1 - freq) >= max(maf, 0.5 / max(n_samples, 1)))
        if snps_per_gene and len(keep) > snps_per_gene:
            keep = np.sort(rng.choice(keep, snps_per_gene, replace=False))
        if len(keep) == 0:
            raise GinnError(None, f"msprime gave gene {region.gene} no SNP with MAF >= {maf}; "
                                  f"lower --maf or use more samples")
        pos = np.array([first_bp + int(biallelic[k].site.position) for k in keep], dtype=np.int64)
        ancestral = [biallelic[k].alleles[0] for k in keep]
        derived = [biallelic[k].alleles[1] for k in keep]
        per_gene.append(np.ascontiguousarray(dosages[:, keep]))
        rows.append(pd.DataFrame({"snp": [f"{region.chrom}:{p}:{a}:{d}" for p, a, d in zip(pos, ancestral, derived)],
                                  "chrom": str(region.chrom), "pos": pos, "a1": derived, "a2": ancestral,
                                  "gene": region.gene}))
        log.info("simulate: %s %s:%d-%d, %d SNPs", region.gene, region.chrom, first_bp, first_bp + length - 1,
                 len(keep))
    snps = pd.concat(rows, ignore_index=True)
    # Genes whose windows overlap may draw a SNP at the same position: keep the first gene's.
    duplicate = snps.duplicated(["chrom", "pos"]).to_numpy()
    if duplicate.any():
        bounds = np.cumsum([0] + [x.shape[1] for x in per_gene])
        per_gene = [x[:, ~duplicate[a:b]] for x, a, b in zip(per_gene, bounds[:-1], bounds[1:])]
        snps = snps[~duplicate].reset_index(drop=True)
    return SimulatedGenotypes(per_gene, snps, list(regions["gene"]), regions.reset_index(drop=True))


def default_gene_names(n_genes: int | None, genes_file: str | Path | None, glist: str | Path) -> list[str]:
    """The first n genes of a name list (all of a user's list when n is None; 10 of the packaged lipid
    genes), topped up from the glist when the packaged list is too short."""
    names = read_gene_names(genes_file or packaged_data("lipid_genes.txt"), ordered=True)
    if n_genes is None:
        n_genes = len(names) if genes_file else MIN_GENES
    if n_genes > len(names):
        if genes_file is not None:
            raise GinnError(genes_file, f"lists {len(names)} genes, fewer than --n-genes {n_genes}")
        extra = [g for g in dict.fromkeys(read_genes(glist)["gene"]) if g not in set(names)]
        names = names + extra[: n_genes - len(names)]
        if len(names) < n_genes:
            raise GinnError("--n-genes", f"{n_genes} genes asked for, but the packaged gene list and "
                                         f"{Path(glist).name} hold {len(names)}")
    return names[:n_genes]


def plink_genotypes(bfile: str | Path, map_file: str | Path, names: Sequence[str] | None,
                    n_genes: int | None) -> tuple[SimulatedGenotypes, pd.DataFrame]:
    """A user's genotypes grouped by gene (map order, or the order of ``names``) and the .fam."""
    fileset = genotype_input(bfile=bfile).open()
    mapping = read_table(map_file, required=["snp", "gene"], what="SNP-to-gene map")
    order = list(dict.fromkeys(mapping["gene"]))
    if names is not None:
        missing = [g for g in names if g not in set(order)]
        if missing:
            raise GinnError(map_file, f"gene(s) not in the map: {', '.join(missing[:10])}")
        order = list(names)
    order = order[:n_genes] if n_genes else order
    index = pd.Series(np.arange(fileset.n_variants), index=fileset.bim["snp"])
    unknown = mapping.loc[~mapping["snp"].isin(index.index), "snp"]
    if len(unknown):
        raise GinnError(map_file, f"{len(unknown)} mapped SNP(s) not in {bfile}.bim (first {unknown.iloc[0]})")
    per_gene, rows, regions = [], [], []
    for gene in order:
        variants = index[mapping.loc[mapping["gene"] == gene, "snp"]].to_numpy()
        per_gene.append(fileset.read_sample_major(variants))
        bim = fileset.bim.iloc[variants]
        rows.append(bim[["snp", "chrom", "pos", "a1", "a2"]].assign(gene=gene))
        regions.append((bim["chrom"].iloc[0], int(bim["pos"].min()), int(bim["pos"].max()), gene))
    genotypes = SimulatedGenotypes(per_gene, pd.concat(rows, ignore_index=True), order,
                                   pd.DataFrame(regions, columns=["chrom", "start", "end", "gene"]))
    return genotypes, fileset.fam


# --------------------------------------------------------------------------------------------------
# Dataset folder for tests and benchmarks
# --------------------------------------------------------------------------------------------------

def split_test(n_samples: int, test_fraction: float, rng: np.random.Generator) -> np.ndarray:
    """A random held-out mask with round(n * test_fraction) test samples."""
    is_test = np.zeros(n_samples, dtype=bool)
    is_test[rng.permutation(n_samples)[: int(round(n_samples * test_fraction))]] = True
    return is_test


def simulate_cohort(*, n_samples: int, n_genes: int = 10, model: str = "complex", snr: float = 1.0,
                    causal_prop: float = 0.5, mi_ratio: float = 1.0, snps_per_gene: int = 20,
                    genotypes: str = "independent", test_fraction: float = 0.3, seed: int = 0,
                    n_interacting: int = 10):
    """In memory: (simulated genotypes, phenotype, is_test) drawn from ``seed`` in one fixed order, so
    that a study re-creating a dataset of :func:`simulate_dataset` gets the same draws."""
    check_model_params(model, n_genes, snr, causal_prop, mi_ratio, n_interacting)
    rng = np.random.default_rng(seed)
    if genotypes == "independent":
        simulated = independent_genotypes(n_samples, n_genes, snps_per_gene, rng)
    elif genotypes == "msprime":
        glist = packaged_data("glist-hg19.txt")
        regions = gene_regions(default_gene_names(n_genes, None, glist), glist)
        simulated = msprime_genotypes(regions, n_samples, rng, snps_per_gene=snps_per_gene)
    else:
        raise GinnError(None, f"unknown genotype simulator {genotypes!r} (independent or msprime)")
    phenotype = simulate_phenotype(simulated.per_gene, model=model, snr=snr, causal_prop=causal_prop,
                                   mi_ratio=mi_ratio, n_interacting=n_interacting, rng=rng,
                                   gene_names=simulated.genes)
    return simulated, phenotype, split_test(n_samples, test_fraction, rng)


def simulate_dataset(folder: str | Path, *, n_samples: int, n_genes: int = 10, model: str = "complex",
                     snr: float = 1.0, causal_prop: float = 0.5, mi_ratio: float = 1.0, snps_per_gene: int = 20,
                     genotypes: str = "independent", test_fraction: float = 0.3, seed: int = 0,
                     n_interacting: int = 10) -> pd.DataFrame:
    """Write a ready ``DATA/`` folder into ``folder`` and return the truth table (see the contract)."""
    simulated, phenotype, is_test = simulate_cohort(
        n_samples=n_samples, n_genes=n_genes, model=model, snr=snr, causal_prop=causal_prop, mi_ratio=mi_ratio,
        snps_per_gene=snps_per_gene, genotypes=genotypes, test_fraction=test_fraction, seed=seed,
        n_interacting=n_interacting)
    fam = new_fam(n_samples)
    params = {"n_samples": n_samples, "n_genes": n_genes, "model": model, "snr": snr, "causal_prop": causal_prop,
              "mi_ratio": mi_ratio, "snps_per_gene": snps_per_gene, "genotypes": genotypes,
              "test_fraction": test_fraction, "seed": seed, "n_interacting": n_interacting}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    write_dataset(folder, simulated.matrix(), phenotype.y, is_test, fam, simulated.snps, simulated.genes,
                  [x.shape[1] for x in simulated.per_gene],
                  meta_extra={"phenotype": "y", "simulation": {**params, **phenotype.summary}})
    write_json(folder / "provenance.json", provenance_record("simulate_dataset", params, seed=seed))
    return truth_table(simulated.genes, phenotype.pairs)


# --------------------------------------------------------------------------------------------------
# Command
# --------------------------------------------------------------------------------------------------

def _sorted_for_plink(snps: pd.DataFrame) -> np.ndarray:
    """Column order that sorts variants by chromosome then position (PLINK dislikes split chromosomes)."""
    rank = {c: i for i, c in enumerate(CHROMOSOMES)}
    key = snps["chrom"].map(lambda c: rank.get(str(c), len(rank)))
    return np.lexsort((snps["pos"].to_numpy(), key.to_numpy()))


def _check_interacting(model: str, n_interacting: int, n_genes: int) -> None:
    """More interacting genes than genes simulated is a mistake the truth table would hide (it caps them)."""
    if model != "null" and n_interacting > n_genes:
        raise GinnError("--n-interacting", f"{n_interacting} interacting genes, but only {n_genes} genes are simulated")


@click.command("simulate")
@stage_options("simulate")
def simulate_command(model, n_samples, genes_file, n_genes, glist, snr, causal_prop, mi_ratio, n_interacting,
                     flank, maf, haplotypes, snps_per_gene, bfile, map_file, seed, out):
    """Simulate genotypes and a phenotype with known gene-gene interactions (the paper's Eqs. 1-3).

    Genotypes come from msprime (coalescent with recombination, Ne 10,000, 1e-8 recombination and
    1.25e-8 mutation per bp per generation) over each gene's real region ± flank, placed at the gene's
    coordinates; or, with --bfile and --map, from your own fileset (its mapped SNPs are copied to
    PREFIX.bed). PREFIX.truth.tsv lists every gene pair with interacting 1/0.
    """
    glist = glist or packaged_data("glist-hg19.txt")
    check_model_params(model, n_genes or MIN_GENES, snr, causal_prop, mi_ratio, n_interacting)
    if (bfile is None) == (n_samples is None):
        raise GinnError(bfile, "give --n-samples to simulate genotypes, or --bfile to use a fileset's (not both)")
    if (bfile is None) != (map_file is None):
        raise GinnError(bfile or map_file, "--bfile and --map go together")
    rng = np.random.default_rng(seed)
    if bfile is not None:
        names = read_gene_names(genes_file, ordered=True) if genes_file else None
        genotypes, fam = plink_genotypes(bfile, map_file, names, n_genes)
        _check_interacting(model, n_interacting, len(genotypes.genes))
    else:
        names = default_gene_names(n_genes, genes_file, glist)
        _check_interacting(model, n_interacting, len(names))
        genotypes = msprime_genotypes(gene_regions(names, glist), n_samples, rng, flank=flank, maf=maf,
                                      pool_haplotypes=haplotypes, snps_per_gene=snps_per_gene)
        fam = new_fam(n_samples)
    phenotype = simulate_phenotype(genotypes.per_gene, model=model, snr=snr, causal_prop=causal_prop,
                                   mi_ratio=mi_ratio, n_interacting=n_interacting, rng=rng,
                                   gene_names=genotypes.genes)
    truth = truth_table(genotypes.genes, phenotype.pairs)
    truth["interacting"] = truth["interacting"].astype(int)
    order = _sorted_for_plink(genotypes.snps)
    bim = genotypes.snps.iloc[order].assign(cm="0")
    params = {"model": model, "n_samples": len(fam), "genes": genes_file, "n_genes": len(genotypes.genes),
              "gene_list": glist, "snr": snr, "causal_prop": causal_prop, "mi_ratio": mi_ratio,
              "n_interacting": n_interacting, "flank": flank, "maf": maf, "haplotypes": haplotypes,
              "snps_per_gene": snps_per_gene, "bfile": bfile, "map": map_file, "seed": seed}
    inputs = {k: v for k, v in {"genes": genes_file, "gene_list": glist, "map": map_file,
                                "bed": bfile and f"{bfile}.bed"}.items() if v}
    prefix = Path(out)
    with atomic_outputs() as outputs:
        write_plink(outputs, prefix, genotypes.matrix()[:, order].T, bim, fam)
        pheno = pd.DataFrame({"FID": fam["fid"], "IID": fam["iid"], "y": phenotype.y})
        write_tsv(outputs.file(f"{prefix}.pheno.tsv"), pheno, float_format="%.8g")
        write_tsv(outputs.file(f"{prefix}.genes.tsv"), genotypes.regions)
        write_tsv(outputs.file(f"{prefix}.truth.tsv"), truth)
        write_json(outputs.file(provenance_path(prefix)),
                   provenance_record("simulate", params, inputs=inputs, seed=seed,
                                     extra={"simulation": phenotype.summary,
                                            "snps_per_gene": {g: int(x.shape[1]) for g, x in
                                                              zip(genotypes.genes, genotypes.per_gene)}}))
    log.info("simulate: %d samples, %d genes, %d SNPs, %d interacting pairs -> %s.*", len(fam),
             len(genotypes.genes), genotypes.snps.shape[0], len(phenotype.pairs), prefix)
