"""What every stage needs to build its conversations: the run's templates, archived prompt files, settings
and the shared list of problems (missing / duplicated / unknown ids seen in answers)."""

from __future__ import annotations

from dataclasses import dataclass, field

from semantic_catalog.engine.segmentation.client import estimate_tokens
from semantic_catalog.engine.segmentation.prompts import PromptTemplate
from semantic_catalog.engine.segmentation.types import SegmentationConfig


@dataclass
class StageContext:
    config: SegmentationConfig
    templates: dict[str, PromptTemplate]
    prompt_files: dict[str, str]  # template name -> archived URL
    problems: list[str] = field(default_factory=list)

    def fits(self, prompt: str) -> bool:
        """Whether a prompt and the longest answer fit the model's context."""
        return estimate_tokens(prompt) + self.config.max_output_tokens <= self.config.context_tokens
