"""Reading, parsing and deriving a large JSON Lines file in worker processes.

SQLite stores in one process; parsing lines and deriving summaries and tags is Python work that
would take the same core. So each worker process reads the whole file but parses and derives
(:func:`bot.sources.ingest.prepare`) only its share of the chunks (chunk ``i`` goes to worker
``i % N``), down to the rows a new paper is inserted as (:func:`bot.store.papers.prepare_row`:
the importer only executes them), and puts them on its own bounded queue. The importer takes
chunk ``i`` from worker ``i % N``: rows arrive in file order, and the first error in file order
is the one reported, with the message a sequential read gives. At most :data:`QUEUE_CHUNKS`
chunks wait per worker, so memory stays flat however large the file.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
from collections.abc import Iterator
from dataclasses import fields
from multiprocessing.process import BaseProcess
from operator import attrgetter
from pathlib import Path
from typing import Any

from bot.errors import InputError, PaperbotError
from bot.models import Listing
from bot.sources.ingest import prepare
from bot.sources.jsonl import entries_of_chunk, file_label, iter_line_chunks, log_skipped
from bot.store.papers import PreparedRow, prepare_row

CHUNK_LINES = 1000
QUEUE_CHUNKS = 2  # per worker
MAX_WORKERS = 2
# Below this a file is read in the importing process: starting workers costs more than it saves.
MIN_POOL_BYTES = 4 << 20
_POLL_SECONDS = 0.5  # how often a wait for a chunk checks that its worker is still alive

_CHUNK, _END, _ERROR, _FAILED = "chunk", "end", "error", "failed"

# Rows cross the queue as plain tuples: pickling a frozen dataclass with slots calls Python
# code per object and field on both sides, a tuple of its fields does not.
_Packed = tuple[tuple[Any, ...], tuple[Any, ...] | None]
_listing_fields = attrgetter(*(field.name for field in fields(Listing)))


def _pack(prepared: PreparedRow) -> _Packed:
    row, listing = prepared
    return row, None if listing is None else _listing_fields(listing)


def _unpack(packed: _Packed) -> PreparedRow:
    row, listing = packed
    return row, None if listing is None else Listing(*listing)


def worker_count() -> int:
    """Workers for this machine: one per usable core, at most :data:`MAX_WORKERS`."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_WORKERS))


def use_pool(path: Path) -> bool:
    """Whether ``path`` is large enough, and the machine has two cores, for worker processes."""
    try:
        size = path.stat().st_size
    except OSError:
        return False  # the sequential reader reports the error
    return size >= MIN_POOL_BYTES and worker_count() > 1


def _work(path: str, index: int, workers: int, lines: int, out: multiprocessing.Queue) -> None:
    """A worker's loop: prepare every ``workers``-th chunk of ``lines``, from the ``index``-th."""
    label = file_label(path)
    try:
        for number, chunk in enumerate(iter_line_chunks(path, lines)):
            if number % workers == index:
                skipped: list[int] = []
                entries = prepare(entries_of_chunk(chunk, label, skipped))
                rows = [_pack(prepare_row(entry)) for entry in entries]
                out.put((_CHUNK, rows, skipped))
        out.put((_END, None, None))
    except InputError as exc:
        out.put((_ERROR, str(exc), None))
    except KeyboardInterrupt:
        pass  # the importer stops too
    except Exception as exc:  # a bug: the importer raises it
        out.put((_FAILED, f"{type(exc).__name__}: {exc}", None))


class PreparedChunks:
    """The prepared rows of one JSON Lines file, chunk by chunk, from worker processes.

    Use as a context manager (leaving it stops the workers). :meth:`next_chunk` may be called
    from another thread than the one that leaves the context.
    """

    def __init__(self, path: Path, workers: int | None = None) -> None:
        self.path = path
        self.workers = workers or worker_count()
        self._context = multiprocessing.get_context("spawn")  # the importer runs threads
        self._queues: list[Any] = []
        self._processes: list[BaseProcess] = []
        self._next = 0
        self._closed = False
        self._skipped = 0
        self._first_skipped = 0

    def __enter__(self) -> PreparedChunks:
        for index in range(self.workers):
            out = self._context.Queue(QUEUE_CHUNKS)
            process = self._context.Process(
                target=_work,
                args=(str(self.path), index, self.workers, CHUNK_LINES, out),
                name=f"paperbot-import-{index}",
                daemon=True,
            )
            process.start()
            self._queues.append(out)
            self._processes.append(process)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the workers (those still working are terminated)."""
        self._closed = True
        for process in self._processes:
            process.join(timeout=0 if process.exitcode is None else None)
            if process.is_alive():
                process.terminate()
                process.join()
        for out in self._queues:
            out.close()
            out.cancel_join_thread()

    def __iter__(self) -> Iterator[list[PreparedRow]]:
        while (chunk := self.next_chunk()) is not None:
            yield chunk

    def next_chunk(self) -> list[PreparedRow] | None:
        """The next chunk's prepared rows in file order; None at the end of the file.

        Raises :class:`InputError` for a bad line or an unreadable file, as a sequential
        read would, and logs the skipped records at the end.
        """
        worker = self._next % self.workers
        kind, payload, skipped = self._get(worker)
        if kind == _END:
            if self._skipped:
                log_skipped(file_label(self.path), self._skipped, self._first_skipped)
            return None
        if kind == _ERROR:
            raise InputError(payload)
        if kind == _FAILED:
            raise PaperbotError(f"{self.path}: import worker failed ({payload})")
        self._next += 1
        if skipped:
            self._first_skipped = self._first_skipped or skipped[0]
            self._skipped += len(skipped)
        return [_unpack(packed) for packed in payload]

    def _get(self, worker: int) -> tuple[str, Any, Any]:
        out, process = self._queues[worker], self._processes[worker]
        while True:
            if self._closed:
                raise PaperbotError(f"{self.path}: import stopped")
            try:
                return out.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not process.is_alive() and out.empty():
                    raise PaperbotError(
                        f"{self.path}: import worker exited (code {process.exitcode})"
                    ) from None
