"""The segmentation engine's vocabulary: what goes in, what comes out, and the two seams the
Django side plugs into (where each LLM call is indexed, and how a run is told to stop).

Everything here is plain data so a result can be written to ``segmentation.json`` on an offline
machine and validated and imported on the web server.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from typing import Any, Literal, Protocol, get_args

Stage = Literal["extract", "consolidate", "refine", "cluster", "name"]
# full: the LLM reads every item twice; embedding_first: the items' vectors are clustered, the LLM names the
# clusters from samples and arbitrates only the items close to two centroids (README, "Market segmentation").
Mode = Literal["full", "embedding_first"]
# embedding_first only: who names the clusters. llm: the LLM, from samples (and it arbitrates uncertain items);
# keywords: each cluster's most distinctive words by c-TF-IDF (keywords.py), no LLM call at all.
Naming = Literal["llm", "keywords"]
MODES: tuple[str, ...] = get_args(Mode)  # what check_config, the API and semantic_segment accept
NAMINGS: tuple[str, ...] = get_args(Naming)


@dataclass(frozen=True)
class Item:
    """One thing to segment: the index row's id (a string, as in ``Document``) and its text."""

    id: str
    text: str


@dataclass(frozen=True)
class SegmentationConfig:
    """Every knob of a run. Defaults come from the issue; the Django side fills them from settings."""

    model: str
    base_url: str
    api_key: str = "not-needed"
    temperature: float = 0.0
    category: str = ""
    products_per_prompt: int = 40
    taxonomies_per_consolidation: int = 20
    products_per_refinement: int = 40
    max_retries: int = 3
    concurrency: int = 4
    requests_per_minute: int | None = None
    tokens_per_minute: int | None = None
    context_tokens: int = 32768
    max_output_tokens: int = 4096
    request_timeout: float = 300.0
    prompts_dir: str | None = None  # None: the bundled prompts folder
    max_item_chars: int = 500  # an item's text is cut to this many characters in a prompt
    mode: Mode = "full"
    # embedding_first only: the number of segments, or None to choose it by silhouette in the range
    segments: int | None = None
    min_segments: int = 2
    max_segments: int = 12
    uncertain_margin: float = 0.05  # (d2 - d1) / d2 below this: the LLM arbitrates the item
    name_samples: int = 10  # items shown per cluster when the LLM names it
    clusters_per_prompt: int = 8
    naming: Naming = "llm"  # "keywords": no LLM, so model and base_url may be anything (even empty)
    seed: int = 0  # k-means and sampling are deterministic for a given seed

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("api_key")  # never logged or stored
        return data


@dataclass(frozen=True)
class Segment:
    """A segment of the final taxonomy; ``id`` is the stable ``S_<n>`` identifier shown to the LLM."""

    id: str
    name: str
    definition: str
    item_count: int = 0


@dataclass(frozen=True)
class Assignment:
    """An item's segment: ``segment`` is a segment name in the first pass, an ``S_<n>`` id after refinement."""

    item_id: str
    segment: str
    confidence: float


@dataclass
class Usage:
    calls: int = 0
    cached_calls: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0  # wall time of the stage in this run
    # Seconds the LLM took for these answers as logged: a cached call counts the call that made it, so a
    # resumed or repeated run still says what its answers cost.
    llm_seconds: float = 0.0


USAGE_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(Usage))


@dataclass
class SegmentationResult:
    """What a finished run produced; ``to_json``/``from_json`` are the ``segmentation.json`` format."""

    run_id: str
    config: dict[str, Any]
    item_ids: list[str]
    segments: list[Segment]
    first_pass: list[Assignment]
    refined: list[Assignment]
    usage: dict[str, Usage] = field(default_factory=dict)  # per stage
    problems: list[str] = field(default_factory=list)  # missing / duplicated / unknown ids seen in answers


@dataclass(frozen=True)
class Progress:
    stage: Stage
    processed: int
    total: int


@dataclass(frozen=True)
class InteractionRecord:
    """One LLM call as written to the log storage; the Django side indexes these (``LLMInteraction``)."""

    run_id: str
    interaction_type: str  # "segmentation" | "consolidate_taxonomy" | "refine_assignments"
    batch: int
    attempt: int
    path: str  # the file's URL or path in the log storage
    prompt_file: str  # the archived template it came from
    cache_key: str
    sha256: str
    model: str
    tokens_in: int
    tokens_out: int
    duration: float
    cached: bool


class CallIndex(Protocol):
    """Where a run looks up earlier identical calls and tells about new ones.

    The engine ships a file-based index (it reads the log storage); the Django app implements it
    over ``LLMInteraction`` rows so the cache is one SQL lookup.
    """

    def find(self, cache_key: str) -> str | None:
        """The path of an earlier call's log file with this key, or None."""

    def add(self, record: InteractionRecord) -> None:
        """Called once the call's file is written and its checksum known."""


ProgressCallback = Callable[[Progress], None]
StopCheck = Callable[[], bool]  # True: stop at the next batch boundary (raises RunCancelled)
