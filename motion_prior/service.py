"""The retrieval services the agent's planning nodes call: unit parsing and pool retrieval.

Both open their models and the store on first use, so building the graph
costs nothing, and a plan without a pool never creates one: with no
``<home>/chroma`` folder (and no server URL) the pool counts as empty.
"""

from __future__ import annotations

import functools
from pathlib import Path

from motion_prior.search import RetrievalResult, Retriever, SearchConfig
from reelgraph.settings import Settings
from reelgraph.text.units import ParsedPrompt, get_parser


class UnitParsing:
    """Atomized units of a prompt (Search-T2V §4.1) with the configured spaCy pipeline."""

    def __init__(self, spacy_model: str | None = None):
        self.spacy_model = spacy_model

    def parse(self, text: str) -> ParsedPrompt:
        return get_parser(self.spacy_model).parse(text)


class PoolRetrieval:
    """References, motion-prior hits and the nearest video from the Chroma pool (POS eq. 3, 6; Search-T2V §4.2)."""

    def __init__(self, settings: Settings, config: SearchConfig | None = None):
        self.home = Path(settings.home)
        self.url = settings.chroma_url
        self.text_model = settings.text_model
        self.spacy_model = settings.spacy_model
        self.config = config

    @property
    def location(self) -> str:
        return self.url or str(self.home / "chroma")

    @functools.cached_property
    def retriever(self) -> Retriever:
        return Retriever.open(
            self.home,
            url=self.url,
            text_model=self.text_model,
            spacy_model=self.spacy_model,
            config=self.config,
        )

    def pool_size(self) -> int:
        if self.url is None and not (self.home / "chroma").is_dir():
            return 0
        return self.retriever.store.count()

    def retrieve(self, prompt: str) -> RetrievalResult:
        return self.retriever.retrieve(prompt)
