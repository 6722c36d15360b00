"""Services the CLI and the server both call, each a typed config and a small interface:

- :mod:`.detect`: photos (paths or uploaded bytes) -> faces, the detection record, an annotated JPEG
  (``maskwatch detect``, ``POST /v1/detect``);
- :mod:`.classify`: face crops -> mask state (``maskwatch classify``);
- the venue service: one YAML config (:mod:`.config`), one worker process per camera, a supervisor.

Submodules are imported on first use, so ``maskwatch detect`` does not load the venue service's
dependencies (YAML, the event store).
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ConfigError": "config", "ServiceConfig": "config", "example_config": "config", "load_config": "config",
    "DetectConfig": "detect", "DetectService": "detect", "Detection": "detect",
    "ClassifyConfig": "classify", "ClassifyService": "classify", "Classification": "classify",
    "SynthConfig": "synth", "run_synth": "synth",
}


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


__all__ = sorted(_EXPORTS)
