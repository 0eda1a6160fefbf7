"""Language-model backends: the Backend protocol, LiteLLM, the embedded local model, caching."""

from tunepilot.llm._base import Backend, Completion, Message, Usage, parse_json, prompt_hash

__all__ = [
    "Backend",
    "Completion",
    "Message",
    "Usage",
    "parse_json",
    "prompt_hash",
]
