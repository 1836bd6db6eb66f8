"""The SDK versions this instrumentation supports.

cohere 5.16.0 is the first whose ``V2Client.chat_stream`` generator can be left early and closed
while it is traced: in 5.13 to 5.15 it ignores the close (``generator ignored GeneratorExit``)
once its first event has been read under our span.
"""

_instruments = ("cohere >= 5.16.0, < 8",)
