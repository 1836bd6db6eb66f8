"""The SDK versions this instrumentation supports.

botocore 1.37.24 is the first whose Bedrock runtime model has Converse's cache counts
(``cacheReadInputTokens``, ``cacheWriteInputTokens``); an older one drops them from the answer,
which would leave cached input out of the count.
"""

_instruments = ("botocore >= 1.37.24, < 2",)
