"""Shared discrete-event helpers: a statistics-keeping server and time-weighted counters.

Every queueing point in simrec's simulations is a :class:`Server`: a simpy resource with ``capacity``
identical servers and a FIFO queue that records, exactly and event by event,

* the busy-server area (integral of servers in use over time) -> utilisation,
* the in-system area (integral of jobs waiting + in service) -> mean number in system ``L``,
* the number of completed jobs and their total sojourn time -> throughput ``lambda`` and mean time in
  system ``W``,

so Little's law ``L = lambda * W`` can be checked on any run (it holds exactly over a window that starts
and ends with an empty server). Time is in seconds (SI) everywhere.

What it leaves out: priorities, pre-emption, and server vacations; jobs are served FIFO.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass
from typing import Any

import simpy

__all__ = ["Server", "ServerStats", "TimeWeighted"]


class TimeWeighted:
    """An integer level whose time integral is tracked exactly (piecewise constant)."""

    __slots__ = ("env", "level", "area", "_last", "peak")

    def __init__(self, env: simpy.Environment) -> None:
        self.env = env
        self.level = 0
        self.area = 0.0
        self._last = float(env.now)
        self.peak = 0

    def add(self, delta: int) -> None:
        """Change the level by ``delta`` at the current simulated time."""
        now = float(self.env.now)
        self.area += self.level * (now - self._last)
        self._last = now
        self.level += delta
        if self.level > self.peak:
            self.peak = self.level

    def integral(self, until: float | None = None) -> float:
        """Area under the level curve from creation to ``until`` (default: now)."""
        t = float(self.env.now if until is None else until)
        return self.area + self.level * (t - self._last)


@dataclass(frozen=True)
class ServerStats:
    """Summary of a :class:`Server` over ``[start_s, end_s]``.

    Attributes:
        name: the server's name.
        capacity: number of parallel servers.
        duration_s: length of the observation window.
        completed: jobs that finished service.
        busy_s: integral of busy servers over time (server-seconds).
        utilisation: ``busy_s / (capacity * duration_s)``.
        mean_in_system: time-average jobs in the system (queue + service), ``L``.
        mean_in_queue: time-average jobs waiting, ``Lq``.
        throughput_per_s: completed jobs per second, ``lambda``.
        mean_sojourn_s: mean time from arrival to departure, ``W``.
        mean_wait_s: mean time from arrival to start of service, ``Wq``.
        peak_queue: largest number of jobs ever waiting.
    """

    name: str
    capacity: int
    duration_s: float
    completed: int
    busy_s: float
    utilisation: float
    mean_in_system: float
    mean_in_queue: float
    throughput_per_s: float
    mean_sojourn_s: float
    mean_wait_s: float
    peak_queue: int

    def littles_law_error(self) -> float:
        """Relative error of ``L = lambda * W`` (0 for a window that starts and ends empty)."""
        lw = self.throughput_per_s * self.mean_sojourn_s
        if self.mean_in_system == 0.0:
            return 0.0 if lw == 0.0 else float("inf")
        return abs(self.mean_in_system - lw) / self.mean_in_system


class Server:
    """A FIFO multi-server station (``capacity`` servers) with exact queueing statistics.

    Use :meth:`serve` as a sub-process: ``yield env.process(server.serve(duration))`` or
    ``yield from server.serve(duration)``. :meth:`hold` gives finer control: request a slot, do several
    timeouts, release.
    """

    def __init__(self, env: simpy.Environment, capacity: int = 1, name: str = "server") -> None:
        if capacity < 1:
            raise ValueError(f"Server {name!r}: capacity must be >= 1, got {capacity}")
        self.env = env
        self.name = name
        self.capacity = int(capacity)
        self.resource = simpy.Resource(env, capacity=self.capacity)
        self.in_system = TimeWeighted(env)
        self.in_queue = TimeWeighted(env)
        self.busy = TimeWeighted(env)
        self.completed = 0
        self.sojourn_total_s = 0.0
        self.wait_total_s = 0.0
        self.start_s = float(env.now)

    def serve(self, duration_s: float) -> Generator[Any, Any, float]:
        """Queue for a server, hold it for ``duration_s`` seconds, release; returns the sojourn time."""
        if duration_s < 0:
            raise ValueError(f"Server {self.name!r}: negative service time {duration_s}")
        token = yield from self.acquire()
        if duration_s > 0:
            yield self.env.timeout(duration_s)
        self.release(token)
        return float(self.env.now) - token[1]

    def acquire(self) -> Generator[Any, Any, tuple[Any, float]]:
        """Queue for a server; returns ``(request, arrival_time)``; pair with :meth:`release`."""
        t0 = float(self.env.now)
        self.in_system.add(1)
        req = self.resource.request()
        if not req.triggered:
            self.in_queue.add(1)
            yield req
            self.in_queue.add(-1)
        else:
            yield req
        self.busy.add(1)
        self.wait_total_s += float(self.env.now) - t0
        return req, t0

    def release(self, token: tuple[Any, float]) -> None:
        """Release a slot taken with :meth:`acquire`."""
        req, t0 = token
        self.busy.add(-1)
        self.resource.release(req)
        self.in_system.add(-1)
        self.completed += 1
        self.sojourn_total_s += float(self.env.now) - t0

    def stats(self, until: float | None = None) -> ServerStats:
        """Statistics from creation to ``until`` (default: now)."""
        end = float(self.env.now if until is None else until)
        dur = end - self.start_s
        n = self.completed
        return ServerStats(
            name=self.name,
            capacity=self.capacity,
            duration_s=dur,
            completed=n,
            busy_s=self.busy.integral(end),
            utilisation=self.busy.integral(end) / (self.capacity * dur) if dur > 0 else 0.0,
            mean_in_system=self.in_system.integral(end) / dur if dur > 0 else 0.0,
            mean_in_queue=self.in_queue.integral(end) / dur if dur > 0 else 0.0,
            throughput_per_s=n / dur if dur > 0 else 0.0,
            mean_sojourn_s=self.sojourn_total_s / n if n else 0.0,
            mean_wait_s=self.wait_total_s / n if n else 0.0,
            peak_queue=self.in_queue.peak,
        )
