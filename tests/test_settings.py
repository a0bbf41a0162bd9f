"""Settings: file -> environment -> flags, validated once."""

from __future__ import annotations

import pytest

from resolver.settings import Settings, SettingsError, load_settings


def test_defaults_match_the_documented_file():
    assert load_settings("config/idnode.toml", env={}) == Settings()


def test_order_file_then_env_then_flags(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[http]\nport = 9000\nbind = "0.0.0.0"\n[log]\nformat = "json"\n')
    s = load_settings(cfg, env={"IDNODE_HTTP_PORT": "9100", "IDNODE_HOME": "/srv/x"},
                      overrides={"http.port": 9200})
    assert (s.http.port, s.http.bind, s.log.format, s.node.home) == (9200, "0.0.0.0", "json", "/srv/x")
    s = load_settings(cfg, env={"IDNODE_HTTP_PORT": "9100"})
    assert s.http.port == 9100


@pytest.mark.parametrize("text,needle", [
    ("[http]\nport = 'abc'\n", "http.port"),
    ("[http]\nnope = 1\n", "unknown setting 'http.nope'"),
    ("[log]\nformat = 'xml'\n", "log.format"),
    ("[http]\nport = -1\n", "negative"),
    ("port = 1\n", "must be a [section]"),
    ("[http\n", "config file"),
])
def test_bad_files_get_one_clear_message(tmp_path, text, needle):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(SettingsError) as info:
        load_settings(cfg, env={})
    assert needle in str(info.value)


def test_missing_file_and_bad_env():
    with pytest.raises(SettingsError, match="cannot read config file"):
        load_settings("/nonexistent/idnode.toml", env={})
    with pytest.raises(SettingsError, match="environment"):
        load_settings(env={"IDNODE_AUTH_FAILURE_DELAY": "soon"})


def test_settings_are_frozen():
    s = Settings()
    with pytest.raises(AttributeError):
        s.http.port = 1  # type: ignore[misc]


def test_the_documented_file_names_every_setting():
    import dataclasses
    import tomllib
    with open("config/idnode.toml", "rb") as fh:
        doc = tomllib.load(fh)
    defaults = Settings()
    missing = [f"{sec.name}.{f.name}" for sec in dataclasses.fields(defaults)
               for f in dataclasses.fields(getattr(defaults, sec.name)) if f.name not in doc.get(sec.name, {})]
    assert missing == []
