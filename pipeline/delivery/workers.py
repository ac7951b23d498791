"""Requests in flight: several batches sent at once, each by a provider of its own
(its own SMTP connection, its own HTTP client), while the caller claims and records.

The caller (the send loop) keeps the database to itself: it claims a batch, commits it
in flight, personalises and encodes it (``Job.personalise``, or ``Encoders`` in other
processes for a long send), hands it here, and records what comes back. A worker only
sends. With one worker nothing runs on a thread: the batch is sent in the caller.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.pool import AsyncResult

from .pace import Pace
from .personalise import Editions, Message, PreparedEmail, Recipient
from .providers import Outcome, Provider

STOPPED = "stopped"  # a job that waited for a retry and found the run stopping


@dataclass
class Job:
    batch: list[Recipient]
    email: PreparedEmail  # the edition every reader of the batch gets
    attempt: int = 1
    delay: float = 0.0  # seconds to wait first (a retry's backoff)
    error: str = ""  # why it is tried again
    messages: list[Message] = field(default_factory=list)  # the batch's, personalised
    encoded: object = None  # the provider's request for them, made ahead

    def personalise(self, provider: Provider, encoders: Encoders | None = None,
                    edition: str = "") -> Job:
        """The batch's messages and request made now, by the caller (or, with
        ``encoders``, begun in another process): the CPU work of a request done before
        it is handed to a thread that only waits on the network."""
        if encoders is not None:
            self.encoded = encoders.encode(edition, self.batch)
            self.messages = Personalised(self.email, self.batch)
            return self
        self.messages = [self.email.message(recipient) for recipient in self.batch]
        self.encoded = provider.encode(self.messages)
        return self


Result = list[Outcome] | BaseException | str  # outcomes, what the provider raised, STOPPED


class Personalised(Sequence[Message]):
    """A batch's messages, each made when it is first asked for: a request encoded in
    another process needs them here only when SendGrid refuses part of it."""

    def __init__(self, email: PreparedEmail, batch: list[Recipient]):
        self.email, self.batch = email, batch
        self.made: dict[int, Message] = {}

    def __len__(self) -> int:
        return len(self.batch)

    def __getitem__(self, index: int) -> Message:  # type: ignore[override]
        if index not in self.made:
            self.made[index] = self.email.message(self.batch[index])
        return self.made[index]


# Encoder processes: forked with what they need (the editions and the provider)
# in this global, so that nothing of it is pickled; each call sends only the readers.
_FORKED: tuple[Editions, Provider] | None = None
MIN_BATCHES = 8  # a send this many batches long or longer is worth the processes
ENCODER_PATIENCE = 30.0  # seconds; a batch takes milliseconds, unless its process died


class Encoders:
    """Processes that personalise and encode batches for a provider that makes its
    requests ahead (SendGrid), while the send loop claims and records: the loop's
    thread then holds Python's one running thread only for the ledger.

    Forked (the editions are already prepared in memory, and a fork copies them), so
    only when this process has no other thread: a fork copies just the calling one, and
    a lock another thread held would stay locked in the copy. Each process ends when
    its parent does, however it ends (its pipe from the parent closes: a SIGKILLed send
    leaves none behind, tests/test_crash.py), and ignores Ctrl-C, which the terminal
    sends to the whole process group: the send loop decides when to stop."""

    def __init__(self, emails: Editions, provider: Provider, processes: int):
        global _FORKED
        _FORKED = (emails, provider)
        context = multiprocessing.get_context("fork")
        self.pool = context.Pool(processes, initializer=_encoder_started)

    @classmethod
    def start(cls, emails: Editions, provider: Provider, pending: int) -> Encoders | None:
        """Encoder processes for this send, or None when they would not help or are
        not safe: a provider that encodes nothing ahead, a short send, another thread
        running (tests that serve on threads), or no fork (not Linux or macOS)."""
        if type(provider).encode is Provider.encode or pending < MIN_BATCHES * \
                provider.batch_size or threading.active_count() > 1 or \
                "fork" not in multiprocessing.get_all_start_methods():
            return None
        processes = max(1, min(4, (os.cpu_count() or 2) - 1))
        return cls(emails, provider, processes)

    def encode(self, edition: str, batch: list[Recipient]) -> AsyncResult:
        # plain tuples: a dataclass pickles five times slower, on the send loop's time
        return self.pool.apply_async(_encode, (edition, [
            (r.id, r.email, r.name, r.fields, r.ref, r.edition) for r in batch]))

    def close(self) -> None:
        global _FORKED
        self.pool.terminate()  # what is not encoded yet is not needed: the run is over
        self.pool.join()
        _FORKED = None


def _encoder_started() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _encode(edition: str, rows: list[tuple]) -> object:
    assert _FORKED is not None
    emails, provider = _FORKED
    email = emails[edition]
    return provider.encode([email.message(Recipient(*row)) for row in rows])


def return_large_buffers() -> None:
    """Buffers of 128 KB or more (a SendGrid request is 700 KB, as text and as bytes)
    come from and go back to the system, as glibc does before a free of one raises its
    threshold (up to 32 MB): with requests made and freed on several threads the freed
    ones stayed with the process, and a send of 100,000 readers peaked at 131 MB instead
    of 90. Nothing on other C libraries."""
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)
    except (OSError, AttributeError):
        pass


M_MMAP_THRESHOLD = -3  # glibc's malloc.h


class Senders:
    """``n`` providers sending jobs; ``submit(job)`` then ``result() -> (job, result)``
    in the order they finish."""

    def __init__(self, provider: Provider, n: int, pace: Pace,
                 clock, sleep: Callable[[float], None], stop: Callable[[], bool]):
        self.provider, self.n = provider, max(1, n)
        self.pace, self.clock = pace, clock
        self.sleep, self.stop = sleep, stop
        self.jobs: queue.Queue[Job | None] = queue.Queue()
        self.results: queue.Queue[tuple[Job, Result]] = queue.Queue()
        self.done: deque[tuple[Job, Result]] = deque()  # one worker: finished in the caller
        self.threads: list[threading.Thread] = []

    def __enter__(self) -> Senders:
        if self.n == 1:
            self.provider.open()
            return self
        return_large_buffers()
        for index in range(self.n):
            provider = self.provider if index == 0 else self.provider.worker()
            thread = threading.Thread(target=self._work, args=(provider,), daemon=True,
                                      name=f"send-{index}")
            thread.start()
            self.threads.append(thread)
        return self

    def __exit__(self, *exc) -> None:
        if self.n == 1:
            self.provider.close()
            return
        while True:  # jobs not begun are not sent: their readers stay claimed
            try:
                self.jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join()

    def submit(self, job: Job) -> None:
        if self.n == 1:
            self.done.append((job, self._run(self.provider, job)))
        else:
            self.jobs.put(job)

    def result(self) -> tuple[Job, Result]:
        return self.done.popleft() if self.n == 1 else self.results.get()

    def _work(self, provider: Provider) -> None:
        try:
            provider.open()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, raised there
            failure: BaseException | None = exc
        else:
            failure = None
        try:
            while (job := self.jobs.get()) is not None:
                self.results.put((job, failure or self._run(provider, job)))
        finally:
            if failure is None:
                provider.close()

    def _run(self, provider: Provider, job: Job) -> Result:
        try:
            if job.delay:
                self.sleep(job.delay)  # a stop ends the wait at once
                if self.stop():
                    return STOPPED
            self.pace.wait(len(job.batch))
            if not job.messages:
                job.personalise(provider)
            if isinstance(job.encoded, AsyncResult):  # made in an encoder process
                try:
                    job.encoded = job.encoded.get(ENCODER_PATIENCE)
                except multiprocessing.TimeoutError:  # its process died: made here
                    job.encoded = None
            return provider.send(job.messages, self.clock(), job.encoded)
        except BaseException as exc:  # noqa: BLE001 - the caller records, then raises it
            return exc
