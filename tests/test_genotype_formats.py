"""Genotypes as the field stores them: BGEN 1.2/1.3 and PLINK 2 .pgen with dosages, read as plink2 reads them.

The BGEN files are written here (``bgen.BgenWriter``) from imputation-like probabilities with planted
problems: rare variants, HWE violators, missing samples and poorly imputed variants (low INFO, many
dosages too far from an integer to give a hard call). plink2 converts them to .pgen and .bed, and is the
oracle for frequencies, missingness and HWE; INFO is checked against the IMPUTE formula written below.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from conftest import plink2
from ginn.cli import cli
from ginn.dataset import Dataset, center_dosages
from ginn.genotypes import genotype_input

N_SAMPLES, N_VARIANTS = 400, 160


def write_bgen(path, seed: int = 0, compression: str = "zstd", bit_depth: int = 16, alleles=("A", "G")):
    """A BGEN (layout 2; zlib = v1.2, zstd = v1.3) + Oxford .sample beside it; returns its path."""
    import bgen

    rng = np.random.default_rng(seed)
    samples = [f"id{i}" for i in range(N_SAMPLES)]
    with bgen.BgenWriter(str(path), N_SAMPLES, samples=samples, compression=compression, layout=2) as writer:
        for v in range(N_VARIANTS):
            freq = rng.uniform(0.003, 0.5)
            calls = rng.binomial(2, freq, N_SAMPLES)
            if v % 10 == 0:    # HWE violator: no heterozygotes
                calls = rng.choice([0, 2], N_SAMPLES, p=[0.6, 0.4])
            # imputation certainty: most variants near-certain, a quarter poorly imputed
            certainty = rng.uniform(0.3, 0.7) if v % 4 == 1 else rng.uniform(0.93, 1.0)
            prior = np.array([(1 - freq) ** 2, 2 * freq * (1 - freq), freq ** 2])
            probs = certainty * np.eye(3)[calls] + (1 - certainty) * prior
            probs[rng.random(N_SAMPLES) < (0.08 if v % 7 == 3 else 0.01)] = np.nan
            writer.add_variant(f"v{v}", f"rs{v}", "1", 10_000 + 100 * v, list(alleles), probs, bit_depth=bit_depth)
    with open(f"{path}.sample".replace(".bgen.sample", ".sample"), "w") as fh:
        fh.write("ID_1 ID_2 missing sex\n0 0 0 D\n" + "".join(f"{s} {s} 0 {1 + i % 2}\n" for i, s in enumerate(samples)))
    return path


@pytest.fixture(scope="module", params=[("zlib", 8), ("zstd", 16)], ids=["bgen1.2-8bit", "bgen1.3-16bit"])
def bgen_file(request, tmp_path_factory):
    compression, bits = request.param
    return write_bgen(tmp_path_factory.mktemp("bgen") / "cohort.bgen", compression=compression, bit_depth=bits)


def _sample(bgen_path):
    return str(bgen_path).removesuffix(".bgen") + ".sample"


def _ginn_qc(tmp_path, *flags, out="q"):
    result = CliRunner().invoke(cli, ["-q", "qc", *map(str, flags), "--mind", "1", "--out", str(tmp_path / out)])
    assert result.exit_code == 0, result.output
    return pd.read_csv(tmp_path / f"{out}.qc.tsv", sep="\t").set_index("snp")


def _plink_stats(tmp_path, *flags):
    plink2(*map(str, flags), "--freq", "--missing", "--hardy", "--out", str(tmp_path / "stats"))
    plink2(*map(str, flags), "--geno", "0.05", "--maf", "0.01", "--hwe", "1e-6", "--write-snplist",
           "--out", str(tmp_path / "pass"))
    read = lambda ext: pd.read_csv(tmp_path / f"stats.{ext}", sep="\t").set_index("ID")  # noqa: E731
    return read("afreq"), read("vmiss"), read("hardy"), set((tmp_path / "pass.snplist").read_text().split())


def _assert_equals_plink2(table, freq, vmiss, hardy, passing):
    # plink2 prints 6 significant digits: agreement is checked to half a unit of the 6th digit
    # (plus a float hair), i.e. equal at plink2's printed precision.
    def printed_equal(ours, theirs):
        unit = 10.0 ** np.floor(np.log10(np.where(theirs == 0, 1.0, np.abs(theirs))))
        both_undefined = np.isnan(ours) & np.isnan(theirs)   # no call at all: plink2 prints NaN too
        return np.all(both_undefined | (np.abs(ours - theirs) <= 5.0001e-6 * unit))

    ids = table.index
    assert printed_equal(table["a1_freq"].to_numpy(), freq.loc[ids, "ALT_FREQS"].to_numpy())
    assert printed_equal(table["missing_rate"].to_numpy(), vmiss.loc[ids, "F_MISS"].to_numpy())
    assert printed_equal(table["hwe_p"].to_numpy(), hardy.loc[ids, "P"].to_numpy())
    assert set(ids[table["pass"]]) == passing
    # every filter had something to do
    assert (table.maf < 0.01).any() and (table.hwe_p < 1e-6).any() and (table.missing_rate > 0.05).any()
    assert table["pass"].sum() > 50


def test_bgen_qc_equals_plink2(bgen_file, tmp_path):
    table = _ginn_qc(tmp_path, "--bgen", bgen_file, "--sample", _sample(bgen_file))
    _assert_equals_plink2(table, *_plink_stats(tmp_path, "--bgen", bgen_file, "ref-first", "--sample",
                                               _sample(bgen_file)))


def write_raw_bgen(path, variants, n_samples: int, phased: bool = False, layout: int = 2):
    """An uncompressed BGEN 1.2 (layout 2, biallelic) written byte by byte from integer probability
    numerators, so any bit depth and ploidy can be tested. ``variants`` holds (bit depth, ploidy per
    sample (uint8, bit 7 = missing), stored numerators per sample: diploid (P(AA), P(AB)), haploid
    (P(A),)). ``phased`` and ``layout`` only label the data (for files ginn must refuse)."""
    u16, u32 = (lambda v: int(v).to_bytes(2, "little")), (lambda v: int(v).to_bytes(4, "little"))
    out = bytearray(u32(20) + u32(20) + u32(len(variants)) + u32(n_samples) + b"bgen" + u32(layout << 2))
    for index, (bits, ploidy, numerators) in enumerate(variants):
        packed = 0
        values = [v for sample in numerators for v in sample]
        for position, value in enumerate(values):
            packed |= int(value) << (position * bits)
        probs = packed.to_bytes((len(values) * bits + 7) // 8, "little")
        block = (u32(n_samples) + u16(2) + bytes([min(ploidy) & 63, max(p & 63 for p in ploidy)])
                 + bytes(ploidy) + bytes([int(phased), bits]) + probs)
        name = f"b{bits}_{index}".encode()
        out += (u16(len(name)) + name + u16(len(name)) + name + u16(1) + b"1" + u32(1000 + index) + u16(2)
                + u32(1) + b"A" + u32(1) + b"G" + u32(len(block)) + block)
    path.write_bytes(bytes(out))
    with open(str(path).removesuffix(".bgen") + ".sample", "w") as fh:
        fh.write("ID_1 ID_2 missing\n0 0 0\n" + "".join(f"s{i} s{i} 0\n" for i in range(n_samples)))
    return path


_THRESHOLD_DOSAGES = (1638, 1639, 16384 - 1639, 16384 - 1638, 16384 + 1638, 16384 + 1639)


def _half_up_sum(bits: int) -> int:
    """The S = 2 P(AA) + P(AB) numerator (in [0, 2D]) whose first-allele dosage 16384 S / D lies
    1/(2D) below a half grid step: plink2 rounds it up, rounding to nearest would round it down."""
    denominator = (1 << bits) - 1
    return (((1 << (bits - 1)) - 1) * pow(16384, -1, denominator)) % denominator


def test_bgen_dosages_and_hard_calls_equal_plink2_exactly(tmp_path):
    """Every bit depth plink2 imports (1-28), with diploid, haploid and missing samples: ginn's dosages
    (in 1/16384 units) and hard calls equal those of plink2's own conversion, sample by sample."""
    import pgenlib

    rng = np.random.default_rng(3)
    n = 600
    variants = []
    for bits in (1, 2, 3, 7, 8, 10, 12, 16, 20, 24, 28):
        denominator = (1 << bits) - 1
        for haploid_share in (0.0, 0.3):
            aa = rng.integers(0, denominator + 1, n)
            ab = (rng.random(n) * (denominator - aa + 1)).astype(np.int64).clip(0, denominator - aa)
            near_call = rng.random(n) < 0.5   # most imputed genotypes lie close to a hard call
            aa = np.where(near_call, np.where(rng.random(n) < 0.5, 0, denominator - ab), aa)
            sums = [_half_up_sum(bits), _half_up_sum(bits) + denominator] if bits > 1 else []  # S and S + D
            if bits >= 16:   # first-allele dosages F at plink2's hard-call threshold (1638/16384 from an integer)
                half = 1 << (bits - 1)
                sums += [-((half - f * denominator) // 16384) for f in _THRESHOLD_DOSAGES]
            for k, s in enumerate(sums):
                aa[k], ab[k] = s // 2, s % 2
            ploidy = np.where(rng.random(n) < haploid_share, 1, 2).astype(np.uint8)
            ploidy[10:] |= np.where(rng.random(n - 10) < 0.05, 128, 0).astype(np.uint8)   # missing
            ploidy[:len(sums)] = 2   # the planted samples are diploid and present
            numerators = [(a,) if p & 63 == 1 else (a, b) for a, b, p in zip(aa, ab, ploidy)]
            variants.append((bits, ploidy.tolist(), numerators))
    path = write_raw_bgen(tmp_path / "depths.bgen", variants, n)
    sample = _sample(path)
    plink2("--bgen", str(path), "ref-first", "--sample", sample, "--make-pgen", "--out", str(tmp_path / "p"))
    ours = genotype_input(bgen=str(path), sample=sample).open()
    reader = pgenlib.PgenReader(bytes(tmp_path / "p.pgen"))
    theirs_dosage = np.empty((len(variants), n), np.float64)
    theirs_calls = np.empty((len(variants), n), np.int8)
    for v in range(len(variants)):
        reader.read_dosages(v, theirs_dosage[v])
        reader.read(v, theirs_calls[v])
    theirs_dosage[theirs_dosage == -9] = -1
    theirs_calls[theirs_calls == -9] = -1
    np.testing.assert_array_equal(ours.read_dosages(slice(None)).astype(np.float64) * 16384,
                                  np.where(theirs_dosage < 0, -16384, theirs_dosage * 16384))
    np.testing.assert_array_equal(ours.read_hardcalls(slice(None)), theirs_calls)
    # the data can tell the rules apart: rounding 16384 S / D to nearest misses the half-up samples
    half_up = np.array([v[0] > 1 for v in variants])
    exact = np.array([[(2 * a + b) * 16384 / ((1 << v[0]) - 1) for a, b in v[2][:2]] for v in variants if v[0] > 1])
    assert np.all(np.rint(exact) != 32768 - theirs_dosage[half_up, :2] * 16384)
    at_threshold = np.array([v[0] >= 16 for v in variants])
    assert np.all(theirs_dosage[at_threshold, 2:8] * 16384 == 32768 - np.array(_THRESHOLD_DOSAGES))
    assert np.all(theirs_calls[at_threshold, 2:8] == [2, -1, -1, 1, 1, -1])   # 1638 off: a call; 1639: none


def test_bgen_dosages_equal_plink2_conversion(bgen_file, converted):
    """The fixtures (8-bit zlib, 16-bit zstd) read as plink2's .pgen of them, dosages and hard calls."""
    ours = genotype_input(bgen=str(bgen_file), sample=_sample(bgen_file)).open()
    theirs = genotype_input(pfile=converted / "dosage").open()
    np.testing.assert_array_equal(ours.read_dosages(slice(None)), theirs.read_dosages(slice(None)))
    np.testing.assert_array_equal(ours.read_hardcalls(slice(None)), theirs.read_hardcalls(slice(None)))


def impute_info_oracle(probs: np.ndarray) -> float:
    """IMPUTE2's INFO (Marchini & Howie 2010, supplement): with e_i = P(het) + 2 P(hom alt) and
    f_i = P(het) + 4 P(hom alt) over samples with data, theta = sum(e) / 2N and
    info = 1 - sum(f_i - e_i^2) / (2 N theta (1 - theta)); 1 when theta is 0 or 1."""
    rows = [p for p in probs if not np.isnan(p).any()]
    e = np.array([p[1] + 2 * p[2] for p in rows])
    f = np.array([p[1] + 4 * p[2] for p in rows])
    theta = e.sum() / (2 * len(rows))
    if theta in (0.0, 1.0):
        return 1.0
    return 1 - np.sum(f - e * e) / (2 * len(rows) * theta * (1 - theta))


def test_info_equals_impute_formula_and_min_info_filters(bgen_file, tmp_path):
    import bgen

    table = _ginn_qc(tmp_path, "--bgen", bgen_file, "--sample", _sample(bgen_file), "--min-info", "0.4")
    reader = bgen.BgenReader(str(bgen_file), sample_path=_sample(bgen_file), delay_parsing=True)
    oracle = np.array([impute_info_oracle(np.asarray(var.probabilities, dtype=float)) for var in reader])
    # qc.tsv prints 8 significant digits; INFO is in [-1, 1] here, so 1e-7 absolute covers the print
    np.testing.assert_allclose(table["info"].to_numpy(), oracle, rtol=0, atol=1e-7)
    assert (oracle < 0.4).sum() >= 20 and (oracle > 0.9).sum() >= 80   # both kinds of variant are present
    assert not table.loc[oracle < 0.4, "pass"].any()
    plain = _ginn_qc(tmp_path, "--bgen", bgen_file, "--sample", _sample(bgen_file), out="plain")
    assert set(table.index[table["pass"]]) == set(plain.index[plain["pass"] & (oracle >= 0.4)])


@pytest.fixture(scope="module")
def converted(bgen_file, tmp_path_factory):
    """The BGEN as plink2 converts it: .pgen with dosages, a hard-call .pgen, and .bed filesets of both."""
    root = tmp_path_factory.mktemp("converted")
    plink2("--bgen", str(bgen_file), "ref-first", "--sample", _sample(bgen_file), "--make-pgen",
           "--out", str(root / "dosage"))
    plink2("--pfile", str(root / "dosage"), "--make-pgen", "erase-dosage", "--out", str(root / "hard"))
    plink2("--pfile", str(root / "hard"), "--make-bed", "--out", str(root / "hard"))
    plink2("--pfile", str(root / "dosage"), "--make-bed", "--out", str(root / "dosagebed"))
    return root


def test_pgen_with_dosages_qc_equals_plink2(converted, tmp_path):
    prefix = converted / "dosage"
    assert genotype_input(pfile=prefix).open().has_dosages
    table = _ginn_qc(tmp_path, "--pfile", prefix)
    _assert_equals_plink2(table, *_plink_stats(tmp_path, "--pfile", prefix))
    # the QC'd .pgen keeps the dosages of the passing variants, as plink2 reads them
    plink2("--pfile", str(tmp_path / "q"), "--freq", "--out", str(tmp_path / "after"))
    after = pd.read_csv(tmp_path / "after.afreq", sep="\t").set_index("ID")
    before = pd.read_csv(tmp_path / "stats.afreq", sep="\t").set_index("ID")
    assert list(after.index) == list(table.index[table["pass"]])
    np.testing.assert_array_equal(after["ALT_FREQS"], before.loc[after.index, "ALT_FREQS"])


def test_bed_converted_from_pgen_gives_identical_results(converted, tmp_path):
    pgen = _ginn_qc(tmp_path, "--pfile", converted / "hard", out="from_pgen")
    bed = _ginn_qc(tmp_path, "--bfile", converted / "hard", out="from_bed")
    pd.testing.assert_frame_equal(pgen, bed)
    np.testing.assert_array_equal(genotype_input(pfile=tmp_path / "from_pgen").open().read_hardcalls(slice(None)),
                                  genotype_input(bfile=tmp_path / "from_bed").open().read_hardcalls(slice(None)))
    # from the dosage .pgen, the .bed keeps the hard calls: missingness and HWE are unchanged
    dosage = _ginn_qc(tmp_path, "--pfile", converted / "dosage", out="dosage")
    dosage_bed = _ginn_qc(tmp_path, "--bfile", converted / "dosagebed", out="dosage_bed")
    pd.testing.assert_frame_equal(dosage[["missing_rate", "hwe_p"]], dosage_bed[["missing_rate", "hwe_p"]])
    _assert_equals_plink2(dosage_bed, *_plink_stats(tmp_path, "--bfile", converted / "dosagebed"))


def test_prepare_stores_dosages_as_float16(converted, tmp_path):
    prefix = converted / "dosage"
    source = genotype_input(pfile=prefix).open()
    snps = source.bim["snp"][:40]
    (tmp_path / "map.tsv").write_text("snp\tgene\n" + "".join(f"{s}\tG{i // 10}\n" for i, s in enumerate(snps)))
    rng = np.random.default_rng(1)
    pheno = source.fam[["fid", "iid"]].rename(columns={"fid": "FID", "iid": "IID"}).assign(y=rng.normal(size=N_SAMPLES))
    pheno.to_csv(tmp_path / "pheno.tsv", sep="\t", index=False)
    result = CliRunner().invoke(cli, ["-q", "prepare", "--pfile", str(prefix), "--map", str(tmp_path / "map.tsv"),
                                      "--pheno", str(tmp_path / "pheno.tsv"), "--pheno-name", "y", "--pcs", "0",
                                      "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    data = Dataset.load(tmp_path / "data")
    assert data.genotypes.dtype == np.float16
    plink2("--pfile", str(prefix), "--extract", str(tmp_path / "snps"), "--export", "A", "--out", str(tmp_path / "raw")) \
        if (tmp_path / "snps").write_text("\n".join(snps)) else None
    raw = pd.read_csv(tmp_path / "raw.raw", sep="\t")
    # --export A counts REF; ALT dosage = 2 - it. float16 rounds a dosage in [1, 2] to 2^-11 at worst
    # and plink2 prints dosages to 4 decimals at worst (5e-5), so they agree within 2^-11 + 5e-5.
    expected = 2 - raw.iloc[:, 6:].to_numpy(dtype=float)
    ours = np.asarray(data.genotypes, dtype=float)
    missing = np.isnan(expected)
    np.testing.assert_array_equal(ours[missing], -1)
    np.testing.assert_allclose(ours[~missing], expected[~missing], rtol=0, atol=2 ** -11 + 5e-5)
    assert np.mean(np.abs(ours[~missing] - np.rint(ours[~missing])) > 0.01) > 0.05  # real dosages, not hard calls
    # centring treats -1 as missing (-> 0) and subtracts the mean of the present dosages
    centred = center_dosages(np.asarray(data.genotypes), data.snp_mean)
    present_mean = np.nanmean(np.where(missing, np.nan, ours), axis=0)
    np.testing.assert_allclose(data.snp_mean, present_mean, rtol=0, atol=1e-4)
    np.testing.assert_array_equal(centred[missing], 0)
