"""``python -m spanledger.standin --port N``: serve the stand-in until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from spanledger.standin.server import StandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m spanledger.standin",
        description="Serve a local stand-in for the OpenAI, Anthropic, Gemini and Bedrock APIs.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind [127.0.0.1]")
    parser.add_argument("--port", type=int, default=0, help="port to bind [0: any free port]")
    args = parser.parse_args(argv)

    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with StandIn(args.host, args.port) as llm:
            print(llm.url, flush=True)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
