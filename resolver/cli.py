"""The ``idnode`` command line: node set-up, prefixes, identifiers, bulk import.

Every command builds one Settings (file -> environment -> flags), opens the
store for its own work and closes it. Every command but ``init`` works
through the operations layer (``resolver.core``) as the node's operator, who
may do what the node admin may (audited as ``cli``). Every failure exits non-zero with ONE
line on stderr, ``idnode: error: ...`` (status 2 for usage errors, 130 when
interrupted, 1 otherwise); never a traceback.

With ``--server URL`` (resolver.cli_remote), register, delete, import and
the prefix commands run the same code against a running node's REST API.

``--home DIR`` is taken before or after a command's name. Commands that live
elsewhere (``idnode bench``, in bench/) plug in through the
``idnode.commands`` entry-point group and are loaded only when asked for.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import stat
import sys
import time
from dataclasses import dataclass, field, replace
from importlib.metadata import entry_points
from typing import Any, Awaitable, Callable, TypeVar

import aiohttp
import click
from cryptography.hazmat.primitives import serialization
import orjson
from tqdm import tqdm

from prometheus_client import CollectorRegistry

from protocol.codes import RC
from protocol.identifier import InvalidHandle, parse_handle, parse_prefix
from protocol.jsoncodec import record_to_json
from protocol.values import HandleValue
from registry import errors as reg
from registry import open_store, provision
from registry.importer import ImportFormatError, LineSource, bulk_gc, guess_format, import_rows, parse
from registry.keys import MAX_PEM_BYTES
from registry.store import Store

from . import logs, serverkey
from .cli_remote import attach_remote, remote_target
from .core import Core
from .core.auth import Authenticator
from .core.caller import OPERATOR
from .core.errors import Refused
from .core.lockout import Lockout
from .core.reads import ELSEWHERE
from .core.urls import is_web_url
from .pipeline import build_pipeline
from .query import Query
from .remote import RemoteError, get_handle, run_remote
from .settings import Settings, SettingsError, load_settings
from .shared import SharedState

T = TypeVar("T")
log = logging.getLogger("idnode.cli")
ACTOR = "cli"              # the audit log's name for the operator (registry.provision at init)
EXPORT_PAGE = 1000
PASSWORD_ENV = "IDNODE_ADMIN_PASSWORD"
PLUGIN_GROUP = "idnode.commands"      # entry points: name = "module:click_command"
_HOME_HELP = "Node home: store and node key (default ./var; env IDNODE_HOME)."
_STORE_HELP = ("Registry: sqlite:///PATH (default, in the home), redis://HOST:PORT/DB, rediss://... or "
               "redis+cluster://HOST:PORT,HOST:PORT (env IDNODE_STORE; store.url).")
_SHOWN_ONCE = "This secret is shown only now and will not be shown again: store it safely."


class CliError(click.ClickException):
    """A failure worth one line on stderr."""


# Errors a user can cause; anything else is a bug and still gets one line.
_USER_ERRORS = (Refused, reg.RegistryError, InvalidHandle, SettingsError, ImportFormatError, OSError, UnicodeError,
                aiohttp.ClientError, asyncio.TimeoutError, RemoteError, serverkey.ServerKeyError)


def _message(exc: BaseException) -> str:
    if isinstance(exc, Refused):
        return exc.message or f"refused (response code {exc.code})"
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    if isinstance(exc, asyncio.TimeoutError):
        return "timed out"
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _fail(message: str, status: int) -> None:
    click.echo(f"idnode: error: {message}", err=True)
    sys.exit(status)


def _here(setting: str) -> Callable[[click.Context, click.Parameter, str | None], None]:
    """``--home`` or ``--store`` given after a command's name: the same as
    before it, for this command and those below it (the last one given wins)."""
    def callback(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
        obj = ctx.find_object(Cli)
        if value is not None and obj is not None:
            ctx.obj = replace(obj, overrides={**obj.overrides, setting: value})
    return callback


class _TakesHome:
    """Adds ``--home DIR`` and ``--store URL`` to a command or group defined under the ``idnode`` group."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.params.append(click.Option(["--home"], metavar="DIR", expose_value=False, callback=_here("node.home"),
                                        help=_HOME_HELP))
        self.params.append(click.Option(["--store"], metavar="URL", expose_value=False,
                                        callback=_here("store.url"), help=_STORE_HELP))


class _Command(_TakesHome, click.Command):
    pass


class _Group(_TakesHome, click.Group):
    command_class = _Command
    group_class = type               # subgroups are _Group too


def _plugins() -> dict[str, Any]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


class _Idnode(click.Group):
    """The top-level group: turns every failure into one stderr line; the
    commands and groups under it take --home too; the commands other packages
    plug in (``idnode.commands`` entry points) are found here, when asked for."""

    command_class = _Command
    group_class = _Group

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_plugins()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        plugin = _plugins().get(cmd_name)
        if plugin is None:
            return None
        try:
            command = plugin.load()
        except Exception as exc:  # noqa: BLE001 - a broken plugin is one line, like any failure
            raise CliError(f"command {cmd_name!r} ({plugin.value}) cannot be loaded: "
                           f"{type(exc).__name__}: {_message(exc)}") from None
        if not isinstance(command, click.Command):
            raise CliError(f"command {cmd_name!r} ({plugin.value}) is not a click command")
        return command

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        try:
            rv = super().main(args, prog_name or "idnode", complete_var, standalone_mode=False, **extra)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
            _fail(exc.format_message() + hint, exc.exit_code)
        except click.ClickException as exc:
            _fail(exc.format_message(), exc.exit_code)
        except (click.Abort, KeyboardInterrupt):
            _fail("interrupted", 130)
        except BrokenPipeError:          # the reader went away (`idnode export | head`)
            with contextlib.suppress(OSError, ValueError):
                os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            sys.exit(1)
        except _USER_ERRORS as exc:
            _fail(_message(exc), 1)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            log.debug("internal error", exc_info=True)       # the traceback, with IDNODE_LOG_LEVEL=debug
            _fail(f"internal error: {type(exc).__name__}: {_message(exc)}", 1)
        sys.exit(rv if isinstance(rv, int) else 0)


@dataclass(frozen=True, slots=True)
class Cli:
    """What the global options said; each command builds its Settings from it once
    (which also sets up logging on stderr)."""
    config: str | None
    overrides: dict[str, Any] = field(default_factory=dict)

    def settings(self, **more: Any) -> Settings:
        settings = load_settings(self.config, overrides={**self.overrides, **more})
        logs.configure(settings.log.format, settings.log.level)
        return settings


def with_store(settings: Settings, work: Callable[[Store], Awaitable[T]], *, create: bool = False) -> T:
    """Run ``await work(store)`` against the store of ``settings``, then close it
    (only ``init`` sets a store up; every other command goes through :func:`with_core`)."""
    async def main() -> T:
        store = open_store(settings.store.url, home=settings.home, create=create, limits=settings.registry.limits(),
                           redis=settings.store.redis_options())
        await store.open()
        try:
            return await work(store)
        finally:
            await store.close()
    return asyncio.run(main())


def with_core(settings: Settings, work: Callable[[Core], Awaitable[T]]) -> T:
    """Run ``await work(core)``: the operations layer over the store of
    ``settings``, without a cache, for the operator (who may do what the node
    admin may; writes are audited as ``cli``). Given ``--server``, the remote
    node's operations over its REST API instead (resolver.remote)."""
    remote = remote_target()
    if remote is not None:
        return run_remote(remote, work)

    async def run(store: Store) -> T:
        shared = SharedState.private()
        try:
            no_cache = dataclasses.replace(settings, cache=dataclasses.replace(settings.cache, enabled=False))
            pipeline = build_pipeline(no_cache, store, shared, CollectorRegistry())
            await pipeline.start()
            try:
                lockout = Lockout(shared, settings.auth, everywhere=store.failure_counts())
                return await work(Core(store, pipeline, Authenticator(store, lockout)))
            finally:
                await pipeline.stop()
        finally:
            shared.close()
    return with_store(settings, run)


def _read_password(from_stdin: bool) -> str | None:
    if not from_stdin:
        return None
    line = sys.stdin.readline().rstrip("\r\n")
    if not line:
        raise CliError("--password-stdin: no password on standard input")
    return line


def _print_secret(identity: str, secret: str | None) -> None:
    if secret is None:
        click.echo(f"admin identity: {identity} (secret as given)")
        return
    click.echo(f"admin identity: {identity}")
    click.echo(f"secret: {secret}")
    click.echo(_SHOWN_ONCE)


def _read_key_file(path: str) -> bytes:
    """A public key file's bytes ('-': stdin), read no further than registry.keys accepts."""
    if path == "-":
        return sys.stdin.buffer.read(MAX_PEM_BYTES + 1)
    with open(path, "rb") as fh:
        return fh.read(MAX_PEM_BYTES + 1)


def _handle(text: str) -> str:
    return parse_handle(text).text


def _url(ctx, param, value: str | None) -> str | None:
    if value is not None and not is_web_url(value):
        raise click.BadParameter(f"{value!r} is not an absolute http(s) URL", ctx=ctx, param=param)
    return value


# ---------------------------------------------------------------- the group

@click.group(cls=_Idnode, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="idnode", prog_name="idnode", message="%(prog)s %(version)s")
@click.option("--home", metavar="DIR", help=_HOME_HELP)
@click.option("--store", metavar="URL", help=_STORE_HELP)
@click.option("--config", "config", metavar="FILE", type=click.Path(dir_okay=False),
              help="TOML configuration file (env IDNODE_CONFIG; default: <home>/idnode.toml, "
                   "else config/idnode.toml, if present).")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log lines on stderr (default text).")
@click.pass_context
def cli(ctx: click.Context, home: str | None, store: str | None, config: str | None, log_format: str | None) -> None:
    """idnode: a secondary node of the industrial internet identifier
    resolution system (Handle protocol)."""
    ctx.obj = Cli(config, {"node.home": home, "store.url": store, "log.format": log_format})


pass_cli = click.make_pass_decorator(Cli)


def main() -> None:
    """Console script entry point (``idnode``)."""
    cli.main(prog_name="idnode")


# ---------------------------------------------------------------- node

@cli.command()
@click.option("--prefix", help="The node's secondary prefix (default: node.secondary_prefix, 88.118).")
@click.option("--if-missing", is_flag=True, help="Exit 0 without change if the home already holds a node.")
@click.option("--password-stdin", is_flag=True,
              help=f"Read the node admin secret from stdin (else ${PASSWORD_ENV}, else one is generated).")
@pass_cli
def init(obj: Cli, prefix: str | None, if_missing: bool, password_stdin: bool) -> None:
    """Create the node and its admin identity 300:0.NA/<prefix>.

    A generated secret is printed once, on stdout, and never again.
    """
    settings = obj.settings(**{"node.secondary_prefix": prefix and parse_prefix(prefix)})
    wanted = settings.node.secondary_prefix
    password = _read_password(password_stdin) or os.environ.get(PASSWORD_ENV) or None

    async def work(store: Store) -> None:
        try:
            existing = await store.secondary_prefix()
        except reg.NotInitialised:
            existing = None
        if existing is not None:
            if prefix is not None and existing.lower() != wanted.lower():
                raise CliError(f"the node in {settings.home} already serves {existing}, not {wanted}")
            if not if_missing:
                raise CliError(f"a node ({existing}) is already initialised in {settings.home}")
            click.echo(f"node {existing} already initialised in {settings.home}")
            return
        secret = await provision.init_node(store, wanted, password, actor=ACTOR)
        serverkey.load_or_create(settings.home)
        click.echo(f"initialised node {wanted} in {settings.home}")
        _print_secret(f"{provision.ADMIN_INDEX}:{provision.node_admin_handle(wanted)}", secret)

    with_store(settings, work, create=True)


@cli.command()
@click.option("--bind", metavar="ADDR", help="Address of the REST API (default http.bind, 127.0.0.1).")
@click.option("--http-port", type=int, metavar="N", help="REST port (default http.port, 8000).")
@click.option("--hs-port", type=int, metavar="N", help="Handle protocol TCP and UDP port (default handle.port, 2641).")
@click.option("--workers", type=int, metavar="N",
              help="Processes sharing the ports (default node.workers; 0: one per CPU).")
@pass_cli
def serve(obj: Cli, bind: str | None, http_port: int | None, hs_port: int | None, workers: int | None) -> None:
    """Serve the node until SIGINT or SIGTERM."""
    from .workers import serve as serve_workers   # the server stack is loaded only to serve

    settings = obj.settings(**{"http.bind": bind, "http.port": http_port, "handle.port": hs_port,
                               "node.workers": workers})
    open_store(settings.store.url, home=settings.home, create=False)   # refuses a home without a node up front
    serverkey.load_or_create(settings.home)       # a home made before server keys: one now, before the workers
    log.info(f"settings from {settings.source}" if settings.source else
             "settings: defaults, environment and flags only")
    status = serve_workers(settings)
    if status:
        raise click.exceptions.Exit(status)


@cli.group()
def key() -> None:
    """The node's server key (signs certified Handle replies; its public half is in HS_SITE)."""


@key.command("show")
@pass_cli
def key_show(obj: Cli) -> None:
    """The server key's public half (PEM): what the top-level node registers as
    this node's admin key (idnode prefix create PREFIX --public-key FILE there)."""
    settings = obj.settings()
    open_store(settings.store.url, home=settings.home, create=False)   # a home with a node
    public = serverkey.load_or_create(settings.home).public_key()
    click.echo(public.public_bytes(serialization.Encoding.PEM,
                                   serialization.PublicFormat.SubjectPublicKeyInfo).decode().rstrip("\n"))


@key.command("rotate")
@pass_cli
def key_rotate(obj: Cli) -> None:
    """Replace the server key. A running node keeps its key until restarted;
    raise handle.site_serial so that clients fetch the new HS_SITE."""
    settings = obj.settings()
    open_store(settings.store.url, home=settings.home, create=False)   # a home with a node
    serverkey.rotate(settings.home)
    click.echo(f"new server key in {serverkey.server_key_path(settings.home)}; restart the node to use it")


# ---------------------------------------------------------------- prefixes

@cli.group()
def prefix() -> None:
    """Enterprise prefixes under the node's secondary prefix."""


@prefix.command("create")
@click.argument("name", metavar="PREFIX")
@click.option("--owner", required=True, help="Owning organisation.")
@click.option("--credit-code", default="", help="Unified social credit code (18 characters).")
@click.option("--contact", default="", help="Contact (e-mail or phone).")
@click.option("--password-stdin", is_flag=True, help="Read the admin secret from stdin (else one is generated).")
@click.option("--public-key", metavar="FILE",
              help="Make the admin a key identity instead: its public key (PEM: RSA of 2048 bits or more, or DSA; "
                   "'-' for stdin) becomes HS_PUBKEY at index 300. No secret is made.")
@pass_cli
def prefix_create(obj: Cli, name: str, owner: str, credit_code: str, contact: str, password_stdin: bool,
                  public_key: str | None) -> None:
    """Allocate PREFIX (e.g. 88.118.8) and its admin 300:PREFIX/ADMIN."""
    name = parse_prefix(name)
    if public_key is not None and password_stdin and remote_target() is None:
        raise click.UsageError("--public-key and --password-stdin exclude each other: a key identity has no secret")
    settings = obj.settings()
    password = _read_password(password_stdin)
    keyed: dict[str, bytes] = {}
    if public_key is not None:             # (with --server, --password-stdin is the caller's own password)
        keyed["public_key"] = _read_key_file(public_key)
        password = None
    _, secret = with_core(settings, lambda core: core.create_prefix(
        OPERATOR, name, owner, credit_code=credit_code, contact=contact, password=password, **keyed))
    click.echo(f"created prefix {name}")
    identity = f"{provision.ADMIN_INDEX}:{provision.prefix_admin_handle(name)}"
    if keyed:
        click.echo(f"admin identity: {identity} (key identity: it signs Handle challenges with its private key)")
    else:
        _print_secret(identity, secret)


@prefix.command("list")
@pass_cli
def prefix_list(obj: Cli) -> None:
    """All prefixes as a table."""
    infos = with_core(obj.settings(), lambda core: core.list_prefixes(OPERATOR))
    if not infos:
        click.echo("no prefixes", err=True)
        return
    rows = [("PREFIX", "STATE", "OWNER", "CREDIT CODE", "CONTACT")]
    rows += [(p.prefix, p.state, p.owner, p.credit_code or "-", p.contact or "-") for p in infos]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for r in rows:
        click.echo("  ".join([c.ljust(w) for c, w in zip(r, widths)] + [r[-1]]))


@prefix.command("show")
@click.argument("name", metavar="PREFIX")
@pass_cli
def prefix_show(obj: Cli, name: str) -> None:
    """One prefix's details."""
    name = parse_prefix(name)

    async def show(core):
        return await core.show_prefix(OPERATOR, name), await core.delegation(OPERATOR, name)
    info, delegation = with_core(obj.settings(), show)
    for key, value in (("prefix", info.prefix), ("owner", info.owner), ("credit code", info.credit_code),
                       ("contact", info.contact), ("state", info.state), ("created", _time(info.created)),
                       ("admin", f"{provision.ADMIN_INDEX}:{provision.prefix_admin_handle(info.prefix)}"),
                       ("delegation", _where(delegation))):
        click.echo(f"{key + ':':13}{value or '-'}")


def _where(delegation: dict | None) -> str:
    if not delegation:
        return ""
    return f"site {delegation['site']}" if "site" in delegation else f"service {delegation.get('service')}"


@prefix.command("delegate")
@click.argument("name", metavar="PREFIX")
@click.option("--site", metavar="HOST:PORT", help="The enterprise's Handle server (HOST an IP address).")
@click.option("--service", metavar="HANDLE", help="Or the handle of its service (HS_SERV).")
@pass_cli
def prefix_delegate(obj: Cli, name: str, site: str | None, service: str | None) -> None:
    """Serve PREFIX from the enterprise's own Handle server: its prefix record
    0.NA/PREFIX names that site (HS_SITE) or service (HS_SERV)."""
    name = parse_prefix(name)
    delegation = with_core(obj.settings(), lambda core: core.delegate_prefix(OPERATOR, name, site=site,
                                                                             service=service))
    click.echo(f"prefix {name} delegated to {_where(delegation)}")


@prefix.command("undelegate")
@click.argument("name", metavar="PREFIX")
@pass_cli
def prefix_undelegate(obj: Cli, name: str) -> None:
    """Serve PREFIX from this node again (its prefix record goes)."""
    name = parse_prefix(name)
    with_core(obj.settings(), lambda core: core.undelegate_prefix(OPERATOR, name))
    click.echo(f"prefix {name} is served by this node")


@cli.group()
def upstream() -> None:
    """The node in the national hierarchy: recursion and publishing to the top-level node."""


@upstream.command("status")
@pass_cli
def upstream_status(obj: Cli) -> None:
    """What the node publishes where, and the changes not published yet
    (the outbox: each with its tries and last error)."""
    settings = obj.settings()
    u = settings.upstream
    pending = with_core(settings, lambda core: core.unpublished(OPERATOR))
    if u.publish_to:
        identity = u.publish_as or "300:<this node's prefix>/ADMIN"
        click.echo(f"publishing to: {u.publish_to} as {identity}")
    else:
        click.echo("publishing to: nowhere (upstream.publish_to is empty)")
    click.echo(f"recursion: {'on' if u.recursion else 'off'}; roots: {u.roots or 'none'}")
    click.echo(f"unpublished: {len(pending)}")
    for p in pending:
        line = f"  {p.prefix}  changed {_time(int(p.since))}"
        if p.tries:
            line += f"  tries {p.tries}  next {_time(int(p.due))}  last error: {p.error}"
        click.echo(line)


@upstream.command("publish")
@click.option("--all", "everything", is_flag=True, required=True,
              help="Every prefix allocated here (after setting upstream.publish_to on a node that has prefixes).")
@pass_cli
def upstream_publish(obj: Cli, everything: bool) -> None:
    """Publish prefix records to the top-level node again."""
    count = with_core(obj.settings(), lambda core: core.republish(OPERATOR))
    click.echo(f"{count} prefixes to publish; a serving node with upstream.publish_to sends them")


def _time(unix: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(unix)) if unix else ""


def _state_command(state: str, verb: str):
    @pass_cli
    def set_state(obj: Cli, name: str) -> None:
        name = parse_prefix(name)
        info = with_core(obj.settings(), lambda core: core.set_prefix_state(OPERATOR, name, state == "enabled"))
        click.echo(f"prefix {info.prefix} {state}")
    set_state.__doc__ = (f"{verb} PREFIX: its identifiers are "
                         f"{'no longer served, nor written' if state == 'disabled' else 'served again'}.")
    return prefix.command(verb.lower())(click.argument("name", metavar="PREFIX")(set_state))


_state_command("disabled", "Disable")
_state_command("enabled", "Enable")


@prefix.command("passwd")
@click.argument("name", metavar="PREFIX")
@click.option("--password-stdin", is_flag=True, help="Read the new secret from stdin (else one is generated).")
@pass_cli
def prefix_passwd(obj: Cli, name: str, password_stdin: bool) -> None:
    """Replace the secret of 300:PREFIX/ADMIN."""
    name = parse_prefix(name)
    password = _read_password(password_stdin)
    secret = with_core(obj.settings(), lambda core: core.rotate_prefix_secret(OPERATOR, name, password))
    click.echo(f"changed the secret of prefix {name}")
    _print_secret(f"{provision.ADMIN_INDEX}:{provision.prefix_admin_handle(name)}", secret)


@prefix.command("add-key")
@click.argument("name", metavar="PREFIX")
@click.argument("key_file", metavar="KEYFILE")
@click.option("--index", type=click.IntRange(1, 0xFFFFFFFF), metavar="N",
              help="Value index of the key (default: the next free index from 301); an index in use is refused.")
@pass_cli
def prefix_add_key(obj: Cli, name: str, key_file: str, index: int | None) -> None:
    """Add the public key in KEYFILE (PEM; '-' for stdin) to PREFIX/ADMIN.

    The key becomes the identity N:PREFIX/ADMIN, and an HS_ADMIN value
    (from index 101) names it, so its private key administers PREFIX.
    """
    name = parse_prefix(name)
    pem = _read_key_file(key_file)
    key_index, admin_index = with_core(obj.settings(), lambda core: core.add_prefix_key(OPERATOR, name, pem, index))
    click.echo(f"added key {key_index}:{provision.prefix_admin_handle(name)} "
               f"(HS_PUBKEY at {key_index}, HS_ADMIN at {admin_index} naming it)")


# ---------------------------------------------------------------- the node admin

@cli.group()
def admin() -> None:
    """The node admin identity 300:0.NA/<node prefix>."""


@admin.command("passwd")
@click.option("--password-stdin", is_flag=True,
              help="Read the new secret from the first line of stdin (else one is generated and printed once).")
@pass_cli
def admin_passwd(obj: Cli, password_stdin: bool) -> None:
    """Replace the secret of the node admin 300:0.NA/<node prefix>.

    The old secret is not asked for: whoever runs this on the node's home
    (its store and node.key) sets a new one. This is how a lost node admin
    secret (the one `idnode init` printed) is recovered. The old secret
    stops working at once.
    """
    password = _read_password(password_stdin)

    async def work(core: Core) -> tuple[str, str | None]:
        secret = await core.rotate_node_secret(OPERATOR, password)
        return await core.node_prefix(), secret

    node_prefix, secret = with_core(obj.settings(), work)
    click.echo(f"changed the secret of the node admin of {node_prefix}")
    _print_secret(f"{provision.ADMIN_INDEX}:{provision.node_admin_handle(node_prefix)}", secret)


# ---------------------------------------------------------------- identifiers

def _value_option(text: str) -> tuple[str, str]:
    type_, sep, data = text.partition("=")
    if not sep or not type_.strip() or not data:
        raise click.BadParameter(f"expected TYPE=DATA, got {text!r}", param_hint="'--value'")
    return type_.strip(), data


@cli.command()
@click.argument("handle")
@click.option("--url", callback=_url, help="The URL value (index 1): an absolute http(s) URL.")
@click.option("--value", "extra", multiple=True, metavar="TYPE=DATA",
              help="Another text value (indexes 2, 3, ... in the order given); repeatable.")
@click.option("--overwrite", is_flag=True, help="Replace every value of an existing identifier.")
@pass_cli
def register(obj: Cli, handle: str, url: str | None, extra: tuple[str, ...], overwrite: bool) -> None:
    """Register HANDLE (e.g. 88.118.8/abc) with its values."""
    parsed = parse_handle(handle)
    pairs = [_value_option(v) for v in extra]
    values = ([HandleValue(1, "URL", url.encode())] if url else [])
    values += [HandleValue(i, t, d.encode()) for i, (t, d) in enumerate(pairs, 2)]
    if not values:
        raise click.UsageError("give --url and/or --value TYPE=DATA")
    try:
        record, _ = with_core(obj.settings(), lambda core: core.put(OPERATOR, parsed, values, overwrite=overwrite))
    except Refused as exc:
        if exc.code == RC.HANDLE_ALREADY_EXISTS:
            raise CliError(f"{parsed.text} already exists (use --overwrite to replace its values)") from None
        raise
    click.echo(f"{'registered' if not overwrite else 'wrote'} {record.handle} ({len(record.values)} values)")


@cli.command()
@click.argument("handle")
@pass_cli
def delete(obj: Cli, handle: str) -> None:
    """Delete HANDLE and all its values."""
    parsed = parse_handle(handle)
    with_core(obj.settings(), lambda core: core.delete(OPERATOR, parsed))
    click.echo(f"deleted {parsed.text}")


def _data_text(data: Any) -> str:
    """One value's data as the human output shows it."""
    if isinstance(data, dict) and "value" in data:
        fmt, value = data.get("format"), data["value"]
        if fmt == "admin" and isinstance(value, dict):
            return f"admin {value.get('index')}:{value.get('handle')} perms={value.get('permissions')}"
        if isinstance(value, str):
            return value if fmt == "string" else f"{fmt}:{value}"
        return orjson.dumps(value).decode()
    return orjson.dumps(data).decode()


async def _resolve_remote(server: str, handle: str) -> dict:
    try:
        doc = await get_handle(server, handle)
    except Refused as exc:
        if exc.code == RC.HANDLE_NOT_FOUND:
            raise reg.HandleNotFound(f"{handle} not found") from None
        raise CliError(f"{server}: {exc.message} (response code {exc.code})") from None
    if doc.get("responseCode") != RC.SUCCESS:
        raise CliError(f"{server}: {doc.get('message') or 'no values'} (response code {doc['responseCode']})")
    return doc


async def _resolve_local(core: Core, handle: str) -> dict:
    """The operator's view: every value but secrets (as the node admin sees it)."""
    view = await core.resolve(Query(parse_handle(handle), caller=OPERATOR))
    if view.elsewhere:
        return {"responseCode": int(view.code), "handle": handle, "message": f"{handle}: {view.message}"}
    return record_to_json(view.handle, view.values, int(view.code))


def _resolve_hs(server: str, handle: str, udp: bool, recursive: bool = False) -> dict:
    from .hs.client import HandleClientError, HandleResponseError, resolve_record
    from .hs.walk import WalkError, resolve_walking

    if recursive:                    # follow referrals, showing each server asked on stderr
        try:
            name, values, hops = asyncio.run(resolve_walking(server, handle, udp=udp))
        except WalkError as exc:
            _show_hops(exc.hops)
            if exc.code == RC.HANDLE_NOT_FOUND:
                raise reg.HandleNotFound(f"{handle} not found") from None
            raise CliError(str(exc)) from None
        _show_hops(hops)
        return record_to_json(name, values)
    try:
        name, values = asyncio.run(resolve_record(server, handle, udp=udp))
    except HandleResponseError as exc:
        if exc.code == RC.HANDLE_NOT_FOUND:
            raise reg.HandleNotFound(f"{handle} not found") from None
        raise CliError(f"{server}: {exc}") from None
    except (HandleClientError, ValueError) as exc:
        raise CliError(f"{server}: {exc}") from None
    return record_to_json(name, values)


def _show_hops(hops) -> None:
    for n, hop in enumerate(hops, 1):
        click.echo(f"hop {n}: {hop.server}: {hop.note}", err=True)


@cli.command()
@click.argument("handle")
@click.option("--server", metavar="URL", help="Ask a running node (http://host:port) instead of the local store.")
@click.option("--hs", "hs_server", metavar="HOST:PORT", help="Ask a node over the Handle protocol (TCP).")
@click.option("--udp", is_flag=True, help="With --hs: over UDP.")
@click.option("--recursive", is_flag=True,
              help="With --hs: follow referrals (RC 302) from node to node, each server asked shown on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the Handle.Net JSON record.")
@pass_cli
def resolve(obj: Cli, handle: str, server: str | None, hs_server: str | None, udp: bool, recursive: bool,
            as_json: bool) -> None:
    """Print HANDLE's values, one per line: index type data (secrets never shown)."""
    handle = _handle(handle)
    if (udp or recursive) and not hs_server:
        raise click.UsageError("--udp and --recursive go with --hs HOST:PORT")
    if hs_server:
        obj.settings()
        doc = _resolve_hs(hs_server, handle, udp, recursive)
    elif server:
        obj.settings()
        doc = asyncio.run(_resolve_remote(server, handle))
    else:
        doc = with_core(obj.settings(), lambda core: _resolve_local(core, handle))
    if as_json:
        click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())
    if doc.get("responseCode") in ELSEWHERE:              # not found, referred, not served here
        raise CliError(doc["message"])
    if as_json:
        return
    for v in doc.get("values", []):
        click.echo(f"{v.get('index')} {v.get('type')} {_data_text(v.get('data'))}")


@cli.command()
@click.option("--prefix", "name", required=True, metavar="PREFIX", help="Export every identifier under PREFIX.")
@click.option("--output", "-o", type=click.File("wb"), default="-", help="Write to FILE (default stdout).")
@pass_cli
def export(obj: Cli, name: str, output) -> None:
    """Write identifiers under PREFIX as JSON lines, the `idnode import` format.

    Each line is {"handle": H, "values": [Handle.Net JSON values]}; HS_SECKEY
    values are left out (secrets never leave the store).
    """
    name = parse_prefix(name)

    async def work(core: Core) -> int:
        await core.show_prefix(OPERATOR, name)           # refuses a prefix not allocated here
        count, cursor = 0, None
        while True:
            page = await core.list_handles(OPERATOR, name, cursor=cursor, limit=EXPORT_PAGE)
            for h in page.items:
                view = await core.resolve(Query(parse_handle(h), caller=OPERATOR))
                values = record_to_json(view.handle, view.values)["values"] if view.found else []
                if values:
                    output.write(orjson.dumps({"handle": view.handle, "values": values}) + b"\n")
                    count += 1
            if page.next is None:
                return count
            cursor = page.next

    count = with_core(obj.settings(), work)
    output.flush()
    click.echo(f"exported {count} identifiers under {name}", err=True)


@cli.command("import", epilog="""\b
CSV (one record per line, UTF-8): a header line, then one identifier a line.
  handle,url,EMAIL,DESC
  88.118.8/p-0001,https://example.com/p/1,ops@example.com,first batch
The 'handle' column is required; 'url' becomes the URL value at index 1;
every other column is a value type whose values get indexes 2, 3, ... in
column order. Empty cells add no value. Quote fields holding commas
("a,b"); a field may not span lines.

\b
JSONL: one JSON object a line, either
  {"handle": "88.118.8/p-0001", "url": "https://example.com/p/1"}
or, as `idnode export` writes,
  {"handle": "88.118.8/p-0001", "values": [{"index": 1, "type": "URL",
   "data": {"format": "string", "value": "https://example.com/p/1"}}]}

\b
Rows are committed --batch-size at a time, one transaction per batch; an
interrupted import keeps every committed batch, and running it again skips
identifiers that already exist (counted as skipped). Rejected rows are
listed as 'line N: HANDLE: reason' in --report (or on stderr); the exit
status is 1 when any row was rejected.""")
@click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]),
              help="File format (default from the extension: .csv, .jsonl/.ndjson/.json).")
@click.option("--batch-size", type=click.IntRange(1, 100_000), default=2000, show_default=True,
              help="Rows per transaction.")
@click.option("--overwrite", is_flag=True, help="Replace existing identifiers instead of skipping them.")
@click.option("--report", type=click.Path(dir_okay=False, writable=True), help="Write rejected rows to FILE.")
@click.option("--progress", type=click.Choice(["auto", "bar", "lines", "none"]), default="auto", show_default=True,
              help="Progress on stderr: a bar (auto: when stderr is a terminal), or one line per committed batch.")
@pass_cli
def import_(obj: Cli, file: str, fmt: str | None, batch_size: int, overwrite: bool, report: str | None,
            progress: str) -> None:
    """Register identifiers in bulk from a CSV or JSONL FILE ('-' for stdin)."""
    summary = with_core(obj.settings(), lambda core: _import(
        core, file, fmt=fmt, batch_size=batch_size, overwrite=overwrite, report=report, progress=progress))
    click.echo(f"imported {summary.imported}, skipped {summary.skipped}, rejected {summary.rejected}")
    if summary.rejected:
        where = report if report else "stderr"
        raise CliError(f"{summary.rejected} rows rejected (listed on {where})")


@dataclass(frozen=True, slots=True)
class ImportSummary:
    imported: int
    skipped: int
    rejected: int


def _file_size(fh) -> int | None:
    try:
        st = os.fstat(fh.fileno())
    except (OSError, ValueError, AttributeError):
        return None
    return st.st_size if stat.S_ISREG(st.st_mode) else None


async def _import(core: Core, file: str, *, fmt: str | None, batch_size: int, overwrite: bool,
                  report: str | None, progress: str) -> ImportSummary:
    """Stream FILE into the store, reporting each committed batch and each rejected row."""
    if fmt is None:
        if file == "-":
            raise ImportFormatError("reading stdin: give --format csv or --format jsonl")
        fmt = guess_format(file)
    imported = skipped = rejected = 0
    with contextlib.ExitStack() as stack:
        fh = sys.stdin.buffer if file == "-" else stack.enter_context(open(file, "rb"))
        out = stack.enter_context(open(report, "w", encoding="utf-8")) if report else None
        bar = stack.enter_context(tqdm(total=_file_size(fh), unit="B", unit_scale=True, desc="import",
                                       file=sys.stderr, disable=None if progress == "auto" else progress != "bar"))
        say = (lambda text: bar.write(text, file=sys.stderr)) if not bar.disable else \
            (lambda text: click.echo(text, err=True))
        source = LineSource(fh)
        stack.enter_context(bulk_gc())

        async def register(items, overwrite: bool):
            return await core.register_batch(OPERATOR, items, overwrite=overwrite)

        async for batch in import_rows(register, parse(fmt, source), batch_size=batch_size, overwrite=overwrite):
            imported += batch.imported
            skipped += batch.skipped
            rejected += len(batch.rejected)
            for row in batch.rejected:
                if out is not None:
                    out.write(f"{row}\n")
                else:
                    say(f"idnode: rejected {row}")
            if out is not None:
                out.flush()
            if progress == "lines":
                say(f"idnode: batch {batch.number} committed: lines {batch.first_line}-{batch.last_line}, "
                    f"imported {batch.imported}, skipped {batch.skipped}, rejected {len(batch.rejected)}")
            bar.update(source.bytes_read - bar.n)
    return ImportSummary(imported, skipped, rejected)



# ---------------------------------------------------------------- --server (resolver.cli_remote)

attach_remote(cli)
