"""The ``spanledger`` command: serve, check-config, report, price, reconcile, migrate, prune,
demo, standin."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

from spanledger.version import __version__

STANDIN_PORT = 8765
"""Where ``spanledger standin`` listens unless told otherwise (the quickstart relies on it)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spanledger`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args and args[0] in _SELF_PARSING:
        return _SELF_PARSING[args[0]](args[1:])
    parser = _parser()
    options = parser.parse_args(args)
    if options.command is None:
        parser.print_help()
        return 2
    verb: Callable[[argparse.Namespace], int] = options.verb
    return verb(options)


def _serve(options: argparse.Namespace) -> int:
    from spanledger.processor import redaction
    from spanledger.processor.config import ConfigError, load_config
    from spanledger.processor.listeners import (
        ListenError,
        check_listeners,
        configured_listeners,
        exposure_problems,
    )
    from spanledger.processor.service import Service
    from spanledger.processor.sinks.ledger import LedgerError

    logging.basicConfig(
        level=options.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    redaction.install()
    try:
        config = load_config(options.config)
    except ConfigError as exc:
        print(redaction.redact(str(exc)), file=sys.stderr)
        return 2
    redaction.register(config.secrets())
    listeners = configured_listeners(config)
    exposed = exposure_problems(listeners)
    if exposed:
        print(f"spanledger serve: {exposed[0]}", file=sys.stderr)
        return 2
    try:
        check_listeners(listeners)
    except ListenError as exc:
        print(f"spanledger serve: {exc}", file=sys.stderr)
        return 2
    try:
        Service(config).run()
    except LedgerError as exc:
        print(f"spanledger serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _check_config(options: argparse.Namespace) -> int:
    from spanledger.processor.config import check_config
    from spanledger.processor.listeners import configured_listeners, exposure_problems
    from spanledger.processor.redaction import redact, register

    path = options.file
    config, problems = check_config(path)
    if config is not None:
        register(config.secrets())
        exposed = exposure_problems(configured_listeners(config))
        problems = problems + [f"{path}: {problem}" for problem in exposed]
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {redact(problem)}", file=sys.stderr)
        return 1
    assert config is not None
    for warning in config.warnings():
        print(f"{path}: warning: {warning}", file=sys.stderr)
    exporters = ", ".join(_exporter_name(exporter) for exporter in config.exporters)
    print(
        f"{path}: OK (exporters: {exporters or 'none'}; tags: {', '.join(config.tags)}; "
        f"ledger: {config.ledger.location()})"
    )
    return 0


def _exporter_name(config: object) -> str:
    """What ``config`` builds, as the registry has it: ``OtlpHttpExporter`` for otlp_http."""
    from spanledger.processor.registry import EXPORTER, registry

    kind = registry().kind_of(EXPORTER, config)
    return str(getattr(kind.factory, "__name__", kind.name))


def _report(argv: list[str]) -> int:
    from spanledger.processor.cli.report import run_report

    return run_report(argv)


def _price(argv: list[str]) -> int:
    from spanledger.processor.cli.price import run_price

    return run_price(argv)


def _reconcile(argv: list[str]) -> int:
    from spanledger.processor.cli.reconcile import run_reconcile

    return run_reconcile(argv)


def _migrate(argv: list[str]) -> int:
    from spanledger.processor.cli.ledger import run_migrate

    return run_migrate(argv)


def _prune(argv: list[str]) -> int:
    from spanledger.processor.cli.ledger import run_prune

    return run_prune(argv)


def _demo(options: argparse.Namespace) -> int:
    from spanledger.demo import run_demo

    return run_demo(keep=options.keep)


def _standin(options: argparse.Namespace) -> int:
    from spanledger.processor.listeners import reason_of
    from spanledger.standin.command import describe, serve

    try:
        return serve(
            options.host, options.port, announce=lambda llm: print(describe(llm), flush=True)
        )
    except OSError as exc:
        where = f"{options.host}:{options.port}"
        print(
            f"spanledger standin: {where}: {reason_of(exc)} (choose another with --port)",
            file=sys.stderr,
        )
        return 2


_SELF_PARSING: dict[str, Callable[[list[str]], int]] = {
    "report": _report,
    "price": _price,
    "reconcile": _reconcile,
    "migrate": _migrate,
    "prune": _prune,
}
"""Verbs that parse their own arguments."""


SERVE_EPILOG = """\
listens by default on (loopback only; each is a setting of --config FILE):
  127.0.0.1:4317   OTLP/gRPC            receivers.otlp.grpc.endpoint
  127.0.0.1:4318   OTLP/HTTP            receivers.otlp.http.endpoint
  127.0.0.1:9464   Prometheus /metrics  metrics.prometheus.endpoint
  127.0.0.1:4319   budget status        budgets.status.endpoint, only when set
and keeps its ledger in spanledger.db in the working directory (ledger.path). An endpoint
beyond loopback needs its bearer_token or insecure: true, else serve refuses to start. Above
768 of its 1024 MiB of memory it refuses data, retryably, until memory falls (memory_limiter).

Ctrl-C (SIGINT) or SIGTERM stops it: it stops accepting, prices and forwards the traces still
waiting for their rollup, drains the exporter queues within service.shutdown_timeout [10s],
then exits. A port that is busy or not permitted is one line on stderr and exit status 2.
"""
"""The defaults as ``serve --help`` states them (written out: building them imports the whole
processor, which every other verb would then pay for)."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="spanledger",
        description="Attribute LLM spend to customers, features, teams and environments.",
    )
    parser.add_argument("--version", action="version", version=f"spanledger {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser(
        "serve",
        help="run the processor (OTLP in, priced spans out)",
        description="Run the processor: receive OTLP, price LLM calls, roll cost up, forward.",
        epilog=SERVE_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--config", metavar="FILE", help="YAML configuration (defaults without)")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    serve.set_defaults(verb=_serve)

    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", metavar="FILE")
    check.set_defaults(verb=_check_config)

    # Listed for --help; their own parsers take over (see _SELF_PARSING).
    commands.add_parser("report", help="cost per tag from the ledger", add_help=False)
    commands.add_parser("price", help="price one call from the offline price table", add_help=False)
    commands.add_parser("reconcile", help="the provider's bill against the ledger", add_help=False)
    commands.add_parser("migrate", help="create or upgrade the ledger's schema", add_help=False)
    commands.add_parser("prune", help="delete ledger calls older than a date", add_help=False)

    demo = commands.add_parser("demo", help="run an example agent end to end, offline")
    demo.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the demo's ledger (DIR/spanledger.db) and price overrides; without it they "
        "live in a temporary directory removed at the end",
    )
    demo.set_defaults(verb=_demo)

    standin = commands.add_parser(
        "standin",
        help="serve a local stand-in for the OpenAI and Anthropic APIs",
        description="Serve a local stand-in for the OpenAI and Anthropic APIs (their real wire "
        "protocols, made-up replies, realistic token usage). It prints the base URLs to give "
        "the SDKs; Ctrl-C (SIGINT) or SIGTERM stops it.",
    )
    standin.add_argument("--host", default="127.0.0.1", help="address to bind [127.0.0.1]")
    standin.add_argument(
        "--port", type=int, default=STANDIN_PORT, help=f"port [{STANDIN_PORT}; 0: any free port]"
    )
    standin.set_defaults(verb=_standin)
    return parser


if __name__ == "__main__":
    sys.exit(main())
