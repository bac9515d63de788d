"""DRAM: channels x ranks x bank groups x banks, read-only, open-page, two granularities.

What the model covers
---------------------
* **Geometry**: ``channels`` independent channels, each with ``ranks`` ranks of ``bank_groups`` x
  ``banks_per_group`` banks; a row buffer of ``row_bytes`` per bank (per rank, all devices together).
* **Address mapping**: a mixed-radix decode of the physical address, after dropping the byte offset
  inside one burst (``burst_bytes = burst_length * bus_bytes``). ``address_mapping`` lists the fields
  from the most to the least significant; the default ``("row", "rank", "bank", "column",
  "bankgroup", "channel")`` puts consecutive bursts on different channels first, then on different
  bank groups (so streaming is not limited by tCCD_L), then along the columns of one row. Field sizes
  need not be powers of two (6- or 12-channel servers work); ``row`` must be the most significant.
* **Timing** (clock cycles of ``tCK_s``, as the JEDEC tables give them): row hit = CL, closed bank =
  tRCD + CL, row conflict = tRP + tRCD + CL, then the burst (``burst_length / data_rate`` cycles) on
  the channel's data bus; column-to-column tCCD_S (any bank group) / tCCD_L (same bank group);
  activates per rank limited by tRRD_S / tRRD_L and the four-activate window tFAW; a bank is
  re-activated no sooner than tRC = tRAS + tRP after its previous activate and precharged no sooner
  than tRTP after its last read.
* **Scheduling**: open-page policy; each bank serves its requests in arrival order (so a row stays
  open for consecutive requests to it); banks and ranks work in parallel, each command issued as early
  as its constraints allow (an FR-FCFS controller with a per-bank queue and unlimited depth).

Two granularities, one model
----------------------------
* ``mode="fast"`` (default): a chunk of requests is reduced, in one compiled pass, to per-bank counts
  (bursts, activates, whether the first activate needs a precharge) with the open rows carried from
  the previous chunk; the channel's service time is the tightest of the vectorised lower bounds: data
  bus (``N * tBURST``), tCCD_S/tCCD_L per bank group, activate rate per rank (tFAW/tRRD), and bank
  cycle tRC per bank, each plus the pipeline latency of the first/last request.
* ``mode="fine"``: one simpy process per bank and one timeout per command, with real bank, rank and bus
  state. Tests check that both agree within 5% and that both equal the analytic formulas.

What it leaves out: writes and write-to-read turnarounds, refresh (tRFC/tREFI, a few % of bandwidth),
rank-to-rank switching (tRTRS), the command bus, power-down modes, queue-depth limits of a real
controller, and address hashing; caches in front of the DRAM belong to the system model.
"""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal

import numba
import numpy as np
import simpy

from simrec.errors import ConfigError
from simrec.sim.engine import Server

__all__ = [
    "DramParams",
    "Dram",
    "ChunkCounts",
    "count_chunk",
    "count_chunk_numpy",
    "channel_times",
    "embedding_addresses",
    "unique_first",
]

FIELDS = ("row", "rank", "bankgroup", "bank", "column", "channel")
_FIELD_CODE = {"channel": 0, "rank": 1, "bankgroup": 2, "bank": 3, "column": 4}
_EPS = 1e-13  # 0.1 ps: tolerance when comparing simulated times (seconds)


@dataclass(frozen=True)
class DramParams:
    """DRAM organisation and timing; timings in clock cycles of ``tCK_s`` (seconds per cycle).

    Attributes:
        channels: independent channels (each with its own data bus).
        ranks: ranks per channel.
        bank_groups: bank groups per rank.
        banks_per_group: banks per bank group.
        tCK_s: clock period in seconds (DDR4-3200: 0.625 ns).
        CL: read latency (column command to first data), cycles.
        tRCD: activate to column command, cycles.
        tRP: precharge to activate, cycles.
        tRAS: activate to precharge, cycles.
        tRRD_S: activate to activate, different bank group, same rank, cycles.
        tRRD_L: activate to activate, same bank group, cycles.
        tFAW: window holding at most four activates per rank, cycles.
        tCCD_S: column to column, different bank group, cycles.
        tCCD_L: column to column, same bank group, cycles.
        tRTP: read to precharge, cycles.
        burst_length: beats per burst (DDR4: 8).
        bus_bytes: bytes per beat (the channel's data-bus width / 8; DDR4 DIMM: 8).
        row_bytes: row-buffer size per bank of one rank, bytes (DDR4 8Gb x8: 1024 columns x 8 B).
        data_rate: beats per clock (2 for double data rate).
        address_mapping: address fields from most to least significant (see the module docstring).
        name: a label for reports.
    """

    channels: int
    ranks: int
    bank_groups: int
    banks_per_group: int
    tCK_s: float
    CL: int
    tRCD: int
    tRP: int
    tRAS: int
    tRRD_S: int
    tRRD_L: int
    tFAW: int
    tCCD_S: int
    tCCD_L: int
    tRTP: int
    burst_length: int
    bus_bytes: int
    row_bytes: int
    data_rate: int = 2
    address_mapping: tuple[str, ...] = ("row", "rank", "bank", "column", "bankgroup", "channel")
    name: str = "dram"

    def __post_init__(self) -> None:
        ints = [
            "channels",
            "ranks",
            "bank_groups",
            "banks_per_group",
            "burst_length",
            "bus_bytes",
            "row_bytes",
            "data_rate",
        ]
        for f in ints:
            if int(getattr(self, f)) < 1:
                raise ConfigError(
                    f"DRAM parameter {f} must be >= 1, got {getattr(self, f)}",
                    where=f"field {f}",
                    fix=f"give {f} a positive value",
                )
        if not (self.tCK_s > 0 and math.isfinite(self.tCK_s)):
            raise ConfigError(
                f"DRAM clock period must be positive, got {self.tCK_s}",
                where="field tCK_s",
                fix="set tCK to the clock period, e.g. 0.625 ns for DDR4-3200",
            )
        for f in ("CL", "tRCD", "tRP", "tRAS", "tRRD_S", "tRRD_L", "tFAW", "tCCD_S", "tCCD_L"):
            if getattr(self, f) < 0:
                raise ConfigError(
                    f"DRAM timing {f} must be >= 0 cycles, got {getattr(self, f)}",
                    where=f"field {f}",
                    fix="give timings in clock cycles as the datasheet/JEDEC table does",
                )
        if sorted(self.address_mapping) != sorted(FIELDS) or self.address_mapping[0] != "row":
            raise ConfigError(
                f"address_mapping {self.address_mapping} must be a permutation of {FIELDS} "
                "starting with 'row'",
                where="field address_mapping",
                fix="list each of row, rank, bankgroup, bank, column, channel once, row first",
            )
        if self.row_bytes % self.burst_bytes:
            raise ConfigError(
                f"row_bytes {self.row_bytes} is not a multiple of the burst size {self.burst_bytes}",
                where="field row_bytes",
                fix="row_bytes = columns x bus_bytes of one rank",
            )

    # ----- derived quantities (SI units) -----
    @property
    def burst_bytes(self) -> int:
        """Bytes moved by one burst (DDR4 x64: 64 B)."""
        return self.burst_length * self.bus_bytes

    @property
    def burst_cycles(self) -> float:
        """Data-bus cycles per burst (BL8 DDR: 4)."""
        return self.burst_length / self.data_rate

    @property
    def tBURST_s(self) -> float:
        """Seconds the data bus is busy per burst."""
        return self.burst_cycles * self.tCK_s

    @property
    def tRC(self) -> int:
        """Activate-to-activate, same bank (tRAS + tRP), cycles."""
        return self.tRAS + self.tRP

    @property
    def columns_per_row(self) -> int:
        """Bursts per row buffer."""
        return self.row_bytes // self.burst_bytes

    @property
    def banks_per_rank(self) -> int:
        return self.bank_groups * self.banks_per_group

    @property
    def total_banks(self) -> int:
        return self.channels * self.ranks * self.banks_per_rank

    @property
    def peak_bw_per_channel_Bps(self) -> float:
        """Data-bus peak, bytes/s per channel (DDR4-3200 x64: 25.6e9)."""
        return self.burst_bytes / self.tBURST_s

    @property
    def peak_bw_Bps(self) -> float:
        """Aggregate data-bus peak over all channels, bytes/s."""
        return self.channels * self.peak_bw_per_channel_Bps

    def latency_s(self, kind: Literal["hit", "closed", "conflict"]) -> float:
        """Unloaded read latency to the end of the burst: hit CL, closed tRCD+CL, conflict +tRP."""
        cyc = {
            "hit": self.CL,
            "closed": self.tRCD + self.CL,
            "conflict": self.tRP + self.tRCD + self.CL,
        }
        return cyc[kind] * self.tCK_s + self.tBURST_s

    def with_(self, **changes: Any) -> DramParams:
        """A copy with some fields changed (e.g. ``p.with_(channels=2)``)."""
        from dataclasses import replace

        return replace(self, **changes)

    @classmethod
    def ddr4_3200_dramsim3(cls, channels: int = 1, ranks: int = 1) -> DramParams:
        """DDR4-3200 8Gb x8 (a 64-bit channel of x8 devices), the DRAMsim3 timing set.

        Source: reference/data.md §5.3 (umd-memsys/DRAMsim3 ``configs/DDR4_8Gb_x8_3200.ini``):
        tCK 0.625 ns, CL = tRCD = tRP = 22, tRAS 52, tRRD_S 4, tRRD_L 8, tFAW 34, tCCD_S 4, tCCD_L 8,
        BL8, 4 bank groups x 4 banks. tRTP 12 and the 1024 columns per row are from the same ini file.
        """
        return cls(
            channels=channels,
            ranks=ranks,
            bank_groups=4,
            banks_per_group=4,
            tCK_s=0.625e-9,
            CL=22,
            tRCD=22,
            tRP=22,
            tRAS=52,
            tRRD_S=4,
            tRRD_L=8,
            tFAW=34,
            tCCD_S=4,
            tCCD_L=8,
            tRTP=12,
            burst_length=8,
            bus_bytes=8,
            row_bytes=1024 * 8,
            name="DDR4-3200 (DRAMsim3 DDR4_8Gb_x8_3200)",
        )

    # ----- address decode -----
    def _radix(self) -> tuple[np.ndarray, np.ndarray]:
        """Field sizes and field codes from least to most significant (row excluded)."""
        size = {
            "channel": self.channels,
            "rank": self.ranks,
            "bankgroup": self.bank_groups,
            "bank": self.banks_per_group,
            "column": self.columns_per_row,
        }
        lsb_first = [f for f in reversed(self.address_mapping) if f != "row"]
        return (
            np.array([size[f] for f in lsb_first], dtype=np.int64),
            np.array([_FIELD_CODE[f] for f in lsb_first], dtype=np.int64),
        )

    def decode(self, addresses: np.ndarray) -> dict[str, np.ndarray]:
        """Decode byte addresses into ``channel, rank, bankgroup, bank, row, column`` arrays."""
        x = np.asarray(addresses, dtype=np.int64) // self.burst_bytes
        sizes, codes = self._radix()
        names = {v: k for k, v in _FIELD_CODE.items()}
        out: dict[str, np.ndarray] = {}
        for s, c in zip(sizes.tolist(), codes.tolist(), strict=True):
            out[names[c]] = x % s
            x = x // s
        out["row"] = x
        return out

    def bank_index(self, d: dict[str, np.ndarray]) -> np.ndarray:
        """Global bank number ``((channel * ranks + rank) * bank_groups + bankgroup) * banks + bank``."""
        return (
            (d["channel"] * self.ranks + d["rank"]) * self.bank_groups + d["bankgroup"]
        ) * self.banks_per_group + d["bank"]


def embedding_addresses(
    indices: np.ndarray, row_bytes: int, base: int = 0, burst_bytes: int = 64
) -> tuple[np.ndarray, int]:
    """Start addresses of embedding rows laid out back to back at ``base``, and bursts per row.

    Rows are padded to a whole number of bursts (the stride is ``ceil(row_bytes / burst) * burst``);
    ``base`` must be burst-aligned.
    """
    nb = max(1, -(-int(row_bytes) // burst_bytes))
    stride = nb * burst_bytes
    return np.asarray(indices, dtype=np.int64) * stride + int(base), nb


@dataclass
class ChunkCounts:
    """Per-bank counts of one chunk (arrays of length ``total_banks``).

    Attributes:
        bursts: bursts served by each bank.
        acts: activates each bank needed (row misses) under the in-order open-page policy.
        first_conflict: 1 where the bank's first activate of the chunk needed a precharge first.
        hits: bursts that found their row open (``bursts - acts``).
    """

    bursts: np.ndarray
    acts: np.ndarray
    first_conflict: np.ndarray

    @property
    def hits(self) -> np.ndarray:
        return self.bursts - self.acts


@numba.njit(cache=True, nogil=True)
def _count_kernel(
    starts: np.ndarray,
    nbursts: int,
    burst_bytes: int,
    period: int,
    pshift: int,
    lut: np.ndarray,
    open_row: np.ndarray,
    bursts: np.ndarray,
    acts: np.ndarray,
    first_conflict: np.ndarray,
) -> None:  # pragma: no cover - compiled; checked against count_chunk_numpy in the tests
    mask = period - 1
    for i in range(starts.shape[0]):
        base = starts[i] // burst_bytes
        for k in range(nbursts):
            x = base + k
            if pshift >= 0:
                row = x >> pshift
                low = x & mask
            else:
                row = x // period
                low = x - row * period
            b = lut[low]
            bursts[b] += 1
            if open_row[b] != row:
                if acts[b] == 0 and open_row[b] >= 0:
                    first_conflict[b] = 1
                acts[b] += 1
                open_row[b] = row


@functools.lru_cache(maxsize=64)
def _bank_lut(p: DramParams) -> tuple[np.ndarray, int, int]:
    """Global bank of every burst index below one row period, the period and its log2 (or -1).

    The mapping repeats every ``period = channels * ranks * banks * columns`` bursts (all fields but
    the row), so one table lookup replaces the mixed-radix decode in the compiled kernel.
    """
    period = p.channels * p.ranks * p.banks_per_rank * p.columns_per_row
    d = p.decode(np.arange(period, dtype=np.int64) * p.burst_bytes)
    lut = p.bank_index(d).astype(np.int32)
    shift = period.bit_length() - 1 if period & (period - 1) == 0 else -1
    return lut, period, shift


def count_chunk(
    p: DramParams, starts: np.ndarray, nbursts: int, open_row: np.ndarray
) -> ChunkCounts:
    """Per-bank bursts/activates of a chunk (compiled, one pass); updates ``open_row`` in place.

    ``starts`` are byte addresses of accesses of ``nbursts`` consecutive bursts each, in arrival
    order; ``open_row[b]`` is the open row of bank ``b`` (-1 when closed).
    """
    lut, period, shift = _bank_lut(p)
    n = p.total_banks
    bursts = np.zeros(n, dtype=np.int64)
    acts = np.zeros(n, dtype=np.int64)
    first = np.zeros(n, dtype=np.int64)
    s = np.ascontiguousarray(starts, dtype=np.int64)
    _count_kernel(s, int(nbursts), p.burst_bytes, period, shift, lut, open_row, bursts, acts, first)
    return ChunkCounts(bursts, acts, first)


@numba.njit(cache=True, nogil=True)
def _unique_first_kernel(idx: np.ndarray, out: np.ndarray) -> int:  # pragma: no cover
    n = idx.shape[0]
    size = 1
    while size < 2 * n:
        size *= 2
    table = np.full(size, -1, dtype=np.int64)
    mask = size - 1
    m = 0
    for i in range(n):
        v = idx[i]
        h = (v * 0x9E3779B97F4A7C15) & mask
        while True:
            cur = table[h]
            if cur == -1:
                table[h] = v
                out[m] = v
                m += 1
                break
            if cur == v:
                break
            h = (h + 1) & mask
    return m


def unique_first(idx: np.ndarray) -> np.ndarray:
    """Distinct non-negative values of ``idx`` in order of first occurrence (compiled hash set)."""
    a = np.ascontiguousarray(idx, dtype=np.int64)
    out = np.empty(len(a), dtype=np.int64)
    m = _unique_first_kernel(a, out)
    return out[:m]


def count_chunk_numpy(
    p: DramParams, starts: np.ndarray, nbursts: int, open_row: np.ndarray
) -> ChunkCounts:
    """Pure-numpy twin of :func:`count_chunk` (stable sort by bank); a cross-check, slower."""
    s = np.asarray(starts, dtype=np.int64)
    addr = (s[:, None] + np.arange(nbursts, dtype=np.int64)[None, :] * p.burst_bytes).ravel()
    d = p.decode(addr)
    bank = p.bank_index(d)
    row = d["row"]
    n = p.total_banks
    order = np.argsort(bank, kind="stable")
    bs, rs = bank[order], row[order]
    new_bank = np.ones(len(bs), dtype=bool)
    new_bank[1:] = bs[1:] != bs[:-1]
    prev = np.where(new_bank, open_row[bs], np.concatenate([[-1], rs[:-1]]))
    is_act = rs != prev
    bursts = np.bincount(bs, minlength=n).astype(np.int64)
    acts = np.bincount(bs[is_act], minlength=n).astype(np.int64)
    first = np.zeros(n, dtype=np.int64)
    act_pos = np.nonzero(is_act)[0]
    ab, first_idx = np.unique(bs[act_pos], return_index=True)
    # the bank's first activate needs a precharge when a row was open before it
    first[ab] = (prev[act_pos[first_idx]] >= 0).astype(np.int64)
    if len(bs):
        last_idx = np.r_[np.nonzero(new_bank[1:])[0], len(bs) - 1]
        open_row[bs[last_idx]] = rs[last_idx]
    return ChunkCounts(bursts, acts, first)


def channel_times(p: DramParams, c: ChunkCounts) -> np.ndarray:
    """Service time (s) of each channel for a chunk: the tightest vectorised lower bound.

    For a channel with ``N`` bursts, first-request latency ``L0`` (CL if some request hits, else
    tRCD+CL, else tRP+tRCD+CL) and ``tB`` the burst time, the completion time is the largest of

    * bus: ``L0 + (N-1) * max(tB, tCCD_S) + tB``;
    * bank group: ``L0 + (n_bg - 1) * tCCD_L + tB`` for the busiest (rank, bank group);
    * activates per rank, ``a`` activates: ``g(a) + tRCD + CL + tB (+ tRP if every bank of the rank
      starts with a conflict)``, ``g(a) = max(floor((a-1)/4) tFAW + ((a-1) mod 4) tRRD_S,
      (a-1) tRRD_S, max_bg (a_bg-1) tRRD_L)``;
    * bank cycle: ``(a_b - 1) tRC + tRCD + CL + tB (+ tRP if the bank starts with a conflict)``;
    * bank column path: hits ``tCCD_L`` apart and row switches ``tRTP + tRP + tRCD`` apart.

    The bounds ignore the interplay of constraints (queueing when two bounds are close); against the
    fine mode's FR-FCFS controller they are within a few per cent (see tests/test_sim_dram.py).

    Returns zeros for channels without requests.
    """
    C, R, G, B = p.channels, p.ranks, p.bank_groups, p.banks_per_group
    tck = p.tCK_s
    tb = p.tBURST_s
    bursts = c.bursts.reshape(C, R, G, B)
    acts = c.acts.reshape(C, R, G, B)
    first = c.first_conflict.reshape(C, R, G, B)
    n_ch = bursts.sum(axis=(1, 2, 3))
    a_ch = acts.sum(axis=(1, 2, 3))
    hits_ch = n_ch - a_ch
    # banks whose first activate found a closed bank
    closed_b = (acts > 0) & (first == 0)
    closed_ch = closed_b.sum(axis=(1, 2, 3))
    l0 = np.where(
        hits_ch > 0,
        p.CL * tck,
        np.where(closed_ch > 0, (p.tRCD + p.CL) * tck, (p.tRP + p.tRCD + p.CL) * tck),
    )
    t_bus = l0 + np.maximum(n_ch - 1, 0) * max(tb, p.tCCD_S * tck) + tb
    n_bg = bursts.sum(axis=3).max(axis=(1, 2))
    t_bg = l0 + np.maximum(n_bg - 1, 0) * p.tCCD_L * tck + tb
    a_r = acts.sum(axis=(2, 3))  # [C, R]
    a_rg = acts.sum(axis=3)  # [C, R, G]
    am1 = np.maximum(a_r - 1, 0)
    g = np.maximum((am1 // 4) * p.tFAW + (am1 % 4) * p.tRRD_S, am1 * p.tRRD_S).astype(np.float64)
    g = np.maximum(g, (np.maximum(a_rg - 1, 0) * p.tRRD_L).max(axis=2))
    rank_closed = closed_b.sum(axis=(2, 3)) > 0
    t_act_r = (g + p.tRCD + p.CL + np.where(rank_closed, 0, p.tRP)) * tck + tb
    t_act = np.where(a_r > 0, t_act_r, 0.0).max(axis=1)
    am1b = np.maximum(acts - 1, 0)
    t_bank_b = (am1b * p.tRC + p.tRCD + p.CL + first * p.tRP) * tck + tb
    # column path of one bank: hits tCCD_L apart, row switches tRTP + tRP + tRCD apart
    t_col_b = (
        (acts > 0) * p.tRCD
        + first * p.tRP
        + np.maximum(bursts - acts - 1, 0) * p.tCCD_L
        + am1b * (p.tRTP + p.tRP + p.tRCD)
        + p.CL
    ) * tck + tb
    t_bank = np.maximum(np.where(acts > 0, t_bank_b, 0.0), np.where(bursts > 0, t_col_b, 0.0)).max(
        axis=(1, 2, 3)
    )
    out = np.maximum(np.maximum(t_bus, t_bg), np.maximum(t_act, t_bank))
    return np.where(n_ch > 0, out, 0.0)


@dataclass
class _ChannelState:
    last_col: float = -1e300
    bus_free: float = -1e300
    end: float = 0.0


class Dram:
    """A DRAM device in a simpy environment; :meth:`read` serves a chunk of reads.

    Each channel is a :class:`~simrec.sim.engine.Server`; a chunk holds every channel it touches for
    that channel's service time (fast mode) or for its event-by-event simulation (fine mode), and
    chunks queue FIFO per channel. Counters: ``bursts``, ``activates``, ``bytes_read``, ``events``
    (simpy timeouts issued in fine mode) and ``commands`` (activates + reads issued in fine mode).
    """

    def __init__(
        self,
        env: simpy.Environment,
        params: DramParams,
        mode: Literal["fast", "fine"] = "fast",
        name: str | None = None,
    ) -> None:
        if mode not in ("fast", "fine"):
            raise ConfigError(
                f"unknown simulation mode {mode!r}", where="mode", fix="use 'fast' or 'fine'"
            )
        self.env = env
        self.p = params
        self.mode = mode
        self.name = name or params.name
        self.channels = [Server(env, 1, f"{self.name}.ch{c}") for c in range(params.channels)]
        self.open_row = np.full(params.total_banks, -1, dtype=np.int64)
        self.bursts = 0
        self.activates = 0
        self.bytes_read = 0
        self.events = 0
        self.commands = 0
        # fine-mode state (plain lists: the controller loop reads them element by element)
        nbk = params.total_banks
        self._f_open = [-1] * nbk
        self._f_act = [-1e300] * nbk
        self._f_col = [-1e300] * nbk
        self._f_pre = [-1e300] * nbk
        g = params.bank_groups
        nrk = params.channels * params.ranks
        self._f_hist: list[list[float]] = [[] for _ in range(nrk)]  # last four activates
        self._f_next_act = [-1e300] * nrk  # earliest next activate (tRRD_S, tFAW) per rank
        self._f_labg = [-1e300] * (nrk * g)  # last activate per (rank, bank group)
        self._f_lcbg = [-1e300] * (nrk * g)  # last read per (rank, bank group)
        per_rank = params.banks_per_rank
        self._f_rank_idx = [b // per_rank for b in range(nbk)]
        self._f_rbg_of = [b // params.banks_per_group for b in range(nbk)]
        self._chan = [_ChannelState() for _ in range(params.channels)]

    # ----- public API -----
    def service_times(
        self, starts: np.ndarray, nbursts: int = 1, record: list[ChunkCounts] | None = None
    ) -> np.ndarray:
        """Fast-mode per-channel service time of a chunk (updates open rows and counters).

        ``record``, when given, receives the chunk's :class:`ChunkCounts` (they depend on the
        geometry and the open rows only, so :func:`channel_times` turns them into times for any
        timing set of the same geometry; calibration uses that)."""
        c = count_chunk(self.p, starts, nbursts, self.open_row)
        self._count(c)
        if record is not None:
            record.append(c)
        return channel_times(self.p, c)

    def read(
        self, starts: np.ndarray, nbursts: int = 1, record: list[ChunkCounts] | None = None
    ) -> Generator[Any, Any, float]:
        """simpy process body: read ``len(starts)`` accesses of ``nbursts`` bursts; returns duration.
        ``record``: see :meth:`service_times` (fast mode only)."""
        t0 = float(self.env.now)
        if self.mode == "fast":
            times = self.service_times(starts, nbursts, record)
            procs = [
                self.env.process(self.channels[ch].serve(float(times[ch])))
                for ch in np.nonzero(times)[0].tolist()
            ]
        else:
            procs = self._fine_chunk(np.asarray(starts, dtype=np.int64), nbursts)
        if len(procs) == 1:
            yield procs[0]
        elif procs:
            yield self.env.all_of(procs)
        return float(self.env.now) - t0

    def stats(self) -> dict[str, Any]:
        """Counters and per-channel utilisation so far."""
        now = float(self.env.now)
        return {
            "bursts": self.bursts,
            "activates": self.activates,
            "row_hit_rate": 1 - self.activates / self.bursts if self.bursts else 0.0,
            "bytes_read": self.bytes_read,
            "fine_events": self.events,
            "fine_commands": self.commands,
            "channel_utilisation": [s.stats(now).utilisation for s in self.channels],
        }

    def utilisation(self) -> float:
        """Mean utilisation of the channels' data buses so far (0 with no channels)."""
        u = self.stats()["channel_utilisation"]
        return float(np.mean(u)) if u else 0.0

    # ----- internals -----
    def _count(self, c: ChunkCounts) -> None:
        nb = int(c.bursts.sum())
        self.bursts += nb
        self.activates += int(c.acts.sum())
        self.bytes_read += nb * self.p.burst_bytes

    def _fine_chunk(self, starts: np.ndarray, nbursts: int) -> list[Any]:
        p = self.p
        addr = (
            starts[:, None] + np.arange(nbursts, dtype=np.int64)[None, :] * p.burst_bytes
        ).ravel()
        d = p.decode(addr)
        bank = p.bank_index(d)
        ch = d["channel"]
        rows = d["row"]
        self.bursts += len(addr)
        self.bytes_read += len(addr) * p.burst_bytes
        procs = []
        for c in np.unique(ch).tolist():
            sel = ch == c
            procs.append(self.env.process(self._fine_channel(c, bank[sel], rows[sel])))
        return procs

    def _fine_channel(
        self, c: int, banks: np.ndarray, rows: np.ndarray
    ) -> Generator[Any, Any, None]:
        """Command-level FR-FCFS controller of one channel: one step per issued command.

        At each step every bank with pending requests proposes its next command (a column read if
        its head request hits the open row, else an activate, preceded by the implied precharge);
        the command that can issue earliest wins, ties going to the oldest request. The controller
        waits (a simpy timeout) whenever the winning command lies in the future.
        """
        token = yield from self.channels[c].acquire()
        p, env, tck = self.p, self.env, self.p.tCK_s
        st = self._chan[c]
        st.end = float(env.now)
        queues: dict[int, deque[tuple[int, int]]] = {}
        for seq, (b, r) in enumerate(zip(banks.tolist(), rows.tolist(), strict=True)):
            queues.setdefault(b, deque()).append((seq, r))
        t_rrd_s, t_rrd_l, t_faw = p.tRRD_S * tck, p.tRRD_L * tck, p.tFAW * tck
        t_rcd, t_cl, t_rp = p.tRCD * tck, p.CL * tck, p.tRP * tck
        t_ras, t_rtp, t_ccd_s, t_ccd_l = p.tRAS * tck, p.tRTP * tck, p.tCCD_S * tck, p.tCCD_L * tck
        t_burst = p.tBURST_s
        open_row, act_t, last_col_b, pre_ready = self._f_open, self._f_act, self._f_col, self._f_pre
        rank_of, rbg_of = self._f_rank_idx, self._f_rbg_of
        lcbg, labg, next_act, hists = self._f_lcbg, self._f_labg, self._f_next_act, self._f_hist
        inf = math.inf
        while queues:
            now = float(env.now)
            best_t, best_seq, best_b, best_is_act = inf, 0, -1, False
            col_common = st.last_col + t_ccd_s
            x = st.bus_free - t_cl
            if x > col_common:
                col_common = x
            for b, q in queues.items():
                seq, row = q[0]
                o = open_row[b]
                if o == row:
                    t = act_t[b] + t_rcd
                    x = lcbg[rbg_of[b]] + t_ccd_l
                    if x > t:
                        t = x
                    if col_common > t:
                        t = col_common
                    is_act = False
                else:
                    if o >= 0:
                        # the head request needs another row: precharge as soon as allowed
                        pre = act_t[b] + t_ras
                        x = last_col_b[b] + t_rtp
                        if x > pre:
                            pre = x
                        if now > pre:
                            pre = now
                        pre_ready[b] = pre + t_rp
                        open_row[b] = -1
                    t = next_act[rank_of[b]]
                    x = labg[rbg_of[b]] + t_rrd_l
                    if x > t:
                        t = x
                    if pre_ready[b] > t:
                        t = pre_ready[b]
                    is_act = True
                if t < now:
                    t = now
                if t < best_t - _EPS or (t <= best_t + _EPS and seq < best_seq):
                    best_t, best_seq, best_b, best_is_act = t, seq, b, is_act
            if best_t > now + _EPS:
                self.events += 1
                yield env.timeout(best_t - now)
                now = float(env.now)
            self.commands += 1
            b = best_b
            if best_is_act:
                r = rank_of[b]
                hist = hists[r]
                hist.append(now)
                if len(hist) > 4:
                    del hist[0]
                labg[rbg_of[b]] = now
                nxt = now + t_rrd_s
                if len(hist) >= 4 and hist[-4] + t_faw > nxt:
                    nxt = hist[-4] + t_faw
                next_act[r] = nxt
                act_t[b] = now
                open_row[b] = queues[b][0][1]
                self.activates += 1
            else:
                lcbg[rbg_of[b]] = now
                st.last_col = now
                last_col_b[b] = now
                st.bus_free = now + t_cl + t_burst
                if st.bus_free > st.end:
                    st.end = st.bus_free
                q = queues[b]
                q.popleft()
                if not q:
                    del queues[b]
        if st.end > env.now:
            self.events += 1
            yield env.timeout(st.end - float(env.now))
        self.channels[c].release(token)
