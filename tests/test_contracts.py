"""Contract tests between the Nextflow modules, `ginn run` and the ginn stage commands.

No Nextflow here, so each module's script block is rendered the way Nextflow would (params, meta and
staged inputs substituted into the GString; module scripts keep to `${a.b}` references and
`def x = cond ? "..." : ''` lines, which is all this renderer supports, and it fails on anything else)
and run with bash in a temporary task folder with the real `ginn`. Every declared output must appear, the
argv must parse to the same values as the one `ginn run` builds (ginn.run.STAGE_ARGV); the outputs then
serve as the tiny `ginn run`'s outputs of that stage. The brain workflow's modules run the same way, in
workflow order, on a tiny synthetic imaging cohort. The params of nextflow.config, nextflow_schema.json
and `ginn run` must be the same set with the same defaults.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
import yaml

from _pipeline_data import TINY, adopt_task_outputs, run_before, tiny_plan, tiny_run_dir
from ginn import __version__
from ginn.cli import cli
from ginn.run import PARAMS, STAGE_ARGV, load_params, run_command, stage_argv

REPO = Path(__file__).resolve().parents[1]
MODULES = REPO / "modules" / "local"
GINN_BIN = Path(sys.executable).parent


# ---- a module parser and a renderer for the subset of Groovy the module scripts use ----------------

@dataclass
class Module:
    name: str
    process: str
    inputs: list[tuple[str, str, str | None]]  # (val|path, name, stageAs)
    outputs: list[tuple[list[str], str]]  # (path patterns, emit name)
    blocks: dict[str, tuple[list[str], str]] = field(default_factory=dict)  # script/stub: (def lines, GString)


def _section(lines: list[str], start: str, stops: tuple[str, ...]) -> list[str]:
    begin = lines.index(start) + 1
    end = next(i for i in range(begin, len(lines)) if lines[i].strip() in stops)
    return [line for line in lines[begin:end] if line.strip()]


def _string_block(lines: list[str], start: str) -> tuple[list[str], str]:
    begin = lines.index(start) + 1
    quote = next(i for i in range(begin, len(lines)) if lines[i].strip() == '"""')
    close = next(i for i in range(quote + 1, len(lines)) if lines[i].strip() == '"""')
    return [line.strip() for line in lines[begin:quote] if line.strip()], "\n".join(lines[quote + 1:close])


def parse_module(path: Path) -> Module:
    text = path.read_text()
    lines = text.splitlines()
    process = re.search(r"^process (\w+) \{", text, re.M).group(1)
    declared = " ".join(_section(lines, "    input:", ("output:",)))
    inputs = [(kind, name, stage or None) for kind, name, stage in
              re.findall(r"\b(val|path)\((\w+)(?:,\s*stageAs:\s*'([^']+)')?\)", declared)]
    inputs += [("val", name, None) for name in re.findall(r"\beach (\w+)", declared)]
    outputs = []
    for line in _section(lines, "    output:", ("script:",)):
        patterns = re.findall(r'path\(?\s*"([^"]+)"', line)
        emit = re.search(r"emit:\s*(\w+)", line)
        assert patterns and emit, f"{path}: output line not understood: {line.strip()}"
        outputs.append((patterns, emit.group(1)))
    blocks = {kind: _string_block(lines, f"    {kind}:") for kind in ("script", "stub")}
    return Module(path.parent.name, process, inputs, outputs, blocks)


TOKEN = re.compile(r"""\s*(?:(?P<str>'[^']*'|"(?:[^"\\]|\\.)*")|(?P<op>\?:|==|!=|&&|\?|:)|(?P<ref>[A-Za-z_][\w.]*))""")


def _groovy_str(value) -> str:
    """A value interpolated into a GString: lists of paths are blank-separated, as Nextflow does."""
    if isinstance(value, list):
        return " ".join(_groovy_str(v) for v in value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _resolve(ref: str, ctx: dict):
    head, *attrs = ref.split(".")
    assert head in ctx, f"`{head}` is not defined in the module's context"
    value = ctx[head]
    for attr in attrs:
        if isinstance(value, dict):
            value = value.get(attr)
        elif attr == "baseName":
            value = Path(value).name.rsplit(".", 1)[0]
        elif attr == "name":
            value = Path(value).name
        else:
            raise AssertionError(f"the renderer does not support `.{attr}` in `{ref}`")
    return value


def interpolate(template: str, ctx: dict) -> str:
    """A Groovy GString: ${a.b} references substituted, \\$ and \\\\ unescaped."""
    def substitute(match: re.Match) -> str:
        expr = match.group(1)
        assert re.fullmatch(r"[A-Za-z_][\w.]*", expr), f"unsupported expression ${{{expr}}}"
        return _groovy_str(_resolve(expr, ctx))

    out = re.sub(r"(?<!\\)\$\{([^}]*)\}", substitute, template)
    return out.replace("\\$", "$").replace("\\\\", "\\")


def evaluate(expr: str, ctx: dict):
    """`a ?: b`, `cond ? x : y`, `a && b`, `a == b`, strings and references: what the modules' def lines use."""
    tokens = [m for m in TOKEN.finditer(expr)]
    assert "".join(m.group(0) for m in tokens).strip() == expr.strip(), f"unsupported expression: {expr}"
    items = [(m.lastgroup, m.group(m.lastgroup)) for m in tokens]
    position = 0

    def take(kind=None, text=None):
        nonlocal position
        token = items[position]
        assert (kind is None or token[0] == kind) and (text is None or token[1] == text), f"bad expression: {expr}"
        position += 1
        return token

    def peek(text):
        return position < len(items) and items[position][1] == text

    def primary():
        kind, text = take()
        if kind == "str":
            return interpolate(text[1:-1], ctx) if text[0] == '"' else text[1:-1]
        assert kind == "ref", f"bad expression: {expr}"
        return _resolve(text, ctx)

    def comparison():
        left = primary()
        for op in ("==", "!="):
            if peek(op):
                take(text=op)
                right = primary()
                return (left == right) if op == "==" else (left != right)
        return left

    def conjunction():
        value = comparison()
        while peek("&&"):
            take(text="&&")
            right = comparison()  # Groovy truth: empty strings and lists are false
            value = bool(value) and bool(right)
        return value

    def expression():
        value = conjunction()
        if peek("?:"):
            take(text="?:")
            fallback = expression()
            return value if value else fallback
        if peek("?"):
            take(text="?")
            yes = expression()
            take(text=":")
            no = expression()
            return yes if value else no
        return value

    result = expression()
    assert position == len(items), f"trailing tokens in: {expr}"
    return result


# One flag per staged file of a list input: `(x instanceof List ? x : [x]).collect { f -> "--flag ${f}" }.join(' ')`
REPEAT_FLAG = re.compile(r"""\((\w+) instanceof List \? \1 : \[\1\]\)\.collect \{ (\w+) -> "([^"]*)" \}\.join\(' '\)""")


def render(module: Module, block: str, ctx: dict) -> str:
    defs, template = module.blocks[block]
    ctx = dict(ctx)
    for line in defs:
        match = re.fullmatch(r"def (\w+) = (.+)", line)
        assert match, f"{module.name}: only `def name = expression` lines may precede the script: {line}"
        repeat = REPEAT_FLAG.fullmatch(match.group(2))
        if repeat:
            files, item, each = repeat.groups()
            values = ctx[files] if isinstance(ctx[files], list) else [ctx[files]]
            ctx[match.group(1)] = " ".join(interpolate(each, ctx | {item: v}) for v in values)
        else:
            ctx[match.group(1)] = evaluate(match.group(2), ctx)
    return textwrap.dedent(interpolate(template, ctx)).strip("\n") + "\n"


def ginn_argv(script: str) -> list[str]:
    """The ginn command line of a rendered script (its first command, continuation lines joined)."""
    command = script.replace("\\\n", " ").split("\n")[0]
    argv = shlex.split(command)
    assert argv[0] == "ginn", f"the script's command is not a ginn call: {command}"
    return argv[1:]


def parsed(argv: list[str]) -> dict:
    """The values click parses from an argv: flag order and number spelling do not matter."""
    command = cli.get_command(click.Context(cli), argv[0])
    assert command is not None, f"`ginn {argv[0]}` does not exist in this build"
    with command.make_context(f"ginn {argv[0]}", list(argv[1:])) as ctx:
        return dict(ctx.params)


# ---- staging a module's inputs from the tiny `ginn run` -----------------------------------------------

def stage(sources: list[Path], task: Path, stage_as: str | None) -> list[str]:
    """Symlink files into the task folder (under ``stage_as``, e.g. 'images/*', if given) as Nextflow
    stages them; return their names relative to the task."""
    names = []
    for source in sources:
        target = task / (stage_as.replace("*", source.name) if stage_as else source.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.symlink_to(source.resolve())
        names.append(str(target.relative_to(task)))
    return names


def stage_inputs(module: Module, call, task: Path) -> tuple[dict, dict]:
    """Symlink the call's inputs into the task folder as Nextflow would; return (context, builder inputs)."""
    staged, builder = {}, {}
    for kind, name, stage_as in module.inputs:
        if kind == "val":
            continue
        if stage_as is not None:  # the report: inputs staged in the run folder layout
            sources = sorted(p for p in (tiny_run_dir() / name).glob("*") if not p.name.startswith("."))
        elif name in ("bim", "fam"):
            sources = [Path(str(call.inputs["bed"])[: -len(".bed")] + f".{name}")]
        else:
            value = call.inputs.get(name)
            sources = [] if value is None else [Path(v) for v in value] if isinstance(value, list) else [Path(value)]
        names = stage(sources, task, stage_as)
        is_list = stage_as is not None or isinstance(call.inputs.get(name), list)
        staged[name] = names if is_list or not names else names[0]
        builder[name] = staged[name] if names else None
    if "run" in call.inputs:
        builder["run"] = "run"
    return staged, builder


def task_context(module: Module, call, staged: dict) -> dict:
    return {"params": dict(call.params), "meta": dict(call.meta), **staged,
            "task": {"process": module.process, "ext": {"args": None}}}


def run_script(script: str, task: Path) -> subprocess.CompletedProcess:
    (task / ".command.sh").write_text(script)
    env = os.environ | {"PATH": f"{GINN_BIN}{os.pathsep}{os.environ['PATH']}"}
    return subprocess.run(["bash", "-ue", ".command.sh"], cwd=task, env=env, capture_output=True, text=True,
                          timeout=300)


def declared_outputs(module: Module, ctx: dict, task: Path) -> dict[str, list[Path]]:
    found = {}
    for patterns, emit in module.outputs:
        for pattern in patterns:
            matches = sorted(task.glob(interpolate(pattern, ctx)))
            assert matches, f"{module.name}: output `{pattern}` (emit {emit}) was not written"
            found.setdefault(emit, []).extend(matches)
    return found


GENE_MODULES = list(STAGE_ARGV)  # pipeline order: each test starts from the previous ones' outputs
ALL_MODULES = sorted(p.parent.name for p in MODULES.glob("*/main.nf"))
BGS_MODULES = [name for name in ALL_MODULES if name.startswith("bgs_")]


def test_every_module_folder_has_a_contract():
    folders = {p.parent.name for p in MODULES.glob("*/main.nf") if not p.parent.name.startswith("bgs_")}
    assert folders == set(GENE_MODULES)
    for name in GENE_MODULES:
        assert (MODULES / name / "tests" / "main.nf.test").exists(), f"{name}: nf-test file missing"


@pytest.mark.parametrize("name", GENE_MODULES)
def test_module_script_runs_and_matches_ginn_run(name, tmp_path, monkeypatch):
    module = parse_module(MODULES / name / "main.nf")
    call = run_before(name)
    staged, builder = stage_inputs(module, call, tmp_path)
    ctx = task_context(module, call, staged)
    script = render(module, "script", ctx)

    monkeypatch.chdir(tmp_path)
    assert parsed(ginn_argv(script)) == parsed(stage_argv(name, call.params, call.meta, builder)), \
        f"{name}: the module and `ginn run` call ginn differently"
    result = run_script(script, tmp_path)
    assert result.returncode == 0, f"{name} failed:\n{script}\n{result.stderr[-3000:]}"
    declared_outputs(module, ctx, tmp_path)
    versions = yaml.safe_load((tmp_path / "versions.yml").read_text())
    assert versions == {module.process: {"ginn": __version__}}
    adopt_task_outputs(call, tmp_path)  # later stages' contract tests start from these outputs


@pytest.mark.parametrize("name", ALL_MODULES)
def test_module_stub_writes_declared_outputs(name, tmp_path):
    module = parse_module(MODULES / name / "main.nf")
    if name in STAGE_ARGV:
        call = next(c for c in tiny_plan() if c.module == name)
        params, meta = call.params, call.meta
    else:
        params, meta = TINY, {"id": "bgs"}
    values = {n: ([] if kind == "path" else "svm") for kind, n, _ in module.inputs if n != "meta"}
    ctx = {"params": dict(params), "meta": dict(meta), **values, "task": {"process": module.process, "ext": {}}}
    result = run_script(render(module, "stub", ctx), tmp_path)
    assert result.returncode == 0, result.stderr
    declared_outputs(module, ctx, tmp_path)
    assert (tmp_path / "versions.yml").exists()


# A tiny imaging cohort: coarse grids, a light network, few epochs; enough for every output to appear.
BGS_TINY = TINY | {"bgs_n_subjects": 120, "bgs_n_snps": 3, "bgs_sim_voxel_size": 8.0, "bgs_voxel_size": 8.0,
                   "bgs_arch": "sfcn-lite", "bgs_epochs": 2, "bgs_batch_size": 16, "bgs_patience": 2,
                   "bgs_saliency_max_subjects": 2, "bgs_saliency_samples": 2, "bgs_idp_methods": "logistic",
                   "bgs_test_fraction": 0.4}  # the association model needs more scored subjects than covariates


def test_bgs_module_scripts_run_in_workflow_order(tmp_path):
    """Each brain-workflow module's script, rendered with staged inputs as the workflow wires them, runs
    with the real `ginn bgs` and writes every output it declares."""
    cohort = tmp_path / "bgs_simulate" / "bgs.cohort"
    staged_from = {  # input name -> files, as workflows/brain_genotype_scores.nf passes them
        "subjects": lambda: [cohort / "subjects.tsv"], "images": lambda: sorted((cohort / "images").iterdir()),
        "bed": lambda: [cohort / "genotypes.bed"], "bim": lambda: [cohort / "genotypes.bim"],
        "fam": lambda: [cohort / "genotypes.fam"], "cognition": lambda: [cohort / "cognition.tsv"],
        "confounders": lambda: [cohort / "confounders.tsv"], "truth": lambda: [cohort / "truth.tsv"],
        "idp": lambda: [],
    }
    produced: dict[str, list[Path]] = {}
    for name in ["bgs_simulate", "bgs_prepare", "bgs_train", "bgs_score", "bgs_saliency", "bgs_idp",
                 "bgs_associate", "bgs_results"]:
        module = parse_module(MODULES / name / "main.nf")
        task = tmp_path / name
        task.mkdir()
        ctx = {"params": dict(BGS_TINY), "meta": {"id": "bgs"}, "method": "logistic",
               "task": {"process": module.process, "ext": {"args": None}}}
        for kind, input_name, stage_as in module.inputs:
            if kind == "val":
                continue
            sources = staged_from[input_name]() if input_name in staged_from else produced[input_name]
            names = stage(sources, task, stage_as)
            ctx[input_name] = names if (stage_as or len(names) != 1) else names[0]
        script = render(module, "script", ctx)
        assert ginn_argv(script)[0] == "bgs", f"{name}: the script must be one `ginn bgs` call"
        result = run_script(script, task)
        assert result.returncode == 0, f"{name} failed:\n{script}\n{result.stderr[-3000:]}"
        for emit, files in declared_outputs(module, ctx, task).items():  # CNN and IDP tables join
            produced.setdefault(emit, []).extend(files)
        assert yaml.safe_load((task / "versions.yml").read_text()) == {module.process: {"ginn": __version__}}
    results = (tmp_path / "bgs_results" / "bgs.results.tsv").read_text()
    assert "cnn" in results and "idp" in results


def test_renderer_rejects_what_it_cannot_render():
    module = Module("x", "X", [], [], {"script": (["def a = b.c()"], "ginn qc")})
    with pytest.raises(AssertionError):
        render(module, "script", {"b": {}})
    with pytest.raises(AssertionError, match="unsupported expression"):
        interpolate("ginn qc ${a + 1}", {"a": 1})


# ---- params: nextflow.config == nextflow_schema.json == ginn run ----------------------------------------

def config_params(path: Path) -> dict:
    """The `params { name = value }` block of a Nextflow config (literal values only)."""
    text = path.read_text()
    block = re.search(r"^params \{\n(.*?)^\}", text, re.M | re.S).group(1)
    values = {}
    for line in block.splitlines():
        line = line.split("//")[0].strip()
        if not line:
            continue
        name, value = (part.strip() for part in line.split("=", 1))
        values[name] = _groovy_literal(value)
    return values


def _groovy_literal(text: str):
    if text in ("null", "true", "false"):
        return {"null": None, "true": True, "false": False}[text]
    if text[0] in "'\"":
        return text[1:-1]
    return int(text) if re.fullmatch(r"-?\d+", text) else float(text)


def schema_params() -> dict:
    schema = json.loads((REPO / "nextflow_schema.json").read_text())
    assert {ref["$ref"].split("/")[-1] for ref in schema["allOf"]} == set(schema["$defs"])
    return {name: prop for group in schema["$defs"].values() for name, prop in group["properties"].items()}


def test_params_agree_between_config_schema_and_ginn_run():
    config, schema = config_params(REPO / "nextflow.config"), schema_params()
    # --threads is the process's CPU share, not a run parameter: each Nextflow task passes its task.cpus
    run_flags = {p.name for p in run_command.params} - {"config", "threads"}
    assert set(config) == set(schema) == run_flags == {p.name for p in PARAMS}
    json_types = {"string": str, "integer": int, "number": (int, float), "boolean": bool}
    for param in PARAMS:
        assert config[param.name] == param.default, f"{param.name}: nextflow.config default differs"
        assert schema[param.name].get("default") == param.default, f"{param.name}: schema default differs"
        assert schema[param.name]["type"] == param.type
        assert schema[param.name].get("enum") == (list(param.choices) if param.choices else None)
        assert schema[param.name]["description"]
        if param.default is not None:
            assert isinstance(param.default, json_types[param.type])


@pytest.mark.parametrize("params_file", ["conf/test.config", "conf/quickstart.yaml"])
def test_profile_and_quickstart_params_are_valid(params_file, tmp_path):
    path = REPO / params_file
    values = config_params(path) if path.suffix == ".config" else yaml.safe_load(path.read_text())
    as_yaml = tmp_path / "params.yaml"
    as_yaml.write_text(yaml.safe_dump(values))
    loaded = load_params(as_yaml, {})
    assert {k: loaded[k] for k in values} == values


def test_tiny_params_are_valid():
    assert set(TINY) == {p.name for p in PARAMS}
