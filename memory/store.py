"""The pool: Chroma behind a small interface.

Three collections, all fed with our own vectors (Chroma's default embedding
function downloads a model, so it is never used; every ``add`` and ``query``
carries explicit embeddings):

* ``pool_captions``: one record per video. Id ``<pool>:<videoid>``, document =
  caption, embedding = MiniLM sentence vector (cosine HNSW), metadata = pool,
  videoid, video path or URI, frames, fps, duration, toy label (JSON) when
  there is one, and the caption's atomized units (JSON) with the core index.
* ``unit_phrases``: one record per distinct unit phrase ("roll to the right",
  "police car"). Id = document = the phrase, embedding = MiniLM vector of the
  phrase. A unit's motion, actor and recipient vectors are the vectors of its
  three phrases, so a million captions share a few hundred thousand phrase
  vectors instead of storing three vectors per unit.
* ``ingest_ledger``: one record per ingested (pool, source file): counts and
  whether the ingest completed. Chroma needs an embedding per record, so the
  ledger stores a constant 1-d vector; it is never queried by similarity.

Beside Chroma, :mod:`memory.record_table` keeps what the re-rank reads per
record (unit phrases as phrase rows, core, caption key, phrase vectors) in
memory-mapped files, so a query asks Chroma for ids and distances only. It
lives in ``<home>/record_table`` (embedded mode) or, with a server, in a
temporary folder of the process; it is appended after every write and rebuilt
from Chroma when it is missing or disagrees with Chroma's counts.

Embedded mode opens a ``PersistentClient`` in ``<home>/chroma``; server mode
(``url="http://host:port"``) an ``HttpClient``. Writers take an exclusive
lock on ``<home>/chroma/reelgraph.lock`` (embedded mode) so that two ingests
never write the same folder at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import numpy as np
from pydantic import BaseModel, Field

from memory.record_table import CandidateRows, RecordTable, build_table
from reelgraph.errors import ReelgraphError
from reelgraph.text.embeddings import EMBEDDING_DIM
from reelgraph.text.units import Unit, unit_phrases

CAPTIONS = "pool_captions"
PHRASES = "unit_phrases"
LEDGER = "ingest_ledger"
LOCK_FILE = "reelgraph.lock"
TABLE_FOLDER = "record_table"
log = logging.getLogger("reelgraph.memory.store")
# Chroma rejects larger add batches; stay well below its limit.
MAX_WRITE_BATCH = 4000
_UNIT_KEYS = ("motion", "actor", "recipient", "motion_phrase", "actor_phrase", "recipient_phrase")


class PoolRecord(BaseModel):
    """One captioned video of a pool, as stored and as returned by searches."""

    id: str = Field(description="'<pool>:<videoid>'")
    videoid: str
    pool: str
    caption: str
    video: str = Field("", description="local path or URI of the video; empty when unknown")
    frames: int | None = None
    fps: float | None = None
    duration: float | None = None
    label: dict[str, Any] | None = Field(None, description="toy-world label when the pool is a toy pool")
    units: list[Unit] = Field(default_factory=list)
    core: int | None = None

    @staticmethod
    def make_id(pool: str, videoid: str) -> str:
        return f"{pool}:{videoid}"

    def to_metadata(self) -> dict[str, Any]:
        meta: dict[str, Any] = {
            "pool": self.pool,
            "videoid": self.videoid,
            "video": self.video,
            "units": json.dumps([[getattr(u, k) for k in _UNIT_KEYS] for u in self.units]),
            "core": -1 if self.core is None else self.core,
        }
        for key in ("frames", "fps", "duration"):
            value = getattr(self, key)
            if value is not None:
                meta[key] = value
        if self.label is not None:
            meta["label"] = json.dumps(self.label, sort_keys=True)
        return meta

    @classmethod
    def from_chroma(cls, record_id: str, caption: str, meta: dict[str, Any]) -> PoolRecord:
        # Written by to_metadata, so construction skips validation (it dominated query time).
        units = [
            Unit.model_construct(**dict(zip(_UNIT_KEYS, row, strict=True)))
            for row in json.loads(meta.get("units", "[]"))
        ]
        core = int(meta.get("core", -1))
        return cls.model_construct(
            id=record_id,
            videoid=str(meta.get("videoid", record_id.split(":", 1)[-1])),
            pool=str(meta.get("pool", "")),
            caption=caption or "",
            video=str(meta.get("video", "")),
            frames=meta.get("frames"),
            fps=meta.get("fps"),
            duration=meta.get("duration"),
            label=json.loads(meta["label"]) if meta.get("label") else None,
            units=units,
            core=core if core >= 0 else None,
        )


class Candidate(BaseModel):
    """A nearest-neighbour hit: the record and its sentence cosine similarity."""

    record: PoolRecord
    similarity: float


class LedgerEntry(BaseModel):
    """What one ingest of one source file into one pool did."""

    pool: str
    source: str
    sha256: str
    complete: bool = False
    rows: int = 0
    added: int = 0

    @property
    def id(self) -> str:
        return f"{self.pool}:{self.sha256[:32]}"


class StoreStats(BaseModel):
    location: str
    captions: int
    phrases: int
    pools: dict[str, int]
    ingests: list[LedgerEntry]
    disk_bytes: int | None = Field(None, description="size of the Chroma folder (embedded mode)")


def _check_writable(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-probe-"):
            pass
    except OSError as error:
        raise ReelgraphError(
            f"The memory folder {str(folder)!r} is not writable.",
            why=f"{type(error).__name__}: {error.strerror or error}",
            fix="choose another data directory with --home or REELGRAPH_HOME, or fix the folder's permissions.",
        ) from error


class StoreUnreachable(ReelgraphError):
    """The Chroma server does not answer: planning routes around retrieval, an ingest stops."""


def _chroma_error(action: str, where: str, error: Exception) -> ReelgraphError:
    text = str(error)
    if where.startswith(("http://", "https://")) and _is_connection_error(error):
        return StoreUnreachable(
            f"Chroma could not {action}: the server at {where} is unreachable.",
            why=f"{type(error).__name__}: {text}",
            fix="check that the server runs; what was written before it went away is complete, "
            "and rerunning an ingest continues from there.",
        )
    if "locked" in text.lower():
        return ReelgraphError(
            f"Chroma could not {action} at {where}: the database is locked.",
            why=text,
            fix="wait for the other process that writes this memory folder, then try again.",
        )
    if where.startswith(("http://", "https://")):
        fix = "check the server's log; restart it, or point --chroma-url at a healthy one."
    else:
        fix = (
            f"the database in {where} may be damaged: move that folder aside (keep it: it holds your pool) "
            "and ingest again (index toy / index add), or restore it from a backup."
        )
    return ReelgraphError(
        f"Chroma could not {action} at {where}.", why=f"{type(error).__name__}: {text}", fix=fix
    )


def _is_connection_error(error: BaseException) -> bool:
    import httpx

    while error is not None:
        if isinstance(error, (httpx.TransportError, ConnectionError)):
            return True
        if "could not connect" in str(error).lower():
            return True
        error = error.__cause__ or error.__context__
    return False


class MemoryStore:
    """The pool of captioned videos and unit phrase vectors in Chroma.

    Args:
        home: the data directory; Chroma lives in ``<home>/chroma``. Ignored with ``url``.
        url: ``http://host:port`` of a Chroma server; uses ``HttpClient``.
    """

    def __init__(self, home: str | os.PathLike[str] | None = None, url: str | None = None):
        if home is None and url is None:
            raise ReelgraphError(
                "No memory location given.", fix="pass a data directory or a Chroma server URL."
            )
        self.url = url
        self.folder = None if url else Path(home).expanduser() / "chroma"
        self.location = url or str(self.folder)
        self._table: RecordTable | None = None
        self._scratch: tempfile.TemporaryDirectory | None = None
        self.table_seconds: float | None = None  # how long the last table rebuild took
        self._client = self._connect()
        with self._chroma("open its collections"):
            # embedding_function=None: Chroma's default would download a model;
            # every vector it sees is ours.
            self.captions = self._client.get_or_create_collection(
                CAPTIONS, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
            self.phrases = self._client.get_or_create_collection(
                PHRASES, embedding_function=None, configuration={"hnsw": {"space": "cosine"}}
            )
            self.ledger = self._client.get_or_create_collection(LEDGER, embedding_function=None)

    # ------------------------------------------------------------------ connection

    def _connect(self):
        import chromadb
        from chromadb.config import Settings

        settings = Settings(anonymized_telemetry=False)
        if self.url:
            parsed = urlparse(self.url if "://" in self.url else f"http://{self.url}")
            if parsed.scheme not in {"http", "https"} or not parsed.hostname:
                raise ReelgraphError(
                    f"{self.url!r} is not a Chroma server URL.", fix="use the form http://host:port."
                )
            port = parsed.port or (443 if parsed.scheme == "https" else 8000)
            try:
                client = chromadb.HttpClient(
                    host=parsed.hostname, port=port, ssl=parsed.scheme == "https", settings=settings
                )
                client.heartbeat()
            except Exception as error:
                raise StoreUnreachable(
                    f"The Chroma server at {self.url} is unreachable.",
                    why=f"{type(error).__name__}: {error}",
                    fix="start it (chroma run --path DIR --port PORT) or check the URL; "
                    "without a URL reelgraph uses an embedded store in the data directory.",
                ) from error
            return client
        _check_writable(self.folder)
        try:
            return chromadb.PersistentClient(path=str(self.folder), settings=settings)
        except Exception as error:
            raise _chroma_error("open the store", self.location, error) from error

    @contextlib.contextmanager
    def _chroma(self, action: str) -> Iterator[None]:
        """Turn Chroma and transport failures into :class:`ReelgraphError`."""
        try:
            yield
        except ReelgraphError:
            raise
        except Exception as error:
            raise _chroma_error(action, self.location, error) from error

    @contextlib.contextmanager
    def writing(self) -> Iterator[None]:
        """Exclusive writer lock (embedded mode); a second writer gets a clear error."""
        if self.folder is None:
            yield
            return
        lock_path = self.folder / LOCK_FILE
        handle = open(lock_path, "a+")  # noqa: SIM115 - held for the whole block
        try:
            try:
                fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as error:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise ReelgraphError(
                    f"The memory folder {str(self.folder)!r} is locked by another writer (pid {holder}).",
                    why="two processes writing one Chroma folder at once can corrupt it.",
                    fix="wait for the other ingest to finish, or use another data directory.",
                ) from error
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
            yield
        finally:
            handle.close()  # closing releases the lock

    # ------------------------------------------------------------------ writes

    def add(
        self, records: Sequence[PoolRecord], vectors: np.ndarray, phrase_vectors: dict[str, np.ndarray]
    ) -> None:
        """Add caption records ``(N,)`` with sentence vectors ``(N, 384)`` and new phrase vectors.

        Phrases go in first, so a caption never points at a missing phrase;
        an interrupted call leaves at most unused phrases behind.
        """
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(records), EMBEDDING_DIM):
            raise ValueError(f"expected ({len(records)}, {EMBEDDING_DIM}) vectors, got {vectors.shape}")
        phrases = list(phrase_vectors)
        table = self.table  # checked against Chroma (and rebuilt if need be) before Chroma changes
        with self._chroma("write records"):
            for start in range(0, len(phrases), MAX_WRITE_BATCH):
                chunk = phrases[start : start + MAX_WRITE_BATCH]
                self.phrases.upsert(
                    ids=chunk,
                    embeddings=np.stack([phrase_vectors[p] for p in chunk]).astype(np.float32),
                    documents=chunk,
                )
            for start in range(0, len(records), MAX_WRITE_BATCH):
                chunk = records[start : start + MAX_WRITE_BATCH]
                self.captions.upsert(
                    ids=[r.id for r in chunk],
                    embeddings=vectors[start : start + len(chunk)],
                    documents=[r.caption for r in chunk],
                    metadatas=[r.to_metadata() for r in chunk],
                )
        table.append([(r.id, r.caption, r.units, r.core) for r in records], phrase_vectors)

    def remove_pool(self, pool: str) -> int:
        """Delete a pool's captions and ledger entries; returns how many captions went."""
        before = self.count(pool)
        with self._chroma(f"remove pool {pool!r}"):
            self.captions.delete(where={"pool": pool})
            self.ledger.delete(where={"pool": pool})
        self.drop_table()  # rebuilt from Chroma on next use
        return before

    def put_ledger(self, entry: LedgerEntry) -> None:
        with self._chroma("write the ingest ledger"):
            self.ledger.upsert(
                ids=[entry.id], embeddings=np.ones((1, 1), np.float32), metadatas=[entry.model_dump()]
            )

    # ------------------------------------------------------------------ reads

    def get_ledger(self, pool: str, sha256: str) -> LedgerEntry | None:
        probe = LedgerEntry(pool=pool, source="", sha256=sha256)
        with self._chroma("read the ingest ledger"):
            found = self.ledger.get(ids=[probe.id], include=["metadatas"])
        return LedgerEntry(**found["metadatas"][0]) if found["ids"] else None

    def ledger_entries(self) -> list[LedgerEntry]:
        with self._chroma("read the ingest ledger"):
            found = self.ledger.get(include=["metadatas"])
        return [LedgerEntry(**meta) for meta in found["metadatas"]]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        found: set[str] = set()
        with self._chroma("look up record ids"):
            for start in range(0, len(ids), MAX_WRITE_BATCH):
                chunk = list(ids[start : start + MAX_WRITE_BATCH])
                found.update(self.captions.get(ids=chunk, include=[])["ids"])
        return found

    def existing_phrases(self, phrases: Sequence[str]) -> set[str]:
        known = self.table.known_phrases(phrases)
        rest = [p for p in phrases if p not in known]
        with self._chroma("look up unit phrases"):
            for start in range(0, len(rest), MAX_WRITE_BATCH):
                known.update(self.phrases.get(ids=rest[start : start + MAX_WRITE_BATCH], include=[])["ids"])
        return known

    def count(self, pool: str | None = None) -> int:
        with self._chroma("count records"):
            if pool is None:
                return self.captions.count()
            return len(self.captions.get(where={"pool": pool}, include=[])["ids"])

    def pools(self) -> dict[str, int]:
        names = sorted({entry.pool for entry in self.ledger_entries()})
        return {name: self.count(name) for name in names}

    def stats(self) -> StoreStats:
        disk = None
        if self.folder is not None:
            disk = sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file())
        with self._chroma("count records"):
            phrases = self.phrases.count()
        return StoreStats(
            location=self.location,
            captions=self.count(),
            phrases=phrases,
            pools=self.pools(),
            ingests=self.ledger_entries(),
            disk_bytes=disk,
        )

    def nearest(self, vector: np.ndarray, k: int, pool: str | None = None) -> list[Candidate]:
        """Top ``k`` captions by cosine similarity to ``vector`` ``(384,)`` (Chroma's HNSW)."""
        if k <= 0:
            return []
        with self._chroma("query the pool"):
            found = self.captions.query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                n_results=k,
                where={"pool": pool} if pool else None,
                include=["documents", "metadatas", "distances"],
            )
        return [
            Candidate(record=PoolRecord.from_chroma(i, doc, meta), similarity=1.0 - float(dist))
            for i, doc, meta, dist in zip(
                found["ids"][0],
                found["documents"][0],
                found["metadatas"][0],
                found["distances"][0],
                strict=True,
            )
        ]

    def nearest_ids(
        self, vector: np.ndarray, k: int, pool: str | None = None
    ) -> tuple[list[str], np.ndarray]:
        """Ids and cosine similarities ``(k,)`` of the top ``k`` captions: HNSW distances only, no
        metadata read (what the re-rank needs per record is in :attr:`table`)."""
        if k <= 0:
            return [], np.zeros(0)
        with self._chroma("query the pool"):
            found = self.captions.query(
                query_embeddings=np.asarray(vector, dtype=np.float32).reshape(1, -1),
                n_results=k,
                where={"pool": pool} if pool else None,
                include=["distances"],
            )
        return list(found["ids"][0]), 1.0 - np.asarray(found["distances"][0], np.float64)

    def candidate_rows(self, ids: Sequence[str], similarities: np.ndarray) -> CandidateRows:
        """The re-rank's rows of ``ids`` from the record table; a table that misses one of them
        (another process wrote Chroma) is re-read, then rebuilt."""
        table = self.table
        if not all(table.has(i) for i in ids):
            log.info("the record table misses records Chroma returned; rebuilding it")
            table = self.rebuild_table()
        return table.candidates(ids, similarities)

    def get(self, ids: Sequence[str]) -> list[PoolRecord]:
        if not ids:
            return []
        with self._chroma("read records"):
            found = self.captions.get(ids=list(ids), include=["documents", "metadatas"])
        by_id = {
            i: PoolRecord.from_chroma(i, d, m)
            for i, d, m in zip(found["ids"], found["documents"], found["metadatas"], strict=True)
        }
        return [by_id[i] for i in ids if i in by_id]

    def iter_all(
        self, pool: str | None = None, page: int = 2000
    ) -> Iterator[tuple[list[PoolRecord], np.ndarray]]:
        """Every record with its sentence vector ``(n, 384)``, page by page (for exhaustive ranking)."""
        offset = 0
        while True:
            with self._chroma("read records"):
                found = self.captions.get(
                    where={"pool": pool} if pool else None,
                    include=["documents", "metadatas", "embeddings"],
                    limit=page,
                    offset=offset,
                )
            if not found["ids"]:
                return
            records = [
                PoolRecord.from_chroma(i, d, m)
                for i, d, m in zip(found["ids"], found["documents"], found["metadatas"], strict=True)
            ]
            yield records, np.asarray(found["embeddings"], dtype=np.float32)
            offset += len(found["ids"])

    def sorted_records(self, pool: str | None = None, limit: int | None = None) -> list[PoolRecord]:
        """The pool's records sorted by id (the first ``limit``): a stable order, so ``--limit N``
        always names the same videos and offline jobs over the pool resume."""
        records = [record for page, _ in self.iter_all(pool) for record in page]
        if not records:
            where = f"pool {pool!r}" if pool else "the memory store"
            raise ReelgraphError(
                f"There are no videos in {where}.",
                fix="ingest a pool first: `index toy --n N` or `index add --csv FILE --videos DIR`.",
            )
        records.sort(key=lambda record: record.id)
        return records[:limit] if limit else records

    def phrase_vectors(self, phrases: Sequence[str]) -> dict[str, np.ndarray]:
        """``(384,)`` vector per stored phrase; unknown phrases are left out."""
        phrases = list(dict.fromkeys(phrases))
        out = self.table.phrase_vectors(phrases)
        missing = [p for p in phrases if p not in out]
        with self._chroma("read unit phrase vectors"):
            for start in range(0, len(missing), MAX_WRITE_BATCH):
                found = self.phrases.get(ids=missing[start : start + MAX_WRITE_BATCH], include=["embeddings"])
                for phrase, vector in zip(found["ids"], found["embeddings"], strict=True):
                    out[phrase] = np.asarray(vector, dtype=np.float32)
        return {p: out[p] for p in phrases if p in out}

    # ------------------------------------------------------------------ the record table

    @property
    def table_folder(self) -> Path:
        if self.folder is not None:
            return self.folder.parent / TABLE_FOLDER
        if self._scratch is None:  # a server's table is this process's own
            self._scratch = tempfile.TemporaryDirectory(prefix="reelgraph-table-")
        return Path(self._scratch.name) / TABLE_FOLDER

    @property
    def table(self) -> RecordTable:
        """The record table, current with Chroma: opened once, rebuilt when it disagrees."""
        if self._table is not None:
            self._table.refresh()
            return self._table
        with self._chroma("count records"):
            captions, phrases = self.captions.count(), self.phrases.count()
        try:
            table = RecordTable(self.table_folder)
        except (OSError, ValueError) as error:
            log.warning(
                "record table in %s is unreadable (%s); rebuilding it from Chroma", self.table_folder, error
            )
            table = None
        if table is None or (table.distinct_records, table.phrase_count) != (captions, phrases):
            table = self.rebuild_table()
        self._table = table
        return table

    def rebuild_table(self) -> RecordTable:
        """Write the record table afresh from Chroma's captions and phrases (seconds in :attr:`table_seconds`)."""
        started = time.perf_counter()
        log.info("building the record table in %s from Chroma", self.table_folder)
        self._table = build_table(self.table_folder, self._table_pages())
        self.table_seconds = time.perf_counter() - started
        return self._table

    def drop_table(self) -> None:
        """Forget the record table (it is rebuilt from Chroma on next use)."""
        self._table = None
        shutil.rmtree(self.table_folder, ignore_errors=True)

    def _table_pages(self, page: int = 5000) -> Iterator[tuple[list, dict[str, np.ndarray]]]:
        offset = 0
        while True:
            with self._chroma("read unit phrase vectors"):
                found = self.phrases.get(include=["embeddings"], limit=page, offset=offset)
            if not found["ids"]:
                break
            vectors = np.asarray(found["embeddings"], np.float32)
            yield [], dict(zip(found["ids"], vectors, strict=True))
            offset += len(found["ids"])
        offset = 0
        while True:
            with self._chroma("read records"):
                found = self.captions.get(include=["documents", "metadatas"], limit=page, offset=offset)
            if not found["ids"]:
                return
            rows = []
            for record_id, caption, meta in zip(
                found["ids"], found["documents"], found["metadatas"], strict=True
            ):
                record = PoolRecord.from_chroma(record_id, caption, meta)
                rows.append((record.id, record.caption, record.units, record.core))
            yield rows, {}
            offset += len(found["ids"])


def unit_phrase_set(records: Sequence[PoolRecord]) -> list[str]:
    """Distinct phrases of all units of ``records`` (motion, actor and recipient)."""
    return unit_phrases(unit for record in records for unit in record.units)
