"""The text models, as one object: the spaCy units parser and the MiniLM sentence embedder.

The composition root (:func:`agent.composition.build_services`) builds one
:class:`TextModels` from the settings and hands it to every service that reads
text (retrieval, ingest, the rewriter's guard, motion tuning), so every reader
shares one parser (with one memo of parses) and one embedder. Both load on
first use: building the services costs nothing. Beneath them,
:func:`~reelgraph.text.units.get_parser` / :func:`~reelgraph.text.embeddings.get_embedder`
keep the loaded weights per process, which only matters where one process
builds services many times (the test suite, the chat resuming runs).
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Iterable

from reelgraph.text.embeddings import TextEmbedder, get_embedder
from reelgraph.text.units import ParsedPrompt, UnitParser, get_parser


class MemoParser:
    """A :class:`UnitParser` that remembers its last ``size`` parses: one prompt is parsed by the
    planner, the offline rewriter and the semantic guard, and storyboard scenes repeat prompts."""

    def __init__(self, parser: UnitParser, size: int = 512):
        self._parser = parser
        self._memo: OrderedDict[str, ParsedPrompt] = OrderedDict()
        self._size = size

    @property
    def nlp(self):
        return self._parser.nlp

    def parse(self, text: str) -> ParsedPrompt:
        return self.parse_many([text])[0]

    def parse_many(self, texts: Iterable[str]) -> list[ParsedPrompt]:
        texts = list(texts)
        missing = [t for t in dict.fromkeys(texts) if t not in self._memo]
        for text, parsed in zip(missing, self._parser.parse_many(missing) if missing else [], strict=True):
            self._memo[text] = parsed
        result = [self._memo[t] for t in texts]
        for text in texts:
            self._memo.move_to_end(text)
        while len(self._memo) > self._size:
            self._memo.popitem(last=False)
        return result


class TextModels:
    """``parser`` (Search-T2V §4.1 atomized units) and ``embedder`` (MiniLM, 384-d, unit-norm)."""

    def __init__(
        self,
        spacy_model: str | None = None,
        text_model: str | None = None,
        text_encoder: str = "torch",
        cache: str | None = None,
    ):
        self.spacy_model = spacy_model
        self.text_model = text_model
        self.text_encoder = text_encoder
        self.cache = cache

    @classmethod
    def from_settings(cls, settings) -> TextModels:
        """From a :class:`~reelgraph.settings.TextSettings` (or any object with its fields)."""
        encoder = getattr(settings, "text_encoder", "torch")
        home = getattr(settings, "home", None)
        cache = str(home / "cache" / "text") if home is not None else None
        return cls(settings.spacy_model, settings.text_model, encoder, cache)

    @functools.cached_property
    def parser(self) -> MemoParser:
        return MemoParser(get_parser(self.spacy_model))

    @functools.cached_property
    def embedder(self) -> TextEmbedder:
        return get_embedder(self.text_model, self.text_encoder, self.cache)
