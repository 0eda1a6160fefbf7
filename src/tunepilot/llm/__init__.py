"""Language-model backends: the Backend protocol, LiteLLM, the embedded local model, caching."""

from tunepilot.llm._base import Backend, Completion, Message, Usage, parse_json, prompt_hash
from tunepilot.llm._cache import CachedBackend
from tunepilot.llm._factory import make_backend
from tunepilot.llm._litellm import LiteLLMBackend
from tunepilot.llm._local import LocalBackend, embedded_model_path
from tunepilot.llm._retry import RetryingBackend

__all__ = [
    "Backend",
    "CachedBackend",
    "Completion",
    "LiteLLMBackend",
    "LocalBackend",
    "Message",
    "RetryingBackend",
    "Usage",
    "embedded_model_path",
    "make_backend",
    "parse_json",
    "prompt_hash",
]
