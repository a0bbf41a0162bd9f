"""The running node's parts, built once and shared by every handler."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from registry.store import Store

from .auth import Authenticator
from .metrics import Metrics
from .pipeline import Pipeline
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Node:
    settings: Settings
    store: Store
    auth: Authenticator
    metrics: Metrics
    pipeline: Pipeline


NODE = web.AppKey("idnode.node", Node)
