"""Packaging tests: the ONNX Runtime backend of the installers, and (marker ``installer``) a
smoke test of the built .deb."""

from __future__ import annotations


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "installer: smoke-tests the built installer (runs when dist/faceapp_*.deb exists or "
        "FACEAPP_TEST_INSTALLER=1; skipped otherwise)",
    )
