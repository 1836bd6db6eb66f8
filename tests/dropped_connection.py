"""What the SDKs raise when the server drops the connection in the middle of a streamed body.

The class differs between releases: anthropic up to 2.16 and openai 3.0 let the transport's
``httpx2.RemoteProtocolError`` through, while anthropic 2.17 and openai 3.63 raise their own
``APIConnectionError`` from it. The tests accept any of these and check the cause instead: a
``RemoteProtocolError`` must be the error or among those it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import anthropic
import httpx2
import openai
import pytest

AS_RAISED = (httpx2.RemoteProtocolError, anthropic.APIConnectionError, openai.APIConnectionError)


def chain(error: BaseException) -> Iterator[BaseException]:
    """``error``, then the exception it was raised from (or while handling), and so on."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


@contextmanager
def raises_dropped_connection(match: str | None = None) -> Iterator[pytest.ExceptionInfo]:
    """Like ``pytest.raises``, for a dropped connection as the SDK reports it; ``match`` is
    searched for in the transport error's message."""
    with pytest.raises(AS_RAISED) as caught:
        yield caught
    dropped = [e for e in chain(caught.value) if isinstance(e, httpx2.RemoteProtocolError)]
    assert dropped, f"{caught.value!r} was not caused by a dropped connection"
    if match is not None:
        assert re.search(match, str(dropped[0])), f"{match!r} not in {str(dropped[0])!r}"
