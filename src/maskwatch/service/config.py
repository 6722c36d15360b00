"""The venue config (``maskwatch serve --config venue.yaml``), validated with pydantic.

Unknown keys are refused; every error names the key and its line in the file. Relative paths (video
files, the SQLite store, the snapshot folder, model files) resolve against the config file's folder.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ..alerts.config import AlertsConfig
from ..errors import MaskWatchError
from ..video.sources import STREAM_PREFIXES

Point = tuple[float, float]
NAME_RE = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


class ConfigError(MaskWatchError):
    """A config file that cannot be used; the message is one line: file:line: key: problem."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CameraConfig(_Strict):
    name: str = Field(description="Unique name, stored with every event and used in the API URLs.")
    source: str = Field(description="Video file, folder of frames, webcam index (0) or rtsp:// / http:// URL.")
    enabled: bool = True
    detect_every: int = Field(3, ge=1, description="Detector+classifier on every Nth frame; track in between.")
    zone: list[Point] | None = Field(None, description="Polygon (>= 3 points, frame pixels): only faces inside raise events.")
    entry: tuple[Point, Point] | None = Field(None, description="Directional entry line [[x1, y1], [x2, y2]].")
    stride: int = Field(1, ge=1, description="Files and folders: process every Nth frame.")
    loop: bool = Field(False, description="Files: start again at the end (demos, benchmarks).")
    realtime: bool = Field(False, description="Files: read at the file's frame rate, as a camera would send.")
    open_timeout_s: float = Field(10.0, gt=0)
    refind_s: float = Field(3.0, ge=0, description="A person lost and found again at the same place within this "
                            "many seconds keeps their id and state (no second event); watch --refind.")
    lost_after_s: float = Field(2.0, gt=0, description="Streams and webcams: no frame for this long raises one "
                                "source_lost.")
    restore_after_s: float = Field(2.0, gt=0, description="Streams and webcams: after a loss, frames flowing this "
                                   "long (no pause over lost_after_s / 2) raise one source_restored.")

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not NAME_RE.match(v):
            raise ValueError("letters, digits, '_', '-' and '.' only (1-64 characters): it appears in URLs")
        return v

    @field_validator("zone")
    @classmethod
    def _zone(cls, v: list[Point] | None) -> list[Point] | None:
        if v is not None and len(v) < 3:
            raise ValueError("a zone needs at least 3 points")
        return v

    @field_validator("entry")
    @classmethod
    def _entry(cls, v: tuple[Point, Point] | None) -> tuple[Point, Point] | None:
        if v is not None and v[0] == v[1]:
            raise ValueError("the two points of the entry line must differ")
        return v

    @property
    def is_file(self) -> bool:
        return not (self.source.startswith(STREAM_PREFIXES) or self.source.isdigit())


class ModelsConfig(_Strict):
    detector: str = "centerface"
    detector_model: str | None = Field(None, description="Detector ONNX file (default: the detector's own).")
    classifier: str | None = Field(None, description="Mask classifier ONNX file (default: the bundled one).")
    input_size: int | None = Field(None, ge=64, description="Detector input: longer side in px (unset: 640 for "
                                   "the detectors that take one; an error for those that do not).")
    precision: Literal["fp32", "int8"] | None = Field(
        None, description="Bundled detector model: fp32 or int8 (unset: int8 for centerface without a "
        "detector_model: ~1.6x faster, face AP 0.3 points lower on val; MODEL_CARD_CENTERFACE_INT8.md).")
    min_score: float | None = Field(None, ge=0.0, le=1.0)
    min_face: float = Field(20.0, ge=0.0)
    threads: int | None = Field(1, ge=1, description="ONNX Runtime threads per camera process.")

    def precision_option(self) -> Any:
        """The detector's precision option: as set, else INT8 where the detector has a bundled INT8 model
        and no model file is given (a camera's detector runs on every few frames, all day)."""
        from ..detectors import Preferred

        if self.precision is None and self.detector_model is None and self.detector == "centerface":
            return Preferred("int8")
        return self.precision


class StateSettings(_Strict):
    window: int = Field(6, ge=1)
    hold: int = Field(2, ge=1)
    enter: float = Field(0.6, ge=0.34, le=1.0)


class SnapshotsConfig(_Strict):
    dir: str | None = Field(None, description="Folder (default: the user data folder, as for watch and serve).")
    mode: Literal["none", "blurred", "full"] = "blurred"
    keep: int = Field(1000, ge=0, description="Keep at most this many files (0: no limit).")
    days: float = Field(30.0, ge=0, description="Delete snapshots older than this (0: never).")


class SpoolSettings(_Strict):
    path: str | None = Field(None, description="Where events go while the database cannot take them: a .jsonl "
                             "file or a folder (default: $MASKWATCH_SPOOL or spool/ in the user data folder).")
    max_mb: float = Field(64.0, ge=0.01, description="Spool at most this many MiB.")
    max_events: int = Field(100_000, ge=1, description="Spool at most this many events.")

    def spool_config(self) -> Any:
        """The store's :class:`~maskwatch.store.SpoolConfig`."""
        from ..store import SpoolConfig

        return SpoolConfig(path=None if self.path is None else Path(self.path),
                           max_bytes=max(int(self.max_mb * 2**20), 1024), max_events=self.max_events)


class ServerConfig(_Strict):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    api_key: str | None = None
    public_url: str | None = Field(None, description="How others reach this service, e.g. https://mw.example.org "
                                                     "(snapshot links in alerts; default http://host:port).")

    @field_validator("public_url")
    @classmethod
    def _url(cls, v: str | None) -> str | None:
        if v is not None and not re.match(r"^https?://[^/\s]+", v):
            raise ValueError("expected an http:// or https:// URL")
        return v


class SupervisorConfig(_Strict):
    hang_s: float = Field(20.0, gt=0, description="A camera process silent this long is restarted.")
    start_s: float = Field(120.0, gt=0, description="A camera process still starting (loading its models, "
                           "before its first report) this long is restarted; a loaded machine needs more than hang_s.")
    backoff_s: float = Field(1.0, gt=0, description="First restart delay; doubles per crash.")
    backoff_max_s: float = Field(30.0, gt=0)
    health_every_s: float = Field(0.5, gt=0)


class ServiceConfig(_Strict):
    cameras: list[CameraConfig] = Field(min_length=1)
    models: ModelsConfig = ModelsConfig()
    state: StateSettings = StateSettings()
    store: str | None = Field(None, description="SQLAlchemy URL or SQLite file (default: as for watch: $MASKWATCH_DB "
                                                "or events.db in the user data folder).")
    snapshots: SnapshotsConfig = SnapshotsConfig()
    spool: SpoolSettings = SpoolSettings()
    server: ServerConfig = ServerConfig()
    supervisor: SupervisorConfig = SupervisorConfig()
    alerts: AlertsConfig | None = Field(None, description="Alert rules and channels (docs/alerts.md); one "
                                                          "dispatcher for the venue, in the API process.")

    @model_validator(mode="after")
    def _unique_names(self) -> "ServiceConfig":
        seen: set[str] = set()
        for cam in self.cameras:
            if cam.name in seen:
                raise ValueError(f"camera name {cam.name!r} is used twice")
            seen.add(cam.name)
        return self

    def _unknown_alert_cameras(self) -> list[str]:
        names = {c.name for c in self.cameras}
        wanted = self.alerts.rules.cameras if self.alerts is not None else None
        return [n for n in wanted or [] if n not in names]

    def camera(self, name: str) -> CameraConfig:
        for cam in self.cameras:
            if cam.name == name:
                return cam
        raise KeyError(name)

    def to_yaml(self, hide_secrets: bool = True) -> str:
        data = self.model_dump(mode="json", by_alias=True)
        if hide_secrets:
            for path in (("server", "api_key"), ("alerts", "channels", "webhook", "secret"),
                         ("alerts", "channels", "mqtt", "password"), ("alerts", "channels", "smtp", "password")):
                parent = data
                for key in path[:-1]:
                    parent = parent.get(key) if isinstance(parent, dict) else None
                if isinstance(parent, dict) and parent.get(path[-1]):
                    parent[path[-1]] = "<hidden>"
        return yaml.dump(data, Dumper=_FlowPointsDumper, sort_keys=False, allow_unicode=True)


class _FlowPointsDumper(yaml.SafeDumper):
    """Points and polygons on one line: ``[[0.0, 120.0], [640.0, 120.0]]``."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> Any:
    flat = all(isinstance(v, (int, float)) or (isinstance(v, list) and all(isinstance(w, (int, float)) for w in v))
               for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=bool(data) and flat)


_FlowPointsDumper.add_representer(list, _represent_list)


# -- loading ------------------------------------------------------------------------------------

def _key_lines(node: Any, path: tuple = (), out: dict | None = None) -> dict[tuple, int]:
    """(key, index, ...) -> 1-based line of that key (or list item) in the YAML file."""
    out = {} if out is None else out
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            here = path + (key_node.value,)
            out[here] = key_node.start_mark.line + 1
            _key_lines(value_node, here, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            here = path + (i,)
            out[here] = item.start_mark.line + 1
            _key_lines(item, here, out)
    return out


def _line_of(lines: dict[tuple, int], loc: tuple) -> int | None:
    loc = tuple(loc)
    while loc:
        if loc in lines:
            return lines[loc]
        loc = loc[:-1]
    return None


def _dotted(loc: tuple) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def parse_config(text: str, base_dir: Path, filename: str = "<config>") -> ServiceConfig:
    """Validate YAML text; relative paths resolve against ``base_dir``."""
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark is not None else filename
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{where}: not valid YAML: {problem}") from None
    if data is None:
        raise ConfigError(f"{filename}: the file is empty (see `maskwatch config example`)")
    if not isinstance(data, dict):
        raise ConfigError(f"{filename}:1: the top level must be a mapping of keys (cameras:, models:, ...)")
    lines = _key_lines(node)
    try:
        config = ServiceConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = tuple(p for p in first["loc"])
        # pydantic adds the union/tuple member index to some locations; trim to what is in the file
        line = _line_of(lines, loc)
        msg = first["msg"].removeprefix("Value error, ")
        if first["type"] == "extra_forbidden":
            msg = "unknown key"
        more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
        raise ConfigError(f"{filename}:{line or 1}: {_dotted(loc)}: {msg}{more}") from None
    unknown = config._unknown_alert_cameras()
    if unknown:
        loc = ("alerts", "rules", "cameras")
        raise ConfigError(f"{filename}:{_line_of(lines, loc) or 1}: {_dotted(loc)}: no camera named "
                          f"{unknown[0]!r} (cameras are {', '.join(c.name for c in config.cameras)})")
    return resolve_paths(config, base_dir)


def load_config(path: str | Path) -> ServiceConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the config: {exc.strerror or exc}") from None
    return parse_config(text, path.resolve().parent, str(path))


def _abs(value: str, base: Path) -> str:
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def resolve_paths(config: ServiceConfig, base: Path) -> ServiceConfig:
    """Absolute paths, and the defaults ``watch`` and ``serve`` share (store, snapshot folder) filled in."""
    from ..store.events_db import default_db_url

    if config.store is None:
        config.store = default_db_url()
    if config.snapshots.dir is None:
        from ..monitor.snapshots import default_snapshot_dir

        config.snapshots.dir = str(default_snapshot_dir())
    for cam in config.cameras:
        if cam.is_file:
            cam.source = _abs(cam.source, base)
    if config.store and "://" not in config.store:
        config.store = f"sqlite:///{_abs(config.store, base)}"
    elif config.store and config.store.startswith("sqlite:///") and not config.store.startswith("sqlite:////") \
            and config.store != "sqlite:///:memory:":
        config.store = f"sqlite:///{_abs(config.store.removeprefix('sqlite:///'), base)}"
    if config.snapshots.dir:
        config.snapshots.dir = _abs(config.snapshots.dir, base)
    if config.spool.path:
        config.spool.path = _abs(config.spool.path, base)
    for key in ("classifier", "detector_model"):
        value = getattr(config.models, key)
        if value:
            setattr(config.models, key, _abs(value, base))
    return config


def example_config() -> str:
    """A commented config that passes ``maskwatch config check``."""
    return EXAMPLE


EXAMPLE = """\
# MaskWatch venue config: `maskwatch config check venue.yaml`, then `maskwatch serve --config venue.yaml`.
# Relative paths are taken from the folder this file is in. Every key is described in docs/service.md.

cameras:                          # one worker process per camera
  - name: door                    # letters, digits, _ - . (used in /v1/cameras/door/...)
    source: rtsp://192.168.1.20:554/stream1   # file, folder of frames, webcam index (0) or rtsp:// http:// URL
    detect_every: 3               # detector on every 3rd frame, optical flow in between
    entry: [[0, 300], [640, 300]] # directional line: crossing it this way round (left side to right side) = in
    zone: [[0, 120], [640, 120], [640, 480], [0, 480]]   # only faces inside raise mask events
    refind_s: 3                   # a person lost and found again at the same place within 3 s keeps their id
    lost_after_s: 2               # streams and webcams: no frame for 2 s raises one source_lost ...
    restore_after_s: 2            # ... and 2 s of steady frames after it one source_restored
  - name: hall
    source: "0"                   # the first webcam
    enabled: false                # start it later: POST /v1/cameras/hall/enable

models:
  detector: centerface            # centerface, yunet, ultraface, mtcnn, aizoo
  classifier: null                # mask classifier ONNX (null: the bundled one)
  input_size: 640                 # detector input, longer side in px (320 is ~4x faster)
  precision: int8                 # bundled CenterFace: int8 (default here, ~1.6x faster) or fp32
  min_score: null                 # face confidence threshold (null: the detector's own)
  threads: 1                      # ONNX Runtime threads per camera process

store: events.db                  # SQLite file, or postgresql+psycopg://user:pass@host/db

snapshots:
  dir: snapshots                  # served by the API; nothing outside it is
  mode: blurred                   # none | blurred (all but the face concerned) | full
  keep: 1000                      # at most this many files (0: no limit)
  days: 30                        # delete older ones (0: never)

spool:                            # where events wait while the store cannot take them (every camera shares it)
  path: null                      # a .jsonl file or a folder, e.g. /mnt/other-disk/spool (null: $MASKWATCH_SPOOL
                                  # or spool/ in the user data folder); best on another disk than the store
  max_mb: 64                      # at most this many MiB ...
  max_events: 100000              # ... and this many events

server:
  host: 127.0.0.1                 # 0.0.0.0: every interface (then set an api_key)
  port: 8000
  api_key: null                   # required in X-API-Key on /v1 (but /v1/health) when set
  public_url: null                # how others reach it, e.g. https://mw.example.org (default http://host:port):
                                  # alerts link snapshots as <public_url>/v1/events/<id>/snapshot

supervisor:
  hang_s: 20                      # a camera silent this long is restarted
  start_s: 120                    # ... or still loading its models this long (first start on a busy machine)
  backoff_s: 1                    # first restart delay, doubling per crash
  backoff_max_s: 30

alerts:                           # one dispatcher for the whole venue (docs/alerts.md); null: no alerts
  rules:
    event_types: [entered_unmasked, mask_removed, mask_incorrect]
    cameras: null                 # null: every camera; or e.g. [door]
    cooldown_person_s: 300        # one alert per person (camera + track) within 5 minutes
    cooldown_camera_s: 0          # at most one alert per camera within this (0: no limit)
    min_confidence: 0.0
    quiet_hours: []               # e.g. [{start: "22:00", end: "06:00"}] (local time)
  channels: {}                    # none yet: alerts are recorded (dashboard, /v1/alerts) but not sent.
                                  # Replace {} with any of these (each retries on a thread of its own):
  #   webhook: {url: "https://hooks.example.org/maskwatch", secret: change-me}  # X-MaskWatch-Signature: sha256=HMAC
  #   mqtt: {host: 127.0.0.1, port: 1883, topic_prefix: maskwatch}             # <prefix>/<camera>/events, counts
  #   smtp: {host: mail.example.org, port: 25, from: maskwatch@example.org, to: [desk@example.org]}
  retry: {backoff_s: 0.5, max_backoff_s: 30, max_attempts: 0, max_queue: 1000}
  close_timeout_s: 5              # on shutdown, waiting deliveries get at most this long
"""
