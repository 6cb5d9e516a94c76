"""An OpenAI-compatible chat model through langchain-openai, with an on-disk answer cache.

Works with any OpenAI-compatible server (vLLM, llama.cpp's server, Ollama's
``/v1``, OpenAI). Failures of the request itself (connection refused,
timeouts, 429 and 5xx after the client's retries, any other API error) come
out as :class:`LLMUnavailable`, so the caller can fall back and say why.

Each request has a total ``deadline`` (seconds, all tries together: a try gets
what is left of it, at most ``timeout``), and each call kind a ``max_tokens``
(rewrite, understanding, tools), so a slow or rambling server cannot hold a
plan up. Structured answers are parsed and validated here, from the answer's
text, whether or not the server honoured ``response_format`` (many
OpenAI-compatible servers ignore it): an answer that does not validate falls
back like any other fault. See docs/llm-and-peers.md.
Answers are cached as JSON files under ``<cache>/llm/<key>.json``, the key
hashing the model, the template hash and the exact messages.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reelgraph.atomic import write_json
from reelgraph.hashing import key_hash

# The longest answer each kind of call needs (a rewrite is <= 100 words; the JSON answers are small).
DEFAULT_MAX_TOKENS = {"rewrite": 160, "understanding": 512, "tools": 384}


class LLMUnavailable(RuntimeError):
    """The endpoint could not answer (down, timing out, refusing): callers fall back and say why."""


class CutOff(Exception):
    """The answer reached ``max_tokens`` before its structured output was whole."""

    def __init__(self, max_tokens: int, completion: Any = None):
        self.max_tokens = max_tokens
        try:
            self.text = str(completion.choices[0].message.content or "")
        except (AttributeError, IndexError, TypeError):
            self.text = ""
        super().__init__(f"the answer was cut off at max_tokens ({max_tokens}) before its JSON was whole")


class LLMClient:
    """An OpenAI-compatible chat model through langchain-openai, with an on-disk answer cache.

    Args:
        model: the model name the server knows.
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (vLLM, llama.cpp, Ollama); ``None``: OpenAI's.
        api_key: the key; local servers accept any, so a placeholder is sent when unset.
        timeout: seconds per try. max_retries: retries on timeouts, connection errors, 429 and 5xx.
        deadline: seconds per request, all tries and waits together.
        max_tokens: the longest answer per call kind (``rewrite``, ``understanding``, ``tools``).
        cache_dir: answers are kept under ``cache_dir/llm/<key>.json``; ``None``: no cache.
        chat: a ready LangChain chat model to use instead (another provider, a test's scripted
            model); ``None``: a ``ChatOpenAI`` for the settings above, built on first use.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        timeout: float = 30.0,
        max_retries: int = 2,
        cache_dir: str | Path | None = None,
        chat: Any = None,
        deadline: float = 30.0,
        max_tokens: dict[str, int] | None = None,
    ):
        self.model = model
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.deadline = deadline
        self.max_tokens = {**DEFAULT_MAX_TOKENS, **(max_tokens or {})}
        self._owned = chat is None  # our ChatOpenAI takes per-request timeout and max_tokens
        self.cache_root = Path(cache_dir) / "llm" if cache_dir is not None else None
        self._chat = chat

    @property
    def name(self) -> str:
        return f"llm:{self.model}"

    def _client(self):
        if self._chat is None:
            from langchain_openai import ChatOpenAI

            self._chat = ChatOpenAI(
                model=self.model,
                base_url=self.base_url,
                api_key=self.api_key or "not-needed",
                timeout=min(self.timeout, self.deadline),
                max_retries=0,  # retries are ours, inside the deadline (_invoke)
                temperature=0,
            )
        return self._chat

    def chat_model(self):
        """The LangChain chat model (for tool calling: ``chat_model().bind_tools(tools)``), each
        call bounded by ``max_tokens["tools"]`` and one try of at most the deadline."""
        chat = self._client()
        if self._owned:
            return chat.model_copy(update={"max_tokens": self.max_tokens["tools"]})
        return chat

    def _invoke(self, messages: list[tuple[str, str]], kind: str, **extra: Any) -> str:
        """The answer's text; tries again on transient faults while the deadline lasts.

        Raises:
            LLMUnavailable: a fault that is not transient, or the deadline spent.
        """
        import openai

        transient = (openai.APITimeoutError, openai.APIConnectionError, openai.RateLimitError)
        start = time.monotonic()
        tries, last = 0, "no try"
        while tries <= self.max_retries:
            left = self.deadline - (time.monotonic() - start)
            if left <= 0.05:
                break
            tries += 1
            kwargs = {"timeout": min(self.timeout, left), "max_tokens": self.max_tokens[kind], **extra}
            try:
                message = self._client().invoke(messages, **(kwargs if self._owned else {}))
            except openai.LengthFinishReasonError as error:  # the client's parse gave up at max_tokens
                raise CutOff(self.max_tokens[kind], error.completion) from error
            except (*transient, openai.InternalServerError) as error:
                last = _short(f"{type(error).__name__}: {error}")
                if tries <= self.max_retries:  # a short back-off, inside the deadline
                    time.sleep(max(0.0, min(0.25 * 2**tries, self.deadline - (time.monotonic() - start))))
                continue
            except openai.OpenAIError as error:
                raise LLMUnavailable(f"{type(error).__name__}: {error}") from error
            except (OSError, ValueError) as error:
                raise LLMUnavailable(f"{type(error).__name__}: {error}") from error
            return _content(message)
        raise LLMUnavailable(
            f"no answer within the {self.deadline:g} s deadline ({tries} tr{'y' if tries == 1 else 'ies'};"
            f" last: {last}); raise llm_deadline or use a faster server"
        )

    def cache_key(self, messages: Sequence[tuple[str, str]], template: str = "") -> str:
        return key_hash({"model": self.model, "template": template, "messages": list(messages)}, 32)

    def complete(
        self,
        messages: Sequence[tuple[str, str]],
        record: dict[str, Any] | None = None,
        template: str = "",
        kind: str = "rewrite",
    ) -> tuple[str, bool]:
        """``(answer, from_cache)`` for ``[(role, text), ...]``.

        ``template`` (the hash of the prompt template that made the messages) is part of the cache
        key; ``record`` (e.g. the prompt and references) is stored beside a fresh answer.

        Raises:
            LLMUnavailable: connection refused, timeouts, rate limits or server errors after the
                retries, or any other failure of the request itself.
        """
        key = self.cache_key(messages, template)
        path = self.cache_root / f"{key}.json" if self.cache_root is not None else None
        if path is not None and path.is_file():
            try:
                return str(json.loads(path.read_text())["answer"]), True
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is asked again and overwritten
        answer = self._invoke(list(messages), kind)
        if path is not None:
            entry = {"model": self.model, "template_hash": template, **(record or {}), "answer": answer}
            with contextlib.suppress(OSError):  # the cache only saves time
                write_json(path, entry)
        return answer, False

    def structured(
        self,
        messages: Sequence[tuple[str, str]],
        schema: type,
        record: dict[str, Any] | None = None,
        template: str = "",
        kind: str = "understanding",
    ) -> tuple[str, Any, str | None, bool]:
        """Structured output: ``(raw, parsed, parse_error, from_cache)``.

        The server is asked for its JSON-schema mode, but the answer's text is parsed and validated
        here either way (a JSON object, bare or in a code fence), so a server that ignores
        ``response_format`` gets the same check. ``parsed`` is a ``schema`` instance, or ``None``
        with ``parse_error`` saying why (malformed, cut off at ``max_tokens`` or empty JSON, a
        schema mismatch). Only answers that parsed are cached.

        Raises:
            LLMUnavailable: as :meth:`complete`.
        """
        key = self.cache_key(messages, f"structured:{schema.__name__}:{template}")
        path = self.cache_root / f"{key}.json" if self.cache_root is not None else None
        if path is not None and path.is_file():
            try:
                raw = str(json.loads(path.read_text())["answer"])
                cached, _ = parse_structured(raw, schema)
                if cached is not None:
                    return raw, cached, None, True
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is asked again and overwritten
        response_format = {
            "type": "json_schema",
            "json_schema": {"name": schema.__name__, "schema": schema.model_json_schema()},
        }
        try:
            raw = self._invoke(list(messages), kind, response_format=response_format)
        except CutOff as cut:
            return cut.text, None, str(cut), False
        parsed, error = parse_structured(raw, schema)
        if parsed is not None and path is not None:
            entry = {"model": self.model, "template_hash": template, **(record or {}), "answer": raw}
            with contextlib.suppress(OSError):
                write_json(path, entry)
        return raw, parsed, None if parsed is not None else _short(error), False


def client_from_settings(settings) -> LLMClient | None:
    """The settings' LLM (``llm_model`` at ``llm_base_url``), or ``None`` when no model is named."""
    if not settings.llm_model:
        return None
    return LLMClient(
        settings.llm_model,
        base_url=settings.llm_base_url,
        api_key=settings.llm_api_key.get_secret_value() if settings.llm_api_key else None,
        timeout=settings.llm_timeout,
        max_retries=settings.llm_max_retries,
        cache_dir=settings.cache_dir,
        deadline=settings.llm_deadline,
        max_tokens={
            "rewrite": settings.llm_max_tokens_rewrite,
            "understanding": settings.llm_max_tokens_understanding,
            "tools": settings.llm_max_tokens_tools,
        },
    )


_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


def parse_structured(raw: str, schema: type) -> tuple[Any, str | None]:
    """``(instance, None)`` when ``raw`` holds a JSON object that validates as ``schema``, else
    ``(None, why)``. Takes the object bare, in a code fence, or the outermost braces in prose."""
    import pydantic

    text = raw.strip()
    if not text:
        return None, "the answer was empty"
    candidates = [m.group(1).strip() for m in _FENCE.finditer(text)] + [text]
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{") : text.rindex("}") + 1])
    first_error = None
    for candidate in candidates:
        try:
            return schema.model_validate_json(candidate), None
        except pydantic.ValidationError as error:
            first_error = first_error or error
    if first_error is not None and all(e["type"] == "json_invalid" for e in first_error.errors()):
        return None, _short(f"the answer is not a JSON object: {text[:80]!r}")
    return None, _short(f"the answer did not validate: {first_error}")


def _content(message: Any) -> str:
    content = message.content
    if isinstance(content, list):  # content parts
        content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
    return str(content)


def _short(error: Any) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."
