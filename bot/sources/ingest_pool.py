"""Parsing and deriving a large JSON Lines file in worker processes.

SQLite stores in one process; parsing lines and deriving summaries and tags is Python work that
would take the same core. So the importing process reads the file once, in a thread, and hands
chunk ``i`` of its lines to worker ``i % N`` (on a bounded queue per worker), which parses and
derives it (:func:`bot.sources.ingest.prepare`) down to the rows a new paper is inserted as
(:func:`bot.store.papers.prepare_row`: the importer only executes them) and puts them on its
own bounded queue. The importer takes chunk ``i`` from worker ``i % N``: rows arrive in file
order, and the first error in file order is the one reported, with the message a sequential
read gives. At most :data:`QUEUE_CHUNKS` chunks wait per worker each way, so memory stays flat
however large the file. (Each worker reading the whole file itself, as it once did, decompressed
and split every line N times.)
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
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
# Workers yield the core to the importer, whose inserts are the import's last step: with them
# behind, the store has only a few chunks left when the last is prepared.
_WORKER_NICENESS = 5
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


def _work(label: str, inbox: multiprocessing.Queue, out: multiprocessing.Queue) -> None:
    """A worker's loop: prepare each chunk of lines from ``inbox`` until None comes."""
    if hasattr(os, "nice"):  # not on Windows
        os.nice(_WORKER_NICENESS)
    try:
        while (chunk := inbox.get()) is not None:
            first, lines = chunk
            skipped: list[int] = []
            entries = prepare(entries_of_chunk(first, lines, label, skipped))
            out.put((_CHUNK, [_pack(prepare_row(entry)) for entry in entries], skipped))
        out.put((_END, None, None))
    except InputError as exc:
        out.put((_ERROR, str(exc), None))
    except KeyboardInterrupt:
        pass  # the importer stops too
    except Exception as exc:  # a bug: the importer raises it
        out.put((_FAILED, f"{type(exc).__name__}: {exc}", None))


class PreparedChunks:
    """The prepared rows of one JSON Lines file, chunk by chunk, from worker processes.

    Use as a context manager (leaving it stops the reader and the workers). :meth:`next_chunk`
    may be called from another thread than the one that leaves the context.
    """

    def __init__(self, path: Path, workers: int | None = None) -> None:
        self.path = path
        self.workers = workers or worker_count()
        self._context = multiprocessing.get_context("spawn")  # the importer runs threads
        self._inboxes: list[Any] = []
        self._queues: list[Any] = []
        self._processes: list[BaseProcess] = []
        self._reader: threading.Thread | None = None
        self._read_error: PaperbotError | None = None  # set before the workers are told to end
        self._next = 0
        self._closed = False
        self._skipped = 0
        self._first_skipped = 0

    def __enter__(self) -> PreparedChunks:
        label = file_label(self.path)
        for index in range(self.workers):
            inbox, out = self._context.Queue(QUEUE_CHUNKS), self._context.Queue(QUEUE_CHUNKS)
            process = self._context.Process(
                target=_work, args=(label, inbox, out), name=f"paperbot-import-{index}", daemon=True
            )
            process.start()
            self._inboxes.append(inbox)
            self._queues.append(out)
            self._processes.append(process)
        self._reader = threading.Thread(target=self._read, name="paperbot-import-read", daemon=True)
        self._reader.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _read(self) -> None:
        """The reader thread: the file's chunks of lines to the workers in turn, then None."""
        try:
            for number, chunk in enumerate(iter_line_chunks(self.path, CHUNK_LINES)):
                if not self._hand(number % self.workers, chunk):
                    return
        except InputError as exc:  # unreadable: reported after the chunks read before it
            self._read_error = exc
        except Exception as exc:  # a bug: the importer raises it in file order
            self._read_error = PaperbotError(
                f"{self.path}: import reader failed ({type(exc).__name__}: {exc})"
            )
        for index in range(self.workers):
            self._hand(index, None)

    def _hand(self, worker: int, chunk: tuple[int, list[str]] | None) -> bool:
        """Put ``chunk`` in the worker's inbox once there is room; False once closed."""
        while not self._closed:
            try:
                self._inboxes[worker].put(chunk, timeout=_POLL_SECONDS)
                return True
            except queue.Full:
                continue
        return False

    def close(self) -> None:
        """Stop the reader and the workers (those still working are terminated)."""
        self._closed = True
        if self._reader is not None:
            self._reader.join()
        for process in self._processes:
            process.join(timeout=0 if process.exitcode is None else None)
            if process.is_alive():
                process.terminate()
                process.join()
        for channel in (*self._inboxes, *self._queues):
            channel.close()
            channel.cancel_join_thread()

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
            if self._read_error is not None:
                raise self._read_error
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
