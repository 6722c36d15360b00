"""The venue service: one YAML config, one worker process per camera, a supervisor and the HTTP API."""

from .config import ConfigError, ServiceConfig, example_config, load_config

__all__ = ["ConfigError", "ServiceConfig", "example_config", "load_config"]
