"""Samplers: the LLM-guided Optuna sampler and its accounting."""

from tunepilot.samplers._llm import LLMSampler
from tunepilot.samplers._sources import StudyRef
from tunepilot.samplers._stats import LLMStats

__all__ = ["LLMSampler", "LLMStats", "StudyRef"]
