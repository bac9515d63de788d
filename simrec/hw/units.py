"""Quantities with units written out, parsed into SI floats.

Hardware YAML files write every dimensional number with its unit (``"25.6 GB/s"``, ``"13.75 ns"``,
``"4 GiB"``); this module turns those strings into plain floats in one fixed base unit per *kind*:

=================  ===========  ==========================================
kind               SI float in  examples accepted
=================  ===========  ==========================================
``time``           seconds      ``"13.75 ns"``, ``"75 us"``, ``"75 µs"``, ``"3.8 ms"``
``bytes``          bytes        ``"4 GiB"``, ``"50 MB"``, ``"64 B"``, ``"512 bit"``
``bandwidth``      bytes/s      ``"25.6 GB/s"``, ``"897 GiB/s"``, ``"400 Gb/s"``
``frequency``      hertz        ``"3.2 GHz"``, ``"333 MHz"``
``energy``         joules       ``"4.2 nJ"``, ``"525 pJ"``
``power``          watts        ``"0.35 W"``, ``"700 W"``
``flop_rate``      FLOP/s       ``"1.2 TFLOP/s"``, ``"66.9 TFLOPS"``
``transfer_rate``  transfers/s  ``"8 GT/s"``, ``"3200 MT/s"``
``energy_per_bit`` J/bit        ``"6 pJ/bit"``, ``"48 pJ/B"``
=================  ===========  ==========================================

Conventions: decimal prefixes are powers of ten (GB = 10^9 B), binary prefixes powers of two
(GiB = 2^30 B); ``B``/``byte`` is a byte and ``b``/``bit`` a bit (so ``Gb/s`` is an eighth of
``GB/s``); ``T`` after a prefix in a rate means *transfers* (``GT/s``), not tesla; ``FLOPS`` (capital
S) means FLOP per second. Products, quotients and powers of units (``"pJ/bit"``, ``"B/s"``,
``"bit s^-1"``) are handled by pint, which checks dimensions and does the conversion. A number
without a unit is never accepted for a dimensional kind (:class:`UnitError` says which unit is
expected); dimensionless counts are plain YAML numbers and never go through this module.

The pint registry is slow to build (about 0.2 s), so it is created lazily on first use and shared.
Conversion factors are cached per unit spelling, so parsing a whole preset costs microseconds.

Not covered: temperatures, angles, currency, offsets; ``%`` (write fractions as plain numbers).
"""

from __future__ import annotations

import math
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # pragma: no cover
    import pint

__all__ = [
    "KINDS",
    "UnitError",
    "Kind",
    "parse_quantity",
    "format_si",
    "format_exact",
    "expected_example",
]

Kind = Literal[
    "time",
    "bytes",
    "bandwidth",
    "frequency",
    "energy",
    "power",
    "flop_rate",
    "transfer_rate",
    "energy_per_bit",
]

# kind -> (pint target unit, unit written back by format_si, an example for error messages)
KINDS: dict[str, tuple[str, str, str]] = {
    "time": ("second", "s", "13.75 ns"),
    "bytes": ("byte", "B", "4 GiB"),
    "bandwidth": ("byte / second", "B/s", "25.6 GB/s"),
    "frequency": ("hertz", "Hz", "3.2 GHz"),
    "energy": ("joule", "J", "4.2 nJ"),
    "power": ("watt", "W", "0.35 W"),
    "flop_rate": ("flop / second", "FLOP/s", "1.2 TFLOP/s"),
    "transfer_rate": ("transfer / second", "T/s", "8 GT/s"),
    "energy_per_bit": ("joule / bit", "J/bit", "6 pJ/bit"),
}

_KIND_WORDS = {
    "time": "a time",
    "bytes": "a size in bytes",
    "bandwidth": "a bandwidth",
    "frequency": "a frequency",
    "energy": "an energy",
    "power": "a power",
    "flop_rate": "a compute rate",
    "transfer_rate": "a transfer rate",
    "energy_per_bit": "an energy per bit",
}


class UnitError(ValueError):
    """A quantity string that cannot be read, or that has the wrong dimension for its field.

    A ``ValueError`` so that pydantic validators turn it into a field error; the loader then reports
    it as a :class:`~simrec.errors.ConfigError` naming the file, the field and the line.
    """


# --- symbol tables (our own spelling rules, mapped onto pint's unit names) -----------------------

_PREFIXES: dict[str, str] = {
    "": "",
    "Ki": "kibi",
    "Mi": "mebi",
    "Gi": "gibi",
    "Ti": "tebi",
    "Pi": "pebi",
    "k": "kilo",
    "K": "kilo",
    "M": "mega",
    "G": "giga",
    "T": "tera",
    "P": "peta",
    "E": "exa",
    "m": "milli",
    "u": "micro",
    "µ": "micro",  # micro sign U+00B5
    "μ": "micro",  # greek mu U+03BC
    "n": "nano",
    "p": "pico",
    "f": "femto",
}

# base symbol -> (pint unit name, prefixes allowed?)
_BASES: dict[str, str] = {
    "B": "byte",
    "byte": "byte",
    "bytes": "byte",
    "b": "bit",
    "bit": "bit",
    "bits": "bit",
    "s": "second",
    "sec": "second",
    "Hz": "hertz",
    "J": "joule",
    "W": "watt",
    "FLOP": "flop",
    "flop": "flop",
    "FLOPs": "flop",
    "T": "transfer",
    "transfer": "transfer",
    "transfers": "transfer",
}
# FLOPS (capital S) = FLOP per second; MTps-style spellings are not accepted.
_RATE_BASES: dict[str, str] = {"FLOPS": "(flop / second)"}

_NUMBER_RE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(.*?)\s*$")
_TOKEN_RE = re.compile(r"[A-Za-zµμ]+|\d+|[*/^()]|\S")

_REGISTRY: pint.UnitRegistry | None = None


def _registry() -> pint.UnitRegistry:
    """The shared pint registry, built on first use.

    It is a small registry of our own (not pint's default file): pint's default treats ``bit`` and
    ``byte`` as dimensionless, which would let ``"3 GB/s"`` pass as a frequency. Here information,
    energy, computation and transfers are base dimensions of their own.
    """
    global _REGISTRY
    if _REGISTRY is None:
        import pint

        reg = pint.UnitRegistry(None)
        for line in (
            "second = [time]",
            "bit = [information]",
            "byte = 8 * bit",
            "hertz = 1 / second",
            "joule = [energy]",
            "watt = joule / second",
            "flop = [computation]",
            "transfer = [transfer_count]",
            "exa- = 1e18",
            "peta- = 1e15",
            "tera- = 1e12",
            "giga- = 1e9",
            "mega- = 1e6",
            "kilo- = 1e3",
            "milli- = 1e-3",
            "micro- = 1e-6",
            "nano- = 1e-9",
            "pico- = 1e-12",
            "femto- = 1e-15",
            "kibi- = 2**10",
            "mebi- = 2**20",
            "gibi- = 2**30",
            "tebi- = 2**40",
            "pebi- = 2**50",
        ):
            reg.define(line)
        _REGISTRY = reg
    return _REGISTRY


def _split_symbol(sym: str) -> str:
    """One unit symbol (``"GB"``, ``"ns"``, ``"GiB"``, ``"FLOPS"``) as a pint expression."""
    if sym in _BASES:  # exact base first: "T" alone is a transfer, "b" a bit, "s" a second
        return _BASES[sym]
    for pre in sorted(_PREFIXES, key=len, reverse=True):
        if pre and sym.startswith(pre):
            rest = sym[len(pre) :]
            if rest in _BASES:
                return _PREFIXES[pre] + _BASES[rest]
            if rest in _RATE_BASES:
                return _RATE_BASES[rest].replace("flop", _PREFIXES[pre] + "flop", 1)
    if sym in _RATE_BASES:
        return _RATE_BASES[sym]
    raise UnitError(f"unknown unit symbol {sym!r}")


@lru_cache(maxsize=512)
def _factor(unit_text: str, kind: str) -> float:
    """Multiplier from ``unit_text`` (e.g. ``"GB/s"``) to the SI base of ``kind``; cached."""
    parts: list[str] = []
    for tok in _TOKEN_RE.findall(unit_text):
        if tok in "*/^()" or tok.isdigit() or tok == "-":
            parts.append(tok)
        elif tok[0].isalpha() or tok[0] in "µμ":
            if parts and (parts[-1][-1].isalnum() or parts[-1] == ")"):
                parts.append("*")  # "bit s^-1" = bit * s^-1
            parts.append(_split_symbol(tok))
        else:
            raise UnitError(f"unexpected character {tok!r} in unit {unit_text!r}")
    expr = re.sub(r"\s*\^\s*(-?)\s*(\d+)", r"**\1\2", " ".join(parts))
    reg = _registry()
    try:
        units = reg.parse_units(expr)
        target = reg.parse_units(KINDS[kind][0])
    except Exception as e:  # pint raises several error types for bad expressions
        raise UnitError(f"cannot read the unit {unit_text!r} ({e})") from None
    import pint

    try:
        return float(reg.Quantity(1.0, units).to(target).magnitude)
    except pint.DimensionalityError:
        got = _describe_dimension(units)
        raise UnitError(
            f"{unit_text!r} is {got}, but this field needs {_KIND_WORDS[kind]} "
            f"(e.g. {KINDS[kind][2]!r})"
        ) from None


def _describe_dimension(units: Any) -> str:
    reg = _registry()
    for kind, (target, _, _) in KINDS.items():
        if reg.Quantity(1.0, units).check(reg.parse_units(target).dimensionality):
            return _KIND_WORDS[kind]
    return f"a quantity of dimension {reg.Quantity(1.0, units).dimensionality}"


def parse_quantity(value: Any, kind: str) -> float:
    """Parse ``value`` (a string like ``"25.6 GB/s"``) into an SI float for ``kind``.

    Raises :class:`UnitError` if the unit is missing, unknown, or of the wrong dimension.

    >>> parse_quantity("25.6 GB/s", "bandwidth")
    25600000000.0
    >>> parse_quantity("4 GiB", "bytes")
    4294967296.0
    """
    if kind not in KINDS:
        raise ValueError(f"unknown quantity kind {kind!r}; known: {', '.join(KINDS)}")
    example = KINDS[kind][2]
    if isinstance(value, bool):
        raise UnitError(f"expected {_KIND_WORDS[kind]} with a unit like {example!r}, got {value!r}")
    if isinstance(value, int | float):
        raise UnitError(
            f"missing unit: {value!r} needs a unit of {_KIND_WORDS[kind]}, e.g. {example!r}"
        )
    if not isinstance(value, str):
        raise UnitError(
            f"expected {_KIND_WORDS[kind]} written as a string with a unit like {example!r}, "
            f"got a {type(value).__name__}"
        )
    m = _NUMBER_RE.match(value)
    if not m:
        raise UnitError(f"cannot read {value!r} as {_KIND_WORDS[kind]}; write e.g. {example!r}")
    number, unit_text = m.group(1), m.group(2)
    if not unit_text:
        raise UnitError(
            f"missing unit: {value!r} needs a unit of {_KIND_WORDS[kind]}, e.g. {example!r}"
        )
    mag = float(number)
    if not math.isfinite(mag):
        raise UnitError(f"{value!r} is not a finite number")
    try:
        return mag * _factor(unit_text, kind)
    except UnitError as e:
        raise UnitError(f"in {value!r}: {e}") from None


def expected_example(kind: str) -> str:
    """An example string for ``kind`` (used in error messages and docs)."""
    return KINDS[kind][2]


# --- writing units back out ----------------------------------------------------------------------

_DEC_UP = [(1e18, "E"), (1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, "")]
_DEC_DOWN = [(1.0, ""), (1e-3, "m"), (1e-6, "u"), (1e-9, "n"), (1e-12, "p"), (1e-15, "f")]
_BIN = [(2.0**50, "Pi"), (2.0**40, "Ti"), (2.0**30, "Gi"), (2.0**20, "Mi"), (2.0**10, "Ki")]

# kind -> (unit after the prefix, whether sub-unit prefixes (m, u, n, p) make sense)
_OUT: dict[str, tuple[str, bool]] = {
    "time": ("s", True),
    "bytes": ("B", False),
    "bandwidth": ("B/s", False),
    "frequency": ("Hz", False),
    "energy": ("J", True),
    "power": ("W", True),
    "flop_rate": ("FLOP/s", False),
    "transfer_rate": ("T/s", False),
    "energy_per_bit": ("J/bit", True),
}


def _choose_scale(value: float, kind: str, binary: bool | None) -> tuple[float, str]:
    unit, small = _OUT[kind]
    a = abs(value)
    if a == 0 or not math.isfinite(a):
        return 1.0, ""
    if kind in ("bytes", "bandwidth") and binary is not False:
        for scale, pre in _BIN:
            if a >= scale:
                q = a / scale
                if binary or (q * 4 == round(q * 4) and q < 1024):
                    return scale, pre
                break
    for scale, pre in _DEC_UP:
        if a >= scale:
            return scale, pre
    if small:
        for scale, pre in _DEC_DOWN:
            if a >= scale:
                return scale, pre
        return 1e-15, "f"
    return 1.0, ""


def format_si(value: float, kind: str, digits: int = 3, binary: bool | None = None) -> str:
    """Write an SI float with a readable prefix, ``digits`` significant digits.

    Bytes and bandwidths use binary prefixes (``GiB``) when the value is a whole multiple of one and
    ``binary`` is not False, decimal ones otherwise (``binary=True`` forces binary).

    >>> format_si(25.6e9, "bandwidth")
    '25.6 GB/s'
    >>> format_si(13.75e-9, "time")
    '13.8 ns'
    >>> format_si(4 * 2**30, "bytes")
    '4 GiB'
    """
    if kind not in _OUT:
        raise ValueError(f"unknown quantity kind {kind!r}; known: {', '.join(KINDS)}")
    scale, pre = _choose_scale(value, kind, binary)
    q = value / scale
    text = f"{q:.{digits}g}"
    if "e" in text:  # e.g. 1e+03 after rounding 999.96 -> write it plainly
        text = repr(float(text))
    if text.endswith(".0"):
        text = text[:-2]
    return f"{text} {pre}{_OUT[kind][0]}"


def format_exact(value: float, kind: str) -> str:
    """Like :func:`format_si` but with as many digits as needed to parse back to ``value`` exactly.

    Used by ``SystemConfig.to_yaml()`` so that a dump re-loads to the identical float.
    """
    for digits in range(3, 9):
        text = format_si(value, kind, digits=digits)
        if parse_quantity(text, kind) == value:
            return text
    return f"{value!r} {KINDS[kind][1]}"  # the base unit's factor is exactly 1.0
