"""`idnode ... --server URL`: the writing commands against a real node process over REST."""

from __future__ import annotations

import contextlib
import http.server
import socket
import subprocess
import threading

import orjson
import pytest

from tests.keys import dsa_key, public_pem, rsa_key
from tests.processes import DEADLINE, clean_env, serving_workers

from .conftest import ENT_PASSWORD, IDNODE, Idnode, assert_error

NODE_PASSWORD = "node-admin-secret-0001"
NODE_ADMIN = "300:0.NA/88.118"
ENT_ADMIN = "300:88.118.8/ADMIN"
OTHER_PASSWORD = "other-enterprise-secret-01"
BATCH_LIMIT = 100            # the node's http.batch_max_items: a CLI batch of 2,000 is sent in smaller requests


def provision(home) -> None:
    """A node 88.118 (admin secret NODE_PASSWORD) with prefixes 88.118.8 and 88.118.9."""
    def run(*args: str, input: str | None = None) -> None:
        proc = subprocess.run([str(IDNODE), "--home", str(home), *args], input=input, capture_output=True,
                              text=True, timeout=DEADLINE, env={**clean_env(), "IDNODE_ADMIN_PASSWORD": NODE_PASSWORD})
        assert proc.returncode == 0, proc.stderr
    run("init")
    run("prefix", "create", "88.118.8", "--owner", "Acme", "--password-stdin", input=ENT_PASSWORD + "\n")
    run("prefix", "create", "88.118.9", "--owner", "Other", "--password-stdin", input=OTHER_PASSWORD + "\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A serving node (one worker) on a free port: its REST base URL."""
    home = tmp_path_factory.mktemp("served") / "home"
    provision(home)
    env = {"IDNODE_HTTP_BATCH_MAX_ITEMS": str(BATCH_LIMIT), "IDNODE_AUTH_FAILURE_DELAY": "0.01"}
    with serving_workers(home, 1, env=env) as served:
        yield served.url


@pytest.fixture
def client(tmp_path) -> Idnode:
    """The CLI on a machine that runs no node: its home is empty."""
    return Idnode(tmp_path / "client")


class Remote:
    """``idnode`` commands with ``--server`` as one identity, the password on stdin."""

    def __init__(self, client: Idnode, url: str, user: str, password: str) -> None:
        self.client, self.url, self.user, self.password = client, url, user, password

    def __call__(self, *args: str, more_input: str = ""):
        result = self.client(*args, "--server", self.url, "--user", self.user, "--password-stdin",
                             input=f"{self.password}\n{more_input}")
        assert self.password not in result.stdout + result.stderr         # never echoed
        return result

    def ok(self, *args: str, more_input: str = ""):
        result = self(*args, more_input=more_input)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result


@pytest.fixture
def ent(client, server) -> Remote:
    return Remote(client, server, ENT_ADMIN, ENT_PASSWORD)


@pytest.fixture
def admin(client, server) -> Remote:
    return Remote(client, server, NODE_ADMIN, NODE_PASSWORD)


def resolve(client: Idnode, url: str, handle: str) -> list[str]:
    return client.ok("resolve", handle, "--server", url).stdout.splitlines()


# ---------------------------------------------------------------- identifiers

def test_register_resolve_overwrite_delete(ent, client, server):
    out = ent.ok("register", "88.118.8/Remote-1", "--url", "https://acme.example/r/1", "--value", "DESC=first")
    assert out.stdout == "registered 88.118.8/Remote-1 (2 values)\n"
    assert resolve(client, server, "88.118.8/Remote-1")[:2] == ["1 URL https://acme.example/r/1", "2 DESC first"]

    assert_error(ent("register", "88.118.8/remote-1", "--url", "https://acme.example/again"),
                 "already exists (use --overwrite to replace its values)")
    out = ent.ok("register", "88.118.8/Remote-1", "--url", "https://acme.example/r/2", "--overwrite")
    assert out.stdout == "wrote 88.118.8/Remote-1 (1 values)\n"
    assert resolve(client, server, "88.118.8/Remote-1") == ["1 URL https://acme.example/r/2"]

    assert ent.ok("delete", "88.118.8/Remote-1").stdout == "deleted 88.118.8/Remote-1\n"
    assert_error(client("resolve", "88.118.8/Remote-1", "--server", server), "88.118.8/Remote-1 not found")
    assert_error(ent("delete", "88.118.8/Remote-1"), "88.118.8/Remote-1 does not exist")


def test_an_enterprise_writes_only_under_its_prefix(ent):
    line = assert_error(ent("register", "88.118.9/not-mine", "--url", "https://acme.example/x"), "may not create")
    assert "300:88.118.8/ADMIN" in line


def test_the_installed_script_registers_remotely(tmp_path, server):
    proc = subprocess.run([str(IDNODE), "--home", str(tmp_path / "nothing"), "register", "88.118.8/script-1",
                           "--url", "https://acme.example/s/1", "--server", server, "--user", ENT_ADMIN],
                          env={**clean_env(), "IDNODE_PASSWORD": ENT_PASSWORD}, capture_output=True, text=True,
                          timeout=DEADLINE)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, "registered 88.118.8/script-1 (1 values)\n", "")


# ---------------------------------------------------------------- import

ROWS = 300
BAD_COLUMNS = 57          # file line numbers (the header is line 1)
NOT_MINE = 211


def write_csv(path) -> None:
    lines = ["handle,url,DESC"]
    for n in range(2, ROWS + 2):
        if n == BAD_COLUMNS:
            lines.append(f"88.118.8/imp-{n},https://acme.example/i/{n}")
        elif n == NOT_MINE:
            lines.append(f"88.118.9/imp-{n},https://acme.example/i/{n},theirs")
        else:
            lines.append(f"88.118.8/imp-{n},https://acme.example/i/{n},row {n}")
    path.write_text("\n".join(lines) + "\n")


def test_import_reports_rejected_rows_by_line(ent, client, server, tmp_path):
    data, report = tmp_path / "items.csv", tmp_path / "rejected.txt"
    write_csv(data)
    result = ent("import", str(data), "--report", str(report), "--progress", "lines")
    assert result.exit_code == 1, result.stderr
    assert result.stdout == f"imported {ROWS - 2}, skipped 0, rejected 2\n", result.stderr
    rejected = report.read_text().splitlines()
    assert rejected[0] == f"line {BAD_COLUMNS}: 88.118.8/imp-{BAD_COLUMNS}: expected 3 columns, got 2"
    assert rejected[1].startswith(f"line {NOT_MINE}: 88.118.9/imp-{NOT_MINE}: ") and "may not create" in rejected[1]
    assert len(rejected) == 2
    err = result.stderr.splitlines()
    assert err[0] == f"idnode: batch 1 committed: lines 2-{ROWS + 1}, imported {ROWS - 2}, skipped 0, rejected 2"
    assert err[-1] == f"idnode: error: 2 rows rejected (listed on {report})"
    assert resolve(client, server, "88.118.8/imp-299")[:2] == ["1 URL https://acme.example/i/299", "2 DESC row 299"]

    again = ent("import", str(data), "--batch-size", "120")            # re-run: everything there is skipped
    assert again.exit_code == 1
    assert again.stdout == f"imported 0, skipped {ROWS - 2}, rejected 2\n"
    assert [line for line in again.stderr.splitlines() if line.startswith("idnode: rejected")] == [
        f"idnode: rejected {rejected[0]}", f"idnode: rejected {rejected[1]}"]


def test_import_jsonl_with_overwrite(ent, client, server, tmp_path):
    data = tmp_path / "items.jsonl"
    data.write_bytes(b"".join(orjson.dumps({"handle": f"88.118.8/j-{n}", "url": f"https://acme.example/j/{n}"})
                              + b"\n" for n in range(5)))
    assert ent.ok("import", str(data)).stdout == "imported 5, skipped 0, rejected 0\n"
    assert ent.ok("import", str(data), "--overwrite").stdout == "imported 5, skipped 0, rejected 0\n"
    assert resolve(client, server, "88.118.8/j-4") == ["1 URL https://acme.example/j/4"]


# ---------------------------------------------------------------- prefixes

def test_prefix_commands_as_the_node_admin(admin, client, server):
    out = admin.ok("prefix", "create", "88.118.30", "--owner", "Remote Works", "--contact", "ops@remote.example")
    lines = out.stdout.splitlines()
    assert lines[:2] == ["created prefix 88.118.30", "admin identity: 300:88.118.30/ADMIN"]
    secret = lines[2].removeprefix("secret: ")
    assert lines[2].startswith("secret: ") and len(secret) >= 12
    new_admin = Remote(client, server, "300:88.118.30/ADMIN", secret)
    new_admin.ok("register", "88.118.30/first", "--url", "https://remote.example/1")

    chosen = "a-chosen-secret-for-31"
    out = admin.ok("prefix", "create", "88.118.31", "--owner", "Chosen", "--password-stdin", more_input=chosen + "\n")
    assert out.stdout.splitlines()[1] == "admin identity: 300:88.118.31/ADMIN (secret as given)"
    Remote(client, server, "300:88.118.31/ADMIN", chosen).ok("register", "88.118.31/x", "--url", "https://c.example/")

    table = admin.ok("prefix", "list").stdout.splitlines()
    assert table[0].split() == ["PREFIX", "STATE", "OWNER", "CREDIT", "CODE", "CONTACT"]
    assert any(row.split()[:2] == ["88.118.30", "enabled"] and row.endswith("ops@remote.example") for row in table)
    shown = admin.ok("prefix", "show", "88.118.30").stdout.splitlines()
    assert shown[0] == "prefix:      88.118.30" and "owner:       Remote Works" in shown
    assert "admin:       300:88.118.30/ADMIN" in shown and shown[5].startswith("created:     20")

    assert admin.ok("prefix", "disable", "88.118.30").stdout == "prefix 88.118.30 disabled\n"
    assert_error(new_admin("register", "88.118.30/second", "--url", "https://remote.example/2"), "disabled")
    assert_error(client("resolve", "88.118.30/first", "--server", server), "not found")
    assert admin.ok("prefix", "enable", "88.118.30").stdout == "prefix 88.118.30 enabled\n"
    assert resolve(client, server, "88.118.30/first") == ["1 URL https://remote.example/1"]

    out = admin.ok("prefix", "passwd", "88.118.30").stdout.splitlines()
    assert out[:2] == ["changed the secret of prefix 88.118.30", "admin identity: 300:88.118.30/ADMIN"]
    rotated = out[2].removeprefix("secret: ")
    assert rotated != secret
    Remote(client, server, "300:88.118.30/ADMIN", rotated).ok("register", "88.118.30/second",
                                                              "--url", "https://remote.example/2")
    newest = "the-newest-secret-of-30"
    admin.ok("prefix", "passwd", "88.118.30", "--password-stdin", more_input=newest + "\n")
    Remote(client, server, "300:88.118.30/ADMIN", newest).ok("delete", "88.118.30/second")


def test_add_key_remotely(admin, ent, client, server, tmp_path):
    pem = tmp_path / "second.pem"
    pem.write_bytes(public_pem(rsa_key(2048, 1)))
    out = admin.ok("prefix", "add-key", "88.118.8", str(pem))
    assert out.stdout == "added key 301:88.118.8/ADMIN (HS_PUBKEY at 301, HS_ADMIN at 101 naming it)\n"
    out = admin.ok("prefix", "add-key", "88.118.8", "-", "--index", "400",       # the key follows the password
                   more_input=public_pem(dsa_key()).decode())
    assert out.stdout == "added key 400:88.118.8/ADMIN (HS_PUBKEY at 400, HS_ADMIN at 102 naming it)\n"
    doc = orjson.loads(client.ok("resolve", "88.118.8/ADMIN", "--server", server, "--json").stdout)
    assert {v["index"]: v["type"] for v in doc["values"]}.items() >= {301: "HS_PUBKEY", 400: "HS_PUBKEY"}.items()
    assert_error(ent("prefix", "add-key", "88.118.8", str(pem)), "is not the node admin")
    out = admin.ok("prefix", "create", "88.118.41", "--owner", "K", "--public-key", str(pem))
    assert out.stdout.splitlines() == ["created prefix 88.118.41", "admin identity: 300:88.118.41/ADMIN (key "
                                       "identity: it signs Handle challenges with its private key)"]
    doc = orjson.loads(client.ok("resolve", "88.118.41/ADMIN", "--server", server, "--json").stdout)
    assert {v["index"]: v["type"] for v in doc["values"]} == {100: "HS_ADMIN", 300: "HS_PUBKEY"}


def test_prefix_refusals_are_the_nodes(ent, admin):
    assert_error(ent("prefix", "list"), "300:88.118.8/ADMIN is not the node admin")
    assert_error(admin("prefix", "show", "88.118.77"), "prefix 88.118.77 is not allocated on this node")
    assert_error(admin("prefix", "create", "89.1", "--owner", "X"), "not under this node's prefix 88.118")
    assert_error(admin("prefix", "create", "88.118.40", "--owner", "X", "--password-stdin", more_input="short\n"),
                 "at least 12 characters")
    assert_error(ent("prefix", "delegate", "88.118.8", "--site", "192.0.2.7:2641"), "is not the node admin")
    assert_error(admin("prefix", "delegate", "88.118.8", "--site", "acme.example:1"), "HOST an IP address")


def test_delegation_remotely(admin):
    """The same commands as on the node's home, through its REST API."""
    assert "delegated to site 192.0.2.7:2641" in admin.ok("prefix", "delegate", "88.118.9", "--site",
                                                          "192.0.2.7:2641").stdout
    assert "delegation:  site 192.0.2.7:2641" in admin.ok("prefix", "show", "88.118.9").stdout
    assert "served by this node" in admin.ok("prefix", "undelegate", "88.118.9").stdout
    assert_error(admin("prefix", "undelegate", "88.118.9"), "prefix 88.118.9 is not delegated")


# ---------------------------------------------------------------- failures

@pytest.fixture(scope="module")
def strict_server(tmp_path_factory):
    """A node that locks an address out after two failed logins."""
    home = tmp_path_factory.mktemp("strict") / "home"
    provision(home)
    env = {"IDNODE_AUTH_LOCKOUT_FAILURES": "2", "IDNODE_AUTH_FAILURE_DELAY": "0.01"}
    with serving_workers(home, 1, env=env) as served:
        yield served.url


def test_wrong_password_then_locked_out(client, strict_server):
    wrong = Remote(client, strict_server, ENT_ADMIN, "not-the-secret-at-all")
    line = assert_error(wrong("register", "88.118.8/w", "--url", "https://acme.example/w"),
                        f"{strict_server} refused 300:88.118.8/ADMIN: authentication failed")
    assert "try again" not in line
    assert_error(wrong("prefix", "list"), "authentication failed")
    right = Remote(client, strict_server, ENT_ADMIN, ENT_PASSWORD)
    line = assert_error(right("register", "88.118.8/w", "--url", "https://acme.example/w"),
                        f"{strict_server} refused 300:88.118.8/ADMIN: too many failed authentications")
    assert line.endswith("(try again in 300 s)")


def test_no_password(client, server):
    args = ("register", "88.118.8/np", "--url", "https://acme.example/np", "--server", server, "--user", ENT_ADMIN)
    assert_error(client(*args), "--server needs the password of 300:88.118.8/ADMIN: on standard input with "
                                "--password-stdin, or in $IDNODE_PASSWORD", status=2)
    assert_error(client(*args, "--password-stdin", input=""), "--password-stdin: no password", status=2)
    assert client(*args, env={"IDNODE_PASSWORD": ENT_PASSWORD}).exit_code == 0


@pytest.mark.parametrize("args,needle", [
    (["--user", ENT_ADMIN], "--user goes with --server URL"),
    (["--password-stdin"], "--password-stdin goes with --server URL"),
    (["--server", "http://127.0.0.1:1"], "--server needs --user IDENTITY"),
    (["--server", "ftp://example.com", "--user", ENT_ADMIN], "is not an absolute http(s) URL"),
    (["--server", "http://127.0.0.1:1", "--user", "admin"], "is not an identity like 300:88.118.8/ADMIN"),
])
def test_usage_errors(client, args, needle):
    assert_error(client("delete", "88.118.8/x", *args, input="pw\n"), needle, status=2)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_server_down(client):
    url = f"http://127.0.0.1:{free_port()}"
    for args in (["delete", "88.118.8/x"], ["prefix", "list"]):
        line = assert_error(Remote(client, url, ENT_ADMIN, ENT_PASSWORD)(*args), f"cannot reach {url}: ")
        assert "refused" in line.lower()


@contextlib.contextmanager
def answering(status: int, body: bytes, content_type: str):
    """A web server that answers every request with ``status`` and ``body``: its URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_DELETE = _answer

        def log_message(self, *args) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("status,body,ctype,needle", [
    (200, b"<html>welcome</html>", "text/html", "answered HTTP 200 without the API's JSON"),
    (404, b"404: Not Found", "text/plain", "answered HTTP 404 without the API's JSON"),
    (502, b"<html>bad gateway</html>", "text/html", "answered HTTP 502 without the API's JSON"),
    (500, b'{"responseCode": 2, "handle": null, "message": "store unavailable"}', "application/json",
     "answered HTTP 500: store unavailable"),
    (503, b'{"responseCode": 3, "handle": null, "message": "busy"}', "application/json", "answered HTTP 503: busy"),
])
def test_answers_that_are_not_the_api(client, status, body, ctype, needle):
    with answering(status, body, ctype) as url:
        for args in (["register", "88.118.8/x", "--url", "https://acme.example/x"], ["prefix", "list"]):
            assert_error(Remote(client, url, ENT_ADMIN, ENT_PASSWORD)(*args), f"{url} {needle}")
