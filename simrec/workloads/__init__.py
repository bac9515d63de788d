"""Workload models: DLRM-style model configurations (:mod:`simrec.workloads.dlrm`)."""

from simrec.workloads.dlrm import MODELS, DlrmModel, get_model

__all__ = ["MODELS", "DlrmModel", "get_model"]
