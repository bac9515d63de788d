"""Topology graph: routes, shared links and bottlenecks come from the device/link graph."""

from __future__ import annotations

import pytest

from simrec.errors import ConfigError
from simrec.hw import load_hw, loads_hw


@pytest.fixture(scope="module")
def mg():
    return load_hw("multi_gpu")


def test_graph_nodes_and_edges(mg) -> None:
    g = mg.graph()
    kinds = {n: d["kind"] for n, d in g.nodes(data=True)}
    assert sum(k == "gpu" for k in kinds.values()) == 8
    assert kinds["nvswitch"] == "fabric"  # a switched dimension is a node
    # memories hang off their processors with their peak bandwidth
    assert g.edges["hbm3", "gpu3"]["kind"] == "memory"
    assert g.edges["hbm3", "gpu3"]["bandwidth"] == pytest.approx(3.35e12)
    assert g.edges["gpu0", "pcie_root0"]["name"] == "pcie0"
    # 8 GPU-HBM + 2 CPU-DRAM + 2 root-CPU + 8 PCIe + 8 NVSwitch + 1 UPI edges
    assert g.number_of_edges() == 8 + 2 + 2 + 8 + 8 + 1


def test_gpu_to_gpu_goes_through_nvswitch(mg) -> None:
    topo = mg.topology()
    r = topo.route("gpu0", "gpu5")
    assert r.nodes == ("gpu0", "nvswitch", "gpu5")
    assert r.latency == pytest.approx(936.25e-9)  # alpha, anchors.md §2.4
    assert r.bandwidth == pytest.approx(400e9, rel=1e-4)
    # alpha-beta: 1 MB costs alpha + 1e6 / 400 GB/s
    assert r.transfer_time(1e6) == pytest.approx(936.25e-9 + 1e6 / 400e9, rel=1e-4)
    assert r.transfer_time(0) == 0.0


def test_gpu_to_host_memory_crosses_pcie_and_root(mg) -> None:
    topo = mg.topology()
    r = topo.route("gpu2", "dram0")
    assert r.nodes == ("gpu2", "pcie_root0", "cpu0", "dram0")
    assert r.edges == ("pcie2", "pcie_root0@cpu0", "dram0@cpu0")
    assert r.bottleneck == "pcie2"
    assert topo.bottleneck_bandwidth("gpu2", "dram0") == pytest.approx(50.3e9, rel=1e-3)
    # the far socket's memory also crosses UPI
    far = topo.route("gpu2", "dram1")
    assert "upi" in far.edges


def test_shared_links_from_the_graph(mg) -> None:
    topo = mg.topology()
    socket0 = [(f"gpu{i}", "dram0") for i in range(4)]
    assert topo.shared_links(socket0) == {"pcie_root0@cpu0", "dram0@cpu0"}
    every = [(f"gpu{i}", "cpu0") for i in range(8)]
    assert topo.shared_links(every) == set()  # the two sockets' GPUs share no edge
    # but each root is shared by its 4 GPUs, and socket 1's GPUs all cross UPI
    load = topo.link_load(every)
    assert load["pcie_root0@cpu0"] == 4
    assert load["upi"] == 4
    assert load["pcie_root1@cpu1"] == 4
    assert all(load[f"pcie{i}"] == 1 for i in range(8))


def test_route_to_itself_and_unknown_devices(mg) -> None:
    topo = mg.topology()
    assert topo.route("gpu1", "gpu1").edges == ()
    with pytest.raises(ConfigError, match="did you mean 'gpu1'"):
        topo.route("gpu1", "gpu11")


HEAD = """\
name: t
devices:
  a: &g
    kind: gpu
    sms: 1
    clock: 1 GHz
    fp32_flops: 1 TFLOP/s
    bf16_flops: 2 TFLOP/s
    l2_size: 1 MB
    kernel_launch_overhead: 1 us
    mlp_efficiency: 0.5
    gather_efficiency: [{row_bytes: 64 B, efficiency: 0.5}]
  b: *g
  c: *g
  d: *g
"""


def test_no_route_is_an_error() -> None:
    cfg = loads_hw(HEAD + "links: {}\n")
    with pytest.raises(ConfigError, match="no route between 'a' and 'b'"):
        cfg.topology().route("a", "b")


def test_fully_connected_and_ring_dimensions() -> None:
    fc = loads_hw(
        HEAD + "links:\n  x:\n    kind: nvlink\n    members: [a, b, c, d]\n"
        "    topology: fully_connected\n    links: 3\n    link_bandwidth: 10 GB/s\n"
        "    latency: 1 us\n"
    )
    t = fc.topology()
    r = t.route("a", "d")
    assert r.nodes == ("a", "d")
    assert r.bandwidth == pytest.approx(10e9)  # 30 GB/s per GPU over 3 peers
    assert t.dimensions()[0].npus == 4
    ring = loads_hw(
        HEAD + "links:\n  x:\n    kind: network\n    members: [a, b, c, d]\n"
        "    topology: ring\n    link_bandwidth: 10 GB/s\n    latency: 1 us\n"
    )
    t = ring.topology()
    assert len(t.route("a", "c").nodes) == 3  # two hops around a 4-ring
    assert t.route("a", "b").bandwidth == pytest.approx(5e9)
    assert t.route("a", "c").latency == pytest.approx(2e-6)


def test_parallel_links_rejected() -> None:
    text = HEAD + (
        "links:\n  x:\n    kind: pcie\n    endpoints: [a, b]\n    generation: 4\n    lanes: 16\n"
        "  y:\n    kind: pcie\n    endpoints: [b, a]\n    generation: 4\n    lanes: 16\n"
    )
    with pytest.raises(ConfigError, match="join the same two devices"):
        loads_hw(text)


def test_fabric_needs_members_or_endpoints() -> None:
    text = HEAD + "links:\n  x:\n    kind: nvlink\n    links: 2\n    link_bandwidth: 1 GB/s\n"
    with pytest.raises(ConfigError, match="exactly one of 'endpoints'"):
        loads_hw(text)


def test_hosts_group_devices(mg) -> None:
    hosts = mg.hosts()
    assert list(hosts) == ["server0"]
    assert len(hosts["server0"]) == 2 + 2 + 2 + 8 + 8  # cpus, drams, roots, gpus, hbms
