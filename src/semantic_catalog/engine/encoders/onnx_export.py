"""Export a sentence-transformers model to ONNX so a server can encode queries without torch.

The export (this module) needs torch, sentence-transformers and the ``export`` extra; the result is a folder
that :class:`~semantic_catalog.engine.encoders.onnx.OnnxEncoder` loads with onnxruntime and tokenizers only:

- ``model.onnx``: the transformer, inputs ``input_ids`` / ``attention_mask`` (/ ``token_type_ids``) with
  dynamic batch and sequence axes, output ``last_hidden_state``;
- ``model.int8.onnx`` (with ``quantize=True``): the same with dynamically quantized int8 weights, checked
  against ``model.onnx`` on short queries (``INT8_QUERY_FIDELITY``; the result is in the config);
- ``tokenizer.json``: the fast tokenizer, truncating at ``max_length``;
- ``semantic_catalog_onnx.json``: name, dimension, pooling, which file to load and where it came from.

Every export is checked against the torch model it came from (``FIDELITY``) before it is used.
:func:`cached_export` makes one export per model version in a cache folder, once per machine: it is what
the default encoder and ``semantic-catalog embed`` use on a CPU.

torch, sentence-transformers, tokenizers and onnxruntime are imported inside the functions, never at import time.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.engine.encoders.bundled import BUNDLED_MODEL_NAME, bundled_model_path
from semantic_catalog.engine.encoders.onnx import CONFIG_FILE, INT8_MODEL_FILE, MODEL_FILE, TOKENIZER_FILE, OnnxEncoder
from semantic_catalog.engine.encoders.quiet import quiet_model_loading, quiet_quantizer
from semantic_catalog.engine.errors import ConfigurationError

OPSET = 17
# Bumped when the export's files or checks change, so cache folders of older exports are not reused.
EXPORT_FORMAT = 3
# The least cosine similarity between the fp32 export's vectors and torch's on PROBES for the export to
# be used; all-MiniLM-L6-v2 gives 0.99999 (tests/test_onnx.py).
FIDELITY = 0.999
PROBES = [
    "cordless drill driver 18V with 2 batteries",
    "Café crème brûlée torch, refillable",
    "a",
    "Ergonomic office chair with lumbar support, adjustable armrests and a breathable mesh back " * 4,
]

# The least cosine between the int8 and fp32 exports' vectors of QUERY_PROBES (and PROBES) for the default
# encoder to encode search queries with int8 weights; all-MiniLM-L6-v2 gives about 0.99.
INT8_QUERY_FIDELITY = 0.98
QUERY_PROBES = [
    "cordless drill",
    "toliet seat",
    "1/2 in. copper pipe",
    "something to keep the lawn wet",
    "red summer dress",
    "pasta with tomato sauce",
]

_SUPPORTED_MODULES = ("Transformer", "Pooling", "Normalize")

logger = logging.getLogger("semantic_catalog.onnx")


def export_onnx(model: str | None, out_dir: str | Path, quantize: bool = False, max_length: int | None = None) -> Path:
    """Export ``model`` (a sentence-transformers name or path; None = the bundled all-MiniLM-L6-v2) to ``out_dir``.

    Returns the folder, ready for ``OnnxEncoder(model_dir=...)``. With ``quantize`` an int8 copy is written as
    well and the config names it as the file to load (the fp32 ``model.onnx`` is kept).
    """
    if max_length is not None and max_length < 1:
        raise ConfigurationError("export_onnx max_length must be at least 1.")
    torch, sentence_transformers = _import_export_packages()
    source = model or bundled_model_path()
    name = model.rstrip("/").split("/")[-1] if model else BUNDLED_MODEL_NAME
    st_model = _load(sentence_transformers, source)

    transformer, pooling = _modules(st_model, source)
    hf_model = getattr(transformer, "auto_model", None) or getattr(transformer, "model", None)
    tokenizer = getattr(transformer, "tokenizer", None) or st_model.tokenizer
    if hf_model is None or tokenizer is None:
        raise ConfigurationError(f"Cannot find the transformer and tokenizer inside {source!r}.")
    pooling_mode = _pooling_mode(pooling, source)
    dimension = int(_embedding_dimension(st_model))
    # The model's own truncation by default, so the export's vectors are the model's for long texts too.
    max_length = max_length or int(getattr(st_model, "max_seq_length", None) or 256)
    lowercase = bool(getattr(transformer, "do_lower_case", False))

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pad_id = _save_tokenizer(tokenizer, out / TOKENIZER_FILE, max_length, source)
    input_names = _input_names(hf_model, tokenizer)
    _export_transformer(torch, hf_model, input_names, out / MODEL_FILE, pad_id)

    model_file = MODEL_FILE
    if quantize:
        _quantize(out / MODEL_FILE, out / INT8_MODEL_FILE)
        model_file = INT8_MODEL_FILE

    config = {
        "name": name,
        "dimension": dimension,
        "pooling": pooling_mode,
        "normalize": True,
        "max_length": max_length,
        "quantized": quantize,
        "file": model_file,
        "inputs": input_names,
        "lowercase": lowercase,
        "pad_id": pad_id,
        "source": str(source),
    }
    (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    exported = OnnxEncoder(out, file=MODEL_FILE)  # one fp32 session for both checks
    _check_fidelity(st_model, exported, str(source))
    if quantize:
        cosine = _int8_query_cosine(exported)
        config.update(int8_query_cosine=round(cosine, 4), int8_queries=cosine >= INT8_QUERY_FIDELITY)
        (out / CONFIG_FILE).write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    return out


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/semantic-catalog/onnx`` (``~/.cache/...`` when unset)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "semantic-catalog" / "onnx"


def cached_export(model: str | None, cache_dir: str | Path | None = None) -> Path:
    """The ONNX export (fp32 ``model.onnx`` and int8 ``model.int8.onnx``) of ``model`` in ``cache_dir``
    (default :func:`default_cache_dir`), made on first use and reused after.

    The folder is named after the model and a fingerprint of its files (size and modification time), so a
    model folder that changes is exported again instead of serving stale vectors. An export is built in
    a temporary folder and renamed into place: processes that start together may each export once, but
    none ever loads half an export. A model whose export is refused (unsupported, or not reproducing the
    torch model) is recorded beside it, so later processes fall back to torch at once.
    """
    source = model or bundled_model_path()
    folder = Path(cache_dir or default_cache_dir()) / _cache_key(model, source)
    if (folder / CONFIG_FILE).is_file():
        return folder
    refused = folder.with_name(folder.name + ".refused")  # so each new process does not export again to fail
    if refused.is_file():
        raise ConfigurationError(f"{refused.read_text(encoding='utf-8')} (recorded in {refused})")
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    logger.info("exporting %s to ONNX in %s (once per machine and model version)", model or BUNDLED_MODEL_NAME, folder)
    try:
        try:
            export_onnx(model, staging, quantize=True)
        except ConfigurationError as exc:  # the model cannot be exported: remember it
            refused.write_text(str(exc), encoding="utf-8")
            raise
        try:
            staging.rename(folder)
        except OSError:
            if not (folder / CONFIG_FILE).is_file():  # not another process's finished export: a real error
                raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def _cache_key(model: str | None, source: str) -> str:
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", model.rstrip("/").split("/")[-1] if model else BUNDLED_MODEL_NAME)
    files: list[tuple[str, int, int]] = []
    if os.path.isdir(source):
        for root, dirs, names in os.walk(source):
            dirs.sort()
            for file in sorted(names):
                stat = os.stat(os.path.join(root, file))
                files.append((os.path.relpath(os.path.join(root, file), source), stat.st_size, stat.st_mtime_ns))
    digest = json.dumps([EXPORT_FORMAT, os.path.abspath(source) if files else source, files])
    return f"{name.strip('_') or 'model'}-{hashlib.sha256(digest.encode()).hexdigest()[:12]}"


def _import_export_packages() -> tuple[Any, Any]:
    try:
        import sentence_transformers
        import torch
    except ImportError as exc:
        raise ConfigurationError(
            f"Exporting to ONNX needs torch and sentence-transformers ({exc.name} is missing): "
            "pip install 'django-semantic-catalog[local,export]'."
        ) from exc
    for package in ("onnx", "tokenizers", "onnxruntime"):  # onnxruntime: quantizing and the fidelity check
        try:
            __import__(package)
        except ImportError as exc:
            raise ConfigurationError(
                f"Exporting to ONNX needs the {package!r} package: pip install 'django-semantic-catalog[export]'."
            ) from exc
    return torch, sentence_transformers


def _load(sentence_transformers: Any, source: str) -> Any:
    if os.path.isdir(source):
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    elif os.path.isabs(source) or source.startswith("."):
        raise ConfigurationError(f"No sentence-transformers model folder at {source!r}.")
    try:
        with quiet_model_loading():
            return sentence_transformers.SentenceTransformer(source, device="cpu")
    except Exception as exc:  # OSError, a hub error or a bad folder: all mean the model cannot be had
        raise ConfigurationError(f"Cannot load sentence-transformers model {source!r}: {exc}") from exc


def _modules(st_model: Any, source: str) -> tuple[Any, Any]:
    modules = list(st_model)
    kinds = [type(module).__name__ for module in modules]
    unsupported = [kind for kind in kinds if kind not in _SUPPORTED_MODULES]
    if unsupported or not kinds or kinds[0] != "Transformer" or "Pooling" not in kinds:
        raise ConfigurationError(
            f"Model {source!r} has modules {kinds}; ONNX export supports Transformer + Pooling (+ Normalize) only."
        )
    return modules[0], modules[kinds.index("Pooling")]


def _pooling_mode(pooling: Any, source: str) -> str:
    """'mean' or 'cls' from the Pooling module's config (old and new sentence-transformers spell it differently)."""
    config = pooling.get_config_dict() if hasattr(pooling, "get_config_dict") else {}
    mode = config.get("pooling_mode")
    if isinstance(mode, list | tuple):
        mode = mode[0] if len(mode) == 1 else "+".join(mode)
    if mode is None:
        flags = {key[len("pooling_mode_") :]: value for key, value in config.items() if key.startswith("pooling_mode_")}
        enabled = [key for key, value in flags.items() if value]
        mode = {"mean_tokens": "mean", "cls_token": "cls"}.get(enabled[0], enabled[0]) if len(enabled) == 1 else None
    mode = {"mean_tokens": "mean", "cls_token": "cls"}.get(str(mode), mode)
    if mode not in ("mean", "cls"):
        raise ConfigurationError(f"Model {source!r} uses pooling {mode!r}; ONNX export supports 'mean' and 'cls'.")
    return mode


def _embedding_dimension(st_model: Any) -> int:
    getter = getattr(st_model, "get_embedding_dimension", None) or st_model.get_sentence_embedding_dimension
    return getter()


def _save_tokenizer(tokenizer: Any, path: Path, max_length: int, source: str) -> int:
    """Save the fast tokenizer, truncating at ``max_length`` and without padding (the encoder pads); return pad id."""
    from tokenizers import Tokenizer

    backend = getattr(tokenizer, "backend_tokenizer", None) or getattr(tokenizer, "_tokenizer", None)
    if backend is None or not hasattr(backend, "to_str"):
        raise ConfigurationError(f"Model {source!r} has no fast (Rust) tokenizer; ONNX export needs tokenizer.json.")
    fast = Tokenizer.from_str(backend.to_str())
    fast.no_padding()
    fast.enable_truncation(max_length=max_length)
    fast.save(str(path))
    pad_id = getattr(tokenizer, "pad_token_id", None)
    return int(pad_id) if pad_id is not None else 0


def _input_names(hf_model: Any, tokenizer: Any) -> list[str]:
    accepted = inspect.signature(hf_model.forward).parameters
    produced = set(getattr(tokenizer, "model_input_names", None) or ["input_ids", "attention_mask"])
    names = ["input_ids", "attention_mask"]
    if "token_type_ids" in accepted and "token_type_ids" in produced:
        names.append("token_type_ids")
    return names


def _export_transformer(torch: Any, hf_model: Any, input_names: list[str], path: Path, pad_id: int) -> None:
    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: Any) -> Any:
            return self.inner(**dict(zip(input_names, inputs)), return_dict=True).last_hidden_state

    wrapper = LastHiddenState(hf_model).eval()
    # A padded example (second row shorter) so the trace keeps the attention-mask path for padded batches.
    input_ids = torch.tensor([[101, 2023, 2003, 1037, 3231, 102], [101, 3231, 102, pad_id, pad_id, pad_id]])
    input_ids = input_ids.clamp(max=hf_model.config.vocab_size - 1)
    attention_mask = (torch.arange(6)[None, :] < torch.tensor([[6], [3]])).long()
    example = {"input_ids": input_ids, "attention_mask": attention_mask, "token_type_ids": torch.zeros_like(input_ids)}
    axes = {"input_ids": {0: "batch", 1: "sequence"}}
    axes.update({name: {0: "batch", 1: "sequence"} for name in [*input_names, "last_hidden_state"]})
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice and tracer chatter
        torch.onnx.export(
            wrapper,
            tuple(example[name] for name in input_names),
            str(path),
            input_names=input_names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,  # the TorchScript exporter needs no onnxscript and handles BERT-like models well
        )


def _check_fidelity(st_model: Any, exported: OnnxEncoder, source: str) -> None:
    """Refuse an export whose fp32 vectors differ from the torch model's (an architecture the trace got
    wrong, a tokenizer that does not match): its config is removed, so nothing loads the folder."""
    vectors = exported.encode(PROBES)
    reference = st_model.encode(PROBES, convert_to_numpy=True, normalize_embeddings=True)
    worst = float(np.min(np.sum(vectors * np.asarray(reference, dtype=np.float32), axis=1)))
    if worst < FIDELITY:
        (exported.model_dir / CONFIG_FILE).unlink()
        raise ConfigurationError(
            f"The ONNX export of {source!r} does not reproduce the torch model (cosine {worst:.4f} < {FIDELITY}); "
            "use the torch backend for this model."
        )


def _int8_query_cosine(exported: OnnxEncoder) -> float:
    """The least cosine between the int8 and the fp32 export's query vectors on the probes: how far int8
    weights move a query (documents are always encoded with the fp32 file)."""
    texts = [*QUERY_PROBES, *PROBES]
    int8 = OnnxEncoder(exported.model_dir, file=INT8_MODEL_FILE).encode_queries(texts)
    return float(np.min(np.sum(exported.encode_queries(texts) * int8, axis=1)))


def _quantize(source: Path, target: Path) -> None:
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ConfigurationError(
            "Quantizing needs onnxruntime: pip install 'django-semantic-catalog[export]'."
        ) from exc
    # Per-channel scales keep MiniLM within ~0.99 cosine of fp32; one scale per tensor drops it to ~0.96.
    with quiet_quantizer():
        quantize_dynamic(str(source), str(target), weight_type=QuantType.QInt8, per_channel=True)
