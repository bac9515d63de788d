"""Units: strings with units -> SI floats, and back (simrec.hw.units).

Golden conversions are the definitions (GB = 1e9 B, GiB = 2^30 B, 1 B = 8 bit; DESIGN.md §3.1),
computed here independently of the parser.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simrec.hw.units import KINDS, UnitError, format_exact, format_si, parse_quantity


@pytest.mark.parametrize(
    ("text", "kind", "expected"),
    [
        # bandwidth: decimal vs binary prefixes, bytes vs bits
        ("25.6 GB/s", "bandwidth", 25.6e9),
        ("897 GiB/s", "bandwidth", 897 * 2**30),
        ("400 Gb/s", "bandwidth", 400e9 / 8),
        ("400 Gbit/s", "bandwidth", 400e9 / 8),
        ("1 bit s^-1", "bandwidth", 1 / 8),
        ("3.35 TB/s", "bandwidth", 3.35e12),
        # sizes
        ("4 GiB", "bytes", 4 * 2**30),
        ("4 GB", "bytes", 4e9),
        ("50 MB", "bytes", 50e6),
        ("8 KiB", "bytes", 8192),
        ("64 b", "bytes", 8),
        ("64 B", "bytes", 64),
        ("2 bytes", "bytes", 2),
        # time, with every spelling of micro
        ("13.75 ns", "time", 13.75e-9),
        ("75 us", "time", 75e-6),
        ("75 µs", "time", 75e-6),
        ("75 μs", "time", 75e-6),
        ("3.8 ms", "time", 3.8e-3),
        ("2 s", "time", 2.0),
        # frequency, energy, power
        ("3.2 GHz", "frequency", 3.2e9),
        ("333 MHz", "frequency", 333e6),
        ("4.2 nJ", "energy", 4.2e-9),
        ("525 pJ", "energy", 525e-12),
        ("0.35 W", "power", 0.35),
        ("350 mW", "power", 0.35),
        # compute and transfer rates
        ("1.2 TFLOP/s", "flop_rate", 1.2e12),
        ("66.9 TFLOPS", "flop_rate", 66.9e12),
        ("8 GT/s", "transfer_rate", 8e9),
        ("3200 MT/s", "transfer_rate", 3.2e9),
        # energy per bit, written per bit or per byte
        ("6 pJ/bit", "energy_per_bit", 6e-12),
        ("48 pJ/B", "energy_per_bit", 6e-12),
        ("1e3 B", "bytes", 1000.0),
    ],
)
def test_parse(text: str, kind: str, expected: float) -> None:
    assert parse_quantity(text, kind) == pytest.approx(expected, rel=1e-12)


def test_gb_vs_gib_and_b_vs_bit_differ() -> None:
    gb = parse_quantity("1 GB", "bytes")
    gib = parse_quantity("1 GiB", "bytes")
    assert gib / gb == pytest.approx(2**30 / 1e9)
    assert parse_quantity("8 Gb/s", "bandwidth") == pytest.approx(
        parse_quantity("1 GB/s", "bandwidth")
    )


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_kind_rejects_a_bare_number(kind: str) -> None:
    for value in (5, 5.0, "5", " 5 "):
        with pytest.raises(UnitError, match="missing unit"):
            parse_quantity(value, kind)


@pytest.mark.parametrize(
    ("text", "kind", "match"),
    [
        ("13 ns", "bandwidth", "is a time, but this field needs a bandwidth"),
        ("2.3 GB", "frequency", "size in bytes, but this field needs a frequency"),
        ("5 furlongs", "time", "unknown unit symbol 'furlongs'"),
        ("3 T", "bytes", "needs a size in bytes"),
        ("abc", "time", "cannot read"),
        ("1 GB/s/s", "bandwidth", "needs a bandwidth"),
        ("3 GB/s", "frequency", "is a bandwidth, but this field needs a frequency"),
        ("6 pJ", "energy_per_bit", "is an energy, but"),
        ("nan ns", "time", "cannot read"),
    ],
)
def test_bad_units(text: str, kind: str, match: str) -> None:
    with pytest.raises(UnitError, match=match):
        parse_quantity(text, kind)


def test_non_string_rejected() -> None:
    with pytest.raises(UnitError):
        parse_quantity(["1 ns"], "time")
    with pytest.raises(UnitError):
        parse_quantity(True, "time")


@pytest.mark.parametrize(
    ("value", "kind", "text"),
    [
        (25.6e9, "bandwidth", "25.6 GB/s"),
        (13.75e-9, "time", "13.8 ns"),
        (4 * 2**30, "bytes", "4 GiB"),
        (50e6, "bytes", "50 MB"),
        (64, "bytes", "64 B"),
        (3.2e9, "frequency", "3.2 GHz"),
        (6e-12, "energy_per_bit", "6 pJ/bit"),
        (0.35, "power", "350 mW"),
        (1.2e12, "flop_rate", "1.2 TFLOP/s"),
        (8e9, "transfer_rate", "8 GT/s"),
        (75e-6, "time", "75 us"),
        (0.0, "time", "0 s"),
    ],
)
def test_format_si(value: float, kind: str, text: str) -> None:
    assert format_si(value, kind) == text


def test_format_si_binary_choice() -> None:
    assert format_si(64e9, "bytes") == "64 GB"  # not a whole number of GiB
    assert format_si(64e9, "bytes", binary=True) == "59.6 GiB"
    assert format_si(2**30, "bytes", binary=False) == "1.07 GB"


@pytest.mark.parametrize("kind", list(KINDS))
@settings(max_examples=60, deadline=None)
@given(
    mantissa=st.floats(min_value=1e-3, max_value=1e3, allow_nan=False),
    exp=st.integers(-15, 15),
)
def test_format_exact_round_trips(kind: str, mantissa: float, exp: int) -> None:
    value = mantissa * 10.0**exp
    text = format_exact(value, kind)
    assert parse_quantity(text, kind) == value
    assert math.isfinite(parse_quantity(text, kind))
