"""An OpenAI-compatible chat model through langchain-openai, with an on-disk answer cache.

Works with any OpenAI-compatible server (vLLM, llama.cpp's server, Ollama's
``/v1``, OpenAI). Failures of the request itself (connection refused,
timeouts, 429 and 5xx after the client's retries, any other API error) come
out as :class:`LLMUnavailable`, so the caller can fall back and say why.
Answers are cached as JSON files under ``<cache>/llm/<key>.json``, the key
hashing the model, the template hash and the exact messages.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from reelgraph.atomic import write_json
from reelgraph.hashing import key_hash


class LLMUnavailable(RuntimeError):
    """The endpoint could not answer (down, timing out, refusing): callers fall back and say why."""


class LLMClient:
    """An OpenAI-compatible chat model through langchain-openai, with an on-disk answer cache.

    Args:
        model: the model name the server knows.
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (vLLM, llama.cpp, Ollama); ``None``: OpenAI's.
        api_key: the key; local servers accept any, so a placeholder is sent when unset.
        timeout: seconds per request. max_retries: retries on timeouts, 429 and 5xx.
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
    ):
        self.model = model
        self.base_url = base_url
        self.api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
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
                timeout=self.timeout,
                max_retries=self.max_retries,
                temperature=0,
            )
        return self._chat

    def chat_model(self):
        """The LangChain chat model (for tool calling: ``chat_model().bind_tools(tools)``)."""
        return self._client()

    def cache_key(self, messages: Sequence[tuple[str, str]], template: str = "") -> str:
        return key_hash({"model": self.model, "template": template, "messages": list(messages)}, 32)

    def complete(
        self, messages: Sequence[tuple[str, str]], record: dict[str, Any] | None = None, template: str = ""
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
        import openai

        try:
            message = self._client().invoke(list(messages))
        except openai.OpenAIError as error:
            raise LLMUnavailable(f"{type(error).__name__}: {error}") from error
        except (OSError, ValueError) as error:
            raise LLMUnavailable(f"{type(error).__name__}: {error}") from error
        content = message.content
        if isinstance(content, list):  # content parts
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        answer = str(content)
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
    ) -> tuple[str, Any, str | None, bool]:
        """Structured output (the server's JSON-schema mode): ``(raw, parsed, parse_error, from_cache)``.

        ``parsed`` is a ``schema`` instance, or ``None`` with ``parse_error`` saying why (malformed
        or empty JSON, a schema mismatch). Only answers that parsed are cached.

        Raises:
            LLMUnavailable: as :meth:`complete`.
        """
        key = self.cache_key(messages, f"structured:{schema.__name__}:{template}")
        path = self.cache_root / f"{key}.json" if self.cache_root is not None else None
        if path is not None and path.is_file():
            try:
                raw = str(json.loads(path.read_text())["answer"])
                return raw, schema.model_validate_json(raw), None, True
            except (OSError, ValueError, KeyError):
                pass  # a damaged entry is asked again and overwritten
        import openai
        import pydantic

        runnable = self._client().with_structured_output(schema, method="json_schema", include_raw=True)
        try:
            result = runnable.invoke(list(messages))
        except (pydantic.ValidationError, json.JSONDecodeError) as error:  # the client parsed and refused
            return "", None, _short(f"{type(error).__name__}: {error}"), False
        except openai.OpenAIError as error:
            raise LLMUnavailable(f"{type(error).__name__}: {error}") from error
        except (OSError, ValueError) as error:
            raise LLMUnavailable(f"{type(error).__name__}: {error}") from error
        content = result["raw"].content if result.get("raw") is not None else ""
        if isinstance(content, list):
            content = "".join(p.get("text", "") if isinstance(p, dict) else str(p) for p in content)
        raw, parsed, error = str(content), result.get("parsed"), result.get("parsing_error")
        if parsed is None and error is None:
            error = "the answer was empty" if not raw.strip() else "the answer did not parse"
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
    )


def _short(error: Any) -> str:
    text = " ".join(str(error).split())
    return text if len(text) <= 300 else text[:297] + "..."
