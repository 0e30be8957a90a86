"""A cross-encoder fine-tuned on labelled pairs: it reads both listings at once, so it can learn which
differences a shop's staff count as another item (an edition, a pack size) and which not (a reworded
title).

Fine-tuned from the bundled MiniLM with sentence-transformers' own trainer (``pip install
'django-semantic-catalog[train]'``), on the CPU or a GPU; torch is imported only here and only when a
cross-encoder is trained or used.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from semantic_catalog.engine.crossstore.product_matching import ProductRecord
from semantic_catalog.engine.encoders.bundled import bundled_model_path
from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.training import library_output

MAX_LENGTH = 96  # tokens of the two texts together: titles and the start of each description
DESCRIPTION_CHARS = 100
TextPair = tuple[str, str]


def pair_text(record: ProductRecord) -> str:
    """What the cross-encoder reads of a listing: its brand and title, then the start of its description."""
    text = f"{record.brand} {record.title}".strip() if record.brand not in record.title else record.title
    description = " ".join(record.description.split())[:DESCRIPTION_CHARS]
    return f"{text} | {description}" if description else text


def _libraries() -> Any:
    try:
        import datasets  # noqa: F401 (the trainer's input format)
        import sentence_transformers.cross_encoder as cross_encoder
    except ImportError as exc:
        raise ConfigurationError(
            f"Training a cross-encoder needs sentence-transformers with its trainer ({exc.name} is missing): "
            "pip install 'django-semantic-catalog[train]', or train without it (--no-cross-encoder)."
        ) from None
    return cross_encoder


def train_cross_encoder(
    pairs: Sequence[TextPair],
    labels: Sequence[bool],
    epochs: int = 4,
    seed: int = 0,
    progress: bool = False,
    base: str | None = None,
    batch_size: int = 16,
) -> Any:
    """A ``CrossEncoder`` fine-tuned from ``base`` (default: the bundled MiniLM) to say 1 for the same item.
    Each pair is shown in both orders, so the score does not depend on which shop is on the left."""
    ce = _libraries()
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss

    with library_output(progress):
        model = ce.CrossEncoder(base or bundled_model_path(), num_labels=1, max_length=MAX_LENGTH)
    data = Dataset.from_dict(
        {
            "first": [a for a, _ in pairs] + [b for _, b in pairs],
            "second": [b for _, b in pairs] + [a for a, _ in pairs],
            "label": [float(y) for y in labels] * 2,
        }
    )
    steps = math.ceil(len(data) / batch_size) * epochs
    scratch = tempfile.TemporaryDirectory(prefix="cross-encoder-")  # the trainer wants a folder; nothing is saved
    arguments = ce.CrossEncoderTrainingArguments(
        output_dir=scratch.name,
        num_train_epochs=epochs,
        per_device_train_batch_size=batch_size,
        learning_rate=5e-5,
        warmup_steps=int(0.1 * steps),
        save_strategy="no",
        report_to="none",
        logging_steps=max(1, steps),
        seed=seed,
        disable_tqdm=not progress,
        dataloader_pin_memory=torch.cuda.is_available(),
    )
    with scratch, library_output(progress):
        loss = BinaryCrossEntropyLoss(model)
        ce.CrossEncoderTrainer(model=model, args=arguments, train_dataset=data, loss=loss).train()
    return model


def load_cross_encoder(folder: str | Path) -> Any:
    with library_output(False):
        return _libraries().CrossEncoder(str(folder), num_labels=1, max_length=MAX_LENGTH)


def score_pairs(model: Any, pairs: Sequence[TextPair], batch_size: int = 64) -> np.ndarray:
    """Probability of the same item for each pair, in one batched pass."""
    if not pairs:
        return np.zeros(0, dtype=np.float32)
    import torch

    scores = model.predict(
        list(pairs), batch_size=batch_size, activation_fn=torch.nn.Sigmoid(), show_progress_bar=False
    )
    return np.asarray(scores, dtype=np.float32).reshape(-1)
