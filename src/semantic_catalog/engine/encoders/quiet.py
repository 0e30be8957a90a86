"""Keep other libraries' chatter out of a user's terminal while a model loads or is exported.

transformers draws a "Loading weights" bar each time a model loads (during ``loaddata``, a save, a
first search), and onnxruntime's quantizer logs a hint about pre-processing on every export; the
library reports its own progress where a user asked for it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_model_loading() -> Iterator[None]:
    """transformers' and huggingface_hub's progress bars off for the duration (restored after)."""
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:
        yield
        return
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


class _DropQuantizerHint(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "pre-processing before quantization" not in record.getMessage()


@contextmanager
def quiet_quantizer() -> Iterator[None]:
    """Drop onnxruntime's "consider pre-processing before quantization" hint (it logs to the root logger);
    the dynamic int8 quantization used here needs no pre-processing."""
    root = logging.getLogger()
    hint = _DropQuantizerHint()
    root.addFilter(hint)
    try:
        yield
    finally:
        root.removeFilter(hint)
