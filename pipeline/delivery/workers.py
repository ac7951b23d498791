"""Requests in flight: several batches sent at once, each by a provider of its own
(its own SMTP connection, its own HTTP client), while the caller claims and records.

The caller (the send loop) keeps the database to itself: it claims a batch, commits it
in flight, personalises and encodes it (``Job.personalise``, or ``Encoders`` in other
processes for a long send), hands it here, and records what comes back. A worker only
sends. With one worker nothing runs on a thread: the batch is sent in the caller.
"""

from __future__ import annotations

import ctypes
import fcntl
import gc
import multiprocessing
import os
import queue
import signal
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

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
# in this global, so that nothing of it is pickled; each task sends only the readers.
_FORKED: tuple[Editions, Provider] | None = None
MIN_BATCHES = 8  # a send this many batches long or longer is worth the processes
ENCODER_PATIENCE = 30.0  # seconds; a batch takes milliseconds, unless its process died
PIPE_BYTES = 1 << 20  # a task (1,000 readers, 70 KB) or a request (800 KB) fits at once


class Encoders:
    """Processes that personalise and encode batches for a provider that makes its
    requests ahead (SendGrid), while the send loop claims and records: the loop's
    thread then holds Python's one running thread only for the ledger.

    Each process has a pipe for its tasks and one for its results, which come back in
    the order of its tasks; the sender thread whose job waits for one reads them (the
    interpreter's lock is free while it waits), so no thread runs for the processes.
    (multiprocessing.Pool has three, one of which polls while a result is unread: a
    fifth of a core on a send of 800 KB requests.)

    Forked (the editions are already prepared in memory, and a fork copies them), so
    only when this process has no other thread: a fork copies just the calling one, and
    a lock another thread held would stay locked in the copy. Each process ends when
    its parent does, however it ends: its task pipe closes (every other copy of its
    writing end is closed in the children) and, on Linux, the kernel kills it (a
    SIGKILLed send leaves none behind, tests/test_crash.py). Each ignores Ctrl-C, which
    the terminal sends to the whole process group: the send loop decides when to stop."""

    def __init__(self, emails: Editions, provider: Provider, processes: int):
        global _FORKED
        _FORKED = (emails, provider)
        context = multiprocessing.get_context("fork")
        self.encoders: list[_Encoder] = []
        # what exists now is never collected in a child: its collector would walk (and
        # so copy, page by page) the whole inherited heap, for nothing
        gc.freeze()
        try:
            for _ in range(processes):
                tasks_out, tasks_in = context.Pipe(duplex=False)
                results_out, results_in = context.Pipe(duplex=False)
                for connection in (tasks_in, results_in):
                    _widen(connection)
                inherited = [e.tasks for e in self.encoders] + [e.results for e in self.encoders]
                process = context.Process(target=_serve, daemon=True, name="encoder", args=(
                    tasks_out, results_in, [tasks_in, results_out, *inherited]))
                process.start()
                tasks_out.close()
                results_in.close()
                self.encoders.append(_Encoder(process, tasks_in, results_out))
        finally:
            _FORKED = None  # the children have their copies
            gc.unfreeze()

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

    def encode(self, edition: str, batch: list[Recipient]) -> Encoding:
        """The batch's request, begun in the process with the fewest tasks."""
        encoder = min(self.encoders, key=lambda e: (not e.alive, len(e.waiting)))
        encoding = Encoding(encoder)
        encoder.waiting.append(encoding)  # before the task: its result may come at once
        try:
            # plain tuples: a dataclass pickles five times slower, on the send loop's time
            encoder.tasks.send((edition, [(r.id, r.email, r.name, r.fields, r.ref, r.edition)
                                          for r in batch]))
        except OSError:  # the process is gone: its readers find out, and make what it owed
            encoder.alive = False
        return encoding

    def close(self) -> None:
        for encoder in self.encoders:  # what is not encoded yet is not needed: the run is over
            encoder.tasks.close()
            encoder.process.terminate()
        for encoder in self.encoders:
            encoder.process.join()
            encoder.results.close()


class _Encoder:
    """One process, its pipes, and the encodings it owes, in the order of their tasks."""

    def __init__(self, process, tasks: Connection, results: Connection):
        self.process, self.tasks, self.results = process, tasks, results
        self.waiting: deque[Encoding] = deque()
        self.reading = threading.Lock()  # one thread reads the results at a time
        self.alive = True

    def lost(self) -> None:
        """The process died (or cannot be reached): what it owed, its threads make. The
        caller holds ``reading``."""
        self.alive = False
        while self.waiting:
            self.waiting.popleft().done = True


class Encoding:
    """A batch's request being made in an encoder process."""

    __slots__ = ("encoder", "value", "done")

    def __init__(self, encoder: _Encoder):
        self.encoder, self.value, self.done = encoder, None, False

    def get(self) -> object:
        """The request, or None when its process died (the caller makes it)."""
        encoder = self.encoder
        with encoder.reading:
            while not self.done:  # results of earlier tasks are handed to their own
                try:
                    if not encoder.alive or not encoder.results.poll(ENCODER_PATIENCE):
                        raise EOFError
                    value = encoder.results.recv()
                except (EOFError, OSError):
                    encoder.lost()
                    break
                first = encoder.waiting.popleft()
                first.value, first.done = value, True
        return self.value


def _widen(connection: Connection) -> None:
    """A pipe that holds a whole task or request (Linux): the writer goes on at once."""
    try:
        fcntl.fcntl(connection.fileno(), F_SETPIPE_SZ, PIPE_BYTES)
    except (OSError, AttributeError):
        pass


F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)


def _serve(tasks: Connection, results: Connection, inherited: list[Connection]) -> None:
    """An encoder process: tasks in, requests out, until its parent is gone."""
    for connection in inherited:  # the parent's ends: only the parent may hold them
        connection.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    os.nice(NICER)
    try:
        ctypes.CDLL(None).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        pass
    assert _FORKED is not None
    emails, provider = _FORKED
    while True:
        try:
            edition, rows = tasks.recv()
        except (EOFError, OSError):
            return
        email = emails[edition]
        try:
            encoded = provider.encode([email.message(Recipient(*row)) for row in rows])
        except Exception:  # noqa: BLE001 - the sender thread makes it again, and says why
            encoded = None
        results.send(encoded)


PR_SET_PDEATHSIG = 1  # linux/prctl.h
# An encoder keeps ahead of the send loop, whose one thread is what a send waits for:
# where they share a core, the loop goes first.
NICER = 5


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
            if isinstance(job.encoded, Encoding):  # made in an encoder process, or
                job.encoded = job.encoded.get()  # None: its process died, made here
            return provider.send(job.messages, self.clock(), job.encoded)
        except BaseException as exc:  # noqa: BLE001 - the caller records, then raises it
            return exc
