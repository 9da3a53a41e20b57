"""An asyncio-native process pool: a `concurrent.futures.Executor` for `loop.run_in_executor`,
run by the event loop itself, without threads.

Each process has a task pipe and a result pipe of its own; the loop writes tasks and reads
results when the pipes are ready (``add_writer``/``add_reader``). So a call costs no thread
hand-offs under the GIL, and the next task already waits in a process's pipe (enlarged to
hold a whole batch) while the current one runs. What a pool running other people's code needs:

- a process that dies fails only the task it was running; a new process takes its place and
  the tasks queued behind it;
- a task past its time limit has its process killed (SIGKILL), then the same;
- a process is replaced after ``max_tasks`` tasks, for leaky code.

``submit`` must be called from the loop's thread (``run_in_executor`` does).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import fcntl
import mmap
import os
import pickle
import signal
import struct
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from multiprocessing import get_context
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from worker.pool.process_child import serve

PIPE_BYTES = 1 << 20  # a process's task pipe holds a whole batch (Linux allows 1 MiB unprivileged)
READ_BYTES = 1 << 16
STOP_WAIT_S = 5.0


class ProcessDied(Exception):
    def __init__(self, exitcode: int | None) -> None:
        super().__init__(f"process died (exit code {exitcode})")
        self.exitcode = exitcode


class TaskTimedOut(Exception):
    def __init__(self, timeout_s: float) -> None:
        super().__init__(f"timed out after {timeout_s:g} s")
        self.timeout_s = timeout_s


@dataclass(eq=False)
class _Task:
    future: Future[Any]
    call: tuple[Callable[..., Any], tuple[Any, ...]]
    timeout_s: float | None
    region: tuple[int, int] | None = None  # where its buffers sit in its process's memory


@dataclass(eq=False)
class _Process:
    process: BaseProcess
    tasks_fd: int
    results_fd: int
    queue: deque[_Task] = field(default_factory=deque)  # the head is running
    unsent: bytearray = field(default_factory=bytearray)
    received: bytearray = field(default_factory=bytearray)
    done: int = 0
    retiring: bool = False  # served its share: gets no new tasks, stops once idle
    timed_out: _Task | None = None
    timer: asyncio.TimerHandle | None = None
    shared: mmap.mmap | None = None  # memory shared with the process, for large buffers
    ready: bool = False  # its initializer has run: a task's clock starts only from then


def _frame(payload: bytes) -> bytes:
    n = len(payload)
    header = struct.pack("!i", n) if n <= 0x7FFFFFFF else struct.pack("!iQ", -1, n)
    return header + payload


class ProcessExecutor(Executor):
    def __init__(
        self,
        size: int,
        initializer: Callable[..., None],
        initargs: Sequence[Any] = (),
        *,
        timeout_of: Callable[[tuple[Any, ...]], float | None] = lambda args: None,
        max_tasks: int = 0,
        on_replace: Callable[[str], None] = lambda reason: None,
        shared_bytes: int = 0,
        start_method: str = "forkserver",
    ) -> None:
        """``timeout_of(args)``: a task's time limit; ``on_replace(reason)``: a process was
        replaced because of a "crash", a "timeout" or a "recycle"; ``shared_bytes``: memory
        shared with each process, through which ``pickle.PickleBuffer`` arguments travel
        instead of the pipe (0: none; Linux only)."""
        self.size = size
        self._init = (initializer, tuple(initargs))
        self._timeout_of, self._max_tasks, self._on_replace = timeout_of, max_tasks, on_replace
        self._shared_bytes = shared_bytes if hasattr(os, "memfd_create") else 0
        self._context: Any = get_context(start_method)  # typeshed types only literal names
        self._loop: asyncio.AbstractEventLoop | None = None
        self._processes: list[_Process] = []
        self._closed = False

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        for _ in range(self.size):
            self._spawn()
        # runs before multiprocessing's own exit handler (registered first), which would
        # wait forever for processes that ignore SIGTERM if the worker exits without shutdown
        atexit.register(self._kill_all)

    def _kill_all(self) -> None:
        for proc in self._processes:
            with contextlib.suppress(OSError, ValueError):
                proc.process.kill()

    @property
    def alive(self) -> bool:
        return not self._closed and any(p.process.is_alive() for p in self._processes)

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        if self._closed or self._loop is None:
            raise RuntimeError("the process pool is not running")
        if kwargs:
            raise TypeError("ProcessExecutor.submit takes positional arguments only")
        task = _Task(Future(), (fn, args), self._timeout_of(args))
        self._assign(task)
        return task.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Close every task pipe (a process exits when its queue is done), then wait; kill
        whatever is left after a few seconds."""
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self._kill_all)
        for proc in self._processes:
            self._detach(proc)
            if proc.tasks_fd >= 0:
                os.close(proc.tasks_fd)
        for proc in self._processes:
            if wait:
                proc.process.join(STOP_WAIT_S)
            if proc.process.is_alive():
                proc.process.kill()
                proc.process.join()
            os.close(proc.results_fd)
            if proc.shared is not None:
                proc.shared.close()
            for task in proc.queue:
                if not task.future.done():
                    task.future.set_exception(RuntimeError("the process pool was shut down"))
        self._processes.clear()

    # -- dispatch --------------------------------------------------------------------------

    def _assign(self, task: _Task) -> None:
        open_ = [p for p in self._processes if not p.retiring]
        proc = min(open_, key=lambda p: len(p.queue))  # least loaded; ties: the first
        frame = self._encode(proc, task)
        proc.queue.append(task)
        if len(proc.queue) == 1:
            self._started(proc)
        proc.unsent += frame
        self._write(proc)

    def _encode(self, proc: _Process, task: _Task) -> bytes:
        """The task's frame for ``proc``: its PickleBuffer arguments copied into the memory
        shared with it when they fit (one copy, no pipe), else pickled in the frame."""
        buffers: list[pickle.PickleBuffer] = []
        pickled = pickle.dumps(task.call, 5, buffer_callback=buffers.append)
        need = sum(b.raw().nbytes for b in buffers)
        start = _allocate(proc, need) if buffers and proc.shared is not None else None
        if start is None:
            task.region = None
            return _frame(struct.pack("!I", 0) + pickle.dumps(task.call, 5))
        assert proc.shared is not None
        spans, at = [], start
        for buffer in buffers:
            raw = buffer.raw()
            proc.shared[at : at + raw.nbytes] = raw
            spans.append((at, raw.nbytes))
            at += raw.nbytes
        task.region = (start, at)
        header = struct.pack(f"!I{2 * len(spans)}Q", len(spans), *(n for s in spans for n in s))
        return _frame(header + pickled)

    def _write(self, proc: _Process) -> None:
        assert self._loop is not None
        try:
            sent = os.write(proc.tasks_fd, proc.unsent)
        except BlockingIOError:
            sent = 0
        except OSError:  # the process is gone; its sentinel tells us the rest
            self._loop.remove_writer(proc.tasks_fd)
            return
        del proc.unsent[:sent]
        if proc.unsent:
            self._loop.add_writer(proc.tasks_fd, self._write, proc)
        else:
            self._loop.remove_writer(proc.tasks_fd)

    def _started(self, proc: _Process) -> None:
        """The head of ``proc``'s queue is running now: start its clock. A process still
        starting (a replacement booting on a busy machine) has not begun it yet: its clock
        starts when the process says it is ready."""
        assert self._loop is not None
        task = proc.queue[0]
        if task.timeout_s is not None and proc.ready:
            proc.timer = self._loop.call_later(task.timeout_s, self._time_out, proc, task)

    def _time_out(self, proc: _Process, task: _Task) -> None:
        if proc.queue and proc.queue[0] is task:
            proc.timed_out = task
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.process.pid or 0, signal.SIGKILL)

    # -- results ---------------------------------------------------------------------------

    def _read(self, proc: _Process) -> None:
        """Everything the process has sent so far, each finished task's future resolved."""
        while True:
            try:
                data = os.read(proc.results_fd, READ_BYTES)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:  # the process closed its end: its sentinel follows
                assert self._loop is not None
                self._loop.remove_reader(proc.results_fd)
                return
            proc.received += data
            while (payload := _take_frame(proc.received)) is not None:
                if proc.ready:
                    self._finished(proc, payload)
                else:  # its first frame, empty: the initializer has run
                    proc.ready = True
                    if proc.queue:
                        self._started(proc)

    def _finished(self, proc: _Process, payload: bytes) -> None:
        task = proc.queue.popleft()
        if proc.timer is not None:
            proc.timer.cancel()
            proc.timer = None
        try:
            ok, value = pickle.loads(payload)
        except Exception as exc:  # e.g. an exception type that cannot be rebuilt here
            ok, value = False, RuntimeError(f"unreadable result from the pool: {exc!r}")
        if not task.future.cancelled():
            if ok:
                task.future.set_result(value)
            else:
                task.future.set_exception(value)
        proc.done += 1
        if proc.queue:
            self._started(proc)
        if self._max_tasks and proc.done >= self._max_tasks and not proc.retiring:
            proc.retiring = True
            self._spawn()  # its replacement starts now; it stops once its queue is done
        if proc.retiring and not proc.queue and proc.tasks_fd >= 0:
            assert self._loop is not None
            self._loop.remove_writer(proc.tasks_fd)
            os.close(proc.tasks_fd)  # end of input: it exits, and _exited counts a recycle
            proc.tasks_fd = -1

    # -- processes -------------------------------------------------------------------------

    def _spawn(self) -> None:
        assert self._loop is not None
        task_r, task_w = self._context.Pipe(duplex=False)
        result_r, result_w = self._context.Pipe(duplex=False)
        with contextlib.suppress(OSError):  # best effort: a smaller pipe only costs a wait
            fcntl.fcntl(task_w.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
        shared, handle = None, None
        if self._shared_bytes:
            fd = os.memfd_create("sluice-pool")
            os.ftruncate(fd, self._shared_bytes)
            shared = mmap.mmap(fd, self._shared_bytes)
            # a Connection is how multiprocessing hands a file descriptor to a forkserver
            # child; this one is only ever mapped there, never read or written as a pipe
            handle = Connection(fd)
        process = self._context.Process(
            target=serve, args=(task_r, result_w, handle, *self._init), daemon=True
        )
        process.start()
        for end in (task_r, result_w, handle):
            if end is not None:
                end.close()
        proc = _Process(process, _detach_fd(task_w), _detach_fd(result_r), shared=shared)
        os.set_blocking(proc.tasks_fd, False)
        os.set_blocking(proc.results_fd, False)
        self._processes.append(proc)
        self._loop.add_reader(proc.results_fd, self._read, proc)
        self._loop.add_reader(process.sentinel, self._exited, proc)

    def _detach(self, proc: _Process) -> None:
        assert self._loop is not None
        self._loop.remove_reader(proc.process.sentinel)
        self._loop.remove_reader(proc.results_fd)
        if proc.tasks_fd >= 0:
            self._loop.remove_writer(proc.tasks_fd)
        if proc.timer is not None:
            proc.timer.cancel()

    def _exited(self, proc: _Process) -> None:
        self._read(proc)  # results it sent before it went
        self._detach(proc)
        proc.process.join()
        exitcode = proc.process.exitcode
        proc.process.close()
        self._processes.remove(proc)
        if proc.shared is not None:
            proc.shared.close()
        for fd in (proc.tasks_fd, proc.results_fd):
            if fd >= 0:
                os.close(fd)
        if self._closed:
            return
        reason = "recycle" if proc.retiring and not proc.queue else "crash"
        if proc.timed_out is not None:
            reason = "timeout"
        self._on_replace(reason)
        if not proc.retiring:
            self._spawn()
        if proc.queue:
            failed = proc.queue.popleft()
            error: Exception = (
                TaskTimedOut(failed.timeout_s or 0)
                if failed is proc.timed_out
                else ProcessDied(exitcode)
            )
            if not failed.future.cancelled():
                failed.future.set_exception(error)
            for task in proc.queue:  # not started: they run elsewhere
                self._assign(task)


def _allocate(proc: _Process, need: int) -> int | None:
    """Where ``need`` bytes fit in ``proc``'s shared memory beside the regions of its queued
    tasks (a ring: tasks finish in the order they were queued), or None."""
    assert proc.shared is not None
    size = len(proc.shared)
    regions = [task.region for task in proc.queue if task.region is not None]
    if need > size:
        return None
    if not regions:
        return 0
    tail, head = regions[0][0], regions[-1][1]
    if head > tail:  # not wrapped: free space after head, and before tail
        if head + need <= size:
            return head
        return 0 if need <= tail else None
    return head if head + need <= tail else None  # wrapped: free space between


def _take_frame(buffer: bytearray) -> bytes | None:
    """Cut one complete frame off the front of ``buffer``, if there is one."""
    if len(buffer) < 4:
        return None
    (n,) = struct.unpack_from("!i", buffer)
    start = 4
    if n == -1:
        if len(buffer) < 12:
            return None
        (n,) = struct.unpack_from("!Q", buffer, 4)
        start = 12
    if len(buffer) < start + n:
        return None
    payload = bytes(buffer[start : start + n])
    del buffer[: start + n]
    return payload


def _detach_fd(conn: Connection) -> int:
    """The connection's file descriptor, now ours to close."""
    fd = conn.fileno()
    new = os.dup(fd)
    conn.close()
    return new
