"""NAND flash array: channels x chips x dies x planes, page reads with per-die queues.

What the model covers
---------------------
* Geometry and timing with MQSim's parameter names (``Flash_Channel_Count``,
  ``Chip_No_Per_Channel``, ``Die_No_Per_Chip``, ``Plane_No_Per_Die``, ``Page_Capacity``,
  ``Page_Read_Latency_*``, ``Channel_Transfer_Rate``, ``Flash_Channel_Width``; CMU-SAFARI/MQSim
  ``ssdconfig.xml``, see ``shared/reference/anchors.md`` §2.1). Defaults are MQSim's defaults
  (``shared/reference/data.md`` §5.5): 8 channels x 4 chips x 2 dies x 2 planes, 8 KiB pages,
  tR = 75 us, 333 MT/s x 1 B channels.
* Page-granular reads. **Read amplification is real**: reading one 64 B embedding row costs a whole
  page-array read (tR) on its plane; only the requested bytes (rounded up to
  ``min_transfer_bytes``, default one 512 B sector, the smallest unit MQSim moves) cross the channel.
* One read = the plane (or the die, when ``independent_planes`` is False) is busy for tR, then the
  page register is drained over the shared channel bus (``cmd_overhead_s`` + bytes / channel rate).
  The plane stays occupied until its data has left (no cache-read pipelining), so a read costs the
  plane ``tR + channel wait + transfer``.
* Per-die FIFO queues (the plane queues of a die together form the die queue; with
  ``independent_planes=False`` the die is a single server). Queue statistics (time-integrated number
  in system, waits) are kept per die, so Little's law can be checked.
* Two granularities that agree:
  - ``mode="fast"`` / :func:`chunk_service`: the service time of a whole chunk of page reads that
    arrive together, from per-server and per-channel sums with numpy (the larger of the "busiest
    plane" and the "busiest channel bus" bounds; exact when one of them dominates);
  - ``mode="fine"`` / :meth:`Nand.read_page`: one simpy process per page read, with an
    :class:`~simrec.sim.engine.Server` per plane (or die) and per channel bus.

What it leaves out
------------------
Writes/programs, erases, garbage collection, wear levelling, the FTL mapping table and its cache,
read retries/ECC decoding time, read disturb, multi-plane command restrictions (planes are treated
as independent by default, the optimistic reading that gives ``data.md`` §5.5's 1.71 M pages/s),
cache-read pipelining, and the NVMe host interface (the SSD controller lives in ``smartssd.py``).
The component knows pages, not embedding rows: the caller maps rows to pages.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from dataclasses import dataclass, fields
from typing import Any, Literal

import numpy as np
import simpy

from simrec.errors import ConfigError
from simrec.sim.engine import Server, ServerStats, TimeWeighted

__all__ = [
    "MQSIM_NAMES",
    "NandParams",
    "NandChunkResult",
    "chunk_service",
    "Nand",
]

#: MQSim ``ssdconfig.xml`` element name -> :class:`NandParams` field, with the factor that turns
#: MQSim's unit into SI (MQSim times are in ns; ``Channel_Transfer_Rate`` is in MT/s).
MQSIM_NAMES: dict[str, tuple[str, float]] = {
    "Flash_Channel_Count": ("channels", 1),
    "Chip_No_Per_Channel": ("chips_per_channel", 1),
    "Die_No_Per_Chip": ("dies_per_chip", 1),
    "Plane_No_Per_Die": ("planes_per_die", 1),
    "Block_No_Per_Plane": ("blocks_per_plane", 1),
    "Page_No_Per_Block": ("pages_per_block", 1),
    "Page_Capacity": ("page_bytes", 1),
    "Page_Read_Latency_LSB": ("t_read_s", 1e-9),
    "Page_Program_Latency_LSB": ("t_prog_s", 1e-9),
    "Block_Erase_Latency": ("t_erase_s", 1e-9),
    "Channel_Transfer_Rate": ("channel_transfer_rate", 1e6),
    "Flash_Channel_Width": ("channel_width_bytes", 1),
}


@dataclass(frozen=True)
class NandParams:
    """NAND geometry and timing, SI units. Defaults: MQSim's default ``ssdconfig.xml``.

    Attributes:
        channels: ``Flash_Channel_Count``.
        chips_per_channel: ``Chip_No_Per_Channel`` (ways).
        dies_per_chip: ``Die_No_Per_Chip``.
        planes_per_die: ``Plane_No_Per_Die``.
        blocks_per_plane: ``Block_No_Per_Plane``.
        pages_per_block: ``Page_No_Per_Block``.
        page_bytes: ``Page_Capacity`` (user data bytes per page).
        t_read_s: ``Page_Read_Latency_*`` (array read time tR, s). MQSim default 75 us.
        t_prog_s: ``Page_Program_Latency_*`` (s). Kept for completeness; writes are not modelled.
            MQSim's default is 750 us (anchors.md §2.1; data.md §5.5 says 75 us).
        t_erase_s: ``Block_Erase_Latency`` (s). Not used by the read model.
        channel_transfer_rate: ``Channel_Transfer_Rate`` in transfers/s (333 MT/s -> 333e6).
        channel_width_bytes: ``Flash_Channel_Width`` (bytes per transfer).
        min_transfer_bytes: smallest data unit moved over the channel per read. 512 B = one sector,
            the unit MQSim's transactions use [recall: MQSim is sector-addressed]. Set it to
            ``page_bytes`` to model controllers that always drain the whole page.
        cmd_overhead_s: channel time per read for command/address cycles (0 = ignored).
        independent_planes: True: every plane serves its own reads (the optimistic model behind
            data.md §5.5's 1.71 M pages/s). False: a die serves one read at a time.
    """

    channels: int = 8
    chips_per_channel: int = 4
    dies_per_chip: int = 2
    planes_per_die: int = 2
    blocks_per_plane: int = 2048
    pages_per_block: int = 256
    page_bytes: int = 8192
    t_read_s: float = 75e-6
    t_prog_s: float = 750e-6
    t_erase_s: float = 3.8e-3
    channel_transfer_rate: float = 333e6
    channel_width_bytes: int = 1
    min_transfer_bytes: int = 512
    cmd_overhead_s: float = 0.0
    independent_planes: bool = True

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, bool):
                continue
            if not isinstance(v, int | float) or not np.isfinite(v):
                raise ConfigError(
                    f"NAND parameter {f.name} must be a finite number, got {v!r}",
                    where=f"nand.{f.name}",
                    fix="give a number in SI units",
                )
            if v < 0 or (v == 0 and f.name not in ("cmd_overhead_s", "min_transfer_bytes")):
                raise ConfigError(
                    f"NAND parameter {f.name} must be positive, got {v!r}",
                    where=f"nand.{f.name}",
                    fix="give a positive value",
                )

    # -- derived quantities ------------------------------------------------------------------
    @property
    def dies(self) -> int:
        """Total dies."""
        return self.channels * self.chips_per_channel * self.dies_per_chip

    @property
    def planes(self) -> int:
        """Total planes."""
        return self.dies * self.planes_per_die

    @property
    def servers(self) -> int:
        """Independent read servers: planes, or dies when planes are not independent."""
        return self.planes if self.independent_planes else self.dies

    @property
    def servers_per_channel(self) -> int:
        """Read servers sharing one channel bus."""
        return self.servers // self.channels

    @property
    def channel_bandwidth(self) -> float:
        """Bytes/s of one channel bus."""
        return self.channel_transfer_rate * self.channel_width_bytes

    @property
    def capacity_bytes(self) -> int:
        """User capacity (no over-provisioning)."""
        return self.planes * self.blocks_per_plane * self.pages_per_block * self.page_bytes

    @property
    def pages(self) -> int:
        """Total pages."""
        return self.planes * self.blocks_per_plane * self.pages_per_block

    def transfer_time(self, nbytes: float | np.ndarray) -> float | np.ndarray:
        """Channel time to drain ``nbytes`` of one page register (s)."""
        b = np.minimum(np.maximum(nbytes, self.min_transfer_bytes), self.page_bytes)
        return self.cmd_overhead_s + b / self.channel_bandwidth

    def unloaded_read_latency(self, nbytes: float) -> float:
        """Latency of one read on an idle array: tR + command + transfer (s)."""
        return float(self.t_read_s + self.transfer_time(nbytes))

    def peak_read_rate(self, nbytes: float) -> float:
        """Saturated page reads/s with every server busy and ``nbytes`` moved per read.

        Per channel the rate is the smaller of the array side, ``servers_per_channel / (tR + x)``
        (a server is held for tR plus the transfer x), and the bus side, ``1 / x``.
        """
        x = float(self.transfer_time(nbytes))
        per_channel = min(self.servers_per_channel / (self.t_read_s + x), 1.0 / x)
        return self.channels * per_channel

    @classmethod
    def from_mqsim(cls, values: Mapping[str, Any], **overrides: Any) -> NandParams:
        """Build from MQSim ``ssdconfig.xml`` names (MQSim units: ns, MT/s).

        Unknown names raise :class:`ConfigError` (no silent substitution).
        """
        kw: dict[str, Any] = {}
        for name, raw in values.items():
            if name not in MQSIM_NAMES:
                raise ConfigError(
                    f"unknown MQSim NAND parameter {name!r}",
                    where=f"nand.{name}",
                    fix="use one of " + ", ".join(sorted(MQSIM_NAMES)),
                )
            field_name, scale = MQSIM_NAMES[name]
            if scale == 1:
                kw[field_name] = int(raw) if float(raw).is_integer() else float(raw)
            elif scale < 1:  # ns -> s: divide, so 75000 ns gives exactly 75e-6
                kw[field_name] = float(raw) / round(1 / scale)
            else:
                kw[field_name] = float(raw) * scale
        kw.update(overrides)
        return cls(**kw)

    # -- address mapping -----------------------------------------------------------------------
    def locate(self, pages: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Map physical page numbers to (channel, die, server) ids, vectorised.

        Pages are striped channel first, then chip (way), then die, then plane: MQSim's default
        ``CWDP`` plane allocation. ``die`` and ``server`` are global ids (``0..dies-1``,
        ``0..servers-1``).
        """
        p = np.asarray(pages, dtype=np.int64)
        rest, ch = np.divmod(p, self.channels)
        rest, chip = np.divmod(rest, self.chips_per_channel)
        rest, die_in_chip = np.divmod(rest, self.dies_per_chip)
        plane = rest % self.planes_per_die
        die = (ch * self.chips_per_channel + chip) * self.dies_per_chip + die_in_chip
        server = die * self.planes_per_die + plane if self.independent_planes else die
        return ch, die, server


@dataclass
class NandChunkResult:
    """Fast-path result for one chunk of page reads that arrive together.

    Attributes:
        time_s: service time of the chunk (arrival to last byte out).
        page_reads: page-array reads performed (one per request: read amplification).
        bytes_out: bytes moved over the channels.
        server_busy_s: busy time per server (plane or die), length ``servers``.
        channel_busy_s: busy time per channel bus, length ``channels``.
        bound: ``"array"`` or ``"channel"``: which bound set ``time_s``.
    """

    time_s: float
    page_reads: int
    bytes_out: float
    server_busy_s: np.ndarray
    channel_busy_s: np.ndarray
    bound: str


def _fluid_channel_times(counts: np.ndarray, t_read: float, x: np.ndarray) -> np.ndarray:
    """Per-channel drain time of a fluid model: ``counts[c, s]`` reads on server ``s`` of channel
    ``c``, each holding its server for ``t_read + x[c]`` and the bus for ``x[c]``.

    All busy servers of a channel progress at the same rate ``min(1/(tR+x), 1/(m x))`` when ``m``
    of them still have work, so they finish in increasing order of their counts; the channel time
    is the sum of the phases between consecutive finishes. It equals ``max_s n_s (tR+x)`` when the
    bus keeps up and ``x * sum n_s`` when it is saturated, and covers the drain at the end, when
    too few servers remain to keep the bus busy.
    """
    c = np.sort(counts, axis=1).astype(float)  # ascending per channel
    s = c.shape[1]
    steps = np.diff(np.concatenate([np.zeros((c.shape[0], 1)), c], axis=1), axis=1)
    m = np.arange(s, 0, -1, dtype=float)[None, :]  # servers still busy in each phase
    xx = x[:, None]
    per_server_rate = np.minimum(1.0 / (t_read + xx), 1.0 / (m * xx))
    return (steps / per_server_rate).sum(axis=1)


def chunk_service(p: NandParams, pages: np.ndarray, nbytes: float | np.ndarray) -> NandChunkResult:
    """Service time of a chunk of page reads arriving together on an idle array (vectorised).

    ``time_s`` is the largest of three bounds: the busiest server doing its reads back to back
    (``n_s (tR + x)``), the busiest bus carrying all its transfers after the first array read
    (``tR + sum x``), and a per-channel fluid model of the mixed regime
    (:func:`_fluid_channel_times`: servers share a bus, and the bus idles once fewer than
    ``(tR + x) / x`` servers still have reads). The first two are exact at their extremes; tests
    check the agreement with the event-by-event fine path in between.
    """
    pages = np.asarray(pages, dtype=np.int64)
    n = len(pages)
    if n == 0:
        return NandChunkResult(0.0, 0, 0.0, np.zeros(p.servers), np.zeros(p.channels), "array")
    ch, _die, srv = p.locate(pages)
    nb = np.broadcast_to(np.asarray(nbytes, dtype=float), (n,))
    x = np.asarray(p.transfer_time(nb), dtype=float)
    server_busy = np.bincount(srv, weights=p.t_read_s + x, minlength=p.servers)
    channel_busy = np.bincount(ch, weights=x, minlength=p.channels)
    per_ch = np.bincount(ch, minlength=p.channels)
    mean_x = np.where(per_ch > 0, channel_busy / np.maximum(per_ch, 1), 1.0)
    counts = np.bincount(srv, minlength=p.servers).reshape(p.channels, p.servers_per_channel)
    t_fluid = float(_fluid_channel_times(counts, p.t_read_s, mean_x).max())
    t_array = float(server_busy.max())
    t_chan = float(p.t_read_s + channel_busy.max())
    moved = np.minimum(np.maximum(nb, p.min_transfer_bytes), p.page_bytes)
    return NandChunkResult(
        time_s=max(t_array, t_chan, t_fluid),
        page_reads=n,
        bytes_out=float(moved.sum()),
        server_busy_s=server_busy,
        channel_busy_s=channel_busy,
        bound="array" if t_array >= t_chan else "channel",
    )


class Nand:
    """A NAND flash array in a simpy environment; :meth:`read` serves a chunk of page reads.

    Every plane (or die, with ``independent_planes=False``) and every channel bus is a
    :class:`~simrec.sim.engine.Server`. In ``mode="fast"`` a chunk holds each server it touches for
    ``sum (tR + x)`` of its reads and each channel for ``sum x`` (chunks queue FIFO per server), and
    completes no sooner than :func:`chunk_service`'s bound. In ``mode="fine"`` every page read is a
    simpy process: plane for tR, then the channel for x, plane released after the transfer. Per-die
    queue statistics (fine mode) are kept with time-weighted counters, see :meth:`die_stats`.

    Counters: ``page_reads``, ``bytes_out``, ``events`` (simpy processes started).
    """

    def __init__(
        self,
        env: simpy.Environment,
        params: NandParams | None = None,
        mode: Literal["fast", "fine"] = "fast",
        name: str = "nand",
    ) -> None:
        if mode not in ("fast", "fine"):
            raise ConfigError(
                f"unknown simulation mode {mode!r}", where="mode", fix="use 'fast' or 'fine'"
            )
        self.env = env
        self.p = params if params is not None else NandParams()
        self.mode = mode
        self.name = name
        self.servers = [Server(env, 1, f"{name}.srv{i}") for i in range(self.p.servers)]
        self.channels = [Server(env, 1, f"{name}.ch{c}") for c in range(self.p.channels)]
        self._die_in_system = [TimeWeighted(env) for _ in range(self.p.dies)]
        self._die_completed = np.zeros(self.p.dies, dtype=np.int64)
        self._die_sojourn = np.zeros(self.p.dies)
        self._start = float(env.now)
        self.page_reads = 0
        self.bytes_out = 0.0
        self.events = 0

    # -- public API ------------------------------------------------------------------------------
    def service_time(self, pages: np.ndarray, nbytes: float | np.ndarray) -> NandChunkResult:
        """Fast-path service time of a chunk on an idle array (no simpy, no counters)."""
        return chunk_service(self.p, pages, nbytes)

    def read(self, pages: np.ndarray, nbytes: float | np.ndarray) -> Generator[Any, Any, float]:
        """simpy process body: read ``nbytes`` from each page in ``pages``; returns the duration."""
        t0 = float(self.env.now)
        pages = np.asarray(pages, dtype=np.int64)
        if len(pages) == 0:
            return 0.0
        if self.mode == "fast":
            r = chunk_service(self.p, pages, nbytes)
            self.page_reads += r.page_reads
            self.bytes_out += r.bytes_out
            procs = [
                self.env.process(self.servers[s].serve(float(r.server_busy_s[s])))
                for s in np.nonzero(r.server_busy_s)[0].tolist()
            ]
            procs += [
                self.env.process(self.channels[c].serve(float(r.channel_busy_s[c])))
                for c in np.nonzero(r.channel_busy_s)[0].tolist()
            ]
            self.events += len(procs)
            yield self.env.all_of(procs)
            rest = t0 + r.time_s - float(self.env.now)
            if rest > 0:
                yield self.env.timeout(rest)
        else:
            nb = np.broadcast_to(np.asarray(nbytes, dtype=float), (len(pages),))
            procs = [
                self.env.process(self.read_page(int(pg), float(b)))
                for pg, b in zip(pages.tolist(), nb.tolist(), strict=True)
            ]
            yield self.env.all_of(procs)
        return float(self.env.now) - t0

    def read_page(self, page: int, nbytes: float) -> Generator[Any, Any, float]:
        """simpy process body (fine path): one page read; returns its response time."""
        p = self.p
        ch, die, srv = (int(a[0]) for a in p.locate(np.array([page])))
        t0 = float(self.env.now)
        self._die_in_system[die].add(1)
        self.events += 1
        x = float(p.transfer_time(nbytes))
        token = yield from self.servers[srv].acquire()
        yield self.env.timeout(p.t_read_s)
        yield from self.channels[ch].serve(x)
        self.servers[srv].release(token)
        self.page_reads += 1
        self.bytes_out += float(min(max(nbytes, p.min_transfer_bytes), p.page_bytes))
        resp = float(self.env.now) - t0
        self._die_in_system[die].add(-1)
        self._die_completed[die] += 1
        self._die_sojourn[die] += resp
        return resp

    def run_reads(
        self, pages: np.ndarray, nbytes: float, arrivals_s: np.ndarray | None = None
    ) -> np.ndarray:
        """Fine-path helper: submit page reads at ``arrivals_s`` (offsets from now, default all
        now), run the environment to the end and return each read's completion time (offset)."""
        pages = np.asarray(pages, dtype=np.int64)
        done = np.full(len(pages), np.nan)
        t_base = float(self.env.now)
        arr = np.zeros(len(pages)) if arrivals_s is None else np.asarray(arrivals_s, dtype=float)

        def one(i: int) -> Generator[Any, Any, None]:
            if arr[i] > 0:
                yield self.env.timeout(float(arr[i]))
            yield from self.read_page(int(pages[i]), nbytes)
            done[i] = float(self.env.now) - t_base

        for i in range(len(pages)):
            self.env.process(one(i))
        self.env.run()
        return done

    def die_stats(self, die: int, until: float | None = None) -> ServerStats:
        """Queue statistics of one die (fine mode): its planes together as one station."""
        end = float(self.env.now if until is None else until)
        dur = end - self._start
        n = int(self._die_completed[die])
        per = self.p.planes_per_die if self.p.independent_planes else 1
        srv = range(die * per, (die + 1) * per)
        busy = sum(self.servers[s].busy.integral(end) for s in srv)
        queued = sum(self.servers[s].in_queue.integral(end) for s in srv)
        wait = sum(self.servers[s].wait_total_s for s in srv)
        return ServerStats(
            name=f"{self.name}.die{die}",
            capacity=per,
            duration_s=dur,
            completed=n,
            busy_s=busy,
            utilisation=busy / (per * dur) if dur > 0 else 0.0,
            mean_in_system=self._die_in_system[die].integral(end) / dur if dur > 0 else 0.0,
            mean_in_queue=queued / dur if dur > 0 else 0.0,
            throughput_per_s=n / dur if dur > 0 else 0.0,
            mean_sojourn_s=float(self._die_sojourn[die]) / n if n else 0.0,
            mean_wait_s=wait / n if n else 0.0,
            peak_queue=max(self.servers[s].in_queue.peak for s in srv),
        )

    def stats(self) -> dict[str, Any]:
        """Counters and utilisation so far (server = plane or die)."""
        now = float(self.env.now)
        return {
            "page_reads": self.page_reads,
            "bytes_out": self.bytes_out,
            "events": self.events,
            "server_utilisation": [s.stats(now).utilisation for s in self.servers],
            "channel_utilisation": [c.stats(now).utilisation for c in self.channels],
        }
