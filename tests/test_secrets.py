"""Secrets in the settings (the webhook's signing secret) are never shown, printed or logged,
and the settings file that holds them is owner-only."""

from __future__ import annotations

import json

from faceapp.cli.main import main
from faceapp.config import Settings, load_settings, render_settings, save_settings, shown


def test_a_secret_is_hidden_wherever_settings_are_shown(tmp_path, monkeypatch, capsys):
    path = tmp_path / "cfg" / "settings.toml"
    save_settings(Settings(door_webhook_secret="s3cret-value"), path)
    assert path.stat().st_mode & 0o777 == 0o600 and path.parent.stat().st_mode & 0o777 == 0o700
    assert load_settings(path, env=False).door_webhook_secret == "s3cret-value"  # saved for real
    assert "s3cret-value" not in render_settings(load_settings(path, env=False), redact=True)
    monkeypatch.setenv("FACEAPP_SETTINGS", str(path))
    for argv in (["settings"], ["settings", "--json"]):
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "s3cret-value" not in out and "***" in out
    assert json.loads(main(["settings", "--json"]) == 0 and capsys.readouterr().out)["door_webhook_secret"] == "***"
    assert shown("door_webhook_secret", "") == "" and shown("threshold", 0.2) == 0.2
