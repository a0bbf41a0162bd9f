"""The running node's parts, built once and shared by every front end."""

from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web

from .core import Core
from .metrics import Metrics
from .pipeline import Pipeline
from .settings import Settings


@dataclass(frozen=True, slots=True)
class Node:
    settings: Settings
    core: Core                  # every decision: front ends parse, call it, render
    metrics: Metrics
    pipeline: Pipeline          # the fast paths' synchronous cache peek


NODE = web.AppKey("idnode.node", Node)
