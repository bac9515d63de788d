"""The functional model: numpy embedding math, codecs, model-size accounting, DLRM forward and
end-to-end verification of a planned system's data path (docs/functional.md).

Names are imported lazily, so ``simrec.shard.plan`` can use :mod:`simrec.functional.spec` without
an import cycle through the verifier (which itself uses the plan).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "Codec": "codecs",
    "build_codec": "codecs",
    "DLRM": "dlrm",
    "DLRMConfig": "dlrm",
    "embedding_bag": "embedding_bag",
    "pool_rows": "embedding_bag",
    "pooled_batch": "embedding_bag",
    "model_size": "model_size",
    "tt_largest": "model_size",
    "reorder_rows": "reorder",
    "reuse_report": "reorder",
    "CAFESpec": "spec",
    "CodecCost": "spec",
    "CodecSpec": "spec",
    "HashSpec": "spec",
    "MemRecSpec": "spec",
    "QRSpec": "spec",
    "QuantSpec": "spec",
    "RawSpec": "spec",
    "TTSpec": "spec",
    "TTCores": "tt",
    "suggested_tt_shapes": "tt",
    "VerifyReport": "verify",
    "verify_functional": "verify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    mod = _EXPORTS.get(name)
    if mod is None:
        raise AttributeError(f"module 'simrec.functional' has no attribute {name!r}")
    return getattr(importlib.import_module(f"simrec.functional.{mod}"), name)


def __dir__() -> list[str]:
    return __all__
