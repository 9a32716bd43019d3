"""The LLM commands need the local OpenAI-compatible server of the LLM tests."""

from tests.llm.conftest import llm_server  # noqa: F401
