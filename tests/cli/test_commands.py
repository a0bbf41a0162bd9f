"""The idnode CLI in-process (CliRunner): happy paths and one-line failures."""

from __future__ import annotations

import re
import sqlite3
import stat
import subprocess
import sys
from importlib.metadata import EntryPoint, version

import orjson
import pytest
from click.testing import CliRunner

from registry.secrets import verify_password
from resolver import cli as cli_module
from resolver.cli import PLUGIN_GROUP, cli

from .conftest import CLEAN_ENV, ENT_PASSWORD, Idnode, assert_error

SECRET_LINE = re.compile(r"^secret: (\S+)$", re.M)


def node_admin_hash(idnode: Idnode, handle: str = "0.NA/88.118") -> str:
    return idnode.with_store(lambda store: store.get_admin(handle, 300)).password_hash


# ---------------------------------------------------------------- init

def test_init_prints_the_generated_secret_once(idnode):
    result = idnode.ok("init")
    secret = SECRET_LINE.search(result.stdout).group(1)
    assert "300:0.NA/88.118" in result.stdout and "will not be shown again" in result.stdout
    assert secret not in result.stderr
    assert verify_password(secret, node_admin_hash(idnode))
    assert stat.S_IMODE(idnode.home.stat().st_mode) == 0o700

    again = idnode.ok("init", "--if-missing")
    assert "already initialised" in again.stdout and "secret" not in again.stdout
    assert_error(idnode("init"), "already initialised")
    assert_error(idnode("init", "--prefix", "88.119", "--if-missing"), "already serves 88.118, not 88.119")
    assert verify_password(secret, node_admin_hash(idnode))        # nothing changed


def test_init_takes_the_password_from_the_environment_or_stdin(tmp_path):
    a, b = Idnode(tmp_path / "a"), Idnode(tmp_path / "b")
    result = a.ok("init", "--prefix", "88.200", env={"IDNODE_ADMIN_PASSWORD": "from-the-environment"})
    assert "secret:" not in result.stdout and "secret as given" in result.stdout
    assert verify_password("from-the-environment", node_admin_hash(a, "0.NA/88.200"))
    b.ok("init", "--password-stdin", input="from-standard-input\n")
    assert verify_password("from-standard-input", node_admin_hash(b))


@pytest.mark.parametrize("args,env,needle", [
    (["init", "--prefix", "88..1"], {}, "invalid prefix"),
    (["init"], {"IDNODE_ADMIN_PASSWORD": "short"}, "at least 12 characters"),
    (["init", "--password-stdin"], {}, "no password on standard input"),
])
def test_init_bad_inputs(idnode, args, env, needle):
    assert_error(idnode(*args, env=env, input=""), needle)


def test_commands_need_a_node_and_do_not_create_one(idnode):
    for args in (["prefix", "list"], ["resolve", "88.118.8/x"], ["register", "88.118.8/x", "--url", "https://e.example/u"],
                 ["serve"], ["export", "--prefix", "88.118.8"]):
        assert_error(idnode(*args), "run `idnode init` first")
    assert not idnode.home.exists()


def test_missing_node_key_is_one_line(node):
    (node.home / "node.key").unlink()
    assert_error(node("prefix", "list"), "node.key does not exist")


def test_wrong_node_key_is_one_line(node):
    (node.home / "node.key").write_text("A" * 43 + "=\n")
    assert_error(node("prefix", "list"), "node key does not open")


# ---------------------------------------------------------------- usage and settings

@pytest.mark.parametrize("args,needle", [
    (["bogus"], "No such command 'bogus'"),
    (["register"], "Missing argument 'HANDLE'"),
    (["prefix", "create", "88.118.8"], "Missing option '--owner'"),
    (["import", "x.csv", "--batch-size", "0"], "--batch-size"),
    (["--log-format", "xml", "prefix", "list"], "--log-format"),
    (["register", "88.118.8/x", "--value", "EMAIL"], "expected TYPE=DATA"),
    (["register", "88.118.8/x"], "give --url and/or --value"),
])
def test_usage_errors_are_one_line_with_status_2(node, args, needle):
    assert_error(node(*args), needle, status=2)


def test_bad_config_file_is_one_line(node, tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[http]\nport = 'x'\n")
    assert_error(node("--config", str(bad), "prefix", "list"), "http.port")
    assert_error(node("--config", str(tmp_path / "missing.toml"), "prefix", "list"), "cannot read config file")


def test_help_lists_commands(idnode):
    result = idnode.ok("--help")
    for command in ("init", "serve", "prefix", "register", "delete", "import", "resolve", "export"):
        assert command in result.stdout
    assert "handle,url" in idnode.ok("import", "--help").stdout


# ---------------------------------------------------------------- prefixes

def test_prefix_lifecycle(node):
    created = node.ok("prefix", "create", "88.118.9", "--owner", "Other Co", "--credit-code", "91440101MA59ABCDEF",
                      "--contact", "ops@other.example")
    secret = SECRET_LINE.search(created.stdout).group(1)
    assert "300:88.118.9/ADMIN" in created.stdout and "will not be shown again" in created.stdout
    assert verify_password(secret, node_admin_hash(node, "88.118.9/ADMIN"))

    table = node.ok("prefix", "list").stdout.splitlines()
    assert table[0].split() == ["PREFIX", "STATE", "OWNER", "CREDIT", "CODE", "CONTACT"]
    assert table[1].split() == ["88.118.8", "enabled", "Acme", "-", "-"]
    assert table[2].split() == ["88.118.9", "enabled", "Other", "Co", "91440101MA59ABCDEF", "ops@other.example"]

    show = node.ok("prefix", "show", "88.118.9").stdout
    assert re.search(r"^owner:\s+Other Co$", show, re.M) and re.search(r"^admin:\s+300:88.118.9/ADMIN$", show, re.M)

    assert "88.118.9 disabled" in node.ok("prefix", "disable", "88.118.9").stdout
    assert_error(node("register", "88.118.9/x", "--url", "https://e.example/u"), "prefix 88.118.9 is disabled")
    assert "88.118.9 enabled" in node.ok("prefix", "enable", "88.118.9").stdout
    node.ok("register", "88.118.9/x", "--url", "https://e.example/u")


def test_prefix_delegation(node):
    """The operator points a prefix at the enterprise's server, sees it, and takes it back."""
    assert "88.118.8 delegated to site [2001:db8::7]:2641" in \
        node.ok("prefix", "delegate", "88.118.8", "--site", "[2001:db8::7]:2641").stdout
    assert re.search(r"^delegation:\s+site \[2001:db8::7\]:2641$", node.ok("prefix", "show", "88.118.8").stdout, re.M)
    record = node.ok("resolve", "0.NA/88.118.8").stdout
    assert '"address":"2001:db8::7"' in record and '"port":2641' in record
    assert "served by this node" in node.ok("prefix", "undelegate", "88.118.8").stdout
    assert re.search(r"^delegation:\s+-$", node.ok("prefix", "show", "88.118.8").stdout, re.M)
    assert node("resolve", "0.NA/88.118.8").exit_code == 1


def test_upstream_status_lists_what_waits_to_be_published(node):
    """Nothing is published here (no upstream.publish_to): the outbox keeps the
    prefix changes, and the status says where they would go."""
    status = node.ok("upstream", "status").stdout
    assert "publishing to: nowhere" in status and "recursion: off; roots: none" in status
    assert re.search(r"^unpublished: 1$", status, re.M) and re.search(r"^  88\.118\.8  changed \d{4}-", status, re.M)
    node.ok("prefix", "create", "88.118.9", "--owner", "Other")
    node.ok("prefix", "delegate", "88.118.9", "--site", "192.0.2.9:2641")
    assert re.search(r"^unpublished: 2$", node.ok("upstream", "status").stdout, re.M)      # one entry per prefix
    assert "2 prefixes to publish" in node.ok("upstream", "publish", "--all").stdout
    env = {"IDNODE_UPSTREAM_PUBLISH_TO": "192.0.2.1:2641", "IDNODE_UPSTREAM_RECURSION": "true"}
    status = node.ok("upstream", "status", env=env).stdout
    assert "publishing to: 192.0.2.1:2641 as 300:<this node's prefix>/ADMIN" in status and "recursion: on" in status
    assert node("upstream", "publish").exit_code == 2                                    # --all is required
    assert_error(node("upstream", "status", env={"IDNODE_UPSTREAM_ROOTS": "nohost"}), "not a list of servers")


def test_key_show_prints_the_public_half_only(node):
    shown = node.ok("key", "show").stdout
    assert shown.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in shown


def test_prefix_passwd(node):
    result = node.ok("prefix", "passwd", "88.118.8")
    secret = SECRET_LINE.search(result.stdout).group(1)
    assert "will not be shown again" in result.stdout
    stored = node_admin_hash(node, "88.118.8/ADMIN")
    assert verify_password(secret, stored) and not verify_password(ENT_PASSWORD, stored)
    node.ok("prefix", "passwd", "88.118.8", "--password-stdin", input="another-secret-0001\n")
    assert verify_password("another-secret-0001", node_admin_hash(node, "88.118.8/ADMIN"))


@pytest.mark.parametrize("args,needle", [
    (["prefix", "create", "99.1", "--owner", "X"], "not under this node's prefix 88.118"),
    (["prefix", "create", "88.118.8", "--owner", "X"], "already allocated"),
    (["prefix", "create", "88.118.7", "--owner", " "], "owner is required"),
    (["prefix", "create", "88.118.7", "--owner", "X", "--credit-code", "12"], "credit code"),
    (["prefix", "create", "88.118.7/x", "--owner", "X"], "invalid prefix"),
    (["prefix", "show", "88.118.7"], "prefix 88.118.7 is not allocated"),
    (["prefix", "disable", "88.118.7"], "not allocated"),
    (["prefix", "enable", "bad prefix"], "invalid prefix"),
    (["prefix", "passwd", "88.118.7"], "not allocated"),
    (["prefix", "delegate", "88.118.7", "--site", "192.0.2.7:2641"], "not allocated"),
    (["prefix", "delegate", "88.118.8"], "give a site (HOST:PORT) or a service handle"),
    (["prefix", "delegate", "88.118.8", "--site", "acme.example:2641"], "HOST an IP address"),
    (["prefix", "delegate", "88.118.8", "--site", "192.0.2.7:65536"], "port is 1..65535"),
    (["prefix", "delegate", "88.118.8", "--service", "nohandle"], "service handle"),
    (["prefix", "undelegate", "88.118.8"], "prefix 88.118.8 is not delegated"),
])
def test_prefix_bad_inputs(node, args, needle):
    assert_error(node(*args), needle)


def test_prefix_create_short_stdin_password(node):
    assert_error(node("prefix", "create", "88.118.7", "--owner", "X", "--password-stdin", input="short\n"),
                 "at least 12 characters")
    assert_error(node("prefix", "show", "88.118.7"), "not allocated")


# ---------------------------------------------------------------- identifiers

def test_register_resolve_delete(node):
    assert "(3 values)" in node.ok("register", "88.118.8/Part-1", "--url", "https://acme.example/p/1",
                                   "--value", "EMAIL=ops@acme.example", "--value", "DESC=a=b").stdout
    lines = node.ok("resolve", "88.118.8/part-1").stdout.splitlines()
    assert lines == ["1 URL https://acme.example/p/1", "2 EMAIL ops@acme.example", "3 DESC a=b"]
    doc = orjson.loads(node.ok("resolve", "88.118.8/PART-1", "--json").stdout)
    assert doc["responseCode"] == 1 and doc["handle"] == "88.118.8/Part-1"
    assert [(v["index"], v["type"], v["data"]["value"]) for v in doc["values"]] == [
        (1, "URL", "https://acme.example/p/1"), (2, "EMAIL", "ops@acme.example"), (3, "DESC", "a=b")]

    assert_error(node("register", "88.118.8/part-1", "--url", "https://x"), "use --overwrite")
    node.ok("register", "88.118.8/part-1", "--url", "https://acme.example/p/1b", "--overwrite")
    assert node.ok("resolve", "88.118.8/part-1").stdout.splitlines() == ["1 URL https://acme.example/p/1b"]

    assert "deleted 88.118.8/part-1" in node.ok("delete", "88.118.8/part-1").stdout
    assert_error(node("resolve", "88.118.8/part-1"), "88.118.8/part-1: handle not found")
    assert_error(node("delete", "88.118.8/part-1"), "does not exist")


def test_resolve_admin_handle_hides_the_secret(node):
    out = node.ok("resolve", "88.118.8/ADMIN").stdout
    assert out.splitlines() == ["100 HS_ADMIN admin 300:88.118.8/ADMIN perms=111111111111"]
    doc = orjson.loads(node.ok("resolve", "88.118.8/ADMIN", "--json").stdout)
    assert [v["type"] for v in doc["values"]] == ["HS_ADMIN"]


@pytest.mark.parametrize("args,needle", [
    (["register", "no-slash", "--url", "https://e.example/u"], "no '/'"),
    (["register", "88.118.77/x", "--url", "https://e.example/u"], "prefix 88.118.77 is not allocated"),
    (["register", "88.118.8/", "--url", "https://e.example/u"], "empty suffix"),
    (["delete", "88.118.8/\x01"], "control"),
    (["resolve", "nope"], "no '/'"),
    (["resolve", "88.118.8/missing"], "not found"),
])
def test_identifier_bad_inputs(node, args, needle):
    assert_error(node(*args), needle)


@pytest.mark.parametrize("url", ["javascript:alert(1)", "/relative/path", "ftp://e.example/x", "https://"])
def test_register_takes_only_web_urls(node, url):
    assert_error(node("register", "88.118.8/u", "--url", url), "not an absolute http(s) URL", status=2)
    assert_error(node("resolve", "88.118.8/u"), "not found")           # nothing written


def test_locked_store_is_one_line(node):
    """Another process holding the write lock past the busy timeout (5 s)."""
    db = sqlite3.connect(node.settings().home / "registry.sqlite3", isolation_level=None)
    try:
        db.execute("BEGIN EXCLUSIVE")
        assert_error(node("register", "88.118.8/locked", "--url", "https://e.example/u"), "the store is busy")
    finally:
        db.close()
    node.ok("register", "88.118.8/locked", "--url", "https://e.example/u")


# ---------------------------------------------------------------- settings

@pytest.mark.parametrize("args,env,needle", [
    (["serve", "--http-port", "99999"], {}, "http.port (from command line): must be 0..65535, got 99999"),
    (["serve", "--hs-port", "-1"], {}, "handle.port (from command line): must be 0..65535, got -1"),
    (["serve", "--workers", "257"], {}, "node.workers (from command line): must be 0..256, got 257"),
    (["prefix", "list"], {"IDNODE_HTTP_PORT": "99999"}, "http.port (from environment): must be 0..65535, got 99999"),
    (["prefix", "list"], {"IDNODE_HANDLE_MAX_MESSAGE_BYTES": "10"},
     "handle.max_message_bytes (from environment): must be at least 64, got 10"),
])
def test_out_of_range_settings_are_one_line(node, args, env, needle):
    assert_error(node(*args, env=env), needle)


def test_the_homes_config_file_is_read_unless_another_is_given(node, tmp_path):
    in_home = node.home / "idnode.toml"
    in_home.write_text("[cache]\nmax_entries = 0\n")
    assert_error(node("prefix", "list"), f"cache.max_entries (from {in_home}): must be at least 1, got 0")
    assert_error(node("prefix", "list", env={"IDNODE_CONFIG": str(tmp_path / "none.toml")}), "cannot read config file")
    given = tmp_path / "given.toml"
    given.write_text("[cache]\nmax_entries = 10\n")
    node.ok("--config", str(given), "prefix", "list")
    node.ok("prefix", "list", env={"IDNODE_CONFIG": str(given)})


def test_version_is_the_installed_distributions(idnode):
    assert idnode.ok("--version").stdout == f"idnode {version('idnode')}\n"


def test_home_after_the_command_is_the_same_as_before_it(tmp_path):
    home, other = tmp_path / "home", tmp_path / "other"

    def ok(*args: object, input: str | None = None) -> str:
        result = CliRunner().invoke(cli, list(map(str, args)), input=input, env=CLEAN_ENV, catch_exceptions=False)
        assert result.exit_code == 0, (args, result.stdout, result.stderr)
        return result.stdout

    assert f"initialised node 88.118 in {home}" in ok("init", "--home", home)
    assert "created prefix 88.118.8" in ok("prefix", "create", "88.118.8", "--home", home, "--owner", "Acme",
                                           "--password-stdin", input=ENT_PASSWORD + "\n")
    assert "88.118.8" in ok("prefix", "--home", home, "list")           # on a group too
    ok("register", "88.118.8/x", "--url", "https://acme.example/x", "--home", home)
    assert ok("resolve", "--home", home, "88.118.8/x") == "1 URL https://acme.example/x\n"
    # given twice, the one nearer the command wins
    assert "owner:" in ok("--home", other, "prefix", "show", "88.118.8", "--home", home)
    assert "owner:" in ok("--home", other, "prefix", "--home", home, "show", "88.118.8")
    assert not other.exists()
    assert "--home DIR" in ok("serve", "--help") and "--home DIR" in ok("prefix", "create", "--help")


# ---------------------------------------------------------------- plugged-in commands

def test_bench_plugs_in_through_an_entry_point(idnode):
    assert re.search(r"^  bench\s", idnode.ok("--help").stdout, re.M)
    assert re.search(r"^hs-udp-hot\s", idnode.ok("bench", "--list").stdout, re.M)


def test_resolver_never_imports_bench():
    code = ("import sys, resolver.cli, resolver.server\n"
            "sys.exit(sorted(m for m in sys.modules if m == 'bench' or m.startswith('bench.')) or None)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_a_broken_plugin_is_one_line(idnode, monkeypatch):
    plugins = {"broken": EntryPoint("broken", "no_such_module_here:command", PLUGIN_GROUP),
               "odd": EntryPoint("odd", "os:sep", PLUGIN_GROUP)}
    monkeypatch.setattr(cli_module, "_plugins", lambda: plugins)
    assert_error(idnode("broken"), "command 'broken' (no_such_module_here:command) cannot be loaded: "
                                   "ModuleNotFoundError")
    assert_error(idnode("odd"), "command 'odd' (os:sep) is not a click command")
    assert_error(idnode("bench", "--list"), "No such command 'bench'", status=2)
