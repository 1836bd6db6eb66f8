"""``python -m spanledger.processor.cli``."""

from spanledger.processor.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
