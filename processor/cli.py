"""The ``spanledger`` command: serve, check-config, report, price, demo, migrate, prune."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from spanledger.version import __version__


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``spanledger`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(
        prog="spanledger",
        description="Attribute LLM spend to customers, features, teams and environments.",
    )
    parser.add_argument("--version", action="version", version=f"spanledger {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser("serve", help="run the processor (OTLP in, priced spans out)")
    serve.add_argument("--config", metavar="FILE", help="YAML configuration (defaults without)")
    serve.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    check = commands.add_parser("check-config", help="validate a configuration file")
    check.add_argument("file", metavar="FILE")
    commands.add_parser("report", help="cost per tag from the ledger", add_help=False)
    commands.add_parser("price", help="price one call from the offline price table", add_help=False)
    commands.add_parser("migrate", help="create or upgrade the ledger's schema", add_help=False)
    commands.add_parser("prune", help="delete ledger calls older than a date", add_help=False)
    demo = commands.add_parser("demo", help="run an example agent end to end, offline")
    demo.add_argument("--keep", metavar="DIR", help="keep the demo's ledger and config in DIR")

    # report, price, migrate and prune parse their own arguments.
    if args and args[0] in ("report", "price", "migrate", "prune"):
        return _delegate(args[0], args[1:])
    options = parser.parse_args(args)
    if options.command == "serve":
        return _serve(options.config, options.log_level)
    if options.command == "check-config":
        return _check(options.file)
    if options.command == "demo":
        from spanledger.demo import run_demo

        return run_demo(keep=options.keep)
    parser.print_help()
    return 2


def _delegate(command: str, argv: list[str]) -> int:
    if command == "report":
        from spanledger.processor.report import run_report

        return run_report(argv)
    if command in ("migrate", "prune"):
        from spanledger.processor.ledger.commands import run_migrate, run_prune

        return (run_migrate if command == "migrate" else run_prune)(argv)
    from spanledger.processor.pricing.cli import run_price

    return run_price(argv)


def _serve(path: str | None, level: str) -> int:
    from spanledger.processor.config import ConfigError, load_config
    from spanledger.processor.ledger import LedgerError
    from spanledger.processor.service import Service

    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    try:
        Service(config).run()
    except LedgerError as exc:
        print(f"spanledger serve: {exc}", file=sys.stderr)
        return 2
    return 0


def _check(path: str) -> int:
    from spanledger.processor.config import check_config

    config, problems = check_config(path)
    if problems:
        print(f"{len(problems)} problem(s):", file=sys.stderr)
        for problem in problems:
            print(f"  {problem}", file=sys.stderr)
        return 1
    assert config is not None
    exporters = ", ".join(type(e).__name__.removesuffix("Config") for e in config.exporters)
    print(
        f"{path}: OK (exporters: {exporters or 'none'}; tags: {', '.join(config.tags)}; "
        f"ledger: {config.ledger.location()})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
