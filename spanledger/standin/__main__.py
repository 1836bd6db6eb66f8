"""``python -m spanledger.standin --port N``: serve the stand-in until SIGINT or SIGTERM.

It prints its base URL alone on the first line, for scripts; ``spanledger standin`` is the same
server with directions for people.
"""

from __future__ import annotations

import argparse

from spanledger.standin.command import serve


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spanledger.standin",
        description="Serve a local stand-in for the OpenAI, Anthropic, Gemini and Bedrock APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind [127.0.0.1]")
    parser.add_argument("--port", type=int, default=0, help="port to bind [0: any free port]")
    args = parser.parse_args(argv)
    return serve(args.host, args.port, announce=lambda llm: print(llm.url, flush=True))


if __name__ == "__main__":
    raise SystemExit(main())
