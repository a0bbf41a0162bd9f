"""``--server URL``: the writing commands of ``idnode`` against a running node.

:func:`attach_remote` gives the commands in :data:`REMOTE_COMMANDS` three
options: ``--server URL`` (a node's REST base, e.g. http://127.0.0.1:8000),
``--user IDENTITY`` (e.g. ``300:88.118.8/ADMIN``) and, where a command lacks
it, ``--password-stdin``. The password is the first line of stdin with
``--password-stdin``, else ``$IDNODE_PASSWORD``; never an argument. For
``prefix create`` and ``prefix passwd``, whose ``--password-stdin`` reads the
new secret, the new secret is the second line (none: one is generated and
shown once). A key file read from stdin (``prefix add-key P -``) follows the
password's line.

Given ``--server``, the command runs its own code unchanged: the options are
taken here, and :func:`remote_target` tells :func:`resolver.cli.with_core`
to hand the command a :class:`resolver.remote.RemoteCore` instead of the
local store's operations layer. Without ``--server`` nothing changes.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable

import click

from .core.auth import parse_identity
from .core.urls import is_web_url
from .remote import Remote

PASSWORD_ENV = "IDNODE_PASSWORD"
REMOTE_COMMANDS = (
    ("register",), ("delete",), ("import",),
    ("prefix", "create"), ("prefix", "list"), ("prefix", "show"), ("prefix", "disable"), ("prefix", "enable"),
    ("prefix", "passwd"), ("prefix", "add-key"), ("prefix", "delegate"), ("prefix", "undelegate"),
)
_KEY = "idnode.remote"           # ctx.meta: the Remote of a command given --server


def remote_target() -> Remote | None:
    """The node the running command was pointed at with ``--server``, if any."""
    ctx = click.get_current_context(silent=True)
    return ctx.meta.get(_KEY) if ctx is not None else None


def _server(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not is_web_url(value):
        raise click.BadParameter(f"{value!r} is not an absolute http(s) URL", ctx=ctx, param=param)
    return value


def _user(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    if value is not None:
        try:
            parse_identity(value)
        except ValueError:
            raise click.BadParameter(f"{value!r} is not an identity like 300:88.118.8/ADMIN",
                                     ctx=ctx, param=param) from None
    return value


def _stdin_line() -> str:
    """One line of stdin, read as bytes: a key file on stdin ('-') may follow, read from the buffer."""
    return sys.stdin.buffer.readline().decode("utf-8", "replace").rstrip("\r\n")


def _password(from_stdin: bool, user: str) -> str:
    if from_stdin:
        line = _stdin_line()
        if not line:
            raise click.UsageError(f"--password-stdin: no password of {user} on standard input")
        return line
    password = os.environ.get(PASSWORD_ENV)
    if not password:
        raise click.UsageError(f"--server needs the password of {user}: on standard input with "
                               f"--password-stdin, or in ${PASSWORD_ENV}")
    return password


def _remote_form(command: click.Command) -> None:
    """Add the options to ``command`` and take them before its own callback runs."""
    own_stdin = any(p.name == "password_stdin" for p in command.params)
    command.params.append(click.Option(
        ["--server"], metavar="URL", callback=_server,
        help="Act on the node serving its REST API at URL (e.g. http://127.0.0.1:8000), not the local home."))
    command.params.append(click.Option(
        ["--user"], metavar="IDENTITY", callback=_user,
        help="With --server: act as IDENTITY (e.g. 300:88.118.8/ADMIN); "
             f"its password from --password-stdin, else ${PASSWORD_ENV}."))
    if own_stdin:
        option = next(p for p in command.params if p.name == "password_stdin")
        option.help = (f"{option.help} With --server: your password, then (if given) the new secret, "
                       "one a line.")
    else:
        command.params.append(click.Option(
            ["--password-stdin"], is_flag=True,
            help=f"With --server: read your password from stdin (else ${PASSWORD_ENV})."))
    local: Callable[..., Any] = command.callback

    @functools.wraps(local)
    def callback(*, server: str | None, user: str | None, **params: Any) -> Any:
        from_stdin = params["password_stdin"] if own_stdin else params.pop("password_stdin")
        if server is None:
            if user is not None:
                raise click.UsageError("--user goes with --server URL")
            if from_stdin and not own_stdin:
                raise click.UsageError("--password-stdin goes with --server URL")
            return local(**params)
        if user is None:
            raise click.UsageError("--server needs --user IDENTITY (e.g. 300:88.118.8/ADMIN)")
        password = _password(from_stdin, user)
        new_secret = None
        if own_stdin and from_stdin:         # the command's own secret: the next line, given to the node
            new_secret = _stdin_line() or None
            params["password_stdin"] = False
        click.get_current_context().meta[_KEY] = Remote(server, user, password, new_secret=new_secret)
        return local(**params)

    command.callback = callback


def attach_remote(root: click.Group) -> None:
    """Give each command of :data:`REMOTE_COMMANDS` under ``root`` its ``--server`` form."""
    for path in REMOTE_COMMANDS:
        command: click.Command = root
        for name in path:
            assert isinstance(command, click.Group), path
            command = command.commands[name]
        _remote_form(command)
