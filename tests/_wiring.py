"""Wiring checks the Nextflow language server does not make, run beside it on the pipeline's files.

The server (with type checking on) finds undefined names, unknown emits, processes called with the wrong
number of arguments, unknown operators and config type errors. It does not know: which params exist outside
main.nf's params block, whether a ``withName``/``withLabel`` selector matches anything, how many elements
the tuples in a channel have, or whether the generated files still are what the contract renders. These
functions check exactly that; each returns a list of one-line problems (empty: clean).
"""

from __future__ import annotations

import re
from pathlib import Path

from ginn.contract.generate import stale_files
from ginn.contract.params import PARAMS

CONFIG_ONLY_PARAMS = {"container_tag"}  # read from VERSION by nextflow.config


# ---- generated files, params, selectors, GPU labels ------------------------------------------------------

def generated_problems(root: Path) -> list[str]:
    return [f"{rel}: differs from what the stage contract generates" for rel in stale_files(root)]


def _sources(root: Path) -> list[Path]:
    files = [root / "main.nf", root / "nextflow.config"]
    for folder in ("workflows", "modules", "conf"):
        files += sorted((root / folder).rglob("*.nf")) + sorted((root / folder).rglob("*.config"))
    return [f for f in files if f.exists() and "tests" not in f.relative_to(root).parts]


def params_problems(root: Path) -> list[str]:
    """Every ``params.x`` anywhere is a declared parameter."""
    known = {p.name for p in PARAMS} | CONFIG_ONLY_PARAMS
    problems = []
    for path in _sources(root):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if line.strip().startswith(("*", "/*")):  # block comments
                continue
            for name in re.findall(r"\bparams\.(\w+)", line.split("//")[0]):
                if name not in known:
                    problems.append(f"{path.relative_to(root)}:{number}: unknown parameter params.{name}")
    return problems


def _processes(root: Path) -> dict[str, str]:
    """Process name -> its module text."""
    found = {}
    for path in sorted((root / "modules").rglob("main.nf")):
        for name in re.findall(r"^process (\w+) \{", path.read_text(), re.M):
            found[name] = path.read_text()
    return found


def selector_problems(root: Path) -> list[str]:
    """Every ``withName``/``withLabel`` selector of the config matches a process or a label."""
    processes = _processes(root)
    labels = {label for text in processes.values() for label in re.findall(r"^\s*label '(\w+)'", text, re.M)}
    problems = []
    for path in _sources(root):
        if path.suffix != ".config":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for kind, pattern in re.findall(r"\b(withName|withLabel)\s*:\s*'([^']+)'", line):
                names = processes if kind == "withName" else labels
                if not any(re.fullmatch(pattern, name) for name in names):
                    problems.append(f"{path.relative_to(root)}:{number}: {kind} '{pattern}' matches nothing")
    return problems


def gpu_problems(root: Path) -> list[str]:
    """A process holds a GPU (label process_gpu, accelerator) exactly when it passes --device."""
    problems = []
    for name, text in _processes(root).items():
        labelled, device = "label 'process_gpu'" in text, "--device ${params." in text
        if labelled != device or ("accelerator" in text) != device:
            problems.append(f"{name}: GPU label/accelerator {labelled} but passes --device {device}")
    return problems


def published_problems(root: Path) -> list[str]:
    """Outputs are published into stage folders that exist (one per module)."""
    folders = {p.parent.name for p in (root / "modules" / "local").glob("*/main.nf")}
    problems = []
    for path in sorted((root / "workflows").glob("*.nf")):
        for stage in re.findall(r"\bpublished\('([^']+)'", path.read_text()):
            if stage not in folders:
                problems.append(f"{path.relative_to(root)}: publishes into '{stage}/', which is no stage")
    return problems


def publish_problems(root: Path) -> list[str]:
    """The entry workflow publishes exactly the outputs its output block declares."""
    text = (root / "main.nf").read_text()
    publish = re.search(r"^    publish:\n(.*?)^\}", text, re.M | re.S)
    output = re.search(r"^output \{\n(.*?)^\}", text, re.M | re.S)
    published = set(re.findall(r"^    (\w+) = ", publish.group(1), re.M)) if publish else set()
    declared = set(re.findall(r"^    (\w+) \{", output.group(1), re.M)) if output else set()
    return [f"main.nf: `{name}` is published but not in the output block" for name in sorted(published - declared)] + \
        [f"main.nf: output `{name}` is never published" for name in sorted(declared - published)]


def emit_problems(root: Path) -> list[str]:
    """``X.out.y`` names an emit that process or workflow X has."""
    emits = {name: set(re.findall(r"emit: (\w+)", text)) for name, text in _processes(root).items()}
    for path in sorted((root / "workflows").glob("*.nf")):
        for name, body in re.findall(r"^workflow (\w+) \{(.*?)^\}", path.read_text(), re.M | re.S):
            emit = body.split("\n    emit:\n", 1)
            emits[name] = set(re.findall(r"^    (\w+) = ", emit[1], re.M)) if len(emit) > 1 else set()
    problems = []
    for path in [root / "main.nf", *sorted((root / "workflows").glob("*.nf"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for name, emit in re.findall(r"\b([A-Z][A-Z_]+)\.out\.(\w+)", line):
                if name in emits and emit not in emits[name]:
                    problems.append(f"{path.relative_to(root)}:{number}: {name} has no output `{emit}`")
    return problems


# Channel factories and operators (Nextflow's reference) and the Groovy/Java methods the workflows use:
# a method outside these is a typo the server cannot see on an untyped channel.
KNOWN_METHODS = {
    "of", "value", "empty", "fromList", "fromPath", "fromFilePairs", "topic",
    "branch", "buffer", "collate", "collect", "collectFile", "combine", "concat", "count", "cross", "distinct",
    "dump", "filter", "first", "flatMap", "flatten", "groupTuple", "ifEmpty", "join", "last", "map", "max",
    "min", "mix", "multiMap", "reduce", "set", "splitCsv", "splitText", "subscribe", "sum", "take", "tap",
    "toList", "toSortedList", "transpose", "unique", "until", "view",
    "tokenize", "trim", "size", "intdiv", "startsWith", "sort", "findAll", "contains", "info", "name",
    "baseName", "text", "toSorted",
}


def method_problems(root: Path) -> list[str]:
    problems = []
    for path in [root / "main.nf", *sorted((root / "workflows").glob("*.nf"))]:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = re.sub(r"'[^']*'|\"[^\"]*\"", "''", line.split("//")[0])
            for method in re.findall(r"\.\s*(\w+)\s*[({]", code):
                if method not in KNOWN_METHODS and not method[0].isupper():
                    problems.append(f"{path.relative_to(root)}:{number}: unknown method or operator .{method}")
    return problems


# ---- tuple arity: how many elements the tuples of each channel have -------------------------------------

def _code_chars(text: str):
    """(index, character, bracket depth) of every character outside string literals."""
    depth, quote = 0, None
    for i, char in enumerate(text):
        if quote:
            quote = None if char == quote and text[i - 1] != "\\" else quote
            continue
        if char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        yield i, char, depth


def _split_top(text: str, separators: str) -> list[str]:
    """Split at separators outside brackets and strings."""
    parts, start = [], 0
    for i, char, depth in _code_chars(text):
        if depth == 0 and char in separators:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts]


def _matching(text: str, open_at: int) -> int:
    pairs = {"(": ")", "[": "]", "{": "}"}
    depth, quote = 0, None
    for i in range(open_at, len(text)):
        char = text[i]
        if quote:
            quote = None if char == quote and text[i - 1] != "\\" else quote
        elif char in "'\"":
            quote = char
        elif char in pairs:
            depth += 1
        elif char in pairs.values():
            depth -= 1
            if depth == 0:
                return i
    raise ValueError(f"unbalanced: {text[open_at:open_at + 60]}")


def _segments(expr: str) -> list[str]:
    """``a.b(x).c { y }`` -> ['a', 'b(x)', 'c { y }'] (top-level dots only)."""
    return [s for s in _split_top(expr, ".") if s]


def _closure(segment: str) -> tuple[list[str], str] | None:
    """The parameters and body of the closure a segment passes (``map { a, b -> body }``)."""
    if "{" not in segment:
        return None
    start = segment.index("{")
    inner = segment[start + 1:_matching(segment, start)]
    head, arrow, body = inner.partition("->")
    if not arrow:
        return [], inner
    return [p.strip() for p in head.split(",") if p.strip()], body.strip()


class Arity:
    """Infers the tuple size of channel expressions in one workflow file."""

    def __init__(self, outputs: dict[str, dict[str, int]], functions: dict[str, str]) -> None:
        self.outputs = outputs  # process -> emit -> tuple size
        self.functions = functions  # function name -> returned expression
        self.variables: dict[str, int | None] = {}
        self.problems: list[str] = []

    def value(self, expr: str) -> int | None:
        """Elements of a list/tuple value expression (None: not known)."""
        expr = expr.strip()
        terms = _split_top(expr, "+")
        if len(terms) > 1:
            sizes = [self.value(t) for t in terms]
            return None if None in sizes else sum(sizes)
        if expr.startswith("[") and _matching(expr, 0) == len(expr) - 1:
            inner = expr[1:-1].strip()
            if not inner or re.match(r"^\w+\s*:", inner):  # [] or a map literal
                return None if not inner else 1
            return len(_split_top(inner, ","))
        if m := re.fullmatch(r"(\w+)\((.*)\)", expr, re.S):
            if m.group(1) == "tuple":
                return len(_split_top(m.group(2), ","))
            if m.group(1) in self.functions:
                body = self.functions[m.group(1)]
                if m.group(1) == "withMeta":
                    rest = self.value(_split_top(m.group(2), ",")[1])
                    return None if rest is None else 1 + rest
                return self.value(body)
        return None

    def channel(self, expr: str, where: str) -> int | None:
        expr = expr.strip()
        if len(_split_top(expr, "?")) > 1:  # cond ? channel : channel
            _, _, branches = expr.partition("?")
            sides = [self.channel(b, where) for b in _split_top(branches, ":")]
            known = {s for s in sides if s is not None}
            return known.pop() if len(known) == 1 else None
        segments = _segments(expr)
        if not segments:
            return None
        size: int | None
        head = segments[0]
        if head in self.outputs and len(segments) > 2 and segments[1] == "out":
            size, rest = self.outputs[head].get(segments[2]), segments[3:]
        elif head == "channel" and len(segments) > 1:
            call, rest = segments[1], segments[2:]
            name, _, args = call.partition("(")
            args = args[:-1] if args.endswith(")") else args
            size = self.value(args) if name == "of" else 1 if name in ("value", "fromList") else None
            if name == "of" and size is None and args.strip().startswith("["):
                size = 1
        elif re.fullmatch(r"\w+", head):  # a variable (or a function's parameter: size unknown)
            size, rest = self.variables.get(head), segments[1:]
        elif m := re.fullmatch(r"(\w+)\((.*)\)", head, re.S):
            size = self.channel(self.functions[m.group(1)], where) if m.group(1) in self.functions else None
            rest = segments[1:]
        else:
            return None
        for segment in rest:
            size = self._operator(segment, size, where)
        return size

    def _operator(self, segment: str, size: int | None, where: str) -> int | None:
        name = re.match(r"\w+", segment).group(0)
        args, remaining = "", segment[len(name):].lstrip()
        if remaining.startswith("("):
            end = _matching(remaining, 0)
            args, remaining = remaining[1:end], remaining[end + 1:]
        closure = _closure(remaining)
        if name in ("filter", "unique", "groupTuple", "ifEmpty", "view"):
            return size
        if name == "mix":
            return size
        if name in ("join", "combine"):
            parts = _split_top(args, ",")
            other = self.channel(parts[0], where)
            by = any(p.replace(" ", "").startswith("by:") for p in parts[1:]) or name == "join"
            return None if size is None or other is None else size + other - (1 if by else 0)
        if name in ("map", "flatMap") and closure is not None:
            parameters, body = closure
            if len(parameters) > 1 and size is not None and len(parameters) != size:
                self.problems.append(f"{where}: `.{name}` closure takes {len(parameters)} elements "
                                     f"but the channel's tuples have {size}")
            last = _statements(body)[-1]
            if name == "map":
                return self.value(last)
            return self._flat_elements(last)
        if name == "toSortedList":
            return 1
        return None

    def _flat_elements(self, body: str) -> int | None:
        """Tuple size of the lists a flatMap closure returns (a list of tuples)."""
        for term in _split_top(body, "+"):
            if m := re.search(r"\.collect \{ \w+ -> (.*) \}$", term, re.S):
                return self.value(m.group(1))
            if term.startswith("[[") and _matching(term, 0) == len(term) - 1:
                return self.value(_split_top(term[1:-1], ",")[0])
        return None


def _statements(text: str) -> list[str]:
    """Top-level statements of a workflow body: lines joined while brackets are open or a chain continues."""
    lines = [line.split("//")[0].rstrip() for line in text.splitlines()]
    structure = re.compile(r"^(workflow \w+ \{|(\} )?else( if \(.*\))? \{|if \(.*\) \{|\}|main:|emit:|publish:)$")
    statements, current = [], ""
    for line in lines:
        stripped = line.strip()
        if not stripped or (structure.match(stripped) and not (current and _depth(current) > 0)):
            if current and stripped:
                statements.append(current)
                current = ""
            continue
        if current and (stripped.startswith((".", "?", ":", "+")) or _depth(current) > 0):
            current += "\n" + stripped
        else:
            if current:
                statements.append(current)
            current = stripped
    if current:
        statements.append(current)
    return statements


def _depth(text: str) -> int:
    depth = 0
    for _, _, depth in _code_chars(text):
        pass
    return depth


def _declared(text: str, section: str) -> list[str]:
    """The declaration lines of a module's input: or output: section."""
    block = re.search(rf"^    {section}:\n(.*?)\n\n", text, re.M | re.S).group(1)
    return [line.strip() for line in block.splitlines() if line.strip()]


def _size(declaration: str) -> int:
    return len(re.findall(r"\b(?:val|path)\(", declaration)) or 1


def arity_problems(root: Path) -> list[str]:
    """Each process gets channels whose tuples have as many elements as its inputs declare, and each
    closure destructures as many elements as the channel's tuples have."""
    modules = _processes(root)
    inputs = {name: [_size(d) for d in _declared(text, "input")] if "    input:\n" in text else []
              for name, text in modules.items()}
    outputs = {name: {re.search(r"emit: (\w+)", d).group(1): _size(d) for d in _declared(text, "output")}
               for name, text in modules.items()}
    problems = []
    for path in sorted((root / "workflows").glob("*.nf")):
        text, rel = path.read_text(), path.relative_to(root)
        functions = {m.group(1): _function_return(text, m.end()) for m in re.finditer(r"^def (\w+)\([^)]*\) \{", text, re.M)}
        arity = Arity(outputs, functions)
        body = text[text.index("\nworkflow "):]
        for statement in _statements(body):
            where = f"{rel}: {statement.splitlines()[0][:70]}"
            if m := re.fullmatch(r"(?:def )?(\w+) = (.+)", statement, re.S):
                name, expr = m.groups()
                if not name[0].isupper():
                    arity.variables[name] = arity.channel(expr, where)
                    continue
            if m := re.fullmatch(r"([A-Z][A-Z_]+)\((.*)\)", statement, re.S):
                process, args = m.groups()
                if process not in inputs:
                    continue
                given = _split_top(args, ",") if args.strip() else []
                for position, (expected, arg) in enumerate(zip(inputs[process], given)):
                    size = arity.channel(arg, where) if not arg.startswith("optionalFile") else None
                    if size is not None and size != expected:
                        problems.append(f"{where}: argument {position + 1} of {process} has {size}-element "
                                        f"tuples, the process takes {expected}")
        problems += arity.problems
    return problems


def _function_return(text: str, start: int) -> str:
    """The expression a helper function returns (its last return statement)."""
    body = text[start:_matching(text, start - 1)]
    returns = re.findall(r"return (.+?)(?=\n\s*\}|\n\s*return|\Z)", body, re.S)
    return returns[-1].strip() if returns else ""


def wiring_problems(root: Path) -> list[str]:
    return (generated_problems(root) + params_problems(root) + selector_problems(root) + gpu_problems(root)
            + published_problems(root) + publish_problems(root) + emit_problems(root) + method_problems(root)
            + arity_problems(root))
