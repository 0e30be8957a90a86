"""Encoder running an exported model with onnxruntime + tokenizers: no torch, no transformers.

Make the folder with ``semantic-catalog export-onnx`` (see :mod:`semantic_catalog.engine.onnx_export`).
onnxruntime and tokenizers are imported when the model is first used, not when this module is imported.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.engine.encoders.base import Encoder, normalise
from semantic_catalog.engine.errors import ConfigurationError

CONFIG_FILE = "semantic_catalog_onnx.json"
TOKENIZER_FILE = "tokenizer.json"
MODEL_FILE = "model.onnx"
INT8_MODEL_FILE = "model.int8.onnx"


class OnnxEncoder(Encoder):
    """A sentence-transformers model exported to ONNX.

    Options: ``model_dir`` (the export folder), ``name`` (default: the name recorded at export, so vectors made
    with the torch model and with its export share a collection), ``batch_size``, ``num_threads`` (onnxruntime
    intra-op threads; None lets onnxruntime decide), ``query_prompt`` / ``document_prompt``, ``file`` (the
    .onnx file inside ``model_dir``; default the one the export config names, e.g. ``model.int8.onnx``),
    ``query_file`` (the file for search queries; default ``file``). A web server can encode documents
    with ``model.onnx`` (the same vectors as torch) and queries with the faster ``model.int8.onnx``:
    one query's vector moves a little, the stored vectors do not (README, Serving searches fast).
    """

    def __init__(
        self,
        model_dir: str | Path,
        name: str | None = None,
        batch_size: int = 64,
        num_threads: int | None = None,
        query_prompt: str = "",
        document_prompt: str = "",
        file: str | None = None,
        query_file: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError("OnnxEncoder batch_size must be at least 1.")
        if not model_dir:
            raise ConfigurationError("OnnxEncoder needs OPTIONS 'model_dir': a folder made by export-onnx.")
        self.model_dir = Path(model_dir)
        self.config = _read_config(self.model_dir)
        self.name = name or str(self.config.get("name") or self.model_dir.name)
        self.file = file or str(self.config.get("file") or MODEL_FILE)
        self.query_file = query_file or self.file
        self.batch_size = batch_size
        self.num_threads = num_threads
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.pooling = str(self.config.get("pooling", "mean"))
        if self.pooling not in ("mean", "cls"):
            raise ConfigurationError(f"{self.model_dir / CONFIG_FILE}: unsupported pooling {self.pooling!r}.")
        self.max_length = int(self.config.get("max_length", 256))
        self.lowercase = bool(self.config.get("lowercase", False))
        try:
            self._dimension = int(self.config["dimension"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(f"{self.model_dir / CONFIG_FILE} has no valid 'dimension'.") from exc
        self._runtimes: dict[str, tuple[Any, Any, list[str]]] = {}
        self._lock = threading.Lock()

    @property
    def dimension(self) -> int:
        return self._dimension

    def runtime_of(self, file: str) -> tuple[Any, Any, list[str]]:
        """(onnxruntime session, tokenizer, session input names) of one .onnx file of the folder,
        created once, thread-safe."""
        runtime = self._runtimes.get(file)
        if runtime is None:
            with self._lock:
                runtime = self._runtimes.get(file)
                if runtime is None:
                    runtime = self._runtimes[file] = self._load(file)
        return runtime

    def _load(self, file: str) -> tuple[Any, Any, list[str]]:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError as exc:
            raise ConfigurationError(
                f"OnnxEncoder needs onnxruntime and tokenizers ({exc.name} is missing): "
                "pip install 'django-semantic-catalog[onnx]'."
            ) from exc
        model_path = self.model_dir / file
        tokenizer_path = self.model_dir / TOKENIZER_FILE
        for path in (model_path, tokenizer_path):
            if not path.is_file():
                raise ConfigurationError(f"OnnxEncoder: {path} is missing; re-run export-onnx into {self.model_dir}.")
        tokenizer = Tokenizer.from_file(str(tokenizer_path))
        tokenizer.no_padding()  # _embed pads each batch itself, only as far as its longest text
        tokenizer.enable_truncation(max_length=self.max_length)
        options = onnxruntime.SessionOptions()
        # Idle worker threads sleep instead of spinning: spinning burnt the CPU that a web server's other
        # requests and the vector store need, and made two threads per query slower than one.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        if self.num_threads:
            options.intra_op_num_threads = self.num_threads
            options.inter_op_num_threads = 1
        try:
            session = onnxruntime.InferenceSession(
                str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph types
            raise ConfigurationError(f"OnnxEncoder cannot load {model_path}: {exc}") from exc
        return session, tokenizer, [i.name for i in session.get_inputs()]

    def text_lengths(self, texts: Sequence[str]) -> list[int]:
        """Token counts (truncated as encoding truncates), so the embed job batches like lengths together."""
        _, tokenizer, _ = self.runtime_of(self.file)
        prepared = [t.lower() for t in texts] if self.lowercase else list(texts)
        return [len(encoding.ids) for encoding in tokenizer.encode_batch(prepared)]

    def _encode(self, texts: list[str]) -> np.ndarray:
        if self.document_prompt:
            texts = [self.document_prompt + t for t in texts]
        return self._embed(texts)

    def encode_query(self, text: str) -> np.ndarray:
        return self.encode_queries([text])[0]

    def encode_queries(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        prompt = self.query_prompt or self.document_prompt  # no query prompt: encoded like documents
        prompted = [prompt + t for t in texts]
        if self.query_file == INT8_MODEL_FILE:
            # Dynamic quantization scales activations over the whole batch, so a query's int8 vector would
            # depend on the queries beside it (cosine down to 0.98); one per run gives encode_query's vector.
            return normalise(np.concatenate([self._embed([text], self.query_file) for text in prompted]))
        return normalise(self._embed(prompted, self.query_file))

    def _embed(self, texts: list[str], file: str | None = None) -> np.ndarray:
        """Pooled (not normalised) vectors, in the order of ``texts``, from ``file`` (default ``file``)."""
        session, tokenizer, input_names = self.runtime_of(file or self.file)
        if self.lowercase:
            texts = [t.lower() for t in texts]
        encodings = tokenizer.encode_batch(texts)
        # Sorting by token count keeps each batch's padding short; the results go back to their own rows.
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        pad_id = int(self.config.get("pad_id", 0))
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        for start in range(0, len(order), self.batch_size):
            rows = order[start : start + self.batch_size]
            width = max(1, max(len(encodings[i].ids) for i in rows))
            input_ids = np.full((len(rows), width), pad_id, dtype=np.int64)
            attention_mask = np.zeros((len(rows), width), dtype=np.int64)
            token_type_ids = np.zeros((len(rows), width), dtype=np.int64)
            for r, i in enumerate(rows):
                encoding = encodings[i]
                n = len(encoding.ids)
                input_ids[r, :n] = encoding.ids
                attention_mask[r, :n] = encoding.attention_mask
                token_type_ids[r, :n] = encoding.type_ids
            feeds = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": token_type_ids}
            hidden = session.run(["last_hidden_state"], {name: feeds[name] for name in input_names})[0]
            out[rows] = self._pool(hidden.astype(np.float32, copy=False), attention_mask)
        return out

    def _pool(self, hidden: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        if self.pooling == "cls":
            return hidden[:, 0]
        mask = attention_mask[:, :, None].astype(np.float32)
        return (hidden * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1e-9)


def _read_config(model_dir: Path) -> dict[str, Any]:
    if not model_dir.is_dir():
        raise ConfigurationError(
            f"OnnxEncoder model_dir {str(model_dir)!r} does not exist: make it with "
            "'semantic-catalog export-onnx --out DIR' on a machine with torch."
        )
    path = model_dir / CONFIG_FILE
    if not path.is_file():
        raise ConfigurationError(f"{str(model_dir)!r} is not an ONNX export folder: {CONFIG_FILE} is missing.")
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"Cannot read {path}: {exc}") from exc
    if not isinstance(config, dict):
        raise ConfigurationError(f"{path} must hold a JSON object.")
    return config
