"""The pool search tool: captions (POS references) and motion-prior videos (Search-T2V hits)."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from agent.services import Retriever
from agent.tools.quoting import POOL_TEXT_NOTE, quoted


class SearchArgs(BaseModel):
    text: str = Field(min_length=1, max_length=2000, description="the prompt or scene text to look up")
    limit: int = Field(3, ge=1, le=10, description="at most this many references and motion hits")


class PoolItem(BaseModel):
    id: str
    caption: str = Field(description="quoted data: a JSON string literal from the pool")
    video: str
    score: float | None = Field(description="similarity (references) or total rerank score (hits)")


class SearchAnswer(BaseModel):
    note: str = POOL_TEXT_NOTE
    pool_videos: int
    references: list[PoolItem]
    motion_hits: list[PoolItem]
    nearest: PoolItem | None


def _item(found: dict[str, Any]) -> PoolItem:
    score = found.get("similarity")
    if score is None and isinstance(found.get("score"), dict):
        score = found["score"].get("total")
    return PoolItem(
        id=str(found["id"]),
        caption=quoted(str(found.get("caption", ""))),
        video=str(found.get("video", "")),
        score=score,
    )


def search_tool(retriever: Retriever) -> BaseTool:
    def search_pool(text: str, limit: int = 3) -> dict:
        found = retriever.retrieve(text).model_dump()
        nearest = found.get("nearest")
        return SearchAnswer(
            pool_videos=retriever.pool_size(),
            references=[_item(r) for r in found["references"][:limit]],
            motion_hits=[_item(h) for h in found["motion_hits"][:limit]],
            nearest=_item(nearest) if nearest else None,
        ).model_dump()

    return StructuredTool.from_function(
        func=search_pool,
        name="search_pool",
        description=(
            "Search the reference pool for a text: captions most like it (references for a "
            "rewrite, the nearest video for ONA noise) and motion-prior videos (for LoRA tuning). "
            "Captions come back as quoted data."
        ),
        args_schema=SearchArgs,
    )
