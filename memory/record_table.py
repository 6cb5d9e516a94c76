"""What the re-rank reads per record, beside Chroma: unit phrases as rows of a phrase table.

A query asks Chroma's HNSW for ids and distances only (about 5 ms for K = 200);
reading the K records' metadata and documents from Chroma's SQLite cost another
~30 ms (bench/results/search_latency.md). The re-rank needs only each record's
units (three phrase slots each), its core unit and a key of its normalised
caption (for the references' "no repeats" rule), plus the phrase vectors; this
table holds exactly that, in flat binary files read through ``numpy.memmap``:

========================  =====================  ===========================================
file                      dtype, shape           what
========================  =====================  ===========================================
``ids.jsonl``             one JSON string a line the record ids, row order
``caption_keys.bin``      uint64 ``(N,)``        64-bit hash of the normalised caption
``unit_starts.bin``       int64 ``(N,)``         first row of the record's units in ``units``
``unit_counts.bin``       int32 ``(N,)``         how many units it has
``cores.bin``             int32 ``(N,)``         core unit index within the record, -1 none
``units.bin``             int32 ``(T, 3)``       phrase rows of motion, actor, recipient; -1 absent
``phrases.jsonl``         one JSON string a line the phrase texts, row order
``phrase_vectors.bin``    float32 ``(P, 384)``   MiniLM vectors of the phrases
``meta.json``             JSON                   committed counts N, T, P
========================  =====================  ===========================================

Chroma stays the source of truth: the table is appended after every write,
and rebuilt from Chroma when it is missing, damaged or its counts disagree
with Chroma's. Appends are crash-safe: data files grow first, then
``meta.json`` is replaced atomically; bytes past the committed counts (an
interrupted append) are cut off by the next append and never read. A record
written again (an upsert of an id) gets a new row; the id maps to its last row.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from reelgraph.atomic import write_json
from reelgraph.text.embeddings import EMBEDDING_DIM
from reelgraph.text.units import ROLES, Unit

VERSION = 1
ABSENT, NO_VECTOR = -1, -2  # unit slots: the role is absent / the phrase has no stored vector
_COUNTS = ("records", "units", "phrases", "ids_bytes", "phrases_bytes")
_PUNCT = re.compile(r"[^\w\s]")
# name -> (dtype, trailing shape, which count sets its length)
_ARRAYS = {
    "caption_keys": (np.uint64, (), "records"),
    "unit_starts": (np.int64, (), "records"),
    "unit_counts": (np.int32, (), "records"),
    "cores": (np.int32, (), "records"),
    "units": (np.int32, (len(ROLES),), "units"),
    "phrase_vectors": (np.float32, (EMBEDDING_DIM,), "phrases"),
}


def normalise_caption(text: str) -> str:
    """Lower case, no punctuation, single spaces: what counts as "the same caption"."""
    return " ".join(_PUNCT.sub(" ", text.casefold()).split())


def caption_key(text: str) -> int:
    """64-bit key of the normalised caption (two captions collide with probability ~2^-64)."""
    digest = hashlib.blake2b(normalise_caption(text).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


@dataclass(frozen=True)
class TableRecord:
    """What one record contributes to a re-rank (a ``RecordTable`` row, already read)."""

    caption_key: int
    core: int | None
    units: tuple[tuple[str | None, ...], ...]


@dataclass
class CandidateRows:
    """K candidates gathered for the re-rank.

    ``units`` ``(T, 3)`` hold indices into ``phrases``/``vectors`` ``(C, 384)``
    (-1: the role is absent); candidate ``i`` owns units
    ``starts[i] : starts[i] + counts[i]``; ``cores`` ``(K,)`` is the core's index
    within them or -1.
    """

    ids: list[str]
    similarities: np.ndarray
    caption_keys: np.ndarray
    starts: np.ndarray
    counts: np.ndarray
    cores: np.ndarray
    units: np.ndarray
    phrases: list[str]
    vectors: np.ndarray


class RecordTable:
    """The memory-mapped side table in ``folder`` (see the module docstring)."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder)
        self._stamp: tuple[int, int] | None = None
        self._load()

    # ------------------------------------------------------------------ reading

    @property
    def records(self) -> int:
        return self._counts["records"]

    @property
    def distinct_records(self) -> int:
        return len(self._row_of)

    @property
    def phrase_count(self) -> int:
        return self._counts["phrases"]

    def _meta_stamp(self) -> tuple[int, int] | None:
        try:
            stat = (self.folder / "meta.json").stat()
        except OSError:
            return None
        return (stat.st_mtime_ns, stat.st_size)

    def _load(self) -> None:
        stamp = self._meta_stamp()
        counts = dict.fromkeys(_COUNTS, 0)
        if stamp is not None:
            meta = json.loads((self.folder / "meta.json").read_text())
            if meta.get("version") != VERSION or meta.get("dim") != EMBEDDING_DIM:
                raise ValueError(f"record table version {meta.get('version')} / dim {meta.get('dim')}")
            counts = {key: int(meta[key]) for key in _COUNTS}
        self._counts = counts
        self._arrays = {name: self._map(name) for name in _ARRAYS}
        self._ids = _read_lines(self.folder / "ids.jsonl", counts["records"], counts["ids_bytes"])
        self._row_of = {record_id: row for row, record_id in enumerate(self._ids)}
        self._phrases = _read_lines(self.folder / "phrases.jsonl", counts["phrases"], counts["phrases_bytes"])
        self._phrase_row = {phrase: row for row, phrase in enumerate(self._phrases)}
        self._stamp = stamp

    def _map(self, name: str) -> np.ndarray:
        dtype, shape, count_key = _ARRAYS[name]
        n = self._counts[count_key]
        if n == 0:
            return np.zeros((0, *shape), dtype)
        path = self.folder / f"{name}.bin"
        expected = n * int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if path.stat().st_size < expected:
            raise ValueError(f"{path} holds fewer than the {n} committed rows")
        return np.memmap(path, dtype=dtype, mode="r", shape=(n, *shape))

    def refresh(self) -> bool:
        """Re-read the table when another process committed an append; True when it did."""
        if self._meta_stamp() == self._stamp:
            return False
        self._load()
        return True

    def has(self, record_id: str) -> bool:
        return record_id in self._row_of

    def phrase_vectors(self, phrases: Iterable[str]) -> dict[str, np.ndarray]:
        """``(384,)`` vector per known phrase; unknown phrases are left out."""
        vectors = self._arrays["phrase_vectors"]
        return {p: np.array(vectors[self._phrase_row[p]]) for p in phrases if p in self._phrase_row}

    def known_phrases(self, phrases: Iterable[str]) -> set[str]:
        return {p for p in phrases if p in self._phrase_row}

    def record(self, record_id: str) -> TableRecord:
        """One record's row, phrases as text (for tests and for checking a rebuild)."""
        row = self._row_of[record_id]
        start, count = int(self._arrays["unit_starts"][row]), int(self._arrays["unit_counts"][row])
        units = tuple(
            tuple(self._phrases[i] if i >= 0 else None for i in unit)  # NO_VECTOR reads as None too
            for unit in self._arrays["units"][start : start + count].tolist()
        )
        core = int(self._arrays["cores"][row])
        return TableRecord(int(self._arrays["caption_keys"][row]), core if core >= 0 else None, units)

    def candidates(self, ids: Sequence[str], similarities: Sequence[float]) -> CandidateRows:
        """Gather the rows of ``ids`` (all must be in the table) for a re-rank."""
        rows = np.fromiter((self._row_of[i] for i in ids), np.int64, len(ids))
        starts = self._arrays["unit_starts"][rows]
        counts = self._arrays["unit_counts"][rows].astype(np.int64)
        own_starts = np.zeros(len(rows), np.int64)
        if len(rows):
            own_starts[1:] = np.cumsum(counts)[:-1]
        unit_rows = (
            np.concatenate(
                [np.arange(s, s + c) for s, c in zip(starts.tolist(), counts.tolist(), strict=True)]
            )
            if counts.sum()
            else np.zeros(0, np.int64)
        )
        units = self._arrays["units"][unit_rows] if len(unit_rows) else np.zeros((0, len(ROLES)), np.int32)
        # Renumber the phrase rows these candidates use 0..C-1; -1 (absent) and -2 (no vector) stay.
        flat = units.ravel().astype(np.int64)
        present = flat >= 0
        phrase_rows, inverse = np.unique(flat[present], return_inverse=True)
        flat[present] = inverse
        local = flat.reshape(units.shape)
        return CandidateRows(
            ids=list(ids),
            similarities=np.asarray(similarities, np.float64),
            caption_keys=self._arrays["caption_keys"][rows],
            starts=own_starts,
            counts=counts,
            cores=self._arrays["cores"][rows].astype(np.int64),
            units=local,
            phrases=[self._phrases[i] for i in phrase_rows.tolist()],
            vectors=np.asarray(self._arrays["phrase_vectors"][phrase_rows], np.float32),
        )

    # ------------------------------------------------------------------ writing

    def append(
        self,
        records: Sequence[tuple[str, str, list[Unit], int | None]],
        phrase_vectors: dict[str, np.ndarray],
    ) -> None:
        """Append ``(id, caption, units, core)`` records and new phrases ``{phrase: (384,)}``.

        A phrase neither in the table nor in ``phrase_vectors`` is stored as -2: present, without
        a vector (the re-rank scores it 0, as it scores a phrase Chroma has no vector for).
        """
        self.refresh()
        new_phrases = [p for p in phrase_vectors if p not in self._phrase_row]
        added_rows = {p: len(self._phrases) + i for i, p in enumerate(new_phrases)}

        def phrase_row(phrase: str) -> int:
            row = self._phrase_row.get(phrase)
            return added_rows.get(phrase, NO_VECTOR) if row is None else row

        keys, starts, counts, cores, unit_rows = [], [], [], [], []
        next_unit = self._counts["units"]
        for _, caption, units, core in records:
            keys.append(caption_key(caption))
            starts.append(next_unit)
            counts.append(len(units))
            cores.append(-1 if core is None else core)
            for unit in units:
                unit_rows.append([phrase_row(p) if (p := unit.phrase(role)) else -1 for role in ROLES])
            next_unit += len(units)
        new = {
            "caption_keys": np.asarray(keys, np.uint64),
            "unit_starts": np.asarray(starts, np.int64),
            "unit_counts": np.asarray(counts, np.int32),
            "cores": np.asarray(cores, np.int32),
            "units": np.asarray(unit_rows, np.int32).reshape(-1, len(ROLES)),
            "phrase_vectors": (
                np.stack([phrase_vectors[p] for p in new_phrases]).astype(np.float32)
                if new_phrases
                else np.zeros((0, EMBEDDING_DIM), np.float32)
            ),
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        for name, values in new.items():
            dtype, shape, count_key = _ARRAYS[name]
            _append_bytes(
                self.folder / f"{name}.bin",
                self._counts[count_key] * int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize,
                np.ascontiguousarray(values, dtype).tobytes(),
            )
        ids = [r[0] for r in records]
        ids_bytes = _append_lines(self.folder / "ids.jsonl", self._counts["ids_bytes"], ids)
        phrases_bytes = _append_lines(
            self.folder / "phrases.jsonl", self._counts["phrases_bytes"], new_phrases
        )
        counts = {
            "records": self._counts["records"] + len(records),
            "units": next_unit,
            "phrases": self._counts["phrases"] + len(new_phrases),
            "ids_bytes": ids_bytes,
            "phrases_bytes": phrases_bytes,
        }
        write_json(self.folder / "meta.json", {"version": VERSION, "dim": EMBEDDING_DIM, **counts})
        # Extend what is in memory instead of re-reading every line (a 1M-record build appends 500 times).
        for record_id in ids:
            self._row_of[record_id] = len(self._ids)
            self._ids.append(record_id)
        for phrase in new_phrases:
            self._phrase_row[phrase] = len(self._phrases)
            self._phrases.append(phrase)
        self._counts = counts
        self._arrays = {name: self._map(name) for name in _ARRAYS}
        self._stamp = self._meta_stamp()


def _read_lines(path: Path, n: int, size: int) -> list[str]:
    """The first ``n`` JSON-string lines of the committed ``size`` bytes of ``path``."""
    if n == 0:
        return []
    with open(path, "rb") as handle:
        data = handle.read(size)
    lines = data.decode("utf-8").split("\n")[:n]
    if len(data) < size or len(lines) < n:
        raise ValueError(f"{path} holds fewer than the {n} committed lines")
    return [json.loads(line) for line in lines]


def _append_bytes(path: Path, committed: int, data: bytes) -> None:
    with open(path, "ab") as handle:
        handle.truncate(committed)  # drop what an interrupted append left past the committed rows
    with open(path, "ab") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def _append_lines(path: Path, committed: int, new: list[str]) -> int:
    """Append JSON lines after the ``committed`` bytes; returns the new committed size."""
    data = "".join(json.dumps(t, ensure_ascii=False) + "\n" for t in new).encode("utf-8")
    _append_bytes(path, committed, data)
    return committed + len(data)


def build_table(folder: Path, pages: Iterable[tuple[list, dict[str, np.ndarray]]]) -> RecordTable:
    """Write a fresh table into ``folder`` from ``(records, new phrase vectors)`` pages, atomically:
    it is built beside ``folder`` and renamed into place."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        table = RecordTable(scratch)
        for records, phrase_vectors in pages:
            table.append(records, phrase_vectors)
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old / folder.name)
            os.replace(scratch, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(scratch, folder)
    except BaseException:
        shutil.rmtree(scratch, ignore_errors=True)
        raise
    return RecordTable(folder)
