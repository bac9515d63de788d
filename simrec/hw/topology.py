"""The system as a networkx graph: devices are nodes, links are edges; routes and shared links.

Graph model (undirected; every edge is full duplex with the same bandwidth each way):

* every device is a node (attributes ``kind``, ``host``, ``device``);
* a memory (or switch) with ``attached_to`` gets an edge to its owner, of kind ``memory`` with the
  memory's peak bandwidth (a switch: its ``bandwidth``, or infinity when not given);
* a point-to-point link (``endpoints``) is one edge with the link's effective per-direction
  bandwidth and latency;
* a network dimension with ``members`` becomes, for ``topology: switch``, a node named after the
  link (kind ``fabric``) with one edge per member carrying the per-member bandwidth and half the
  latency (so member-to-member routes add up to alpha); for ``fully_connected`` an edge between
  every pair with bandwidth / (n - 1); for ``ring`` edges between neighbours with bandwidth / 2.

Edge attributes: ``name`` (the link name; ``"dram0@cpu0"`` for an attachment), ``kind``,
``bandwidth`` (bytes/s per direction), ``latency`` (s), ``per_transfer_overhead`` (s), ``link``.

What this leaves out: congestion inside a switch, asymmetric links, adaptive routing, NUMA
effects beyond the links drawn. Routes are shortest paths by hop count (ties broken by lowest
latency, then by file order), i.e. static routing.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from simrec.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

    from simrec.hw.schema import SystemConfig

__all__ = ["build_graph", "Route", "Topology", "NetworkDimension"]


def build_graph(cfg: SystemConfig) -> nx.Graph:
    """Build the undirected device/link graph of ``cfg`` (see the module docstring)."""
    import networkx as nx

    g = nx.Graph(name=cfg.name)
    for name, dev in cfg.devices.items():
        g.add_node(name, kind=dev.kind, host=dev.host, device=dev)
    for name, dev in cfg.devices.items():
        owner = getattr(dev, "attached_to", None)
        if owner is None:
            continue
        if dev.kind == "switch":
            bw = dev.bandwidth if dev.bandwidth is not None else math.inf
            kind = "internal"
        else:
            bw = dev.peak_bandwidth
            kind = "memory"
        g.add_edge(
            name,
            owner,
            name=f"{name}@{owner}",
            kind=kind,
            bandwidth=bw,
            latency=getattr(dev, "latency", 0.0),
            per_transfer_overhead=0.0,
            link=None,
        )
    for lname, link in cfg.links.items():
        overhead = getattr(link, "per_transfer_overhead", 0.0)
        endpoints = getattr(link, "endpoints", None)
        if endpoints is not None:
            a, b = endpoints
            g.add_edge(
                a,
                b,
                name=lname,
                kind=link.kind,
                bandwidth=link.bandwidth,
                latency=link.latency,
                per_transfer_overhead=overhead,
                link=link,
            )
            continue
        members = list(link.members)
        if link.topology == "switch":
            g.add_node(lname, kind="fabric", host=None, device=None)
            for m in members:
                g.add_edge(
                    m,
                    lname,
                    name=f"{lname}:{m}",
                    kind=link.kind,
                    bandwidth=link.bandwidth,
                    latency=link.latency / 2,
                    per_transfer_overhead=overhead,
                    link=link,
                )
        elif link.topology == "fully_connected":
            n = len(members)
            for i in range(n):
                for j in range(i + 1, n):
                    g.add_edge(
                        members[i],
                        members[j],
                        name=f"{lname}:{members[i]}-{members[j]}",
                        kind=link.kind,
                        bandwidth=link.bandwidth / (n - 1),
                        latency=link.latency,
                        per_transfer_overhead=overhead,
                        link=link,
                    )
        else:  # ring
            n = len(members)
            for i in range(n if n > 2 else 1):
                a, b = members[i], members[(i + 1) % n]
                g.add_edge(
                    a,
                    b,
                    name=f"{lname}:{a}-{b}",
                    kind=link.kind,
                    bandwidth=link.bandwidth / 2 if n > 2 else link.bandwidth,
                    latency=link.latency,
                    per_transfer_overhead=overhead,
                    link=link,
                )
    return g


@dataclass(frozen=True)
class Route:
    """A path through the graph: ``nodes`` from source to destination and the ``edges`` crossed
    (edge names). ``bandwidth`` is the bottleneck (minimum) per-direction bandwidth, ``latency``
    the sum of edge latencies, ``overhead`` the sum of per-transfer overheads."""

    nodes: tuple[str, ...]
    edges: tuple[str, ...]
    bandwidth: float
    latency: float
    overhead: float
    bottleneck: str | None = None

    def transfer_time(self, nbytes: float) -> float:
        """alpha-beta time of one transfer of ``nbytes`` alone on the route:
        latency + overhead + bytes / bottleneck bandwidth."""
        if nbytes <= 0:
            return 0.0
        return self.latency + self.overhead + nbytes / self.bandwidth


@dataclass(frozen=True)
class NetworkDimension:
    """One ASTRA-sim-style network dimension: ``npus`` members joined by ``topology`` with
    per-member ``bandwidth`` (bytes/s per direction; beta = 1 / bandwidth) and ``latency``
    (alpha, seconds)."""

    name: str
    topology: str
    members: tuple[str, ...]
    bandwidth: float
    latency: float

    @property
    def npus(self) -> int:
        return len(self.members)

    @property
    def beta(self) -> float:
        """Seconds per byte."""
        return 1.0 / self.bandwidth


@dataclass
class Topology:
    """Routing queries over a system's graph (built once)."""

    cfg: SystemConfig
    graph: Any = field(init=False)

    def __post_init__(self) -> None:
        self.graph = build_graph(self.cfg)
        self._cache: dict[tuple[str, str], Route] = {}

    def _check_node(self, name: str) -> None:
        if name not in self.graph:
            self.cfg.device(name)  # raises a ConfigError with a suggestion

    def route(self, src: str, dst: str) -> Route:
        """The static route from ``src`` to ``dst`` (fewest hops, then lowest latency)."""
        import networkx as nx

        key = (src, dst)
        if key in self._cache:
            return self._cache[key]
        self._check_node(src)
        self._check_node(dst)
        if src == dst:
            r = Route((src,), (), math.inf, 0.0, 0.0, None)
            self._cache[key] = r
            return r
        g = self.graph
        try:
            paths = list(nx.all_shortest_paths(g, src, dst))
        except nx.NetworkXNoPath:
            raise ConfigError(
                f"no route between {src!r} and {dst!r} in system {self.cfg.name!r}",
                path=self.cfg.source,
                where="links",
                fix=f"add a link (or an attached_to) that connects {src!r} to {dst!r}",
            ) from None

        def lat(p: list[str]) -> float:
            return sum(g.edges[a, b]["latency"] for a, b in zip(p, p[1:], strict=False))

        best = min(paths, key=lat)  # min() keeps the first of equal latency: deterministic
        edges = [g.edges[a, b] for a, b in zip(best, best[1:], strict=False)]
        bws = [e["bandwidth"] for e in edges]
        i_min = min(range(len(bws)), key=lambda i: bws[i])
        r = Route(
            nodes=tuple(best),
            edges=tuple(e["name"] for e in edges),
            bandwidth=float(bws[i_min]),
            latency=float(sum(e["latency"] for e in edges)),
            overhead=float(sum(e["per_transfer_overhead"] for e in edges)),
            bottleneck=edges[i_min]["name"],
        )
        self._cache[key] = r
        return r

    def bottleneck_bandwidth(self, src: str, dst: str) -> float:
        """Minimum per-direction bandwidth along the route, bytes/s."""
        return self.route(src, dst).bandwidth

    def shared_links(self, pairs: list[tuple[str, str]]) -> set[str]:
        """Edges crossed by *every* route in ``pairs`` (e.g. the host's PCIe root for all
        GPU-to-host traffic)."""
        sets = [set(self.route(a, b).edges) for a, b in pairs]
        return set.intersection(*sets) if sets else set()

    def link_load(self, pairs: list[tuple[str, str]]) -> Counter[str]:
        """How many of the routes in ``pairs`` cross each edge (> 1 = a shared link)."""
        c: Counter[str] = Counter()
        for a, b in pairs:
            c.update(self.route(a, b).edges)
        return c

    def edge(self, name: str) -> dict[str, Any]:
        """The attributes of the edge called ``name``."""
        for _, _, d in self.graph.edges(data=True):
            if d["name"] == name:
                return d
        raise KeyError(name)

    def dimensions(self) -> list[NetworkDimension]:
        """The network dimensions (links with ``members``), in file order, ASTRA-sim style."""
        out = []
        for lname, link in self.cfg.links.items():
            members = getattr(link, "members", None)
            if members:
                out.append(
                    NetworkDimension(
                        name=lname,
                        topology=link.topology,
                        members=tuple(members),
                        bandwidth=link.bandwidth,
                        latency=link.latency,
                    )
                )
        return out
