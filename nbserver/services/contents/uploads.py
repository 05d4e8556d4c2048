"""Chunked uploads: which upload a chunk belongs to. Pure bookkeeping: no I/O, no clock.

Theory of operation. A chunked upload is a series of PUTs carrying ``chunk`` 1, 2, ..., then -1
for the last; nothing else in them names the upload (jupyter's protocol has no upload id), so
two uploads to one path can only be told apart by their chunk numbers. :class:`Uploads` keeps,
per path, the *current* upload (the latest chunk 1) and its *rivals*: uploads that a later
chunk 1 superseded, whose clients may not know it yet. A rival is remembered by the chunk it
would send next and when it last sent one; its bytes are thrown away at once.

A chunk 1 always starts a new upload, which supersedes the current one. Any other chunk is
judged against the current upload and the rivals (every upload may send its next number or -1):

- it fits the current upload only: it is the current upload's (:attr:`Verdict.upload`);
- it fits a rival only: 409 ``"superseded"`` to that rival's client, which is forgotten;
- it fits both (the same next number, or -1): nobody can tell whose it is, and taking it
  could mix two uploads' bytes. It is refused with 409 ``"upload conflict"`` and the current
  upload is given up too (becoming a rival): the file keeps its old content;
- it fits nothing: 400 ``"bad chunk"``, and the current upload is given up.

So the file at a path is only ever the old content or exactly one upload's bytes. A client
whose chunk is refused must start again with chunk 1.

Time enters in one place. A rival that has been silent for :data:`RIVAL_SILENCE` seconds (or
four times the longest gap between its own chunks, if that is longer) has given up: a retry
after an interrupted upload would otherwise never finish, its last chunk (-1) fitting the
dead rival too. The rule is wrong only for a client that pauses longer than that in the middle
of an upload while another client uploads to the same path. Uploads silent for
:data:`UPLOAD_IDLE_LIMIT` are discarded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from ...errors import BadRequest, Conflict, NBServerError

__all__ = ["MAX_RIVALS", "RIVAL_SILENCE", "UPLOAD_IDLE_LIMIT", "Upload", "Uploads", "Verdict"]

UPLOAD_IDLE_LIMIT = 3600.0  # seconds without a chunk before an upload is discarded
RIVAL_SILENCE = 30.0  # seconds after which a superseded upload no longer counts
MAX_RIVALS = 8  # per path; the oldest are forgotten first

S = TypeVar("S")


@dataclass
class Upload(Generic[S]):
    """An upload in progress. ``store`` is the manager's: where the bytes so far are (a temp
    file, a buffer). Times: ``started`` is wall-clock (the model's ``created``), ``touched``
    the caller's clock (monotonic) at the latest chunk stored."""

    store: S
    existed: bool  # the target existed when chunk 1 arrived
    started: float
    touched: float
    size: int
    next_chunk: int = 2
    longest_gap: float = 0.0

    def stored(self, size: int, now: float) -> None:
        """Record that the next chunk (``size`` bytes) was stored at ``now``."""
        self.size += size
        self.next_chunk += 1
        self.longest_gap = max(self.longest_gap, now - self.touched)
        self.touched = now


@dataclass(frozen=True)
class _Rival:
    next_chunk: int
    touched: float
    longest_gap: float

    def fits(self, chunk: int) -> bool:
        return chunk in (self.next_chunk, -1)

    def gives_up(self, silence: float) -> float:
        """When (caller's clock) this rival stops counting."""
        return self.touched + max(silence, 4 * self.longest_gap)


@dataclass
class _Path(Generic[S]):
    current: Upload[S] | None = None
    rivals: list[_Rival] = field(default_factory=list)

    def supersede(self) -> S | None:
        """Make the current upload a rival; its store is returned, to be deleted."""
        current, self.current = self.current, None
        if current is None:
            return None
        self.rivals = [*self.rivals, _Rival(current.next_chunk, current.touched, current.longest_gap)]
        del self.rivals[:-MAX_RIVALS]
        return current.store


@dataclass
class Verdict(Generic[S]):
    """What to do with a chunk (:meth:`Uploads.judge`). Delete the stores in ``discard`` in any
    case; then raise ``error`` if set; else a chunk 1 is stored as a new upload
    (:meth:`Uploads.begin`), and any other chunk is added to ``upload``."""

    upload: Upload[S] | None
    discard: list[S]
    error: NBServerError | None = None


class Uploads(Generic[S]):
    """The chunked uploads of one contents manager, by API path (see the module docstring).
    Not thread-safe: the caller judges, stores and records one chunk at a time."""

    def __init__(
        self, *, idle_limit: float = UPLOAD_IDLE_LIMIT, rival_silence: float = RIVAL_SILENCE
    ) -> None:
        self.idle_limit = idle_limit
        self.rival_silence = rival_silence
        self._paths: dict[str, _Path[S]] = {}

    def judge(self, path: str, chunk: int, now: float) -> Verdict[S]:
        """Which upload chunk number ``chunk`` (1, 2, ... or -1) of ``path`` belongs to, at
        ``now`` (the caller's clock). Uploads idle too long are discarded on the way."""
        discard = self._expire(now)
        entry = self._paths.setdefault(path, _Path())
        if chunk == 1:
            discard += _some(entry.supersede())
            return Verdict(None, discard)
        current = entry.current
        fits_current = current is not None and chunk in (current.next_chunk, -1)
        fitting = [rival for rival in entry.rivals if rival.fits(chunk)]
        if fits_current and not fitting:
            return Verdict(current, discard)
        if fitting and not fits_current:  # the next chunk of a superseded upload
            exact = [rival for rival in fitting if rival.next_chunk == chunk]
            entry.rivals.remove((exact or fitting)[0])
            self._tidy(path)
            message = (
                f"This upload of {path!r} was superseded by a newer one (a new chunk 1): "
                f"chunk {chunk} is refused"
            )
            return Verdict(None, discard, Conflict(message, reason="superseded"))
        expected = f"{current.next_chunk} or -1" if current is not None else "1"
        discard += _some(entry.supersede() if fitting else _drop(entry))
        self._tidy(path)
        if fitting:
            return Verdict(
                None, discard, Conflict(self._conflict_message(path, chunk, now), reason="upload conflict")
            )
        message = f"Chunk {chunk} of {path!r} is out of order: expected {expected}"
        return Verdict(None, discard, BadRequest(message, reason="bad chunk"))

    def _conflict_message(self, path: str, chunk: int, now: float) -> str:
        entry = self._paths.get(path)
        wait = (
            max((r.gives_up(self.rival_silence) - now for r in entry.rivals), default=0.0) if entry else 0.0
        )
        return (
            f"Chunk {chunk} of {path!r} could belong to either of two uploads of it that overlap, so "
            "neither is kept and the file is unchanged. Upload it again"
            + (f" (in {math.ceil(wait)} s, if the other upload was interrupted)" if wait > 0 else "")
        )

    def begin(self, path: str, upload: Upload[S]) -> None:
        """Make ``upload`` (its chunk 1 stored) the current upload of ``path``."""
        self._paths.setdefault(path, _Path()).current = upload

    def end(self, path: str) -> None:
        """Forget the current upload of ``path``: its last chunk was stored, or storing a chunk
        failed (the caller deletes its store). Its rivals are still recognized."""
        entry = self._paths.get(path)
        if entry is not None:
            entry.current = None
            self._tidy(path)

    def clear(self) -> list[S]:
        """Forget everything; the stores of the uploads in progress, to delete (shutdown)."""
        stores = [entry.current.store for entry in self._paths.values() if entry.current is not None]
        self._paths.clear()
        return stores

    def _expire(self, now: float) -> list[S]:
        stale: list[S] = []
        for path, entry in list(self._paths.items()):
            if entry.current is not None and now - entry.current.touched > self.idle_limit:
                stale += _some(_drop(entry))
            entry.rivals = [r for r in entry.rivals if now < r.gives_up(self.rival_silence)]
            self._tidy(path)
        return stale

    def _tidy(self, path: str) -> None:
        entry = self._paths.get(path)
        if entry is not None and entry.current is None and not entry.rivals:
            del self._paths[path]


def _drop(entry: _Path[S]) -> S | None:
    """Give up the current upload without making it a rival."""
    current, entry.current = entry.current, None
    return None if current is None else current.store


def _some(store: S | None) -> list[S]:
    return [] if store is None else [store]
