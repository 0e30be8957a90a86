"""Fine-tuning the embedding model on a catalog's judged queries.

A query adapter (``query_adapter``) moves queries only; fine-tuning moves the whole model, documents too,
so it can learn what the catalog's own words mean. It costs more: the catalog is embedded again with the
new model (a new collection, built or imported and switched atomically, like any model change).

Training: sentence-transformers' trainer with ``MultipleNegativesRankingLoss`` on (query, relevant
product, hard negative) triples: every other product in the batch is a negative too (in-batch
negatives), and the hard negative is a product judged not relevant, else one the current model ranks high
that nobody judged (mined from the current index). Batches never hold one text twice, so a query's
other relevant products are not taken for negatives. Cross-validation (``out_of_fold_runs``) folds the
queries like ``query_adapter.folds``: each fold's model is trained on the other folds, the catalog
embedded with it, and only the fold's queries searched.
"""

from __future__ import annotations

import math
import random
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from semantic_catalog.engine.documents import Document
from semantic_catalog.engine.encoders.base import Encoder
from semantic_catalog.engine.encoders.bundled import bundled_model_path
from semantic_catalog.engine.errors import ConfigurationError
from semantic_catalog.engine.search.pipeline import QueryOptions
from semantic_catalog.engine.search.query_adapter import TrainingQuery, folds
from semantic_catalog.engine.stores.base import VectorStore
from semantic_catalog.engine.training import library_output

Triple = tuple[str, str, str]  # query text, relevant product text, negative product text


@dataclass(frozen=True)
class FinetuneSettings:
    """Training settings (defaults: one pass, as sentence-transformers' own retrieval examples)."""

    epochs: int = 1
    batch_size: int = 32
    learning_rate: float = 2e-5
    positives_per_query: int = 3  # the most relevant products of each query that it learns from
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "positives_per_query"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigurationError(f"Fine-tuning {name} must be a whole number of at least 1, not {value!r}.")
        if not self.learning_rate > 0:
            raise ConfigurationError(f"Fine-tuning learning_rate must be above 0, not {self.learning_rate!r}.")


def triples(
    queries: Mapping[str, TrainingQuery],
    query_texts: Mapping[str, str],
    doc_texts: Mapping[str, str],
    settings: FinetuneSettings = FinetuneSettings(),
) -> list[Triple]:
    """(query, relevant product, negative) for each query's best ``positives_per_query`` products; the
    negative is a product judged not relevant (gain 0) or else one of the query's mined hard negatives,
    or, for a query with neither, a random product of the catalog."""
    rng = random.Random(settings.seed)
    catalog = sorted(doc_texts)
    found: list[Triple] = []
    for query_id in sorted(queries):
        query = queries[query_id]
        positives = sorted((d for d, g in query.gains.items() if g > 0), key=lambda d: (-query.gains[d], d))
        negatives = [d for d, g in query.gains.items() if g <= 0] + list(query.negatives)
        for i, doc in enumerate(positives[: settings.positives_per_query]):
            negative = negatives[i % len(negatives)] if negatives else rng.choice(catalog)
            found.append((query_texts[query_id], doc_texts[doc], doc_texts[negative]))
    return found


def ranked_negatives(
    queries: Mapping[str, TrainingQuery], ranked: Mapping[str, Sequence[str]], count: int
) -> dict[str, TrainingQuery]:
    """The queries with their mined negatives taken from ``ranked`` instead (a search's ids per query, best
    first): the ``count`` best that the query's judgments do not name. With the base model's hybrid ranking
    the model learns against the products hybrid search wrongly puts first, which keyword matches bring up
    as often as meaning does."""
    return {
        query_id: replace(query, negatives=[d for d in ranked.get(query_id, ()) if d not in query.gains][:count])
        for query_id, query in queries.items()
    }


def _libraries() -> Any:
    try:
        import datasets  # noqa: F401 (the trainer's input format)
        import sentence_transformers
    except ImportError as exc:
        raise ConfigurationError(
            f"Fine-tuning needs sentence-transformers with its trainer ({exc.name} is missing): "
            "pip install 'django-semantic-catalog[train]'."
        ) from None
    return sentence_transformers


def finetune(
    training: Sequence[Triple], base: str | None = None, settings: FinetuneSettings = FinetuneSettings(),
    progress: bool = False,
) -> Any:
    """A ``SentenceTransformer`` fine-tuned from ``base`` (default: the bundled MiniLM) on ``training``."""
    if not training:
        raise ConfigurationError("No judged query with a relevant product to learn from: check the judgments' ids.")
    st = _libraries()
    import torch
    from datasets import Dataset
    from sentence_transformers.losses import MultipleNegativesRankingLoss
    from sentence_transformers.training_args import BatchSamplers

    with library_output(progress):
        model = st.SentenceTransformer(base or bundled_model_path())
    columns = ("anchor", "positive", "negative")
    data = Dataset.from_dict({name: [t[i] for t in training] for i, name in enumerate(columns)})
    steps = math.ceil(len(data) / settings.batch_size) * settings.epochs
    # the trainer wants a folder; nothing is saved in it
    with tempfile.TemporaryDirectory(prefix="finetune-") as scratch, library_output(progress):
        arguments = st.SentenceTransformerTrainingArguments(
            output_dir=scratch,
            num_train_epochs=settings.epochs,
            per_device_train_batch_size=settings.batch_size,
            learning_rate=settings.learning_rate,
            warmup_steps=int(0.1 * steps),
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            save_strategy="no",
            report_to="none",
            logging_steps=max(1, steps),
            seed=settings.seed,
            disable_tqdm=not progress,
            dataloader_pin_memory=torch.cuda.is_available(),
        )
        loss = MultipleNegativesRankingLoss(model)
        st.SentenceTransformerTrainer(model=model, args=arguments, train_dataset=data, loss=loss).train()
    return model


def out_of_fold_runs(
    store: VectorStore,
    documents: Sequence[Document],
    queries: Mapping[str, TrainingQuery],
    query_texts: Mapping[str, str],
    runs: Mapping[str, QueryOptions],
    count: int,
    encoder_for: Callable[[str], Encoder],
    base: str | None = None,
    settings: FinetuneSettings = FinetuneSettings(),
    note: Callable[[str], None] | None = None,
) -> dict[str, dict[str, list[str]]]:
    """Cross-validation: each run's ranked ids for every query of ``queries``, searched with a model
    fine-tuned on the other folds and a catalog embedded by it (``encoder_for(model folder)``), in a
    collection of its own that is dropped afterwards."""
    from semantic_catalog.engine.indexer import index_documents
    from semantic_catalog.engine.search.batch import BatchSearch, ranked_ids

    doc_texts = {d.id: d.text for d in documents}
    ranked: dict[str, dict[str, list[str]]] = {name: {} for name in runs}
    for number, held_out in enumerate(folds(list(queries), count), start=1):
        held = set(held_out)
        training = triples({q: t for q, t in queries.items() if q not in held}, query_texts, doc_texts, settings)
        if note:
            note(f"fold {number} of {count}: fine-tuning on {len(training)} examples")
        model = finetune(training, base, settings, progress=note is not None)
        collection = f"finetune-fold-{number}"
        with tempfile.TemporaryDirectory(prefix="finetuned-") as folder:
            save_model(model, folder)
            encoder = encoder_for(folder)
            if note:
                note(f"fold {number} of {count}: embedding {len(documents)} documents with the fold's model")
            store.drop_collection(collection)
            store.create_collection(collection, encoder.dimension, [])
            try:
                for start in range(0, len(documents), 4096):
                    index_documents(store, collection, encoder, documents[start : start + 4096])
                store.optimize(collection)  # the full-text index hybrid runs read
                texts = [query_texts[q] for q in held_out]
                hits = BatchSearch(store, collection).search(texts, encoder.encode_queries(texts), dict(runs))
                for name in runs:
                    ranked[name].update(zip(held_out, ranked_ids(hits[name])))
            finally:
                store.drop_collection(collection)
    return ranked


def check_model_folder(folder: str | Path) -> Path:
    """``folder`` may take a model: new, empty, or an earlier model (replaced); anything else is refused
    (checked before training, so a wrong --out costs nothing)."""
    folder = Path(folder)
    if folder.exists() and (
        not folder.is_dir() or (any(folder.iterdir()) and not (folder / "config_sentence_transformers.json").exists())
    ):
        raise ConfigurationError(f"{folder} exists and holds no sentence-transformers model: choose a new --out.")
    return folder


def save_model(model: Any, folder: str | Path, progress: bool = False) -> Path:
    folder = check_model_folder(folder)
    with library_output(progress):
        model.save(str(folder))
    return folder
