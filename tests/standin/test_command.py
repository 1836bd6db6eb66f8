"""`spanledger standin`: the stand-in for one's own app, with the base URLs to give the SDKs."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys

import anthropic
import openai

COMMAND = [sys.executable, "-m", "spanledger.processor.cli", "standin"]


def test_prints_base_urls_the_real_sdks_work_with_and_stops_on_sigterm() -> None:
    process = subprocess.Popen(
        [*COMMAND, "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(4)]
        text = "".join(lines)
        assert "Stop it with Ctrl-C (SIGINT) or SIGTERM." in text
        openai_url = re.search(r"OPENAI_BASE_URL=(\S+)", text)
        anthropic_url = re.search(r"ANTHROPIC_BASE_URL=(\S+)", text)
        assert openai_url and anthropic_url, text
        assert openai_url.group(1).endswith("/v1")

        client = openai.OpenAI(base_url=openai_url.group(1), api_key="any", max_retries=0)
        reply = client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}]
        )
        assert reply.usage is not None and reply.usage.prompt_tokens > 0
        claude = anthropic.Anthropic(base_url=anthropic_url.group(1), api_key="any", max_retries=0)
        message = claude.messages.create(
            model="claude-sonnet-4-5", max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        assert message.usage.output_tokens > 0

        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.stderr is not None and process.stderr.read() == ""


def test_a_busy_port_is_one_line_and_exit_status_2() -> None:
    with socket.socket() as other:
        other.bind(("127.0.0.1", 0))
        other.listen()
        port = other.getsockname()[1]
        result = subprocess.run(
            [*COMMAND, "--port", str(port)], check=False, capture_output=True, text=True, timeout=30
        )
    assert result.returncode == 2
    assert result.stderr == (
        f"spanledger standin: 127.0.0.1:{port}: address already in use "
        "(choose another with --port)\n"
    )


def test_help_says_how_to_stop_it() -> None:
    result = subprocess.run(
        [*COMMAND, "--help"], check=False, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "SIGTERM stops it" in " ".join(result.stdout.split())
    assert "[8765; 0: any free port]" in result.stdout
