"""Serving the stand-in from the command line: ``spanledger standin`` and
``python -m spanledger.standin``."""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType

from spanledger.standin.server import StandIn


def serve(host: str, port: int, announce: Callable[[StandIn], None]) -> int:
    """Serve on ``host:port`` until SIGINT or SIGTERM; ``announce`` is called once listening.

    Raises ``OSError`` when the address cannot be bound. Returns the exit status (0).
    """
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with StandIn(host, port) as llm:
            announce(llm)
            while not stop.wait(0.5):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def describe(llm: StandIn) -> str:
    """What a person needs to point the SDKs at ``llm``, and how to stop it."""
    return (
        f"LLM stand-in listening on {llm.url} (OpenAI and Anthropic wire protocols; "
        "any API key is accepted)\n"
        f"  OpenAI client:    OPENAI_BASE_URL={llm.openai_base_url}\n"
        f"  Anthropic client: ANTHROPIC_BASE_URL={llm.anthropic_base_url}\n"
        "Stop it with Ctrl-C (SIGINT) or SIGTERM."
    )
