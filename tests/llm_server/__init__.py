"""A local OpenAI-compatible server for the LLM module's tests and benchmarks."""

from .responders import citing_responder, enrichment_responder
from .server import (
    DEFAULT_CHAT_MODEL,
    DEFAULT_EMBED_MODEL,
    FakeLLMServer,
    RecordedRequest,
    Reply,
    count_tokens,
    hashed_embedding,
)

__all__ = [
    "DEFAULT_CHAT_MODEL",
    "DEFAULT_EMBED_MODEL",
    "FakeLLMServer",
    "RecordedRequest",
    "Reply",
    "citing_responder",
    "count_tokens",
    "enrichment_responder",
    "hashed_embedding",
]
