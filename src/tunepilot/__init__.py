"""tunepilot: LLM-guided hyperparameter optimization on top of Optuna.

The public API; everything else lives in subpackages (``tunepilot.space``,
``tunepilot.llm``, ``tunepilot.samplers``, ``tunepilot.runner``, ``tunepilot.testing``).
"""

from tunepilot.exceptions import TunepilotError
from tunepilot.samplers import LLMSampler, LLMStats
from tunepilot.space import SearchSpace

__version__ = "0.1.0"

__all__ = ["LLMSampler", "LLMStats", "SearchSpace", "TunepilotError", "__version__"]
