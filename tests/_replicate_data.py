"""Discovery + replication cohorts for the replicate and report tests, made offline and seeded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ginn.dataset import Dataset, write_dataset
from ginn.files import atomic_outputs
from ginn.model import GeneNetworkEnsemble, make_config, network_seed, save_ensemble
from ginn.plink import new_fam, write_plink
from ginn.simulate import simulate_dataset


@dataclass
class Cohorts:
    data: Path              # discovery DATA/
    repl: Path              # replication PLINK prefix
    pheno: Path             # replication phenotype (FID IID y)
    truth: pd.DataFrame     # gene_a gene_b interacting


def split_simulation(root: Path, n_discovery: int, n_replication: int, seed: int, **simulation) -> Cohorts:
    """Two independent cohorts from ONE generative model.

    ``simulate_dataset`` draws the SNP and interaction weights and the individuals from a single
    seed, so a second call cannot reuse the weights; individuals are i.i.d. given the weights, so
    simulating n_discovery + n_replication at once and splitting the rows gives two independent
    samples of the same model.
    """
    truth = simulate_dataset(root / "joint", n_samples=n_discovery + n_replication, seed=seed, **simulation)
    joint = Dataset.load(root / "joint")
    genotypes = np.asarray(joint.genotypes)
    disc, repl = slice(0, n_discovery), slice(n_discovery, None)
    (root / "discovery").mkdir()
    write_dataset(root / "discovery", genotypes[disc], joint.target[disc], joint.is_test[disc],
                  joint.samples.iloc[disc], joint.snps, joint.genes, list(joint.gene_sizes),
                  meta_extra={"phenotype": "y", "simulation": joint.meta["simulation"]})
    bim = joint.snps.drop_duplicates("snp").assign(cm="0")
    fam = new_fam(n_replication, prefix="r")
    with atomic_outputs() as out:
        write_plink(out, root / "repl", genotypes[repl].T, bim, fam)
    pheno = root / "repl.pheno.tsv"
    pd.DataFrame({"FID": fam["fid"], "IID": fam["iid"], "y": joint.target[repl]}).to_csv(pheno, sep="\t", index=False)
    return Cohorts(root / "discovery", root / "repl", pheno, truth)


def random_ensemble(folder: Path, data: Dataset, members: int, seed: int = 0, permuted: int = 0) -> Path:
    """An untrained (seeded) ensemble saved like `ginn train` does: ``members`` observed networks and
    ``permuted`` perm-k networks; its gene MLPs are fixed random functions of the SNPs."""
    names = ["observed"] * members + [f"perm-{k + 1}" for k in range(permuted)]
    config = make_config(list(map(int, data.gene_sizes)), len(names), predictor_hidden=8)
    seeds = [network_seed(seed, i) for i in range(len(names))]
    model = GeneNetworkEnsemble(config, seeds)
    networks = [{"dataset": name, "member": i, "seed": s, "l1_gene": 0.0, "l1_predictor": 0.0}
                for i, (name, s) in enumerate(zip(names, seeds))]
    folder.mkdir(parents=True)
    save_ensemble(folder, model, networks, extra={"model": "interaction", "genes": data.genes})
    return folder


def all_pairs_results(genes: list[str], path: Path) -> Path:
    """A RESULTS.tsv listing every pair (same columns as `ginn test`), for `--top`."""
    rows = [(a, b) for i, a in enumerate(genes) for b in genes[i + 1:]]
    table = pd.DataFrame(rows, columns=["gene_a", "gene_b"]).assign(
        score=np.linspace(1, 0, len(rows)), q_pair=1.0, called=False)
    table.to_csv(path, sep="\t", index=False)
    return path
