"""``idnode bench``: the command line of the harness, plugged into ``idnode``
through the ``idnode.commands`` entry point (pyproject.toml); resolver/ never
imports bench/.

Imports of the harness itself are deferred to the command, so ``idnode``'s
other commands do not pay for them.
"""

from __future__ import annotations

from pathlib import Path

import click

_EPILOG = """\b
Scenarios (see bench/README.md): <protocol>-<keys> with protocol hs-udp,
hs-tcp, rest, cbor and keys hot, cold, notfound, zipf; <protocol>-hot-open
(hs-udp, hs-tcp, rest); register-single, register-batch, import. A word may
also be a tag: a protocol, a key set, open, register, write, resolve, all.
No word runs everything.

\b
The node runs pinned to CPU 0 and the load to the other CPUs when there are
two or more. Results go to bench/results/<date>-<scenario>.json, with
<date>-summary.md and <date>-*.png next to them; with --records small or
mixed the names start <date>-small- or <date>-mixed-."""


@click.command("bench", epilog=_EPILOG)
@click.argument("scenarios", nargs=-1, metavar="[SCENARIO]...")
@click.option("--size", type=click.IntRange(1), metavar="N",
              help="Identifiers the node is seeded with (default 1,000,000; 10,000 with --quick).")
@click.option("--duration", type=click.FloatRange(0.1), metavar="S",
              help="Seconds measured per run (default 10; 1 with --quick).")
@click.option("--warmup", type=click.FloatRange(0.0), metavar="S",
              help="Seconds of load before each measurement (default 2; 0.3 with --quick).")
@click.option("--quick", is_flag=True, help="The smoke run: 10k identifiers, short runs (not a timing).")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path), metavar="DIR",
              help="Where results go (default bench/results).")
@click.option("--procs", type=click.IntRange(1), metavar="N",
              help="Generator processes (default: one per load core).")
@click.option("--http-generator", type=click.Choice(["auto", "python", "wrk"]), default="auto", show_default=True,
              help="REST closed-loop generator: wrk when installed (auto), or the Python one.")
@click.option("--records", type=click.Choice(["small", "mixed", "large"]), default="large", show_default=True,
              help="The records seeded, imported and registered: small (URL + HS_ADMIN, one UDP datagram), "
                   "large (4-8 values, 300-600 B) or mixed (70% small).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, metavar="N",
              help="Worker processes of the node (`serve --workers N`), all on the node's core: compare the "
                   "CPU per 1k requests of 1 and 2.")
@click.option("--store", "store", type=click.Choice(["sqlite", "redis", "cluster"]), default="sqlite",
              show_default=True, help="The registry: the embedded SQLite file, or a redis-server or a 3-master, "
                                      "3-replica Redis Cluster the harness starts on free ports (pinned to the "
                                      "node's core); names end -redis or -cluster.")
@click.option("--targets", "targets", is_flag=True,
              help="Every row of the resolution path's targets (`make bench`): small, large, two-worker and "
                   "scale runs and the cache's memory, then <date>-targets.md. Scenario words are not taken.")
@click.option("--scale-to", type=click.IntRange(1), metavar="N",
              help="With --targets: the large side of the scale rows (default 10,000,000; 100,000 with --quick), "
                   "read against 10,000 identifiers (2,000 with --quick).")
@click.option("--list", "list_only", is_flag=True, help="List the scenarios and exit.")
def bench(scenarios: tuple[str, ...], size: int | None, duration: float | None, warmup: float | None, quick: bool,
          output: Path | None, procs: int | None, http_generator: str, records: str, workers: int,
          store: str, targets: bool, scale_to: int | None, list_only: bool) -> None:
    """Benchmark the node against ceilings measured in the same run."""
    from . import runner
    from .scenarios import SCENARIOS, UnknownScenario, select

    if list_only:
        for s in SCENARIOS:
            click.echo(f"{s.name:20} {s.doc}")
        return
    if targets:
        if scenarios:
            raise click.UsageError("--targets runs its own scenarios: name none")
        _targets(quick, size, duration, warmup, output, procs, http_generator, scale_to)
        return
    try:
        chosen = select(scenarios)
    except UnknownScenario as exc:
        raise click.UsageError(str(exc)) from None
    opts = runner.preset(quick=quick, size=size, duration=duration, open_duration=duration, warmup=warmup,
                         output=output, procs=procs, http_generator=http_generator, records=records,
                         workers=workers, store=store)
    summary = runner.run(opts, chosen, say=click.echo)
    failed = [n for n, e in summary["results"].items() if e.get("failed")]
    if failed:
        raise click.ClickException(f"{len(failed)} scenario(s) failed: {', '.join(failed)}")


def _targets(quick: bool, size: int | None, duration: float | None, warmup: float | None, output: Path | None,
             procs: int | None, http_generator: str, scale_to: int | None) -> None:
    from . import runner, suite

    opts = runner.preset(quick=quick, size=size, duration=duration, open_duration=duration, warmup=warmup,
                         output=output, procs=procs, http_generator=http_generator)
    done = suite.run_suite(opts, scale_from=2_000 if quick else 10_000,
                           scale_to=scale_to or (100_000 if quick else 10_000_000),
                           memory_entries=min(opts.size, 1_000_000), say=click.echo)
    failed = [f"{label}/{n}" for label, r in done["runs"].items() for n, e in r["results"].items() if e.get("failed")]
    if failed:
        raise click.ClickException(f"{len(failed)} scenario(s) failed: {', '.join(failed)}")
