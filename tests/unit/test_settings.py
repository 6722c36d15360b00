"""maskwatch.settings: the environment read in one place; the synth command without MASKWATCH_SHARED."""

from __future__ import annotations

import pytest


def test_settings_from_environment(tmp_path):
    from maskwatch.settings import Settings

    plain = Settings.from_env({})
    assert plain.shared_dir is None and not plain.ort_spinning
    assert plain.db_url == f"sqlite:///{plain.data_dir / 'events.db'}"
    assert plain.snapshot_dir == plain.data_dir / "snapshots"
    told = Settings.from_env({"MASKWATCH_CACHE": str(tmp_path / "c"), "MASKWATCH_DB": "postgresql://x/y",
                              "MASKWATCH_SHARED": str(tmp_path), "MASKWATCH_ORT_SPINNING": "1"})
    assert told.models_dir == tmp_path / "c" / "models"
    assert (told.db_url, told.shared_dir, told.ort_spinning) == ("postgresql://x/y", tmp_path, True)


def test_defaults_elsewhere_come_from_the_settings(tmp_path, monkeypatch):
    from maskwatch.monitor import default_snapshot_dir
    from maskwatch.registry import cache_dir
    from maskwatch.settings import get_settings, reload_settings
    from maskwatch.store import default_db_url

    monkeypatch.setenv("MASKWATCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MASKWATCH_DB", str(tmp_path / "e.db"))
    reload_settings()
    assert cache_dir() == tmp_path / "cache" / "models"
    assert default_db_url() == str(tmp_path / "e.db")
    assert default_snapshot_dir() == get_settings().data_dir / "snapshots"
    monkeypatch.setenv("MASKWATCH_DB", str(tmp_path / "other.db"))
    assert default_db_url() == str(tmp_path / "e.db")  # read once
    assert reload_settings().db_url == str(tmp_path / "other.db")


def test_shared_path_errors_name_the_variable(tmp_path):
    from maskwatch.errors import MaskWatchError
    from maskwatch.settings import Settings

    with pytest.raises(MaskWatchError, match="templates: MASKWATCH_SHARED is not set"):
        Settings.from_env({}).shared_path("masks", what="templates")
    with pytest.raises(MaskWatchError, match="does not exist"):
        Settings.from_env({"MASKWATCH_SHARED": str(tmp_path)}).shared_path("masks", what="templates")
    (tmp_path / "masks").mkdir()
    assert Settings.from_env({"MASKWATCH_SHARED": str(tmp_path)}).shared_path("masks", what="t") == tmp_path / "masks"


def test_synth_without_shared_says_so_in_one_line(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from maskwatch.cli import app

    monkeypatch.delenv("MASKWATCH_SHARED", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "faces").mkdir()
    result = CliRunner().invoke(app, ["synth", "faces", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert "MASKWATCH_SHARED is not set" in result.output and "Traceback" not in result.output
