"""Write (or check) every file derived from the stage contract: ``python -m ginn.contract [--check]``.

Whole files: each ``modules/local/<module>/main.nf`` and ``nextflow_schema.json``. Blocks inside hand-written
files, between ``// >>> generated: NAME`` and ``// <<< generated: NAME``: the typed params block of
``main.nf``, the params block of ``nextflow.config`` and the output block of ``main.nf``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from .render import generated_files, render_config_params, render_params_block

BLOCKS = {  # file -> {block name: text}
    "main.nf": {"params": render_params_block},
    "nextflow.config": {"params": render_config_params},
}


def _replace_block(text: str, name: str, body: str, path: str) -> str:
    pattern = re.compile(rf"(// >>> generated: {name}[^\n]*\n).*?(// <<< generated: {name})", re.S)
    if not pattern.search(text):
        raise SystemExit(f"{path}: no `// >>> generated: {name}` ... `// <<< generated: {name}` markers")
    return pattern.sub(lambda m: m.group(1) + body + "\n" + m.group(2), text)


def expected_files(root: Path) -> dict[str, str]:
    """Repository-relative path -> the text it must have."""
    files = generated_files()
    for rel, blocks in BLOCKS.items():
        text = (root / rel).read_text()
        for name, render in blocks.items():
            text = _replace_block(text, name, render(), rel)
        files[rel] = text
    return files


def stale_files(root: Path) -> list[str]:
    return sorted(rel for rel, text in expected_files(root).items()
                  if not (root / rel).exists() or (root / rel).read_text() != text)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    root = Path(args[args.index("--root") + 1]) if "--root" in args else Path.cwd()
    if "--check" in args:
        stale = stale_files(root)
        for rel in stale:
            print(f"ginn.contract: {rel} is not what the contract generates (run python -m ginn.contract)",
                  file=sys.stderr)
        return 1 if stale else 0
    for rel, text in expected_files(root).items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"ginn.contract: wrote {rel}", file=sys.stderr)
    return 0
