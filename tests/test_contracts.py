"""The stage contract (src/ginn/contract) against everything derived from it.

* The generated files (module scripts, nextflow_schema.json, the params blocks of main.nf and
  nextflow.config) are what the contract renders today, and adding a flag is one contract edit plus
  ``python -m ginn.contract``.
* Every stage command's click options are its contract flags (the two commands whose files other work owns,
  ``test`` and ``replicate``, keep hand-written decorators: this is what keeps them in step).
* Each module's generated script, evaluated the way Nextflow evaluates it (the few Groovy forms the
  renderer writes; anything else fails), runs with the real ``ginn`` in a task folder of staged inputs, calls
  ginn with the values ``ginn run`` uses, and writes every output it declares.
* GPU: a process carries the GPU label exactly when it passes its stage's ``--device``, and every stage
  that has ``--device`` gets it from the pipeline.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click
import pytest
import yaml

from _pipeline_data import TINY, adopt_task_outputs, dosage_cohort, run_before, tiny_run_dir
from ginn.cli import cli
from ginn.contract.generate import stale_files
from ginn.contract.params import PARAM_BY_NAME, PARAMS
from ginn.contract.pipeline import PROCESS_BY_MODULE, PROCESSES, Process, argv
from ginn.contract.stages import GENOTYPES, STAGES
from ginn.genotypes import genotype_input
from ginn.plan import plan
from ginn.run import run_command
from ginn.run_params import load_params

REPO = Path(__file__).resolve().parents[1]
MODULES = REPO / "modules" / "local"
GINN_BIN = Path(sys.executable).parent


# ---- generated files ------------------------------------------------------------------------------------

def test_generated_files_are_current():
    assert stale_files(REPO) == [], "run `python -m ginn.contract` and commit the result"


def test_every_module_folder_is_a_contract_process():
    folders = {p.parent.name for p in MODULES.glob("*/main.nf")}
    assert folders == set(PROCESS_BY_MODULE) | {"versions"}


def test_adding_a_flag_is_one_contract_edit_plus_regeneration(tmp_path):
    """A new qc flag set by a new pipeline param: one line in stages.py, one in pipeline.py, regenerate."""
    for rel in ("src", "modules", "main.nf", "nextflow.config", "nextflow_schema.json"):
        (shutil.copytree if (REPO / rel).is_dir() else shutil.copy)(REPO / rel, tmp_path / rel)
    env = os.environ | {"PYTHONPATH": str(tmp_path / "src")}

    def contract(*args):
        return subprocess.run([sys.executable, "-m", "ginn.contract", "--root", str(tmp_path), *args], env=env,
                              capture_output=True, text=True)

    assert contract("--check").returncode == 0
    stages, pipeline = tmp_path / "src/ginn/contract/stages.py", tmp_path / "src/ginn/contract/pipeline.py"
    anchor = "    Flag('chunk-size', 'int', 'Variants read per chunk.', default=4096, minimum=1),\n"
    assert anchor in stages.read_text()
    stages.write_text(stages.read_text().replace(
        anchor, anchor + "    Flag('max-het', 'float', 'Max heterozygosity.', default=0.5, minimum=0, maximum=1),\n"))
    wired = 'param("maf"), param("hwe"),'
    assert wired in pipeline.read_text()
    pipeline.write_text(pipeline.read_text().replace(wired, wired + ' param("max-het"),'))
    stale = contract("--check")
    assert stale.returncode == 1 and "modules/local/qc/main.nf" in stale.stderr
    assert contract().returncode == 0 and contract("--check").returncode == 0

    assert "--max-het ${params.max_het}" in (tmp_path / "modules/local/qc/main.nf").read_text()
    assert "max_het: Float = 0.5" in (tmp_path / "main.nf").read_text()
    schema = json.loads((tmp_path / "nextflow_schema.json").read_text())
    prop = next(g["properties"]["max_het"] for g in schema["$defs"].values() if "max_het" in g["properties"])
    assert prop == {"type": "number", "description": "Max heterozygosity.", "default": 0.5, "minimum": 0,
                    "maximum": 1}
    for command in (["qc", "--help"], ["run", "--help"]):
        shown = subprocess.run([sys.executable, "-m", "ginn.cli", *command], env=env, capture_output=True, text=True)
        assert "--max-het" in shown.stdout, shown.stderr


# ---- click commands = contract --------------------------------------------------------------------------

def _command(name: str) -> click.Command:
    group, ctx = cli, click.Context(cli)
    for word in name.split():
        group = group.get_command(ctx, word)
    return group


def _described(param: click.Parameter) -> tuple:
    kind = type(param.type).__name__
    bounds = tuple(getattr(param.type, attr, None) for attr in ("min", "max", "min_open", "max_open"))
    choices = tuple(getattr(param.type, "choices", ()) or ())
    default = None if param.default in ((), None) or "Sentinel" in repr(param.default) else param.default
    flag = getattr(param, "is_flag", False)
    return (param.name, kind if not flag else "flag", bounds, choices, default, param.required,
            getattr(param, "multiple", False), param.nargs)


@pytest.mark.parametrize("name", sorted(STAGES))
def test_stage_command_options_are_its_contract(name):
    """Every option of `ginn <stage>` (type, range, choices, default) is the contract's flag."""
    from ginn.contract.spec import click_options

    expected = click.command(name)(click_options(STAGES[name].flags)(lambda **_: None))
    actual = _command(name)
    assert [_described(p) for p in actual.params] == [_described(p) for p in expected.params]
    assert [getattr(p, "help", None) for p in actual.params] == [getattr(p, "help", None) for p in expected.params]


def test_every_float_flag_refuses_nan_and_infinity():
    """click reads nan and inf as floats, and nan passes any range check; a stage must never start
    with one (a nan learning rate or L1 strength once reached torch, or trained silently)."""
    floats = [(name, flag) for name, stage in STAGES.items() for flag in stage.flags if flag.kind == "float"]
    assert len(floats) > 20
    for name, flag in floats:
        kind = flag.click_type()
        for value in ("nan", "inf", "-inf"):
            with pytest.raises(click.BadParameter, match="not a finite number|not in the range"):
                kind.convert(value, None, None)
        if flag.default is not None:
            assert kind.convert(str(flag.default), None, None) == flag.default, (name, flag.name)


@pytest.mark.parametrize("name", sorted(name for name, stage in STAGES.items() if any(f.required for f in stage.flags)))
def test_a_missing_required_flag_is_refused(name, tmp_path):
    """Each required flag, left out while every other is given, stops the stage before it runs (click
    >= 8.3 took an explicit default of None as a value given, and e.g. `ginn prepare` without
    --pheno-name reached the phenotype table with None)."""
    def value(flag) -> str:
        return str(tmp_path) if flag.kind in ("dir", "path") else (
            flag.choices[0] if flag.kind == "choice" else str(tmp_path / "given") if flag.kind == "file" else "x")

    required = [flag for flag in STAGES[name].flags if flag.required]
    command = _command(name)
    for left_out in required:
        args = [word for flag in required if flag is not left_out for word in (flag.option, value(flag))]
        with pytest.raises(click.MissingParameter) as refused:
            command.make_context(name, args)
        assert left_out.option in refused.value.format_message()


def test_module_constants_agree_with_the_contract():
    """Constants the stage code keeps for its own use are the contract's values (not a second home)."""
    from ginn.bgs.model import ARCHITECTURES
    from ginn.score import ROW_CHOICES
    from ginn.simulate import MODELS
    from ginn.targets import TARGET_KINDS
    from ginn.train import DEFAULT_L1_GRID, TrainSettings

    assert STAGES["train"].flag("target").choices == TARGET_KINDS
    assert STAGES["score"].flag("rows").choices == ROW_CHOICES
    assert STAGES["simulate"].flag("model").choices == MODELS
    assert STAGES["bgs train"].flag("arch").choices == ARCHITECTURES
    assert STAGES["tune"].flag("l1-grid").default == ",".join(map(str, DEFAULT_L1_GRID))
    settings = TrainSettings()
    for flag in ("lr", "batch-size", "max-epochs", "patience"):
        assert STAGES["train"].flag(flag).default == getattr(settings, flag.replace("-", "_")), flag


# ---- GPU labels -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.module)
def test_gpu_label_only_where_the_stage_runs_on_the_device(process: Process):
    text = (MODULES / process.module / "main.nf").read_text()
    labelled = "label 'process_gpu'" in text
    passes_device = re.search(r"--device \$\{params\.\w+\}", text) is not None
    assert labelled == passes_device, f"{process.name}: GPU label {labelled} but passes --device {passes_device}"
    assert ("accelerator" in text) == labelled, f"{process.name}: asks for a GPU it does not use"
    assert passes_device == STAGES[process.stage].uses_gpu, \
        f"{process.name}: `ginn {process.stage}` {'has' if STAGES[process.stage].uses_gpu else 'has no'} --device"


@pytest.mark.parametrize("process", PROCESSES, ids=lambda p: p.module)
def test_stages_with_threads_get_the_tasks_cpus(process: Process):
    has_threads = any(flag.name == "threads" for flag in STAGES[process.stage].flags)
    text = (MODULES / process.module / "main.nf").read_text()
    assert ("--threads ${task.cpus}" in text) == has_threads, process.name


# ---- evaluating a generated script the way Nextflow does -------------------------------------------------

def _groovy(value) -> str:
    if isinstance(value, list):
        return " ".join(_groovy(v) for v in value)  # staged files: blank-separated names
    if isinstance(value, bool):
        return str(value).lower()
    return str(value)


def _lookup(ref: str, ctx: dict):
    """`name`, `name.baseName`, `meta.x`, `params.x`, `task.x`: the references generated scripts use."""
    match = re.fullmatch(r"(\w+)(?:\.(\w+))?", ref)
    assert match, f"unsupported expression: {ref}"
    head, attr = match.groups()
    value = ctx[head]
    if attr is None:
        return value
    if head in ("meta", "params", "task"):
        return value.get(attr)
    assert attr == "baseName", f"unsupported property: {ref}"
    return Path(value).stem


def _expression(expr: str, ctx: dict):
    expr = expr.strip()
    if m := re.fullmatch(r"(\w+)\.join\('([^']*)'\)", expr):
        return m.group(2).join(ctx[m.group(1)])
    if m := re.fullmatch(r"(params\.\w+) \? '([^']*)' : '([^']*)'", expr):
        return m.group(2) if _lookup(m.group(1), ctx) else m.group(3)
    return _lookup(expr, ctx)


def interpolate(template: str, ctx: dict) -> str:
    return re.sub(r"\$\{([^}]*)\}", lambda m: _groovy(_expression(m.group(1), ctx)), template)


def _condition(cond: str, ctx: dict) -> bool:
    result = True
    for atom in cond.split(" && "):
        if m := re.fullmatch(r"(\S+) != null", atom):
            result &= _lookup(m.group(1), ctx) is not None
        else:
            value = _lookup(atom, ctx)
            result &= value not in (None, "", [], False)
    return result


def render_script(process: Process, ctx: dict) -> str:
    """The module's script block, with its `def` lines evaluated and its GString filled in."""
    text = (MODULES / process.module / "main.nf").read_text()
    block = text[text.index("    script:\n") + len("    script:\n"):text.index("    stub:")]
    defs, _, body = block.partition('    """\n')
    ctx = dict(ctx)
    for line in filter(None, (line.strip() for line in defs.splitlines())):
        if line == "def args = task.ext.args ?: ''":
            ctx["args"] = ""
            continue
        m = re.fullmatch(r"def (\w+) = (.+) \? (\"[^\"]*\"|'[^']*') : ''", line)
        assert m, f"{process.module}: unsupported script line: {line}"
        ctx[m.group(1)] = interpolate(m.group(3)[1:-1], ctx) if _condition(m.group(2), ctx) else ""
    return interpolate(body.rsplit('    """', 1)[0], ctx).replace("\\\\", "\\")  # Groovy's \\ is one \


def ginn_argv(script: str) -> list[str]:
    words = shlex.split(script.replace("\\\n", " "))
    assert words[0] == "ginn", f"the script is not one ginn call: {script}"
    return words[1:]


def parsed(words: list[str]) -> dict:
    """What click parses from an argv (number spelling, e.g. Groovy's 1.0E-6, does not matter)."""
    command = _command(" ".join(words[:2]) if words[0] == "bgs" else words[0])
    rest = words[2:] if words[0] == "bgs" else words[1:]
    with command.make_context("ginn", list(rest)) as ctx:
        return dict(ctx.params)


def stage_files(sources: list[Path], task: Path, stage_as: str | None) -> list[str]:
    """Symlink inputs into the task folder as Nextflow stages them; their names relative to the task."""
    names = []
    for source in sources:
        target = task / (stage_as.replace("*", source.name) if stage_as else source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source.resolve())
        names.append(str(target.relative_to(task)))
    return names


def run_script(script: str, task: Path) -> subprocess.CompletedProcess:
    (task / ".command.sh").write_text(script)
    env = os.environ | {"PATH": f"{GINN_BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-ue", ".command.sh"], cwd=task, env=env, capture_output=True, text=True,
                          timeout=600)


def declared_outputs(process: Process, ctx: dict, task: Path) -> dict[str, list[Path]]:
    """The files of every output the task must write; an optional one (``Emit.when``) must be written exactly
    when its inputs are staged."""
    found = {}
    for emit in process.outputs:
        if not emit.written(ctx):
            for pattern in emit.files:
                assert not list(task.glob(interpolate(pattern, ctx))), \
                    f"{process.name}: wrote `{pattern}` (emit {emit.name}) without its inputs {emit.when}"
            continue
        for pattern in emit.files:
            matches = sorted(task.glob(interpolate(pattern, ctx)))
            assert matches, f"{process.name}: output `{pattern}` (emit {emit.name}) was not written"
            found.setdefault(emit.name, []).extend(matches)
    return found


GENE_MODULES = [p.module for p in PROCESSES if p.name.startswith("GINN_")]


@pytest.mark.parametrize("module", GENE_MODULES)  # pipeline order: each starts from the previous outputs
def test_module_script_runs_and_matches_ginn_run(module, tmp_path, monkeypatch):
    call = run_before(module)
    _run_task_as_ginn_run(call, tmp_path, monkeypatch)
    adopt_task_outputs(call, tmp_path)  # later stages' contract tests start from these outputs


def _run_task_as_ginn_run(call, task: Path, monkeypatch) -> dict:
    """Stage a `ginn run` call's inputs in a task folder as Nextflow would, check the module's script calls ginn
    as `ginn run` does, run it and check it writes what it declares; returns the script's context."""
    process, module = call.process, call.module
    staged = {}
    for declaration in process.inputs:
        for element in declaration:
            if element.kind != "path":
                continue
            if element.stage_as:  # the report: the run folder layout
                sources = sorted(p for p in (tiny_run_dir() / element.name).glob("*") if not p.name.startswith("."))
            else:
                value = call.inputs.get(element.name)
                sources = [] if value is None else [Path(v) for v in (value if isinstance(value, list) else [value])]
            names = stage_files(sources, task, element.stage_as)
            many = element.stage_as is not None or isinstance(call.inputs.get(element.name), list)
            staged[element.name] = names if many or not names else names[0]
    ctx = {"params": dict(call.params), "meta": dict(call.meta), "task": {"cpus": 1}, **staged}
    script = render_script(process, ctx)

    monkeypatch.chdir(task)
    as_run = argv(process, call.params, call.meta, {k: (v or None) for k, v in staged.items()})
    from_task = {process.flag(arg).python_name for arg in process.arguments if arg.source == "task"}  # task.cpus
    in_task = {k: v for k, v in parsed(ginn_argv(script)).items() if k not in from_task}
    assert in_task == {k: v for k, v in parsed(as_run).items() if k not in from_task}, \
        f"{module}: the module and `ginn run` call ginn differently"
    result = run_script(script, task)
    assert result.returncode == 0, f"{module} failed:\n{script}\n{result.stderr[-3000:]}"
    declared_outputs(process, ctx, task)
    return ctx


@pytest.mark.parametrize("kind", ["pfile", "bgen"])
def test_qc_module_reads_dosage_input_and_writes_pgen(kind, tmp_path, monkeypatch):
    """QC of a .pgen or BGEN cohort: the script passes --pfile (the staged .pgen's prefix) or --bgen and
    --sample as `ginn run` does, and writes the .pgen emit (dosages kept) but not the .bed one."""
    params = TINY | {"simulate": False, "pheno": "pheno.tsv", "min_info": 0.3 if kind == "bgen" else 0.0,
                     **dosage_cohort(kind)}
    call = next(c for c in plan(params, tmp_path / "run") if c.module == "qc")
    assert [p.suffix for p in call.outputs()[:3]] == [".pgen", ".pvar", ".psam"]
    words = call.argv
    assert (words[words.index("--bgen"):words.index("--bgen") + 4] == ["--bgen", params["bgen"], "--sample",
                                                                       params["sample"]] if kind == "bgen"
            else words[words.index("--pfile") + 1] == params["pfile"])
    assert "--bfile" not in words and words[words.index("--min-info") + 1] == str(params["min_info"])
    task = tmp_path / "task"
    task.mkdir()
    _run_task_as_ginn_run(call, task, monkeypatch)
    assert genotype_input(pfile=task / "imputed.passed").open().has_dosages


# A tiny imaging cohort: coarse grids, a light network, few epochs; enough for every output to appear.
BGS_TINY = TINY | {"bgs_n_subjects": 120, "bgs_n_snps": 3, "bgs_sim_voxel_size": 8.0, "bgs_voxel_size": 8.0,
                   "bgs_arch": "sfcn-lite", "bgs_epochs": 2, "bgs_batch_size": 16, "bgs_patience": 2,
                   "bgs_saliency_max_subjects": 2, "bgs_saliency_samples": 2, "bgs_idp_methods": "logistic",
                   "bgs_regions": "superiorfrontal_L,lateraloccipital_R",
                   "bgs_test_fraction": 0.4}  # the association model needs more scored subjects than covariates


def test_bgs_module_scripts_run_in_workflow_order(tmp_path):
    """Each brain-workflow module's script, with inputs staged as workflows/brain_genotype_scores.nf wires
    them, runs with the real `ginn bgs` and writes every output it declares."""
    cohort = tmp_path / "bgs_simulate" / "bgs.cohort"
    from_cohort = {
        "subjects": lambda: [cohort / "subjects.tsv"], "images": lambda: sorted((cohort / "images").iterdir()),
        "bed": lambda: [cohort / "genotypes.bed"], "bim": lambda: [cohort / "genotypes.bim"],
        "fam": lambda: [cohort / "genotypes.fam"], "cognition": lambda: [cohort / "cognition.tsv"],
        "confounders": lambda: [cohort / "confounders.tsv"], "truth": lambda: [cohort / "truth.tsv"],
        "idp": lambda: [],
    }
    produced: dict[str, list[Path]] = {}
    for process in (p for p in PROCESSES if p.name.startswith("BGS_")):
        task = tmp_path / process.module
        task.mkdir()
        ctx = {"params": dict(BGS_TINY), "meta": {"id": "bgs"}, "task": {"cpus": 1}, "method": "logistic"}
        for declaration in process.inputs:
            for element in declaration:
                if element.kind != "path":
                    continue
                sources = from_cohort[element.name]() if element.name in from_cohort else produced[element.name]
                names = stage_files(sources, task, element.stage_as)
                ctx[element.name] = names if (element.stage_as or len(names) != 1) else names[0]
        script = render_script(process, ctx)
        assert ginn_argv(script)[0] == "bgs", f"{process.module}: the script must be one `ginn bgs` call"
        result = run_script(script, task)
        assert result.returncode == 0, f"{process.module} failed:\n{script}\n{result.stderr[-3000:]}"
        for emit, files in declared_outputs(process, ctx, task).items():  # CNN and IDP tables join
            produced.setdefault(emit, []).extend(files)
    results = (tmp_path / "bgs_results" / "bgs.results.tsv").read_text()
    assert "cnn" in results and "idp" in results


def test_script_evaluator_rejects_what_it_cannot_evaluate():
    with pytest.raises(AssertionError, match="unsupported"):
        interpolate("ginn qc ${a + 1}", {"a": 1})
    with pytest.raises(AssertionError, match="unsupported"):
        interpolate("ginn qc ${bed.name}", {"bed": "x.bed"})


# ---- params ---------------------------------------------------------------------------------------------

def test_schema_and_ginn_run_have_every_param_with_its_default():
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    props = {name: prop for group in schema["$defs"].values() for name, prop in group["properties"].items()}
    # --threads is the process's CPU share, not a run parameter: each Nextflow task passes its task.cpus
    assert set(props) == {p.name for p in PARAMS} == {p.name for p in run_command.params} - {"config", "threads"}
    for param in PARAMS:
        assert props[param.name].get("default") == param.default
        assert props[param.name]["type"] == param.type
        assert props[param.name].get("enum") == (list(param.choices) if param.choices else None)


def test_schema_conditionals_and_bounds():
    """The run needs a cohort (one genotype input + pheno unless simulate); counts have minimums; devices are
    checked."""
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    defaults = {p.name: p.default for p in PARAMS if p.default is not None}

    def errors(**values):
        return [e.message for e in jsonschema.Draft202012Validator(schema).iter_errors(defaults | values)]

    assert any("pheno" in e for e in errors())
    assert errors(bfile="cohort", pheno="pheno.tsv") == []
    assert errors(simulate=True) == []
    assert errors(simulate=True, members=0) and errors(simulate=True, permutation_chunks=0)
    assert errors(simulate=True, pairtest_folds=1)
    assert errors(simulate=True, device="gpu") and errors(simulate=True, device="cuda:1") == []
    assert errors(simulate=True, repl_bfile="r") and errors(simulate=True, repl_bfile="r", repl_pheno="p") == []
    # one genotype input per cohort, of any format; a .sample only with a BGEN; INFO only from a BGEN
    assert errors(pfile="cohort", pheno="p") == [] and errors(bgen="c.bgen", sample="c.sample", pheno="p") == []
    assert errors(bfile="cohort", pfile="cohort", pheno="p") and errors(pheno="p")
    assert errors(pfile="cohort", sample="c.sample", pheno="p") and errors(simulate=True, bfile="cohort")
    assert errors(pfile="cohort", pheno="p", min_info=0.4) and errors(bgen="c.bgen", pheno="p", min_info=0.4) == []
    assert errors(simulate=True, repl_pfile="r", repl_pheno="p") == []
    assert errors(simulate=True, repl_bfile="r", repl_bgen="r.bgen", repl_pheno="p")
    assert errors(simulate=True, repl_bgen="r.bgen", repl_sample="r.sample", repl_pheno="p") == []
    assert errors(simulate=True, repl_pfile="r", repl_sample="r.sample", repl_pheno="p")


@pytest.mark.parametrize("prefix", ["", "repl_"])
def test_genotype_params_are_the_stages_genotype_flags(prefix):
    """bfile/pfile/bgen/sample (and repl_...) take the stage flags' type, default and help: written once."""
    for flag in GENOTYPES:
        param = PARAM_BY_NAME[prefix + flag.python_name]
        assert (param.type, param.default) == (flag.schema_type, flag.default)
        assert param.help.endswith(flag.help)
    assert PARAM_BY_NAME["min_info"].default == STAGES["qc"].flag("min-info").default


@pytest.mark.parametrize("params_file", ["conf/test.config", "conf/quickstart.yaml"])
def test_profile_and_quickstart_params_are_valid(params_file, tmp_path):
    path = REPO / params_file
    if path.suffix == ".config":
        block = re.search(r"^params \{\n(.*?)^\}", path.read_text(), re.M | re.S).group(1)
        values = {name: yaml.safe_load(value.replace("'", '"'))
                  for name, value in re.findall(r"^\s*(\w+)\s*=\s*(.+?)\s*$", block, re.M)}
    else:
        values = yaml.safe_load(path.read_text())
    as_yaml = tmp_path / "params.yaml"
    as_yaml.write_text(yaml.safe_dump(values))
    loaded = load_params(as_yaml, {})
    assert {k: loaded[k] for k in values} == values


def test_tiny_params_are_valid():
    assert set(TINY) == {p.name for p in PARAMS}
