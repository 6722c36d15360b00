"""ONNX Runtime session options of the mask classifier (maskwatch.classifier)."""

from __future__ import annotations


def test_onnx_sessions_do_not_spin_and_keep_their_thread_count(monkeypatch):
    from maskwatch.classifier import MaskClassifier

    monkeypatch.delenv("MASKWATCH_ORT_SPINNING", raising=False)
    options = MaskClassifier(threads=2).session.get_session_options()
    # spinning idle workers of one session starve the other on 2 cores (README, Speed)
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "0"
    assert options.intra_op_num_threads == 2
    monkeypatch.setenv("MASKWATCH_ORT_SPINNING", "1")
    from maskwatch.settings import reload_settings

    assert reload_settings().ort_spinning  # the environment is read once, in maskwatch.settings
    options = MaskClassifier(threads=2).session.get_session_options()
    assert options.get_session_config_entry("session.intra_op.allow_spinning") == "1"
