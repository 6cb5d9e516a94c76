"""The text models, as one object: the spaCy units parser and the MiniLM sentence embedder.

The composition root (:func:`agent.composition.build_services`) builds one
:class:`TextModels` from the settings and hands it to every service that reads
text (retrieval, ingest, the rewriter's guard, motion tuning), so each model
loads once per process because there is one owner, not because of a cache.
Both load on first use: building the services costs nothing.
"""

from __future__ import annotations

import functools

from reelgraph.text.embeddings import TextEmbedder
from reelgraph.text.units import UnitParser


class TextModels:
    """``parser`` (Search-T2V §4.1 atomized units) and ``embedder`` (MiniLM, 384-d, unit-norm)."""

    def __init__(self, spacy_model: str | None = None, text_model: str | None = None):
        self.spacy_model = spacy_model
        self.text_model = text_model

    @classmethod
    def from_settings(cls, settings) -> TextModels:
        """From a :class:`~reelgraph.settings.TextSettings` (or any object with both fields)."""
        return cls(settings.spacy_model, settings.text_model)

    @functools.cached_property
    def parser(self) -> UnitParser:
        return UnitParser(self.spacy_model)

    @functools.cached_property
    def embedder(self) -> TextEmbedder:
        return TextEmbedder(self.text_model)
