"""``runledger``: the command line and composition root — the one place that wires the
packages together. Each command builds its settings, opens what it needs, and closes it."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any

import typer

from ledger.errors import ConfigurationError, LedgerError
from ledger.settings import DatabaseSettings, load_settings, redact
from runledger import logs
from runledger.bench import missing_extra
from runledger.bench.load_command import bench_load
from runledger.database import migrate_database

app = typer.Typer(
    no_args_is_help=True, add_completion=False,
    help="runledger: an event-sourced run ledger for browser tests.",
)
bench_app = typer.Typer(no_args_is_help=True, help="Benchmarks: figures and ratios.")
app.add_typer(bench_app, name="bench")
followers_app = typer.Typer(help="Followers of the log: position, lag and parked events.")
app.add_typer(followers_app, name="followers")
log = logging.getLogger("runledger")


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


@app.callback()
def main(
    ctx: typer.Context,
    log_level: Annotated[str, typer.Option(envvar="LOG_LEVEL", help="Log level.")] = "INFO",
) -> None:
    logs.configure(log_level)
    if ctx.invoked_subcommand not in ("dev", "config"):
        use_dev_instance()


def configured_values() -> dict[str, str | None]:
    """The variables as the settings classes see them: ``.env``, overridden by the
    environment."""
    from dotenv import dotenv_values

    return {**dotenv_values(".env"), **os.environ}


def use_dev_instance() -> None:
    """Point the servers' URLs at a running ``runledger dev`` (its ``.runledger/dev.json``)
    when neither the environment nor ``.env`` sets them: the composition root fills the
    environment the settings classes then read, as ``.env`` would."""
    from runledger.dev import state_urls

    configured = configured_values()
    for name, value in state_urls().items():
        if not configured.get(name):
            os.environ[name] = value


def require_bench_extra(name: str) -> None:
    """Stop with one line naming the extra when benchmark ``name`` lacks a dev-only package."""
    message = missing_extra(name)
    if message:
        raise fail(message)


@app.command()
def migrate() -> None:
    """Apply the schema migrations not yet applied to DATABASE_URL (idempotent)."""
    try:
        settings = load_settings(DatabaseSettings)
        applied = asyncio.run(migrate_database(settings.database_url))
    except LedgerError as exc:
        raise fail(str(exc)) from None
    target = redact(settings.database_url)
    if applied:
        typer.echo(f"applied {len(applied)} migration(s) to {target}: " + ", ".join(applied))
    else:
        typer.echo(f"{target} is up to date")


@app.command()
def dev(
    data_dir: Annotated[
        Path, typer.Option(help="Where embedded servers keep their data (and dev.json).")
    ] = Path(".runledger"),
    host: Annotated[str, typer.Option(help="Interface the API binds.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port the API binds.")] = 8000,
) -> None:
    """Run everything in one process tree: followers, a worker and the API. Without
    DATABASE_URL / REDIS_URL (environment or .env) it starts its own PostgreSQL and Valkey
    (from wheels) under DATA_DIR and stops them on exit. Without a browser it installs one
    (BROWSER_AUTO_INSTALL) or serves without, runs waiting in the queue. While it runs,
    DATA_DIR/dev.json tells the other commands where it is."""
    from runledger.dev import DevError, run_dev
    from worker.errors import StartupError

    configured = configured_values()
    try:
        code = asyncio.run(run_dev(data_dir, host, port,
                                   database_url=configured.get("DATABASE_URL") or None,
                                   redis_url=configured.get("REDIS_URL") or None,
                                   public_url=configured.get("PUBLIC_URL") or None))
    except ConfigurationError as exc:
        raise fail(str(exc)) from None
    except (LedgerError, DevError, StartupError) as exc:
        raise fail(str(exc), code=1) from None
    except KeyboardInterrupt:
        code = 130
    if code:
        raise typer.Exit(code)


@app.command()
def config(
    markdown: Annotated[bool, typer.Option(
        "--markdown", help="The configuration reference (docs/configuration.md).")] = False,
    env: Annotated[bool, typer.Option(
        "--env", help="An example .env with every variable (.env.example).")] = False,
) -> None:
    """Print every setting of every component, generated from the settings classes
    (--markdown writes docs/configuration.md, --env writes .env.example)."""
    from runledger import config_docs

    if markdown == env:
        raise fail("choose one of --markdown or --env")
    typer.echo(config_docs.markdown() if markdown else config_docs.env_example(), nl=False)


@bench_app.command("append")
def bench_append(
    runs: Annotated[int, typer.Option(help="Runs to append to.")] = 1000,
    rounds: Annotated[int, typer.Option(help="Alternating rounds per contender.")] = 3,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """Appends per second: runledger vs raw asyncpg (the floor) vs eventsourcing (the peer)."""
    require_bench_extra("append")
    from runledger.bench import append

    asyncio.run(append.main(runs=runs, rounds=rounds, json_out=json_out))


# ── followers (projections): projector, rebuild, bench rebuild, bench relay ────────────────


@app.command()
def projector() -> None:
    """Run every follower of the log — the runs and run_steps read models and the Redis
    relay — until SIGTERM/SIGINT. Run several for failover: one process is active per
    follower (a lease), the others stand by and take over when it dies or hangs."""
    from projections.errors import ProjectionError
    from projections.service import ProjectorSettings, run_projector

    try:
        settings = load_settings(ProjectorSettings)
    except LedgerError as exc:
        raise fail(str(exc)) from None
    try:
        asyncio.run(_until_signalled(lambda stop: run_projector(settings, stop)))
    except (LedgerError, ProjectionError) as exc:
        raise fail(str(exc), code=1) from None


async def _until_signalled(main: Callable[[asyncio.Event], Coroutine[Any, Any, None]]) -> None:
    """Run ``main(stop)``: the first SIGTERM/SIGINT sets ``stop`` (orderly shutdown), a
    second one cancels it (at once; every follower's work is transactional or idempotent)."""
    from ledger.aio import Signals, supervise

    with Signals() as signals:
        await supervise([("main", main(signals.stop))], stop=signals.stop,
                        grace_seconds=None, force=signals.force_stop)


@app.command()
def rebuild(
    target: Annotated[str, typer.Argument(
        help="runs, run_steps, locator_memory, test_stats or all.")] = "all",
    batch_size: Annotated[int, typer.Option(min=1, help="Events per batch.")] = 5000,
    lock_timeout: Annotated[float, typer.Option(
        help="Seconds the swap may wait for readers before retrying.")] = 2.0,
) -> None:
    """Replay the whole log into fresh read-model tables and swap them in atomically. Readers
    keep using the old tables until the swap; a running projector carries on from there."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from projections.errors import ProjectionError
    from projections.rebuild import READ_MODELS
    from projections.rebuild import rebuild as rebuild_models

    choices = ["all", *READ_MODELS]
    if target not in choices:
        raise fail(f"unknown target {target!r}; choose one of: {', '.join(choices)}")
    models = list(READ_MODELS.values()) if target == "all" else [READ_MODELS[target]]
    try:
        settings = load_settings(DatabaseSettings)
    except LedgerError as exc:
        raise fail(str(exc)) from None
    columns = (
        TextColumn("rebuild [bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("events · {task.fields[rate]:,.0f} events/s · ETA"), TimeRemainingColumn(),
        TextColumn("· elapsed"), TimeElapsedColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as progress:
        bar = progress.add_task(", ".join(m.name for m in models), total=None, rate=0.0)

        def on_progress(done: int, total: int) -> None:
            elapsed = progress.tasks[bar].elapsed or 0.0
            progress.update(bar, completed=done, total=total,
                            rate=done / elapsed if elapsed else 0.0)

        try:
            result = asyncio.run(rebuild_models(
                settings.database_url, models, batch_size=batch_size,
                on_progress=on_progress, lock_timeout_seconds=lock_timeout))
        except (LedgerError, ProjectionError) as exc:
            raise fail(str(exc), code=1) from None
    typer.echo(
        f"rebuilt {', '.join(result.models)}: {result.events:,} events up to position "
        f"{result.position} in {result.seconds:.1f}s ({result.rate:,.0f} events/s); "
        f"{result.parked:,} parked event(s)"
        + (" (see `runledger followers`)" if result.parked else ""))


@followers_app.callback(invoke_without_command=True)
def followers(ctx: typer.Context) -> None:
    """List every follower with its position, lag and parked events (then each parked
    event). `runledger followers retry` re-applies parked events."""
    if ctx.invoked_subcommand is not None:
        return
    from rich.console import Console
    from rich.table import Table

    from ledger.db import create_pool
    from projections.parking import follower_status, parked_events

    async def read() -> tuple[list[Any], list[dict[str, Any]]]:
        pool = await create_pool(settings.database_url, min_size=1, max_size=1)
        try:
            return await follower_status(pool), await parked_events(pool)
        finally:
            await pool.close()

    try:
        settings = load_settings(DatabaseSettings)
        status, parked = asyncio.run(read())
    except LedgerError as exc:
        raise fail(str(exc), code=1) from None
    from rich.text import Text

    from ledger.text import escape

    console = Console(width=200)
    table = Table("follower", "position", "lag", "parked", title="followers")
    for row in status:
        table.add_row(row.name, str(row.position), str(row.lag), str(row.parked),
                      style="red" if row.parked else None)
    console.print(table)
    if parked:
        events = Table("follower", "position", "run_id", "type", "attempts", "last failure",
                       "error", title="parked events")
        for p in parked:
            events.add_row(p["follower"], str(p["notification_id"]), str(p["run_id"]),
                           p["event_type"], str(p["attempts"]),
                           p["last_failure"].isoformat(timespec="seconds"),
                           # The error quotes the event: shown as text, never as markup.
                           Text(escape(p["error"], 120)))
        console.print(events)


@followers_app.command("retry")
def followers_retry(
    positions: Annotated[list[int] | None, typer.Argument(
        help="Positions (notification ids) of parked events; default: all.")] = None,
    follower: Annotated[str | None, typer.Option(
        "--follower", help="Only this follower's parked events.")] = None,
) -> None:
    """Re-apply parked events, in log order, through their follower (after a fix), and
    unpark those that apply now. Exits 1 when some stay parked (and lists them)."""
    from projections.errors import ProjectionError
    from projections.retry import RetryResult
    from projections.service import ProjectorSettings, retry_parked_events

    try:
        settings = load_settings(ProjectorSettings)
    except LedgerError as exc:
        raise fail(str(exc)) from None
    try:
        result: RetryResult = asyncio.run(
            retry_parked_events(settings, follower=follower, ids=positions or None))
    except (LedgerError, ProjectionError) as exc:
        raise fail(str(exc), code=1) from None
    typer.echo(f"unparked {len(result.cleared)} event(s)"
               + "".join(f"\n  {name} at position {at}" for name, at in result.cleared))
    if result.parked:
        typer.echo(f"still parked: {len(result.parked)} event(s)"
                   + "".join(f"\n  {name} at position {at}: {error}"
                             for name, at, error in result.parked))
        raise typer.Exit(1)


@bench_app.command("rebuild")
def bench_rebuild(
    runs: Annotated[int, typer.Option(help="Runs in the log.")] = 10_000,
    steps: Annotated[int, typer.Option(help="Step events per run (+3 other events).")] = 17,
    rounds: Annotated[int, typer.Option(help="Rebuilds of runledger (median).")] = 3,
    peer_events: Annotated[int | None, typer.Option(
        help="Stop the peer after this many events (default: the whole log).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """Rebuild rate of the runs model vs eventsourcing's ProjectionRunner on the same log."""
    require_bench_extra("rebuild")
    from runledger.bench import rebuild as bench

    asyncio.run(bench.main(runs=runs, steps=steps, rounds=rounds, peer_events=peer_events,
                           json_out=json_out))


@bench_app.command("relay")
def bench_relay(
    rate: Annotated[int, typer.Option(help="Events per second to append.")] = 1000,
    seconds: Annotated[float, typer.Option(help="How long to append.")] = 10.0,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """Commit → entry visible in run_events:{id}, through a running projector: p50/p99."""
    require_bench_extra("relay")
    from runledger.bench import relay as bench

    asyncio.run(bench.main(rate=rate, seconds=seconds, json_out=json_out))


# ── end of followers ───────────────────────────────────────────────────────────────────


# ── worker: worker, bench queue ────────────────────────────────────────────────────────


@app.command()
def worker() -> None:
    """Consume runs:queue with the Playwright executor until SIGTERM/SIGINT (the first
    finishes in-flight runs and exits 0, a second stops at once). Settings: Database, Redis,
    Worker and Executor in `runledger config --markdown`. Same as `python -m worker`."""
    from worker.main import run

    raise typer.Exit(run())


@bench_app.command("queue")
def bench_queue(
    runs: Annotated[int, typer.Option(min=1, help="Measured runs per phase.")] = 1000,
    rounds: Annotated[int, typer.Option(min=1, help="Rounds per contender (median).")] = 3,
    concurrency: Annotated[int, typer.Option(
        min=1, help="Jobs at a time per worker process, both sides.")] = 4,
    arq_poll_delay: Annotated[list[float] | None, typer.Option(
        help="arq poll_delay(s) to measure, seconds (default: 0.5, its default, and 0.01).",
    )] = None,
    redis_url: Annotated[str | None, typer.Option(
        help="Redis to use instead of a throw-away one. It is FLUSHED between phases.")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """No-op runs per second end to end (queued → started → step → completed, persisted and
    projected) with 1 and 2 worker processes, against arq on the same Redis; worker RSS."""
    require_bench_extra("queue")
    from runledger.bench import queue as bench

    asyncio.run(bench.main(runs=runs, rounds=rounds, concurrency=concurrency,
                           arq_poll_delays=arq_poll_delay or [0.5, 0.01],
                           redis_url=redis_url, json_out=json_out))


bench_app.command("load")(bench_load)


# ── end of worker ──────────────────────────────────────────────────────────────────────


# ── api: api, bench tail ─────────────────────────────────────────────────────────────


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="Port to bind (default: PORT).")] = None,
) -> None:
    """Serve the HTTP API until SIGTERM/SIGINT. Settings: Database, Redis and HTTP API in
    `runledger config --markdown`. Run several behind a load balancer to scale."""
    from api.server import serve
    from api.settings import ApiSettings

    overrides = {key: value for key, value in (("host", host), ("port", port))
                 if value is not None}
    try:
        settings = load_settings(ApiSettings, **overrides)
    except LedgerError as exc:
        raise fail(str(exc)) from None
    try:
        status = asyncio.run(serve(settings))
    except LedgerError as exc:
        raise fail(str(exc), code=1) from None
    raise typer.Exit(status)


@bench_app.command("tail")
def bench_tail(
    rates: Annotated[str, typer.Option(help="Events per second, comma-separated.")] = "100,1000",
    seconds: Annotated[float, typer.Option(help="How long to append at each rate.")] = 10.0,
    clients: Annotated[int, typer.Option(min=1, help="Concurrent SSE clients.")] = 100,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """Commit → arrival at SSE clients (a real API server and projector), p50/p99, against
    clients polling the Redis stream every 0.5 s (how the replaced system streams)."""
    require_bench_extra("tail")
    from runledger.bench import tail as bench

    asyncio.run(bench.main(rates=[int(r) for r in rates.split(",")], seconds=seconds,
                           clients=clients, json_out=json_out))


# ── end of api ─────────────────────────────────────────────────────────────────────────


# ── executor: bench resolve, bench executor ──────────────────────────────────────────


@bench_app.command("resolve")
def bench_resolve(
    rounds: Annotated[int, typer.Option(min=1, help="Passes over the corpus.")] = 1,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """Offline target resolution on the HTML corpus in runledger/bench/resolve_corpus: share
    resolved to the right element, wrong-element resolutions, median time (real Chromium)."""
    require_bench_extra("resolve")
    from runledger.bench import resolve as bench

    asyncio.run(bench.main(rounds=rounds, json_out=json_out))


@bench_app.command("executor")
def bench_executor(
    runs: Annotated[int, typer.Option(min=10, help="Runs on the warm browser.")] = 200,
    cold_runs: Annotated[int, typer.Option(
        min=1, help="Runs that launch their own browser (the baseline).")] = 10,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write figures here.")] = None,
) -> None:
    """Run start on a warm browser vs a browser launched per run, per-step overhead beyond
    Playwright's action time, browser and worker RSS over the runs (real Chromium)."""
    require_bench_extra("executor")
    from runledger.bench import executor as bench

    asyncio.run(bench.main(runs=runs, cold_runs=cold_runs, json_out=json_out))


# ── end of executor ────────────────────────────────────────────────────────────────────


# ── client: submit, runs list|show|tail|history|cancel ──────────────────────────────


runs_app = typer.Typer(no_args_is_help=True, help="Runs on a runledger API: list, show, "
                       "tail, history, cancel.")
app.add_typer(runs_app, name="runs")

ApiOption = Annotated[str | None, typer.Option(
    "--api", envvar="RUNLEDGER_API", show_envvar=True,
    help="The API's base URL (default: the `runledger dev` running here).")]
ApiKeyOption = Annotated[str | None, typer.Option(
    "--api-key", envvar="RUNLEDGER_API_KEY", show_envvar=True,
    help="An API key, when the API has API_KEYS.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
#: exit codes of the client commands
EXIT_PASSED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _client_call(api: str | None, api_key: str | None,
                 body: Callable[[Any], Coroutine[Any, Any, int]]) -> None:
    """Run ``body(client)`` against the API; infrastructure and usage errors are one line
    and exit 2, otherwise ``body``'s exit code."""
    from runledger.client.files import DefinitionFileError
    from runledger.client.http import ClientError, RunledgerClient, resolve_endpoint

    async def main() -> int:
        async with RunledgerClient(resolve_endpoint(api, api_key)) as client:
            return await body(client)

    # A line per request would drown the step view; failures are reported as errors.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    expected = (ClientError, DefinitionFileError)
    try:
        code = asyncio.run(main())
    except expected as exc:
        raise fail(str(exc), EXIT_ERROR) from None
    except BaseExceptionGroup as group:
        # Tests submitted in parallel fail inside a task group: the first expected failure
        # is still one line, not a traceback.
        first = _first_of(group, expected)
        if first is None:
            raise
        raise fail(str(first), EXIT_ERROR) from None
    raise typer.Exit(code)


def _first_of(group: BaseExceptionGroup[BaseException],
              kinds: tuple[type[Exception], ...]) -> BaseException | None:
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            if (found := _first_of(exc, kinds)) is not None:
                return found
        elif isinstance(exc, kinds):
            return exc
    return None


def _console() -> Any:
    """Standard output; when it is not a terminal (CI logs) wide enough for a run's URL."""
    from rich.console import Console

    console = Console(highlight=False)
    return console if console.is_terminal else Console(highlight=False, width=200)


def _write_json(path: Path, data: Any) -> None:
    import orjson

    path.write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2) + b"\n")


def _print_json(data: Any) -> None:
    import orjson

    typer.echo(orjson.dumps(data, option=orjson.OPT_INDENT_2).decode())


@app.command()
def submit(
    paths: Annotated[list[Path], typer.Argument(
        help="Test definitions: JSON or YAML files (several tests each) or folders.")],
    parallel: Annotated[int, typer.Option(min=1, max=64, help="Tests run at a time.")] = 4,
    junit: Annotated[Path | None, typer.Option(
        "--junit", help="Write JUnit XML here (for CI).")] = None,
    json_out: Annotated[Path | None, typer.Option(
        "--json", help="Write the runs as JSON here.")] = None,
    api: ApiOption = None,
    api_key: ApiKeyOption = None,
) -> None:
    """Create or update the tests by name, run them and follow them live. Exit code: 0 all
    passed, 1 any failed, 2 usage or infrastructure error."""

    from runledger.client.files import load_definitions
    from runledger.client.junit import write_junit
    from runledger.client.runs import submit as submit_runs
    from runledger.client.view import LiveView, summary

    async def body(client: Any) -> int:
        definitions = load_definitions(paths)
        console = _console()
        with LiveView(console, [d.name for d in definitions]) as view:
            outcomes = await submit_runs(client, definitions, parallel=parallel,
                                         on_event=view.on_event)
        pages = {a.run_id: client.run_page(a.run_id) for o in outcomes for a in o.attempts}
        summary(console, outcomes, pages)
        if junit is not None:
            write_junit(junit, outcomes, pages)
        if json_out is not None:
            _write_json(json_out, [o.as_json(client) for o in outcomes])
        return EXIT_PASSED if all(o.passed for o in outcomes) else EXIT_FAILED

    _client_call(api, api_key, body)


@runs_app.command("list")
def runs_list(
    status: Annotated[str | None, typer.Option(
        help="Only runs in this status (queued, running, passed, failed, cancelled).")] = None,
    test: Annotated[str | None, typer.Option(help="Only runs of this test id.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=200, help="How many, newest first.")] = 20,
    json_flag: JsonFlag = False, api: ApiOption = None, api_key: ApiKeyOption = None,
) -> None:
    """The latest runs, newest first."""

    from runledger.client.view import runs_table

    async def body(client: Any) -> int:
        page = await client.runs(status=status, test_id=test, limit=limit)
        if json_flag:
            _print_json(page["items"])
        else:
            runs_table(_console(), page["items"])
        return EXIT_PASSED

    _client_call(api, api_key, body)


@runs_app.command("show")
def runs_show(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    json_flag: JsonFlag = False, api: ApiOption = None, api_key: ApiKeyOption = None,
) -> None:
    """A run with its steps, its attempts (retries) and its page."""

    from runledger.client.runs import attempts_of
    from runledger.client.view import run_detail

    async def body(client: Any) -> int:
        run = await client.run(run_id)
        attempts = [await client.run(i) if i != str(run["id"]) else run
                    for i in await attempts_of(client, str(run["id"]))]
        summaries = [{"id": str(a["id"]), "attempt": a["attempt"], "status": a["status"]}
                     for a in attempts]
        flaky = len(attempts) > 1 and attempts[-1]["status"] == "passed"
        if json_flag:
            _print_json({**run, "page": client.run_page(run_id), "attempts": summaries,
                         "flaky": flaky})
        else:
            run_detail(_console(), run, summaries, client.run_page(run_id))
        return EXIT_PASSED

    _client_call(api, api_key, body)


@runs_app.command("tail")
def runs_tail(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    json_flag: Annotated[bool, typer.Option(
        "--json", help="Print each event as a JSON line.")] = False,
    api: ApiOption = None, api_key: ApiKeyOption = None,
) -> None:
    """Follow a run live until it ends (and the retries it earns). Exit code: 0 passed,
    1 failed or cancelled, 2 infrastructure error."""

    from runledger.client.runs import follow_chain
    from runledger.client.view import LiveView

    async def body(client: Any) -> int:
        import orjson

        if json_flag:
            def on_event(_: str, event: dict[str, Any]) -> None:
                typer.echo(orjson.dumps(event).decode())

            outcome = await follow_chain(client, run_id, run_id, on_event)
        else:
            console = _console()
            with LiveView(console, [run_id]) as view:
                outcome = await follow_chain(client, run_id, run_id, view.on_event)
            console.print(f"{'flaky' if outcome.flaky else outcome.status}: "
                          f"{client.run_page(outcome.final.run_id)}")
        return EXIT_PASSED if outcome.passed else EXIT_FAILED

    _client_call(api, api_key, body)


@runs_app.command("history")
def runs_history(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    json_flag: JsonFlag = False, api: ApiOption = None, api_key: ApiKeyOption = None,
) -> None:
    """The run's events from the ledger, in order."""
    from rich.table import Table
    from rich.text import Text

    from ledger.text import escape

    async def body(client: Any) -> int:
        import orjson

        events = await client.history(run_id)
        if json_flag:
            _print_json(events)
            return EXIT_PASSED
        table = Table("version", "type", "timestamp", "data")
        for event in events:
            table.add_row(str(event["version"]), event["type"], event["timestamp"],
                          Text(escape(orjson.dumps(event["data"]).decode(), 200)))
        _console().print(table)
        return EXIT_PASSED

    _client_call(api, api_key, body)


@runs_app.command("cancel")
def runs_cancel(
    run_id: Annotated[str, typer.Argument(help="The run's id.")],
    reason: Annotated[str, typer.Option(help="Why (recorded in the run).")] =
        "cancelled from the command line",
    json_flag: JsonFlag = False, api: ApiOption = None, api_key: ApiKeyOption = None,
) -> None:
    """Cancel a queued or running run (exit 1 when it had already finished)."""
    from runledger.client.http import ClientError

    async def body(client: Any) -> int:
        try:
            answer = await client.request("POST", f"/runs/{run_id}/cancel",
                                          json={"reason": reason})
        except ClientError as exc:
            if " 409 " not in str(exc):
                raise
            typer.echo(f"not cancelled: {str(exc).split(' 409 ', 1)[1]}", err=True)
            return EXIT_FAILED
        if json_flag:
            _print_json(answer)
        else:
            typer.echo(f"cancelled run {answer['run_id']}")
        return EXIT_PASSED

    _client_call(api, api_key, body)


# ── end of client ──────────────────────────────────────────────────────────────────────


if __name__ == "__main__":
    app()
