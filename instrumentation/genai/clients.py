"""The patch points of an SDK whose clients send every call through one base-client ``request``.

The openai and anthropic SDKs are generated alike: every API call of every resource (``create``,
``stream``, ``parse``, ``with_raw_response``, ``with_streaming_response``) goes through
``SyncAPIClient.request`` / ``AsyncAPIClient.request`` of the SDK's ``_base_client`` module.
Patching that method, unshadowably (see ``patching``), gives each call its span and its budget
check exactly once, whatever else patched the SDK's client classes.
"""

from __future__ import annotations

from .call import Describe, Settle, async_call_wrapper, call_wrapper
from .instrumentor import Patch


def base_client_request_patches(sdk: str, describe: Describe, settle: Settle) -> tuple[Patch, ...]:
    """The sync and async ``request`` patches of the SDK whose top module is ``sdk``."""
    module = f"{sdk}._base_client"
    return (
        Patch(module, "SyncAPIClient.request", call_wrapper(describe, settle), unshadowable=True),
        Patch(
            module,
            "AsyncAPIClient.request",
            async_call_wrapper(describe, settle),
            unshadowable=True,
        ),
    )
