"""Static checks of the Nextflow pipeline, and proof that they catch wiring errors.

No Nextflow runtime here, so the pipeline's correctness rests on two checks: the official Nextflow
language server with type checking on (tests/_language_server.py) and the wiring checks it does not make
(tests/_wiring.py: params, config selectors, tuple arity, GPU labels, generated files). The tree must be
clean under both; each of MUTATIONS, one single-line wiring error planted in a copy of the pipeline, must be
reported by at least one of them (mutation score 100%; the README states it).
"""

from __future__ import annotations

import difflib
import shutil
from pathlib import Path

import pytest

from _language_server import REPO, LanguageServer, nextflow_files, problems
from _wiring import wiring_problems

PIPELINE = ("main.nf", "nextflow.config", "nextflow_schema.json", "VERSION", "conf", "modules", "workflows")
GI, BGS = "workflows/gene_interactions.nf", "workflows/brain_genotype_scores.nf"

# (kind of error, file, line text before, after): each changes exactly one line of the tree.
MUTATIONS = [
    ("wrong emit name", GI, "GINN_PRUNE(ch_passed.join(GINN_MAP_GENES.out.map))",
     "GINN_PRUNE(ch_passed.join(GINN_MAP_GENES.out.maps))"),
    ("process called with too few arguments", GI,
     "GINN_MAP_GENES(ch_passed, ch_genes, optionalFile(params.keep_genes))",
     "GINN_MAP_GENES(ch_passed, ch_genes)"),
    ("process called with too many arguments", GI, "    GINN_QC(ch_genotypes)", "    GINN_QC(ch_genotypes, ch_genes)"),
    ("wrong emit in a workflow's emit:", GI, "published('tune', GINN_TUNE.out.hparams),",
     "published('tune', GINN_TUNE.out.hparam),"),
    ("removed output still used downstream", "modules/local/qc/main.nf",
     'tuple val(meta), path("${meta.id}.passed.qc.tsv"), path("${meta.id}.passed.qc.samples.tsv"), emit: stats', ""),
    ("channel factory typo", GI, ".combine(channel.fromList(pheno_names))", ".combine(channel.fromLis(pheno_names))"),
    ("config type error", "conf/base.config", "maxRetries     = 2", "maxRetries     = 'two'"),
    ("tuple arity: a 10-tuple where 11 are declared", GI,
     "[[id: name], bed, bim, fam, pgen, pvar, psam, map, pheno, optionalFile(params.covar), optionalFile(params.pc_file)]",
     "[[id: name], bed, bim, fam, pgen, pvar, psam, map, pheno, optionalFile(params.covar)]"),
    ("closure destructures too few elements", GI,
     ".map { _cohort, bed, bim, fam, pgen, pvar, psam, map, pheno, name ->",
     ".map { bed, bim, fam, pgen, pvar, psam, map, pheno, name ->"),
    ("missing join: too few tuple elements", GI, "GINN_PRUNE(ch_passed.join(GINN_MAP_GENES.out.map))",
     "GINN_PRUNE(ch_passed)"),
    ("report input loses a staged stage", GI, "        .combine(stagedFiles(GINN_PRUNE.out.map))", ""),
    ("tuple arity in the imaging workflow", BGS,
     "[m, scores, cognition, confounders] })", "[m, scores, cognition] })"),
    ("withName typo", "nextflow.config", "            withLabel: 'process_gpu' {\n                queue          = 'ginn-gpu'",
     "            withName: 'GINN_TRAIN_INTERACTIN' {\n                queue          = 'ginn-gpu'"),
    ("withLabel typo", "nextflow.config", "            withLabel: 'process_gpu' {\n                queue          = 'gpu'",
     "            withLabel: 'process_gpus' {\n                queue          = 'gpu'"),
    ("params typo in a workflow", GI, "permutationRanges(params.permutations, params.permutation_chunks)",
     "permutationRanges(params.permutations, params.permutation_chunk)"),
    ("params typo in the entry workflow", "main.nf", "if (params.workflow == 'gene_interactions' && !params.simulate",
     "if (params.workflow == 'gene_interactions' && !params.simulated"),
    ("params typo in a config profile", "nextflow.config", "params.bgs_device      = 'cuda'",
     "params.bgs_devices     = 'cuda'"),
    ("undefined variable", GI, "    GINN_QC(ch_genotypes)", "    GINN_QC(ch_genotype)"),
    ("missing include", GI, "include { GINN_PRUNE             } from '../modules/local/prune/main.nf'", ""),
    ("include of a missing module", GI, "include { GINN_PRUNE             } from '../modules/local/prune/main.nf'",
     "include { GINN_PRUNE             } from '../modules/local/prunes/main.nf'"),
    ("unknown process directive", "modules/local/qc/main.nf", "    label 'process_medium'", "    labels 'process_medium'"),
    ("syntax error", GI, "    GINN_TUNE(GINN_PREPARE.out.data)", "    GINN_TUNE(GINN_PREPARE.out.data"),
    ("publishing into a folder no stage has", GI, "published('prune', GINN_PRUNE.out.map",
     "published('pruning', GINN_PRUNE.out.map"),
    ("published channel missing from the output block", "main.nf", "    results = ch_published",
     "    result = ch_published"),
    ("unknown config option", "nextflow.config", "executor.queueSize     = 50", "executor.queueSizes    = 50"),
    ("unknown channel operator", GI, ".groupTuple(size: ranges.size() + 1,", ".groupTuples(size: ranges.size() + 1,"),
    ("module script drifted from the contract", "modules/local/score/main.nf", "        --seed ${params.seed} \\\\\n",
     ""),
    ("GPU label on a CPU stage", "modules/local/qc/main.nf", "    label 'process_medium'", "    label 'process_gpu'"),
    ("manifest option of the wrong type", "nextflow.config", "nextflowVersion = '!>=25.10.0'", "nextflowVersion = 25.10"),
    ("helper function called with too few arguments", GI,
     "permutationRanges(params.permutations, params.permutation_chunks)", "permutationRanges(params.permutations)"),
    ("schema drifted from the contract", "nextflow_schema.json", '"title": "ginn pipeline parameters",',
     '"title": "ginn pipeline params",'),
    ("unknown output of a sub-workflow", "main.nf", "ch_published = GENE_INTERACTIONS.out.published",
     "ch_published = GENE_INTERACTIONS.out.publish"),
]


def _copy_pipeline(target: Path) -> None:
    for rel in PIPELINE:
        source = REPO / rel
        if source.is_dir():
            shutil.copytree(source, target / rel, ignore=shutil.ignore_patterns("tests"))
        else:
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy(source, target / rel)


def _mutate(root: Path, rel: str, before: str, after: str) -> None:
    path = root / rel
    text = path.read_text()
    assert text.count(before) == 1, f"{rel}: the mutation's line must occur once: {before!r}"
    mutated = text.replace(before, after)
    diff = [line for line in difflib.ndiff(text.splitlines(), mutated.splitlines()) if line[:1] in "+-"]
    assert len([d for d in diff if d[0] == "-"]) == 1 and len(diff) <= 2, f"{rel}: a mutation changes one line"
    path.write_text(mutated)


def _diagnostics(roots: dict[str, Path]) -> dict[str, list[str]]:
    """Language-server problems of each root's pipeline files, from one server process."""
    documents = {path: path.read_text() for root in roots.values() for path in nextflow_files(root)
                 if "tests" not in path.relative_to(root).parts}
    server = LanguageServer(list(roots.values()))
    try:
        found = server.diagnostics(documents, timeout=900)
    finally:
        server.close()
    return {kind: [f"{p.relative_to(root)} {issue}" for p in documents if p.is_relative_to(root)
                   for issue in problems(found.get(p.as_uri(), []))]
            for kind, root in roots.items()}


def test_mutations_are_distinct_kinds():
    assert len({kind for kind, *_ in MUTATIONS}) == len(MUTATIONS) >= 25


def test_tree_is_clean_under_type_checking():
    reported = _diagnostics({"tree": REPO})
    assert reported["tree"] == [], "Nextflow language server (type checking on):\n" + "\n".join(reported["tree"])


def test_tree_passes_the_wiring_checks():
    assert wiring_problems(REPO) == []


@pytest.mark.slow  # one server over 32 copies of the pipeline: about 2 minutes
def test_every_planted_wiring_error_is_caught(tmp_path):
    """The mutation score: every mutant gets at least one diagnostic from the server or the wiring checks."""
    roots = {}
    for index, (kind, rel, before, after) in enumerate(MUTATIONS):
        roots[kind] = tmp_path / f"mutant{index:02d}"
        _copy_pipeline(roots[kind])
        _mutate(roots[kind], rel, before, after)
    reported = _diagnostics(roots)
    wiring = {kind: wiring_problems(roots[kind]) for kind, *_ in MUTATIONS}
    missed = [kind for kind, *_ in MUTATIONS if not reported[kind] and not wiring[kind]]
    caught = len(MUTATIONS) - len(missed)
    by_server, by_wiring = sum(bool(reported[k]) for k in wiring), sum(bool(w) for w in wiring.values())
    print(f"mutation score: {caught}/{len(MUTATIONS)} caught ({by_server} by the language server, "
          f"{by_wiring} by the wiring checks)")
    assert not missed, f"mutation score {caught}/{len(MUTATIONS)}; missed: {missed}"
