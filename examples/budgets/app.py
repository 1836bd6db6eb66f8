"""Calls an LLM for customer acme until its budget stops the calls.

Run under ``opentelemetry-instrument`` with ``SPANLEDGER_BUDGET_ENFORCE=1`` and
``SPANLEDGER_BUDGET_ENDPOINT`` pointing at the processor (``run.py`` does that). Between calls it
waits until the processor has counted the previous one (a trace is counted once it is complete),
so the example stops at the same call on every run.
"""

from __future__ import annotations

import json
import os
import time
import urllib.request

import openai

import spanledger


def counted_spend() -> str:
    url = os.environ["SPANLEDGER_BUDGET_ENDPOINT"] + "/v1/budget/status"
    headers = {"Authorization": f"Bearer {os.environ['SPANLEDGER_BUDGET_TOKEN']}"}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as answer:
        rows = json.loads(answer.read())["budgets"]
    return next(r["spend_usd"] for r in rows if r["budget"] == "acme-monthly")


def wait_until_counted(before: str) -> None:
    deadline = time.monotonic() + 20
    while counted_spend() == before and time.monotonic() < deadline:
        time.sleep(0.1)


def main() -> None:
    with openai.OpenAI(max_retries=0) as client, spanledger.tags(customer="acme"):
        for number in range(1, 11):
            spend = counted_spend()
            try:
                client.chat.completions.create(
                    model="gpt-4o-mini",
                    messages=[{"role": "user", "content": "Summarise ticket 4711."}],
                )
            except spanledger.BudgetExceededError as stopped:
                print(f"call {number}: stopped before the vendor: {stopped}")
                print(f"BLOCKED {number}")
                return
            print(f"call {number}: answered")
            wait_until_counted(spend)
    print("NEVER BLOCKED")


if __name__ == "__main__":
    main()
