"""Batch runs over a Ray cluster: recorded footage and photo archives, events into one store."""

from .runner import BatchResult, run_batch
from .work import CRASH_ENV, BatchWorker, Item, Settings, expand_inputs, read_manifest

__all__ = ["CRASH_ENV", "BatchResult", "BatchWorker", "Item", "Settings", "expand_inputs", "read_manifest", "run_batch"]
