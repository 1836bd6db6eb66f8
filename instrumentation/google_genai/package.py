"""The SDK versions this instrumentation supports.

google-genai 1.8.0 is the first that reports ``thoughts_token_count`` and
``tool_use_prompt_token_count``; an older one drops them from the answer, which would leave
thinking (billed as output) and tool-use prompts (billed as input) out of the count.
"""

_instruments = ("google-genai >= 1.8.0, < 4",)
