"""Settings: file -> environment -> flags, validated once."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from resolver import settings as settings_module
from resolver.settings import Settings, SettingsError, address_in, find_config, load_settings, networks, servers


def every_setting() -> list[tuple[str, dataclasses.Field]]:
    """("section.key", field) for every setting (``source`` is not one)."""
    defaults = Settings()
    return [(f"{sec.name}.{f.name}", f) for sec in dataclasses.fields(defaults) if sec.name != "source"
            for f in dataclasses.fields(getattr(defaults, sec.name))]


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
    ("[http]\nport = -1\n", "must be 0..65535, got -1"),
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
    with open("config/idnode.toml", "rb") as fh:
        doc = tomllib.load(fh)
    missing = [key for key, _ in every_setting() if key.partition(".")[2] not in doc.get(key.partition(".")[0], {})]
    assert missing == []


# ---------------------------------------------------------------- ranges

@pytest.mark.parametrize("key,value,message", [
    ("http.port", "99999", "http.port (from environment): must be 0..65535, got 99999"),
    ("handle.port", "-1", "handle.port (from environment): must be 0..65535, got -1"),
    ("handle.site_serial", "70000", "handle.site_serial (from environment): must be 0..65535, got 70000"),
    ("node.workers", "257", "node.workers (from environment): must be 0..256, got 257"),
    ("http.max_body_bytes", "0", "http.max_body_bytes (from environment): must be at least 1, got 0"),
    ("http.batch_max_items", "0", "must be at least 1, got 0"),
    ("http.page_size", "0", "must be at least 1, got 0"),
    ("handle.max_message_bytes", "63", "handle.max_message_bytes (from environment): must be at least 64, got 63"),
    ("handle.idle_timeout", "0", "handle.idle_timeout (from environment): must be more than 0, got 0.0"),
    ("handle.challenge_timeout", "0", "must be more than 0"),
    ("handle.udp_timeout", "-2", "must be more than 0"),
    ("handle.max_challenges", "0", "must be at least 1"),
    ("auth.lockout_failures", "0", "auth.lockout_failures (from environment): must be at least 1, got 0"),
    ("auth.lockout_seconds", "0", "must be more than 0"),
    ("auth.failure_delay", "-0.5", "must be at least 0, got -0.5"),
    ("store.poll_interval", "0", "store.poll_interval (from environment): must be more than 0, got 0.0"),
    ("cache.max_entries", "0", "cache.max_entries (from environment): must be at least 1, got 0"),
    ("cache.max_bytes", "0", "must be at least 1"),
    ("cache.max_negative_entries", "0", "must be at least 1"),
    ("cache.max_ttl", "0", "must be more than 0"),
    ("cache.negative_ttl", "-1", "must be at least 0"),
    ("cache.prefetch_min_hits", "0", "must be at least 1"),
    ("cache.max_ttl", "inf", "cache.max_ttl (from environment): must be a finite number, got 'inf'"),
    ("auth.failure_delay", "nan", "must be a finite number"),
    ("http.port", "80.5", "http.port (from environment): expected int, got '80.5'"),
    ("http.bind", "  ", "http.bind (from environment): must not be empty"),
    ("node.home", "", "node.home (from environment): must not be empty"),
    ("log.level", "loud", "log.level (from environment): must be one of"),
])
def test_out_of_range_environment_values_name_the_key_and_origin(key, value, message):
    env = {f"IDNODE_{key.replace('.', '_').upper()}": value}
    with pytest.raises(SettingsError) as info:
        load_settings(env=env)
    assert message in str(info.value)


def test_out_of_range_file_and_flag_values_name_their_origin(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[handle]\nmax_message_bytes = 10\n")
    with pytest.raises(SettingsError, match=rf"^handle.max_message_bytes \(from {cfg}\): must be at least 64, got 10$"):
        load_settings(cfg, env={})
    cfg.write_text("[http]\nport = 80.5\n")          # int() would quietly make it 80
    with pytest.raises(SettingsError, match="expected int, got 80.5"):
        load_settings(cfg, env={})
    cfg.write_text("[http]\nport = true\n")
    with pytest.raises(SettingsError, match="expected int, got True"):
        load_settings(cfg, env={})
    with pytest.raises(SettingsError, match=r"^node.workers \(from command line\): must be 0..256, got 1000$"):
        load_settings(env={}, overrides={"node.workers": 1000})
    with pytest.raises(SettingsError, match=r"^cache.max_ttl \(from override\): must be more than 0, got 0.0$"):
        Settings().with_overrides({"cache.max_ttl": 0})


def test_the_edges_of_each_range_are_accepted():
    s = load_settings(env={}, overrides={
        "http.port": 0, "handle.port": 65535, "handle.site_serial": 65535, "node.workers": 256,
        "handle.max_message_bytes": 64, "auth.failure_delay": 0, "cache.negative_ttl": 0,
        "cache.stale_seconds": 0, "cache.prefetch_seconds": 0, "handle.idle_timeout": 0.001,
        "http.page_size": 1, "cache.max_entries": "1"})
    assert (s.http.port, s.handle.port, s.handle.site_serial, s.node.workers) == (0, 65535, 65535, 256)
    assert (s.handle.max_message_bytes, s.auth.failure_delay, s.handle.idle_timeout) == (64, 0.0, 0.001)
    assert load_settings(env={}, overrides={"http.port": 8000.0}).http.port == 8000      # a whole float is an int


def test_every_numeric_setting_has_a_range_that_admits_its_default():
    numeric = [(key, f) for key, f in every_setting() if f.type in ("int", "float")]
    assert numeric
    missing = [key for key, _ in numeric if tuple(key.split(".")) not in settings_module._RANGES]
    assert missing == []
    for key, f in numeric:
        assert settings_module._RANGES[tuple(key.split("."))].admits(f.default), key


# ---------------------------------------------------------------- which file is read

def _toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def elsewhere(tmp_path, monkeypatch) -> Path:
    """An empty current directory (no config/idnode.toml)."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    return cwd


def test_no_file_anywhere_means_defaults(elsewhere):
    s = load_settings(env={})
    assert s == Settings() and s.source is None
    assert find_config(None, {}) is None


def test_config_dir_of_the_current_directory_is_the_last_resort(elsewhere):
    _toml(elsewhere / "config" / "idnode.toml", "[http]\nport = 8001\n")
    s = load_settings(env={})
    assert s.http.port == 8001 and s.source == Path("config/idnode.toml")
    s = load_settings(env={}, overrides={"node.home": str(elsewhere / "no-such-home")})
    assert s.http.port == 8001 and s.source == Path("config/idnode.toml")


def test_the_homes_file_comes_before_the_config_dir(elsewhere, tmp_path):
    _toml(elsewhere / "config" / "idnode.toml", "[http]\nport = 8001\n")
    home = tmp_path / "home"
    in_home = _toml(home / "idnode.toml", "[http]\nport = 8002\n")
    for env, overrides in (({}, {"node.home": str(home)}),                    # --home
                           ({"IDNODE_HOME": str(home)}, {}),                  # IDNODE_HOME
                           ({"IDNODE_NODE_HOME": str(home)}, {}),
                           ({"IDNODE_HOME": "/nonexistent"}, {"node.home": str(home)})):   # the flag wins
        s = load_settings(env=env, overrides=overrides)
        assert (s.http.port, s.source, s.home) == (8002, in_home, home), (env, overrides)
    # the default home, ./var (the path is kept as found)
    _toml(elsewhere / "var" / "idnode.toml", "[http]\nport = 8003\n")
    s = load_settings(env={})
    assert (s.http.port, s.source) == (8003, Path("var/idnode.toml"))


def test_an_explicit_file_comes_before_any_found_one(elsewhere, tmp_path):
    _toml(elsewhere / "config" / "idnode.toml", "[http]\nport = 8001\n")
    _toml(elsewhere / "var" / "idnode.toml", "[http]\nport = 8003\n")
    from_env = _toml(tmp_path / "env.toml", "[http]\nport = 8004\n")
    from_flag = _toml(tmp_path / "flag.toml", "[http]\nport = 8005\n")
    s = load_settings(env={"IDNODE_CONFIG": str(from_env)})
    assert (s.http.port, s.source) == (8004, from_env)
    s = load_settings(from_flag, env={"IDNODE_CONFIG": str(from_env)})
    assert (s.http.port, s.source) == (8005, from_flag)
    with pytest.raises(SettingsError, match="cannot read config file"):    # given, so it must exist
        load_settings(env={"IDNODE_CONFIG": str(tmp_path / "missing.toml")})


def test_a_found_file_is_checked_like_any_other(elsewhere):
    _toml(elsewhere / "var" / "idnode.toml", "[http]\nport = 70000\n")
    with pytest.raises(SettingsError, match=r"^http.port \(from var/idnode.toml\): must be 0..65535, got 70000$"):
        load_settings(env={})


def test_from_the_repository_root_the_defaults_file_is_read(tmp_path):
    """What most tests do: the repository's config/idnode.toml holds only defaults."""
    s = load_settings(env={}, overrides={"node.home": str(tmp_path / "home")})
    assert s.source == Path("config/idnode.toml")
    assert s == Settings().with_overrides({"node.home": str(tmp_path / "home")})


def test_source_is_kept_but_not_compared(elsewhere):
    _toml(elsewhere / "config" / "idnode.toml", "")
    s = load_settings(env={})
    assert s.source == Path("config/idnode.toml") and s == Settings()
    assert s.with_overrides({"http.port": 1}).source == s.source
    with pytest.raises(SettingsError, match="unknown setting 'source.x'"):
        s.with_overrides({"source.x": 1})


def test_server_lists_are_read_as_the_handle_client_reads_a_server():
    settings = load_settings(env={"IDNODE_UPSTREAM_ROOTS": "[::1]:2641, 127.0.0.1:9"})
    assert servers(settings.upstream.roots) == ("[::1]:2641", "127.0.0.1:9")
    assert load_settings(env={}, overrides={"upstream.roots": ["127.0.0.1:1", "[::1]:2"]}).upstream.roots == \
        "127.0.0.1:1,[::1]:2"                                        # a TOML list
    for bad in ("127.0.0.1", "::1", "[::1]", "127.0.0.1:0", "127.0.0.1:x"):
        with pytest.raises(SettingsError, match="not a list of servers"):
            load_settings(env={"IDNODE_UPSTREAM_ROOTS": bad})


def test_an_address_is_in_a_network_list_whatever_its_spelling():
    nets = networks("127.0.0.0/8,2001:db8::/32")
    assert address_in("127.0.0.1", nets) and address_in("::ffff:127.0.0.1", nets)     # IPv4-mapped
    assert address_in("2001:db8::1%eth0", nets) and not address_in("10.0.0.1", nets)
    assert not address_in("not an address", nets)
