"""Pool ingestion: WebVid-style CSVs (and rendered toy pools) into the memory store.

A CSV has WebVid's columns, ``videoid`` and ``name`` (the caption) required,
``duration`` (seconds or ISO 8601 ``PT00H00M11S``), ``page_dir``,
``contentUrl`` and, for toy pools, ``label`` (JSON) optional. Videos are
looked up as ``<videos>/<videoid>.<ext>`` and WebVid's
``<videos>/<page_dir>/<videoid>.<ext>``.

Every batch: skip ids already stored, probe the videos, parse the captions
into units, embed captions and new unit phrases in one MiniLM call, write.
Records are keyed ``<pool>:<videoid>``, so an interrupted ingest resumes
where it stopped and a repeated one adds nothing. Bad rows, duplicate ids and
missing or unreadable videos are logged and counted, never fatal.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text

from memory.pool_paths import inside_videos
from memory.store import LedgerEntry, MemoryStore, PoolRecord, StoreStats, unit_phrase_set
from reelgraph.errors import ReelgraphError
from reelgraph.terminal_text import escape

log = logging.getLogger("reelgraph.memory.ingest")

REQUIRED_COLUMNS = ("videoid", "name")
VIDEO_EXTENSIONS = (".mp4", ".webm", ".mkv", ".mov", ".avi", ".gif")
MAX_PROBLEMS_KEPT = 50
_ISO_DURATION = re.compile(r"^P(?:T)?(?:(\d+(?:\.\d+)?)H)?(?:(\d+(?:\.\d+)?)M)?(?:(\d+(?:\.\d+)?)S)?$", re.I)


class IngestStats(BaseModel):
    """What an ingest did; every row read lands in exactly one of the counters."""

    pool: str
    source: str
    rows: int = Field(0, description="data rows read")
    added: int = 0
    already_indexed: int = Field(0, description="ids stored by an earlier (possibly interrupted) run")
    duplicates: int = Field(0, description="a videoid seen earlier in the same file")
    invalid_rows: int = Field(0, description="empty or garbled rows: no id, no caption, wrong field count")
    missing_videos: int = 0
    corrupt_videos: int = 0
    skipped_file: bool = Field(False, description="the ledger says this file was fully ingested before")
    seconds: float = 0.0
    captions_per_second: float = 0.0
    total_in_pool: int = 0
    problems: list[str] = Field(default_factory=list, description=f"the first {MAX_PROBLEMS_KEPT} problems")


class RemoveStats(BaseModel):
    pool: str
    removed: int
    remaining: int


class _RateColumn(ProgressColumn):
    def render(self, task) -> Text:
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} captions/s" if speed else "-- captions/s", style="progress.data.speed")


def _progress(enabled: bool) -> Progress:
    return Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=not enabled,
        transient=False,
    )


def parse_duration(value: str | None) -> float | None:
    """Seconds from ``"11.5"`` or WebVid's ISO 8601 ``"PT00H00M11S"``; None when unreadable."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    try:
        seconds = float(value)
        return seconds if seconds >= 0 else None
    except ValueError:
        pass
    match = _ISO_DURATION.match(value)
    if not match or not any(match.groups()):
        return None
    hours, minutes, secs = (float(g) if g else 0.0 for g in match.groups())
    return hours * 3600 + minutes * 60 + secs


def _file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _clean_lines(handle: io.TextIOBase) -> Iterator[str]:
    # csv refuses NUL bytes; a garbled line should cost one row, not the file.
    for line in handle:
        yield line.replace("\x00", "")


def _count_rows(path: Path) -> int:
    rows = 0
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.reader(_clean_lines(handle))
        while True:
            try:
                next(reader)
            except StopIteration:
                return max(rows - 1, 0)
            except csv.Error:  # e.g. a field over csv.field_size_limit(): still a row (a bad one)
                pass
            rows += 1


def find_video(videos: Path, videoid: str, page_dir: str | None) -> Path | None:
    """``<videos>/<videoid>.<ext>`` or WebVid's ``<videos>/<page_dir>/<videoid>.<ext>``."""
    folders = [videos]
    if page_dir:
        folders.append(videos / page_dir)
    for folder in folders:
        for ext in VIDEO_EXTENSIONS:
            candidate = folder / f"{videoid}{ext}"
            if candidate.is_file():
                return candidate
    return None


def probe_video(path: Path) -> tuple[int | None, float | None, float | None]:
    """(frames, fps, duration) of a readable video; raises ``ValueError`` when it is not."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise ValueError("no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate) if stream.average_rate else None
            duration = None
            if stream.duration is not None and stream.time_base is not None:
                duration = float(stream.duration * stream.time_base)
            elif container.duration is not None:
                duration = container.duration / 1_000_000
            next(container.decode(video=0))  # a header alone does not prove the file decodes
            frames = stream.frames or (round(duration * fps) if duration and fps else None)
    except (av.error.FFmpegError, StopIteration, IndexError, OSError) as error:
        raise ValueError(str(error) or type(error).__name__) from error
    return frames, fps, duration


class _Tally:
    def __init__(self, stats: IngestStats):
        self.stats = stats

    def problem(self, counter: str, message: str) -> None:
        setattr(self.stats, counter, getattr(self.stats, counter) + 1)
        log.warning("%s: %s", self.stats.source, message)
        if len(self.stats.problems) < MAX_PROBLEMS_KEPT:
            self.stats.problems.append(message)


def _read_rows(path: Path, tally: _Tally) -> Iterator[tuple[int, dict[str, Any]]]:
    """Valid rows as (line number, row); invalid and duplicate rows are tallied."""
    seen: set[str] = set()
    with open(path, encoding="utf-8", errors="replace", newline="") as handle:
        reader = csv.DictReader(_clean_lines(handle))
        columns = [c.strip() for c in (reader.fieldnames or [])]
        missing = [c for c in REQUIRED_COLUMNS if c not in columns]
        if missing:
            raise ReelgraphError(
                f"{str(path)!r} has no {', '.join(repr(c) for c in missing)} column.",
                why=f"its header is {columns or 'empty'}; a pool CSV needs WebVid's videoid and name columns.",
                fix="check the file (WebVid layout: videoid,contentUrl,duration,page_dir,name).",
            )
        reader.fieldnames = columns
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                tally.stats.rows += 1
                tally.problem("invalid_rows", f"line {reader.line_num}: unreadable ({error})")
                continue
            tally.stats.rows += 1
            line = reader.line_num
            if None in row or any(row.get(c) is None for c in REQUIRED_COLUMNS):
                tally.problem("invalid_rows", f"line {line}: wrong number of fields")
                continue
            videoid = row["videoid"].strip()
            caption = " ".join(row["name"].split())
            if not videoid or not caption:
                tally.problem("invalid_rows", f"line {line}: empty {'videoid' if not videoid else 'caption'}")
                continue
            if videoid in seen:
                tally.problem("duplicates", f"line {line}: videoid {videoid!r} repeats an earlier row")
                continue
            seen.add(videoid)
            row["videoid"], row["name"] = videoid, caption
            yield line, row


def _record_from_row(
    row: dict[str, Any], line: int, pool: str, videos: Path | None, tally: _Tally
) -> PoolRecord | None:
    videoid = row["videoid"]
    label = None
    if row.get("label"):
        try:
            label = json.loads(row["label"])
        except json.JSONDecodeError:
            log.warning("%s line %d: label is not JSON; stored without it", tally.stats.source, line)
    duration = parse_duration(row.get("duration"))
    frames = fps = None
    video = (row.get("contentUrl") or "").strip()
    if videos is not None:
        page_dir = (row.get("page_dir") or "").strip() or None
        if not inside_videos(videos, videoid, page_dir):
            tally.problem(
                "invalid_rows", f"line {line}: {videoid!r} (page_dir {page_dir!r}) is outside {videos}"
            )
            return None
        path = find_video(videos, videoid, page_dir)
        if path is None:
            tally.problem("missing_videos", f"line {line}: no video for {videoid!r} in {videos}")
            return None
        try:
            frames, fps, probed = probe_video(path)
        except ValueError as error:
            tally.problem("corrupt_videos", f"line {line}: {path} is unreadable ({error})")
            return None
        video = str(path.resolve())
        duration = probed if probed is not None else duration
    return PoolRecord(
        id=PoolRecord.make_id(pool, videoid),
        videoid=videoid,
        pool=pool,
        caption=row["name"],
        video=video,
        frames=frames,
        fps=fps,
        duration=duration,
        label=label,
    )


def _batches(
    rows: Iterator[tuple[int, dict[str, Any]]], size: int
) -> Iterator[list[tuple[int, dict[str, Any]]]]:
    batch: list[tuple[int, dict[str, Any]]] = []
    for item in rows:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def ingest_csv(
    store: MemoryStore,
    csv_path: str | Path,
    videos: str | Path | None = None,
    pool: str = "default",
    batch: int = 256,
    embedder=None,
    parser=None,
    progress: bool = True,
    workers: int = 1,
) -> IngestStats:
    """``index add``: ingest a WebVid-style CSV into ``pool``; resumable and idempotent.

    Args:
        store: the memory store to write.
        csv_path: the CSV file.
        videos: folder of videos; without it records keep ``contentUrl`` (if any) and no probe runs.
        pool: pool name; records are keyed ``<pool>:<videoid>``.
        batch: rows per embedding batch.
        embedder: MiniLM embedder (default :func:`reelgraph.text.embeddings.get_embedder`).
        parser: unit parser (default :func:`reelgraph.text.units.get_parser`).
        progress: show a rich progress bar on stderr.
        workers: 1: one batch after the other; 2: a batch is embedded and written in a second
            thread while the next one is parsed (torch releases the GIL in its kernels, so the two
            overlap on two free cores; on busy cores it does not pay).
    """
    csv_path = Path(csv_path).expanduser()
    videos = Path(videos).expanduser() if videos is not None else None
    if not csv_path.is_file():
        raise ReelgraphError(f"CSV file {str(csv_path)!r} does not exist.", fix="check the path.")
    if videos is not None and not videos.is_dir():
        raise ReelgraphError(f"Videos folder {str(videos)!r} does not exist.", fix="check --videos.")
    if not pool or ":" in pool:
        raise ReelgraphError(f"Pool name {pool!r} is not usable.", fix="use a non-empty name without ':'.")
    if batch < 1:
        raise ReelgraphError(f"Batch size {batch} must be at least 1.")
    if workers not in (1, 2):
        raise ReelgraphError(f"--workers {workers} is not supported.", fix="use 1 or 2.")
    if embedder is None:
        from reelgraph.text.embeddings import get_embedder

        embedder = get_embedder()
    if parser is None:
        from reelgraph.text.units import get_parser

        parser = get_parser()

    started = time.perf_counter()
    stats = IngestStats(pool=pool, source=str(csv_path))
    tally = _Tally(stats)
    sha = _file_sha256(csv_path)
    with store.writing():
        entry = store.get_ledger(pool, sha)
        if entry is not None and entry.complete:
            stats.skipped_file = True
            stats.rows = entry.rows
            stats.already_indexed = entry.added
            stats.total_in_pool = store.count(pool)
            stats.seconds = time.perf_counter() - started
            return stats
        entry = LedgerEntry(pool=pool, source=str(csv_path), sha256=sha, complete=False)
        store.put_ledger(entry)
        total = _count_rows(csv_path)
        lock = threading.Lock()  # one Chroma call at a time when a writer thread runs
        with _progress(progress) as bar, ThreadPoolExecutor(max_workers=1) as writer:
            task = bar.add_task(escape(f"index {pool}"), total=total)  # the pool name is shown as text
            pending: tuple[Future, int, int] | None = None

            def settle() -> None:
                """Wait for the batch in flight; count it and record it in the ledger once written."""
                nonlocal pending
                if pending is None:
                    return
                future, rows, added = pending
                pending = None
                future.result()
                stats.added += added
                bar.update(task, completed=rows)
                with lock:
                    store.put_ledger(entry.model_copy(update={"rows": rows, "added": stats.added}))

            try:
                for chunk in _batches(_read_rows(csv_path, tally), batch):
                    ids = [PoolRecord.make_id(pool, row["videoid"]) for _, row in chunk]
                    with lock:
                        existing = store.existing_ids(ids)
                    stats.already_indexed += len(existing)
                    records = []
                    for (line, row), record_id in zip(chunk, ids, strict=True):
                        if record_id in existing:
                            continue
                        record = _record_from_row(row, line, pool, videos, tally)
                        if record is not None:
                            records.append(record)
                    _parse_batch(records, parser)  # overlaps the previous batch's embedding (workers=2)
                    settle()  # the previous batch's phrases are stored before this one asks for them
                    with lock:
                        known = store.existing_phrases(unit_phrase_set(records))
                    new_phrases = [p for p in unit_phrase_set(records) if p not in known]
                    job = (store, records, new_phrases, embedder, lock)
                    if workers > 1:
                        pending = (writer.submit(_embed_and_add, *job), stats.rows, len(records))
                    else:
                        future: Future = Future()
                        future.set_result(_embed_and_add(*job))
                        pending = (future, stats.rows, len(records))
                        settle()
                settle()
            finally:
                if pending is not None:  # an interrupted run still finishes the batch in flight
                    pending[0].exception()
            bar.update(task, completed=stats.rows, total=stats.rows)
        store.put_ledger(
            entry.model_copy(update={"rows": stats.rows, "added": stats.added, "complete": True})
        )
        stats.total_in_pool = store.count(pool)
    stats.seconds = time.perf_counter() - started
    stats.captions_per_second = stats.added / stats.seconds if stats.seconds > 0 else 0.0
    return stats


def _parse_batch(records: list[PoolRecord], parser) -> None:
    """Atomized units and core of every record, from one ``nlp.pipe`` over the captions."""
    if not records:
        return
    parsed = parser.parse_many([r.caption for r in records])
    for record, prompt in zip(records, parsed, strict=True):
        record.units, record.core = prompt.units, prompt.core


def _embed_and_add(
    store: MemoryStore, records: list[PoolRecord], new_phrases: list[str], embedder, lock: threading.Lock
) -> None:
    """Embed captions and new unit phrases in one MiniLM call, then write them (one Chroma call each)."""
    if not records:
        return
    vectors = embedder.embed([r.caption for r in records] + new_phrases)
    caption_vectors = vectors[: len(records)]
    phrase_vectors = dict(zip(new_phrases, vectors[len(records) :], strict=True))
    with lock:
        store.add(records, caption_vectors, phrase_vectors)


def toy_pool_folder(data_dir: str | Path, pool: str, n: int, seed: int) -> Path:
    return Path(data_dir).expanduser() / "pools" / f"{pool}-n{n}-seed{seed}"


def ingest_toy(
    store: MemoryStore,
    data_dir: str | Path,
    n: int,
    seed: int = 0,
    pool: str = "toy",
    frames: int = 24,
    batch: int = 256,
    embedder=None,
    parser=None,
    progress: bool = True,
    workers: int = 1,
) -> IngestStats:
    """``index toy``: render ``n`` toy clips into ``<data_dir>/pools/`` (once) and ingest them."""
    if n < 1:
        raise ReelgraphError(f"A toy pool needs at least one video, got n={n}.")
    from toyworld.dataset import render_pool

    folder = toy_pool_folder(data_dir, pool, n, seed)
    if not (folder / "captions.csv").is_file():
        render_pool(n, folder, seed=seed, frames=frames)
    return ingest_csv(
        store,
        folder / "captions.csv",
        videos=folder / "videos",
        pool=pool,
        batch=batch,
        embedder=embedder,
        parser=parser,
        progress=progress,
        workers=workers,
    )


def remove_pool(store: MemoryStore, pool: str) -> RemoveStats:
    """``index remove``: delete a pool's records and ledger entries."""
    with store.writing():
        removed = store.remove_pool(pool)
    if removed == 0:
        log.warning("pool %r had no records", pool)
    return RemoveStats(pool=pool, removed=removed, remaining=store.count())


def store_stats(store: MemoryStore) -> StoreStats:
    """``index stats``: counts per pool, phrases, ingests and disk use."""
    return store.stats()
