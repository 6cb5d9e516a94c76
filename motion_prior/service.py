"""The retrieval services the agent's planning nodes call: unit parsing and pool retrieval.

Both open their models and the store on first use, so building the graph
costs nothing, and a plan without a pool never creates one: with no
``<home>/chroma`` folder (and no server URL) the pool counts as empty.
"""

from __future__ import annotations

import functools
from pathlib import Path

from memory.store import MemoryStore
from motion_prior.search import RetrievalResult, Retriever, SearchConfig
from reelgraph.settings import MemorySettings
from reelgraph.text.models import TextModels
from reelgraph.text.units import ParsedPrompt


class UnitParsing:
    """Atomized units of a prompt (Search-T2V §4.1) with the run's spaCy pipeline."""

    def __init__(self, text: TextModels):
        self.text = text

    def parse(self, text: str) -> ParsedPrompt:
        return self.text.parser.parse(text)


class PoolRetrieval:
    """References, motion-prior hits and the nearest video from the Chroma pool (POS eq. 3, 6; Search-T2V §4.2).

    Args:
        memory: where the pool lives (``home``'s embedded store, or ``chroma_url``).
        text: the run's text models, which embed and parse the query.
        config: search thresholds; default :class:`~motion_prior.search.SearchConfig`.
    """

    def __init__(self, memory: MemorySettings, text: TextModels, config: SearchConfig | None = None):
        self.home = Path(memory.home)
        self.url = memory.chroma_url
        self.text = text
        self.config = config

    @property
    def location(self) -> str:
        return self.url or str(self.home / "chroma")

    @functools.cached_property
    def store(self) -> MemoryStore:
        """The pool's store, opened (and created where missing) on first use."""
        return MemoryStore(self.home, url=self.url)

    @functools.cached_property
    def retriever(self) -> Retriever:
        return Retriever(self.store, self.text.embedder, self.text.parser, self.config)

    def pool_size(self) -> int:
        if self.url is None and not (self.home / "chroma").is_dir():
            return 0
        return self.retriever.store.count()

    def retrieve(self, prompt: str) -> RetrievalResult:
        return self.retriever.retrieve(prompt)
