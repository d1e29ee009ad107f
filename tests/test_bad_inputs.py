"""A corpus of malformed and edge inputs across stages: every one must exit 2 with ONE stderr line
``ginn <cmd>: error: ...`` naming the file or flag at fault, no traceback, and leave no output behind.
Stages run with ``-q`` (progress logs off), so that the error line is all there is on stderr.

Cases run in-process (CliRunner keeps stderr apart), a few also as real subprocesses so that the
console script's stderr is checked as a user sees it.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from _pipeline_data import TINY, run_before
from conftest import make_fileset, plink2
from ginn.cli import cli
from ginn.errors import GinnError
from ginn.genotypes import genotype_input


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """Valid inputs of every kind; each case damages a copy of one of them."""
    root = tmp_path_factory.mktemp("good")
    bfile = make_fileset(root / "geno", n_samples=200, n_variants=80, seed=5)
    plink2("--bfile", str(bfile), "--make-pgen", "--out", str(root / "pgeno"))
    source = genotype_input(bfile=bfile).open()
    fam, snps = source.fam, list(source.bim.snp)
    rng = np.random.default_rng(0)
    pheno = pd.DataFrame({"FID": fam.fid, "IID": fam.iid, "y": rng.normal(size=len(fam)).round(4)})
    pheno.to_csv(root / "pheno.tsv", sep="\t", index=False)
    pd.DataFrame({"FID": fam.fid, "IID": fam.iid, "age": rng.uniform(20, 80, len(fam)).round(1)}).to_csv(
        root / "covar.tsv", sep="\t", index=False)
    pd.DataFrame({"snp": snps[:40], "gene": ["GA"] * 20 + ["GB"] * 20}).to_csv(root / "map.tsv", sep="\t", index=False)
    (root / "genes.txt").write_text("1 1000000 1010000 GA\n1 1010000 1040000 GB\n")
    (root / "afile").write_text("not a folder\n")
    sys.path.insert(0, str(Path(__file__).parent))
    from test_genotype_formats import write_bgen

    write_bgen(root / "imputed.bgen", compression="zlib", bit_depth=8)
    test_call = run_before("replicate")  # data, models and results of the shared tiny run
    run = Path(test_call.inputs["data"]).parents[1]
    return {"root": root, "bfile": bfile, "pfile": root / "pgeno", "data": Path(test_call.inputs["data"]),
            "models": Path(test_call.inputs["models"]), "results": Path(test_call.inputs["results"]),
            "main": run / "train_main" / "y.main", "pairs": run / "pairtest" / "y.pairs"}


def _copy_fileset(prefix: Path, dest: Path, exts=(".bed", ".bim", ".fam")) -> Path:
    for ext in exts:
        shutil.copy(f"{prefix}{ext}", f"{dest}{ext}")
    return dest


def _edit(path: Path, edit) -> Path:
    path.write_text(edit(path.read_text()))
    return path


def _edit_json(path: Path, edit) -> Path:
    path.write_text(json.dumps(edit(json.loads(path.read_text()))))
    return path


def _damaged_bfile(c, tmp, damage) -> str:
    prefix = _copy_fileset(c["bfile"], tmp / "bad")
    damage(prefix)
    return str(prefix)


def _damaged_pfile(c, tmp, damage) -> str:
    prefix = _copy_fileset(c["pfile"], tmp / "badp", (".pgen", ".pvar", ".psam"))
    damage(prefix)
    return str(prefix)


def _damaged_data(c, tmp, damage) -> str:
    data = tmp / "data"
    shutil.copytree(c["data"], data)
    damage(data)
    return str(data)


def _damaged_models(c, tmp, damage) -> str:
    models = tmp / "models"
    shutil.copytree(c["models"], models)
    damage(models)
    return str(models)


def _damaged_run(c, tmp) -> str:
    """A run folder holding test results and one model folder whose metrics.json is cut short."""
    run = tmp / "run"
    models = shutil.copytree(c["models"], run / "train_interaction" / "y.observed.models")
    (models / "metrics.json").write_text("{")
    (run / "test").mkdir()
    shutil.copy(c["results"], run / "test" / "y.results.tsv")
    return str(run)


def _nan_weight(models: Path) -> None:
    import torch

    weights = torch.load(models / "ensemble.pt", weights_only=True)
    next(iter(weights.values())).view(-1)[0] = float("nan")
    torch.save(weights, models / "ensemble.pt")


def _with_value(array: np.ndarray, value) -> np.ndarray:
    """A copy with one entry (the last sample's first SNP) set to ``value``."""
    array = array.copy()
    array[-1, 0] = value
    return array


def _truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


def _pheno(c, tmp, column) -> str:
    table = pd.read_csv(c["root"] / "pheno.tsv", sep="\t", dtype=str)
    table["y"] = column(table["y"])
    table.to_csv(tmp / "pheno.tsv", sep="\t", index=False)
    return str(tmp / "pheno.tsv")


def _bgen(path: Path, **options) -> Path:
    from test_genotype_formats import write_bgen

    return write_bgen(path, compression="zlib", bit_depth=8, **options)


def _qc(c, tmp, *flags):
    return ["qc", "--bfile", str(c["bfile"]), *flags, "--out", str(tmp / "out" / "q")]


def _prepare(c, tmp, *flags, pheno=None, bfile=None):
    return ["prepare", "--bfile", str(bfile or c["bfile"]), "--map", str(c["root"] / "map.tsv"),
            "--pheno", str(pheno or c["root"] / "pheno.tsv"), "--pheno-name", "y", "--pcs", "2", *flags,
            "--out", str(tmp / "out" / "data")]


def _train(c, tmp, *flags, data=None):
    return ["train", "--data", str(data or c["data"]), "--members", "1", "--max-epochs", "1", *flags,
            "--out", str(tmp / "out" / "models")]


def _score(c, tmp, models=None, data=None):
    return ["score", "--data", str(data or c["data"]), "--models", str(models or c["models"]),
            "--out", str(tmp / "out" / "scores.tsv")]


def _replicate(c, tmp, *flags, data=None):
    return ["replicate", "--data", str(data or c["data"]), "--models", str(c["models"]), "--results",
            str(c["results"]), "--bfile", str(c["bfile"]), "--pheno", str(c["root"] / "pheno.tsv"),
            "--pheno-name", "y", *flags, "--out", str(tmp / "out" / "repl.tsv")]


def _cohort_run(c, tmp, **changes):
    """A ``ginn run`` of the corpus cohort (genotypes and phenotypes given, not simulated)."""
    return _run(c, tmp, **{"simulate": False, "bfile": str(c["bfile"]), "pheno": str(c["root"] / "pheno.tsv")} | changes)


def _run(c, tmp, **changes):
    params = {k: v for k, v in TINY.items() if v != _defaults().get(k)} | {"outdir": str(tmp / "out" / "run")}
    path = tmp / "params.yaml"
    path.write_text(json.dumps(params | changes))  # JSON is YAML
    return ["run", "--config", str(path)]


def _defaults():
    from ginn.run_params import default_params

    return default_params()


def _sample_count_mismatch(tmp, c):
    sample = tmp / "short.sample"
    lines = (c["root"] / "imputed.sample").read_text().splitlines()
    sample.write_text("\n".join(lines[:-3]) + "\n")
    return sample


def _constant_fam_missing(prefix: Path) -> None:
    """Every sample misses a call: --mind 0 leaves none."""
    source = genotype_input(bfile=prefix).open()
    from ginn.files import atomic_outputs
    from ginn.plink import write_plink

    calls = source.read_hardcalls(slice(None))
    calls[np.arange(source.n_samples) % source.n_variants, np.arange(source.n_samples)] = -1
    with atomic_outputs() as out:
        write_plink(out, prefix, calls, source.bim, source.fam)


# (case id, argv builder (corpus, tmp) -> argv, text the one error line must contain)
CASES = [
    # --- qc: parameter ranges and genotype inputs ------------------------------------------------------
    ("simulate-gene-listed-twice", lambda c, t: ["simulate", "--genes", str(_write(t / "genes.txt", "APOE\nLDLR\nAPOE\n")),
                                                 "--model", "null", "--n-samples", "50", "--out", str(t / "out" / "sim")],
     "genes.txt: lists gene APOE twice"),
    ("simulate-causal-prop-2", lambda c, t: ["simulate", "--causal-prop", "2", "--out", str(t / "out" / "sim")],
     "--causal-prop"),
    ("simulate-more-interacting-than-genes", lambda c, t: ["simulate", "--n-samples", "50", "--n-interacting", "12",
                                                           "--out", str(t / "out" / "sim")], "--n-interacting: 12"),
    ("simulate-snr-0", lambda c, t: ["simulate", "--snr", "0", "--out", str(t / "out" / "sim")], "--snr"),
    ("simulate-n-samples-1e9", lambda c, t: ["simulate", "--n-samples", "1000000000", "--out", str(t / "out" / "sim")],
     "--n-samples"),
    ("simulate-haplotypes-1e9", lambda c, t: ["simulate", "--n-samples", "50", "--haplotypes", "1000000000",
                                              "--out", str(t / "out" / "sim")], "--haplotypes"),
    ("simulate-more-genes-than-the-glist", lambda c, t: ["simulate", "--model", "null", "--n-samples", "50",
                                                         "--n-genes", "1000000", "--out", str(t / "out" / "sim")],
     "--n-genes: 1000000 genes asked for, but the packaged gene list and glist-hg19.txt hold"),
    ("simulate-out-is-its-bfile", lambda c, t: ["simulate", "--bfile", _damaged_bfile(c, t, lambda p: None), "--map",
                                                str(c["root"] / "map.tsv"), "--out", str(t / "bad")],
     "bad is also given as --bfile"),
    ("qc-hwe-2", lambda c, t: _qc(c, t, "--hwe", "2"), "--hwe"),
    ("qc-maf-0.7", lambda c, t: _qc(c, t, "--maf", "0.7"), "--maf"),
    ("qc-geno-negative", lambda c, t: _qc(c, t, "--geno", "-1"), "--geno"),
    ("qc-mind-1.5", lambda c, t: _qc(c, t, "--mind", "1.5"), "--mind"),
    ("qc-chunk-size-0", lambda c, t: _qc(c, t, "--chunk-size", "0"), "--chunk-size"),
    ("qc-min-info-2", lambda c, t: _qc(c, t, "--min-info", "2"), "--min-info"),
    ("qc-min-info-without-bgen", lambda c, t: _qc(c, t, "--min-info", "0.4"), "--min-info"),
    ("qc-maf-not-a-number", lambda c, t: _qc(c, t, "--maf", "abc"), "--maf"),
    ("qc-out-under-regular-file", lambda c, t: ["qc", "--bfile", str(c["bfile"]), "--out",
                                                str(c["root"] / "afile" / "q")], "--out"),
    ("qc-no-genotypes", lambda c, t: ["qc", "--out", str(t / "out" / "q")], "--bfile/--pfile/--bgen"),
    ("qc-two-genotype-inputs", lambda c, t: ["qc", "--bfile", str(c["bfile"]), "--pfile", str(c["pfile"]),
                                             "--out", str(t / "out" / "q")], "--bfile/--pfile/--bgen"),
    ("qc-sample-without-bgen", lambda c, t: _qc(c, t, "--sample", str(c["root"] / "imputed.sample")), "--sample"),
    ("qc-missing-fileset", lambda c, t: ["qc", "--bfile", str(t / "nothere"), "--out", str(t / "out" / "q")],
     "nothere.bim"),
    ("qc-truncated-bed", lambda c, t: ["qc", "--bfile", _damaged_bfile(c, t, lambda p: _truncate(Path(f"{p}.bed"))),
                                       "--out", str(t / "out" / "q")], "bad.bed"),
    ("qc-bed-wrong-magic", lambda c, t: ["qc", "--bfile", _damaged_bfile(
        c, t, lambda p: Path(f"{p}.bed").write_bytes(b"XYZ" + Path(f"{p}.bed").read_bytes()[3:])),
        "--out", str(t / "out" / "q")], "bad.bed"),
    ("qc-bim-five-columns", lambda c, t: ["qc", "--bfile", _damaged_bfile(
        c, t, lambda p: _edit(Path(f"{p}.bim"), lambda s: "\n".join(" ".join(l.split()[:5]) for l in s.splitlines()))),
        "--out", str(t / "out" / "q")], "bad.bim"),
    ("qc-bim-duplicate-ids", lambda c, t: ["qc", "--bfile", _damaged_bfile(
        c, t, lambda p: _edit(Path(f"{p}.bim"), lambda s: s.replace("rs5_1\t", "rs5_0\t"))),
        "--out", str(t / "out" / "q")], "bad.bim"),
    ("qc-bim-position-not-integer", lambda c, t: ["qc", "--bfile", _damaged_bfile(
        c, t, lambda p: _edit(Path(f"{p}.bim"), lambda s: s.replace("\t1000000\t", "\tabc\t"))),
        "--out", str(t / "out" / "q")], "bad.bim"),
    ("qc-bim-negative-position", lambda c, t: ["qc", "--bfile", _damaged_bfile(
        c, t, lambda p: _edit(Path(f"{p}.bim"), lambda s: s.replace("\t1000000\t", "\t-1000000\t"))),
        "--out", str(t / "out" / "q")], "bad.bim: variant rs5_0 has a negative position"),
    ("qc-bim-same-allele-twice", lambda c, t: ["qc", "--bfile", _damaged_bfile(
        c, t, lambda p: _edit(Path(f"{p}.bim"), lambda s: re.sub(r"^(\S+\t\S+\t\S+\t\S+\t)(\S+)\t\S+", r"\1\2\t\2", s, count=1))),
        "--out", str(t / "out" / "q")], "bad.bim: variant rs5_0 has the same allele twice"),
    ("qc-empty-fam", lambda c, t: ["qc", "--bfile", _damaged_bfile(c, t, lambda p: Path(f"{p}.fam").write_text("")),
                                   "--out", str(t / "out" / "q")], "bad.fam"),
    ("qc-empty-bim", lambda c, t: ["qc", "--bfile", _damaged_bfile(c, t, lambda p: Path(f"{p}.bim").write_text("")),
                                   "--out", str(t / "out" / "q")], "bad.bim"),
    ("qc-fam-duplicate-sample", lambda c, t: ["qc", "--bfile", _damaged_bfile(
        c, t, lambda p: _edit(Path(f"{p}.fam"), lambda s: s.replace("s2 s2", "s1 s1"))),
        "--out", str(t / "out" / "q")], "bad.fam"),
    ("qc-fam-four-samples-short", lambda c, t: ["qc", "--bfile", _damaged_bfile(
        c, t, lambda p: _edit(Path(f"{p}.fam"), lambda s: "".join(s.splitlines(True)[:-4]))),
        "--out", str(t / "out" / "q")], "bad.bed"),
    ("qc-out-is-its-bfile", lambda c, t: ["qc", "--bfile", _damaged_bfile(c, t, lambda p: None), "--out", str(t / "bad")],
     "bad is also given as --bfile"),
    ("qc-zero-samples-left", lambda c, t: ["qc", "--bfile", _damaged_bfile(c, t, _constant_fam_missing), "--mind", "0",
                                           "--out", str(t / "out" / "q")], "--mind"),
    ("qc-zero-variants-left", lambda c, t: _qc(c, t, "--maf", "0.5", "--mind", "1"), "geno.bed"),
    ("qc-pfile-missing-pvar", lambda c, t: ["qc", "--pfile", _damaged_pfile(c, t, lambda p: Path(f"{p}.pvar").unlink()),
                                            "--out", str(t / "out" / "q")], "badp.pvar"),
    ("qc-pfile-only-compressed-pvar", lambda c, t: ["qc", "--pfile", _damaged_pfile(
        c, t, lambda p: Path(f"{p}.pvar").rename(f"{p}.pvar.zst")), "--out", str(t / "out" / "q")], "--zst-decompress"),
    ("qc-pgen-wrong-magic", lambda c, t: ["qc", "--pfile", _damaged_pfile(
        c, t, lambda p: Path(f"{p}.pgen").write_bytes(b"\0\0\0" + Path(f"{p}.pgen").read_bytes()[3:])),
        "--out", str(t / "out" / "q")], "badp.pgen"),
    ("qc-psam-one-sample-short", lambda c, t: ["qc", "--pfile", _damaged_pfile(c, t, lambda p: _edit(
        Path(f"{p}.psam"), lambda text: "".join(text.splitlines(keepends=True)[:-1]))), "--out", str(t / "out" / "q")],
     "badp.pgen: cannot read .pgen (PgfiInitPhase1() was called with raw_sample_ct == 199"),
    ("qc-pgen-truncated", lambda c, t: ["qc", "--pfile", _damaged_pfile(c, t, lambda p: _truncate(Path(f"{p}.pgen"), 0.3)),
                                        "--out", str(t / "out" / "q")], "badp.pgen"),
    ("qc-psam-no-header", lambda c, t: ["qc", "--pfile", _damaged_pfile(
        c, t, lambda p: _edit(Path(f"{p}.psam"), lambda s: "".join(s.splitlines(True)[1:]))),
        "--out", str(t / "out" / "q")], "badp.psam"),
    ("qc-pvar-multiallelic", lambda c, t: ["qc", "--pfile", _damaged_pfile(
        c, t, lambda p: _edit(Path(f"{p}.pvar"), lambda s: s.replace("\tA\n", "\tA,C\n", 1).replace("\tG\n", "\tG,T\n", 1))),
        "--out", str(t / "out" / "q")], "badp.pvar"),
    ("qc-pvar-ref-equals-alt", lambda c, t: ["qc", "--pfile", _damaged_pfile(
        c, t, lambda p: _edit(Path(f"{p}.pvar"), lambda s: s.replace("\tA\tC\n", "\tA\tA\n", 1))),
        "--out", str(t / "out" / "q")], "badp.pvar: variant"),
    ("qc-bgen-same-allele-twice", lambda c, t: ["qc", "--bgen", str(_bgen(t / "twice.bgen", alleles=("A", "A"))),
                                                "--out", str(t / "out" / "q")], "twice.bgen: variant rs0 has the same allele twice"),
    ("qc-bgen-not-bgen", lambda c, t: ["qc", "--bgen", str(c["root"] / "pheno.tsv"), "--out", str(t / "out" / "q")],
     "pheno.tsv"),
    ("qc-bgen-truncated", lambda c, t: ["qc", "--bgen", str(_truncated_copy(c["root"] / "imputed.bgen", t)),
                                        "--sample", str(c["root"] / "imputed.sample"), "--out", str(t / "out" / "q")],
     "imputed.bgen"),
    ("qc-bgen-sample-count", lambda c, t: ["qc", "--bgen", str(c["root"] / "imputed.bgen"), "--sample",
                                           str(_sample_count_mismatch(t, c)), "--out", str(t / "out" / "q")],
     "short.sample"),
    ("qc-bgen-sample-bad-header", lambda c, t: ["qc", "--bgen", str(c["root"] / "imputed.bgen"), "--sample",
                                                str(c["root"] / "pheno.tsv"), "--out", str(t / "out" / "q")],
     "pheno.tsv"),
    ("qc-bgen-phased", lambda c, t: _raw_bgen(c, t, phased=True), "phased probabilities are not supported"),
    ("qc-bgen-layout-1", lambda c, t: _raw_bgen(c, t, layout=1), "BGEN layout 1 is not supported"),
    ("qc-bgen-probabilities-over-1", lambda c, t: _raw_bgen(c, t, numerators=(200, 100)), "sum to more than 1"),
    # --- map-genes ---------------------------------------------------------------------------------------
    ("map-genes-flank-negative", lambda c, t: ["map-genes", "--bfile", str(c["bfile"]), "--genes",
                                               str(c["root"] / "genes.txt"), "--flank", "-5000",
                                               "--out", str(t / "out" / "map.tsv")], "--flank"),
    ("map-genes-genes-missing", lambda c, t: ["map-genes", "--bfile", str(c["bfile"]), "--genes", str(t / "none.txt"),
                                              "--out", str(t / "out" / "map.tsv")], "none.txt"),
    ("map-genes-unknown-keep-gene", lambda c, t: ["map-genes", "--bfile", str(c["bfile"]), "--genes",
                                                  str(c["root"] / "genes.txt"), "--keep-genes",
                                                  str(_write(t / "panel.txt", "NOPE\n")),
                                                  "--out", str(t / "out" / "map.tsv")], "panel.txt"),
    ("map-genes-gene-name-with-space", lambda c, t: ["map-genes", "--bfile", str(c["bfile"]), "--genes", str(_write(
        t / "genes.txt", "1 1000000 1010000 G A\n1 1010000 1040000 GB\n")), "--out", str(t / "out" / "map.tsv")],
     "genes.txt: glist line '1 1000000 1010000 G A' has 5 fields, not 4"),
    ("map-genes-out-under-file", lambda c, t: ["map-genes", "--bfile", str(c["bfile"]), "--genes",
                                               str(c["root"] / "genes.txt"), "--out",
                                               str(c["root"] / "afile" / "map.tsv")], "--out"),
    # --- prune -------------------------------------------------------------------------------------------
    ("prune-keep-variance-0", lambda c, t: ["prune", "--bfile", str(c["bfile"]), "--map", str(c["root"] / "map.tsv"),
                                            "--keep-variance", "0", "--out", str(t / "out" / "p.tsv")],
     "--keep-variance"),
    ("prune-keep-variance-1.5", lambda c, t: ["prune", "--bfile", str(c["bfile"]), "--map", str(c["root"] / "map.tsv"),
                                              "--keep-variance", "1.5", "--out", str(t / "out" / "p.tsv")],
     "--keep-variance"),
    ("prune-map-missing", lambda c, t: ["prune", "--bfile", str(c["bfile"]), "--map", str(t / "none.tsv"),
                                        "--out", str(t / "out" / "p.tsv")], "none.tsv"),
    ("prune-map-no-gene-column", lambda c, t: ["prune", "--bfile", str(c["bfile"]), "--map",
                                               str(_write(t / "m.tsv", "snp\trs5_1\n")), "--out", str(t / "out" / "p.tsv")],
     "m.tsv"),
    ("prune-map-gene-blank", lambda c, t: ["prune", "--bfile", str(c["bfile"]), "--map",
                                           str(_write(t / "m.tsv", "snp\tgene\nrs5_0\tGA\nrs5_1\t\nrs5_2\tGB\n")),
                                           "--out", str(t / "out" / "p.tsv")], "m.tsv: SNP-gene map row 2 (after the header) has no gene"),
    ("prune-map-snps-not-in-fileset", lambda c, t: ["prune", "--bfile", str(c["bfile"]), "--map",
                                                    str(_write(t / "m.tsv", "snp\tgene\nrsX\tGA\n")),
                                                    "--out", str(t / "out" / "p.tsv")], "m.tsv"),
    ("prune-out-is-its-map", lambda c, t: ["prune", "--bfile", str(c["bfile"]), "--map", str(shutil.copy(
        c["root"] / "map.tsv", t / "m.tsv")), "--out", str(t / "m.tsv")], "m.tsv is also given as --map"),
    # --- prepare: phenotypes, covariates, PCs ------------------------------------------------------------
    ("prepare-map-of-one-gene", lambda c, t: _prepare(c, t)[:4] + [str(_write(t / "m.tsv", "snp\tgene\nrs5_0\tGA\n"
                                                                              "rs5_1\tGA\n"))] + _prepare(c, t)[5:],
     "m.tsv: only gene GA has SNPs in geno.bim; interactions need at least two genes"),
    ("prepare-pheno-name-is-iid", lambda c, t: _prepare(c, t)[:-2] + ["--pheno-name", "IID", "--out",
                                                                        str(t / "out" / "data")],
     "pheno.tsv: phenotype column IID is a sample ID, not a value to analyse"),
    ("prepare-covar-name-twice", lambda c, t: _prepare(c, t, "--covar", str(c["root"] / "covar.tsv"),
                                                       "--covar-name", "age,age"), "--covar-name: names covariate age twice"),
    ("prepare-pcs-negative", lambda c, t: _prepare(c, t, "--pcs", "-1"), "--pcs"),
    ("prepare-pcs-5000", lambda c, t: _prepare(c, t, "--pcs", "5000"), "--pcs"),
    ("prepare-test-fraction-0", lambda c, t: _prepare(c, t, "--test-fraction", "0"), "--test-fraction"),
    ("prepare-test-fraction-1.5", lambda c, t: _prepare(c, t, "--test-fraction", "1.5"), "--test-fraction"),
    ("prepare-pheno-inf", lambda c, t: _prepare(c, t, pheno=_pheno(c, t, lambda y: y.where(y.index != 3, "inf"))),
     "pheno.tsv"),
    ("prepare-pheno-minus-inf", lambda c, t: _prepare(c, t, pheno=_pheno(c, t, lambda y: y.where(y.index != 3, "-inf"))),
     "pheno.tsv"),
    ("prepare-pheno-constant", lambda c, t: _prepare(c, t, pheno=_pheno(c, t, lambda y: y.map(lambda v: "1.5"))),
     "pheno.tsv"),
    ("prepare-pheno-constant-after-missing", lambda c, t: _prepare(c, t, pheno=_pheno(
        c, t, lambda y: pd.Series(np.where(np.arange(len(y)) % 2, "-9", "2.0"), index=y.index))), "pheno.tsv"),
    ("prepare-pheno-all-minus-9", lambda c, t: _prepare(c, t, pheno=_pheno(c, t, lambda y: y.map(lambda v: "-9"))),
     "pheno.tsv"),
    ("prepare-pheno-not-numeric", lambda c, t: _prepare(c, t, pheno=_pheno(c, t, lambda y: y.where(y.index != 2, "high"))),
     "pheno.tsv"),
    ("prepare-pheno-name-absent", lambda c, t: _prepare(c, t)[:-2] + ["--pheno-name", "z", "--out",
                                                                      str(t / "out" / "data")], "pheno.tsv"),
    ("prepare-pheno-missing-file", lambda c, t: _prepare(c, t, pheno=t / "none.tsv"), "none.tsv"),
    ("prepare-pheno-no-iid", lambda c, t: _prepare(c, t, pheno=_write(t / "p.tsv", "A B y\n1 2 3\n")), "p.tsv"),
    ("prepare-pheno-duplicate-sample", lambda c, t: _prepare(c, t, pheno=_write(
        t / "p.tsv", (c["root"] / "pheno.tsv").read_text() + "s1\ts1\t0.5\n")), "p.tsv"),
    ("prepare-covar-inf", lambda c, t: _prepare(c, t, "--covar", str(_edit(
        Path(shutil.copy(c["root"] / "covar.tsv", t / "covar.tsv")),
        lambda s: s.replace("\n", "\tinf\n", 2).replace("\tinf\n", "\n", 1).replace("age\tinf", "age"))),
        "--covar-name", "age"), "covar.tsv"),
    ("prepare-pheno-1e300", lambda c, t: _prepare(c, t, pheno=_pheno(c, t, lambda y: y.where(y.index != 3, "1e300"))),
     "pheno.tsv: phenotype column y has a value beyond"),
    ("prepare-covar-number-typo", lambda c, t: _prepare(c, t, "--covar", str(_edit(
        Path(shutil.copy(c["root"] / "covar.tsv", t / "covar.tsv")),
        lambda s: s.replace(s.splitlines()[4].split("\t")[2] + "\n", "4O\n", 1))),
        "--covar-name", "age"), "covar.tsv: covariate column age mixes numbers with text"),
    ("prepare-without-pheno-name", lambda c, t: [a for a in _prepare(c, t) if a not in ("--pheno-name", "y")],
     "Missing option '--pheno-name'"),
    ("prepare-covar-name-without-covar", lambda c, t: _prepare(c, t, "--covar-name", "age"),
     "--covar-name: names covariates, but no --covar table"),
    ("prepare-covar-without-name", lambda c, t: _prepare(c, t, "--covar", str(c["root"] / "covar.tsv")), "covar.tsv"),
    ("prepare-out-under-file", lambda c, t: _prepare(c, t)[:-1] + [str(c["root"] / "afile" / "data")], "--out"),
    # --- modelling stages on damaged dataset and model folders -------------------------------------------
    ("train-truncated-genotypes", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: _truncate(d / "genotypes.npy"))), "genotypes.npy"),
    ("train-corrupt-meta", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: (d / "meta.json").write_text("{not json"))), "meta.json"),
    ("train-meta-missing-key", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: (d / "meta.json").write_text("{}"))), "meta.json"),
    ("train-meta-snps-short", lambda c, t: _train(c, t, data=_damaged_data(c, t, lambda d: _edit_json(
        d / "meta.json", lambda m: {**m, "snps": m["snps"][:-1]}))), "meta.json does not describe genotypes.npy"),
    ("train-meta-sample-triple", lambda c, t: _train(c, t, data=_damaged_data(c, t, lambda d: _edit_json(
        d / "meta.json", lambda m: {**m, "samples": [["a", "b", "c"]] + m["samples"][1:]}))), "meta.json"),
    ("train-target-nan", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: np.save(d / "target.npy", np.full(np.load(d / "target.npy").shape, np.nan, np.float32)))),
     "target.npy"),
    ("train-every-sample-in-test", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: np.save(d / "is_test.npy", np.ones(np.load(d / "is_test.npy").shape, bool)))),
     "is_test.npy: is not a bool mask with at least one training sample"),
    ("train-genotypes-wrong-dtype", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: np.save(d / "genotypes.npy", np.load(d / "genotypes.npy").astype(np.float64)))),
     "genotypes.npy"),
    ("train-genotype-code-7", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: np.save(d / "genotypes.npy", _with_value(np.load(d / "genotypes.npy"), 7)))),
     "genotypes.npy"),
    ("train-dosage-nan", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: np.save(d / "genotypes.npy", _with_value(np.load(d / "genotypes.npy").astype(np.float16),
                                                                 np.nan)))), "genotypes.npy"),
    ("train-snp-mean-3", lambda c, t: _train(c, t, data=_damaged_data(
        c, t, lambda d: np.save(d / "snp_mean.npy", np.full(np.load(d / "snp_mean.npy").shape, 3, np.float32)))),
     "snp_mean.npy"),
    ("train-not-a-dataset", lambda c, t: _train(c, t, data=c["root"]), "not a ginn dataset"),
    ("train-threads-100000", lambda c, t: _train(c, t, "--threads", "100000"), "--threads"),
    ("train-members-0", lambda c, t: _train(c, t)[:3] + ["--members", "0", "--out", str(t / "out" / "m")], "--members"),
    ("train-lr-0", lambda c, t: _train(c, t, "--lr", "0"), "--lr"),
    ("train-lr-nan", lambda c, t: _train(c, t, "--lr", "nan"), "--lr"),
    ("train-l1-gene-infinite", lambda c, t: _train(c, t, "--l1-gene", "inf"), "--l1-gene"),
    ("train-hparams-infinite", lambda c, t: _train(c, t, "--hparams", str(_write(
        t / "hp.json", '{"l1_gene": Infinity, "l1_predictor": 0}'))), "hp.json: l1_gene must be a finite number"),
    ("train-val-fraction-1", lambda c, t: _train(c, t, "--val-fraction", "1"), "--val-fraction"),
    ("train-members-1e9", lambda c, t: _train(c, t)[:3] + ["--members", "1000000000", "--out", str(t / "out" / "m")],
     "--members"),
    ("train-predictor-hidden-1e9", lambda c, t: _train(c, t, "--predictor-hidden", "1000000000"), "--predictor-hidden"),
    ("train-permutations-1e9", lambda c, t: _train(c, t, "--target", "perm-T", "--permutations", "1-1000000000"),
     "--permutations: range '1-1000000000' goes beyond permutation 10,000"),
    ("train-out-is-its-data", lambda c, t: _train(c, t, data=_damaged_data(c, t, lambda d: None))[:-1] + [str(t / "data")],
     "data is also given as --data"),
    ("train-out-holds-its-data", lambda c, t: _train(c, t, data=_damaged_data(c, t, lambda d: None))[:-1] + [
        str(_write(t / "provenance.json", "{}").parent)], "holds --data"),
    ("score-samples-1e9", lambda c, t: _score(c, t)[:-2] + ["--samples", "1000000000"] + _score(c, t)[-2:], "--samples"),
    ("score-main-effect-models", lambda c, t: _score(c, t, models=c["main"]),
     "y.main: is a main-effect NN (`ginn train --model main`), which has no interactions"),
    ("score-pairtest-models", lambda c, t: _score(c, t, models=c["pairs"]),
     "y.pairs: holds the cross-fitted networks of `ginn pairtest`"),
    ("baselines-permutations-1e9", lambda c, t: ["baselines", "--data", str(c["data"]), "--method", "topsnp-lasso",
                                                 "--perm", "T", "--permutations", "1000000000",
                                                 "--out", str(t / "out" / "b.tsv")], "--permutations"),
    ("score-corrupt-weights", lambda c, t: _score(c, t, models=_damaged_models(
        c, t, lambda m: _truncate(m / "ensemble.pt"))), "ensemble.pt"),
    ("score-empty-weights", lambda c, t: _score(c, t, models=_damaged_models(
        c, t, lambda m: (m / "ensemble.pt").write_bytes(b""))), "ensemble.pt: cannot load weights: the file is empty"),
    ("score-weights-not-torch", lambda c, t: _score(c, t, models=_damaged_models(
        c, t, lambda m: (m / "ensemble.pt").write_bytes(b"garbage"))), "ensemble.pt: cannot load weights: not a torch"),
    ("score-nan-weight", lambda c, t: _score(c, t, models=_damaged_models(c, t, _nan_weight)),
     "ensemble.pt: has NaN or infinite weights"),
    ("score-models-missing", lambda c, t: _score(c, t, models=t / "nomodels"), "nomodels"),
    ("score-truncated-genotypes", lambda c, t: _score(c, t, data=_damaged_data(
        c, t, lambda d: _truncate(d / "genotypes.npy", 0.9))), "genotypes.npy"),
    ("report-damaged-metrics", lambda c, t: ["report", "--outdir", _damaged_run(c, t), "--out", str(t / "out" / "r.html")],
     "models: cannot read this model folder (JSONDecodeError"),
    ("replicate-ambiguous-maf", lambda c, t: _replicate(c, t, "--ambiguous-maf", "0.7"), "--ambiguous-maf"),
    ("replicate-main-effect-models", lambda c, t: [str(c["main"]) if a == str(c["models"]) else a
                                                                for a in _replicate(c, t)],
     "y.main: is a main-effect NN"),
    ("replicate-corrupt-meta", lambda c, t: _replicate(c, t, data=_damaged_data(
        c, t, lambda d: (d / "meta.json").write_text("[1, 2"))), "meta.json"),
    # --- ginn run: the whole config is checked before the first stage ------------------------------------
    ("run-hwe-2", lambda c, t: _run(c, t, hwe=2), "--hwe"),
    ("run-members-negative", lambda c, t: _run(c, t, members=-1), "--members"),
    ("run-maf-0.7", lambda c, t: _run(c, t, maf=0.7), "--maf"),
    ("run-keep-variance-0", lambda c, t: _run(c, t, keep_variance=0), "--keep-variance"),
    ("run-covar-name-without-table", lambda c, t: _run(c, t, covar_name="age"), "--covar-name: names covariates, but no"),
    ("run-pheno-names-of-simulated", lambda c, t: _run(c, t, pheno_names="y,z"), "--pheno-names: a simulated cohort"),
    ("run-l1-grid-typo", lambda c, t: _run(c, t, l1_grid="0,1e-4,0.0001"), "stage tune y: Invalid value for '--l1-grid'"),
    ("run-bfile-missing", lambda c, t: _run(c, t, simulate=False, bfile=str(t / "nocohort"),
                                            pheno=str(c["root"] / "pheno.tsv")), "nocohort.bed"),
    ("run-pheno-missing", lambda c, t: _run(c, t, simulate=False, bfile=str(c["bfile"]), pheno=str(t / "nopheno.tsv")),
     "nopheno.tsv"),
    ("run-members-not-integer", lambda c, t: _run(c, t, members="many"), "members"),
    ("run-seed-negative", lambda c, t: _run(c, t, seed=-1), "--seed"),
    ("run-misspelt-param", lambda c, t: _run(c, t, snr=1.0), "did you mean sim_snr"),
    ("run-outdir-empty", lambda c, t: _run(c, t, outdir=""), "outdir must match"),
    ("run-members-1e9", lambda c, t: _run(c, t, members=10**9), "members (--members) must be <= 1000"),
    ("run-permutations-1e9", lambda c, t: _run(c, t, permutations=10**9), "permutations (--permutations) must be <= 10000"),
    ("run-pheno-names-twice", lambda c, t: _cohort_run(c, t, pheno_names="y,y"), "--pheno-names: names phenotype y twice"),
    ("run-pheno-name-not-in-table", lambda c, t: _cohort_run(c, t, pheno_names="y,z"),
     "pheno.tsv: phenotype has no column z (has y)"),
    ("run-covar-name-not-in-table", lambda c, t: _cohort_run(c, t, covar=str(c["root"] / "covar.tsv"), covar_name="agee"),
     "covar.tsv: covariate has no column agee (has age)"),
    ("run-pheno-not-numeric", lambda c, t: _cohort_run(c, t, pheno=_pheno(c, t, lambda y: y.where(y.index != 2, "high"))),
     "pheno.tsv: phenotype column y is not numeric"),
    ("run-covar-name-twice", lambda c, t: _cohort_run(c, t, covar=str(c["root"] / "covar.tsv"), covar_name="age,age"),
     "--covar-name: names covariate age twice"),
    # --- tables: a row must not shift, a column must be unambiguous, covariates must leave variance ----
    ("prepare-pheno-short-row", lambda c, t: _prepare(c, t, pheno=_write(
        t / "p.tsv", (c["root"] / "pheno.tsv").read_text().replace("\n", "\nx\n", 1))), "line 2 has 1 fields"),
    ("prepare-pheno-column-twice", lambda c, t: _prepare(c, t, pheno=_write(t / "p.tsv", "\n".join(
        line + "\t" + line.split("\t")[-1] for line in (c["root"] / "pheno.tsv").read_text().splitlines()) + "\n")),
     "more than once"),
    ("prepare-covariates-explain-phenotype", lambda c, t: _prepare(c, t, "--covar", str(c["root"] / "pheno.tsv"),
                                                                   "--covar-name", "y"), "--covar-name"),
    ("test-out-is-its-pairs", lambda c, t: ["test", "--pairs", str(_write(t / "pairs.tsv", "gene_a\tgene_b\tz\tp_pair\n"
                                                                               "GA\tGB\t1.0\t0.3\n")),
                                            "--out", str(t / "pairs.tsv")], "pairs.tsv is also given as --pairs"),
    ("test-gene-paired-with-itself", lambda c, t: ["test", "--pairs", str(_write(
        t / "pairs.tsv", "gene_a\tgene_b\tz\tp_pair\nGA\tGA\t1.0\t0.3\n")), "--out", str(t / "out" / "r.tsv")],
     "itself"),
    ("replicate-q-pair-not-numeric", lambda c, t: _replicate(c, t)[:6] + [str(_write(t / "results.tsv", _q_pair_text(
        c["results"])))] + _replicate(c, t)[7:], "q_pair is not a number"),
    ("pairtest-seed-negative", lambda c, t: ["pairtest", "--data", str(c["data"]), "--seed", "-3", "--out",
                                             str(t / "out" / "pairs")], "--seed"),
    # --- outputs never replace what the stage did not write ------------------------------------------
    ("prepare-out-is-a-file", lambda c, t: _prepare(c, t)[:-1] + [str(_write(t / "mine.txt", "keep\n"))], "--out"),
    ("map-genes-out-is-a-folder", lambda c, t: ["map-genes", "--bfile", str(c["bfile"]), "--genes",
                                                str(c["root"] / "genes.txt"), "--out", str(_folder_of_mine(t))],
     "--out"),
    ("train-out-is-a-foreign-folder", lambda c, t: _train(c, t)[:-1] + [str(_folder_of_mine(t))], "did not write"),
]


def _q_pair_text(results: Path) -> str:
    table = pd.read_csv(results, sep="\t", dtype=str)
    table.loc[0, "q_pair"] = "low"
    return table.to_csv(sep="\t", index=False)


def _folder_of_mine(tmp: Path) -> Path:
    """A user's folder with a file in it, which no output may delete."""
    folder = tmp / "mine"
    folder.mkdir(exist_ok=True)
    (folder / "thesis.txt").write_text("keep\n")
    return folder


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _raw_bgen(c, tmp: Path, numerators=(100, 100), **label) -> list[str]:
    """qc of a one-variant 8-bit BGEN whose genotypes ginn must refuse (the corpus BGEN is valid)."""
    from test_genotype_formats import write_raw_bgen

    path = write_raw_bgen(tmp / "raw.bgen", [(8, [2] * 20, [numerators] * 20)], 20, **label)
    return ["qc", "--bgen", str(path), "--sample", str(tmp / "raw.sample"), "--out", str(tmp / "out" / "q")]


def _truncated_copy(path: Path, tmp: Path) -> Path:
    copy = tmp / path.name
    shutil.copy(path, copy)
    _truncate(copy, 0.6)
    return copy


def _snapshot(*roots: Path) -> set[str]:
    return {str(p) for root in roots if root.exists() for p in root.rglob("*")}


def test_corpus_is_large_enough():
    assert len(CASES) >= 60
    assert len({case[0] for case in CASES}) == len(CASES)


@pytest.mark.parametrize("build, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_one_line_exit_2_no_output(corpus, tmp_path, build, expected):
    argv = build(corpus, tmp_path)
    before = _snapshot(tmp_path, corpus["root"], corpus["data"], corpus["models"])
    result = CliRunner().invoke(cli, ["-q", *argv], prog_name="ginn")  # -q: progress logs off, as in a script
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, (result.exit_code, result.stderr, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception
    assert len(lines) == 1 and lines[0].startswith(f"ginn {argv[0]}: error: "), result.stderr
    assert expected in lines[0], lines[0]
    assert "Traceback" not in result.output
    created = _snapshot(tmp_path, corpus["root"], corpus["data"], corpus["models"]) - before
    assert not created, f"left behind: {sorted(created)}"


@pytest.mark.parametrize("case", ["qc-truncated-bed", "prepare-pheno-inf", "train-corrupt-meta", "run-hwe-2"])
def test_console_script_stderr_is_one_line(corpus, tmp_path, case):
    build, expected = next(c[1:] for c in CASES if c[0] == case)
    argv = build(corpus, tmp_path)
    env = os.environ | {"PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run([sys.executable, "-m", "ginn.cli", "-q", *argv], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 2 and done.stdout == ""
    assert len(done.stderr.strip().splitlines()) == 1 and expected in done.stderr, done.stderr


def test_minus_9_and_na_are_missing_in_phenotypes(corpus, tmp_path):
    """PLINK's missing codes: -9 and NA drop the sample (counted), they are never analysed as values."""
    pheno = _pheno(corpus, tmp_path, lambda y: y.where(y.index % 5 != 0, "-9").where(y.index % 7 != 1, "NA"))
    result = CliRunner().invoke(cli, _prepare(corpus, tmp_path, pheno=pheno), prog_name="ginn")
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "out" / "data" / "meta.json").read_text())
    n = 200
    n_missing = sum(1 for i in range(n) if i % 5 == 0 or i % 7 == 1)
    assert meta["counts"]["n_missing_phenotype"] == n_missing and meta["n_samples"] == n - n_missing


def test_empty_tab_field_is_missing_not_shifted(tmp_path):
    """In a tab-separated table an empty field is a missing value; a whitespace split would move the
    next column's value (here age 45) into the phenotype without a word."""
    from ginn.prepare import read_sample_table

    path = _write(tmp_path / "pheno.tsv", "FID\tIID\ty\tage\na\ta\t1.5\t40\nb\tb\t\t45\nc\tc\t-0.5\t50\n")
    table = read_sample_table(path, ["y", "age"], "phenotype")
    assert np.isnan(table.loc[("b", "b"), "y"]) and table.loc[("b", "b"), "age"] == 45
    assert table["y"].notna().sum() == 2


def test_spreadsheet_exports_read_as_their_text(tmp_path):
    """A byte-order mark (Excel's "UTF-8 CSV" habit) would rename the first column "\\ufeffFID", and
    FID then silently fell back to IID, matching no sample where they differ; a gzip file is read as
    its text; a comma-separated file is named as such, not as lacking FID and IID."""
    from ginn.prepare import read_sample_table

    text = "FID\tIID\ty\nfam1\ta\t1.5\nfam2\tb\t-0.5\n"
    expected = read_sample_table(_write(tmp_path / "plain.tsv", text), ["y"], "phenotype")
    (tmp_path / "bom.tsv").write_bytes(b"\xef\xbb\xbf" + text.encode())
    (tmp_path / "pheno.tsv.gz").write_bytes(gzip.compress(text.encode()))
    for name in ("bom.tsv", "pheno.tsv.gz"):
        table = read_sample_table(tmp_path / name, ["y"], "phenotype")
        assert table.index.tolist() == [("fam1", "a"), ("fam2", "b")] and table.equals(expected), name
    with pytest.raises(GinnError, match="separated by commas"):
        read_sample_table(_write(tmp_path / "pheno.csv", text.replace("\t", ",")), ["y"], "phenotype")
    from ginn.genes import read_gene_names
    from ginn.plink import read_fam

    (tmp_path / "bom.fam").write_bytes(b"\xef\xbb\xbf" + b"fam1 a 0 0 0 -9\n")
    assert read_fam(tmp_path / "bom.fam")["fid"][0] == "fam1"
    (tmp_path / "genes.txt").write_bytes(b"\xef\xbb\xbf" + b"APOE\nLDLR\n")
    assert read_gene_names(tmp_path / "genes.txt") == ["APOE", "LDLR"]


def test_unnamed_variants_are_named_by_position(corpus, tmp_path):
    """A variant ID of "." (plink2's missing ID) becomes CHROM:POS, as in a BGEN without rsIDs: kept as ".",
    two of them were duplicate IDs, and one reached the SNP-gene map, whose tables read "." as missing."""
    prefix = _damaged_bfile(corpus, tmp_path, lambda p: _edit(
        Path(f"{p}.bim"), lambda s: s.replace("\trs5_0\t", "\t.\t").replace("\trs5_1\t", "\t.\t")))
    steps = [["qc", "--bfile", prefix, "--mind", "1", "--geno", "1", "--out", str(tmp_path / "q")],
             ["map-genes", "--bfile", str(tmp_path / "q"), "--genes", str(corpus["root"] / "genes.txt"),
              "--out", str(tmp_path / "map.tsv")],
             ["prune", "--bfile", str(tmp_path / "q"), "--map", str(tmp_path / "map.tsv"), "--out", str(tmp_path / "p.tsv")]]
    for argv in steps:
        result = CliRunner().invoke(cli, ["-q", *argv], prog_name="ginn")
        assert result.exit_code == 0, result.output
    assert (tmp_path / "q.bim").read_text().split("\n")[0].split("\t")[1] == "1:1000000"
    assert {"1:1000000", "1:1000500"} <= set(pd.read_csv(tmp_path / "map.tsv", sep="\t")["snp"])


def test_prepare_keeps_fewer_samples_than_the_pc_sketch(corpus, tmp_path):
    """11 samples with a phenotype: the randomized SVD's sketch (2 PCs + 10 columns) is wider than the
    sample count, which ended in a broadcasting traceback."""
    table = pd.read_csv(corpus["root"] / "pheno.tsv", sep="\t").head(11)
    table.to_csv(tmp_path / "pheno.tsv", sep="\t", index=False)
    result = CliRunner().invoke(cli, ["-q", *_prepare(corpus, tmp_path, pheno=tmp_path / "pheno.tsv")], prog_name="ginn")
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "out" / "data" / "meta.json").read_text())["n_samples"] == 11


def test_product_term_of_nearly_equal_snps_is_tested_without_warnings():
    """Two genes whose top SNPs nearly coincide: inverting X'X gave a negative variance (a RuntimeWarning on
    stderr and a NaN p-value in the replication table) or failed as singular."""
    import warnings

    from ginn.baselines import lr_interaction_tests

    rng = np.random.default_rng(0)
    snp = rng.integers(0, 2, 300).astype(float)   # no minor homozygote: the product nearly repeats the SNP
    for noise in (1e-6, 1e-8, 1e-9, 0.0):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            t, p = lr_interaction_tests(np.column_stack([snp, snp + noise * rng.standard_normal(300)]),
                                        rng.standard_normal(300))
        assert np.isfinite(t).all() and (0 <= p).all() and (p <= 1).all(), (noise, t, p)


def test_report_tells_apart_maps_of_the_same_name(corpus, tmp_path):
    """Hand-run cohorts in folders of their own, each with a map.tsv: the report's SNPs-per-gene table had
    two columns of one name and failed with a pandas traceback."""
    for cohort in ("cohortA", "cohortB"):
        (tmp_path / cohort).mkdir()
        shutil.copy(corpus["root"] / "map.tsv", tmp_path / cohort / "map.tsv")
    shutil.copy(corpus["results"], tmp_path / "y.results.tsv")
    result = CliRunner().invoke(cli, ["-q", "report", "--outdir", str(tmp_path), "--out", str(tmp_path / "r.html")],
                                prog_name="ginn")
    assert result.exit_code == 0, result.output
    page = (tmp_path / "r.html").read_text()
    assert "mapped (cohortA/map.tsv)" in page and "mapped (cohortB/map.tsv)" in page
