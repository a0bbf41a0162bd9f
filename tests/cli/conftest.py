"""Fixtures for the CLI, provisioning and import tests: a real node in tmp_path."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from resolver.cli import cli, with_store
from resolver.settings import load_settings

IDNODE = Path(sys.executable).with_name("idnode")     # the console script in .venv/bin
ENT_PASSWORD = "enterprise-secret-0001"
# Nothing from the developer's environment may steer the CLI under test.
CLEAN_ENV = {"IDNODE_HOME": None, "IDNODE_CONFIG": None, "IDNODE_ADMIN_PASSWORD": None}


@pytest.fixture(autouse=True)
def _restore_logging():
    """The CLI configures the root logger per command; put pytest's back."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@dataclass
class Idnode:
    """Runs ``idnode --home HOME ...`` in-process."""
    home: Path

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None) -> Result:
        return CliRunner().invoke(cli, ["--home", str(self.home), *map(str, args)], input=input,
                                  env={**CLEAN_ENV, **(env or {})}, catch_exceptions=False)

    def ok(self, *args: str, input: str | None = None, env: dict | None = None) -> Result:
        result = self(*args, input=input, env=env)
        assert result.exit_code == 0, (result.stdout, result.stderr)
        return result

    def settings(self):
        return load_settings(env={}, overrides={"node.home": str(self.home)})

    def with_store(self, work):
        """Run ``await work(store)`` against this home's store."""
        return with_store(self.settings(), work)


def assert_error(result: Result, fragment: str, status: int = 1) -> str:
    """Exit status and exactly one ``idnode: error:`` line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == status, (result.stdout, result.stderr)
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("idnode: error: ") and fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def idnode(tmp_path) -> Idnode:
    return Idnode(tmp_path / "home")


@pytest.fixture
def node(idnode) -> Idnode:
    """A node 88.118 with the enterprise prefix 88.118.8 (secret ENT_PASSWORD)."""
    idnode.ok("init")
    idnode.ok("prefix", "create", "88.118.8", "--owner", "Acme", "--password-stdin", input=ENT_PASSWORD + "\n")
    return idnode
