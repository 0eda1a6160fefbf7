"""Test doubles shipped for tunepilot's own tests and for users' tests.

Each one stands in for a real part only where a fault must be injected.
"""

from tunepilot.testing._controlled_prior import ControlledPrior
from tunepilot.testing._fake_llm import FakeLLM
from tunepilot.testing._openai_server import FakeOpenAIServer
from tunepilot.testing._sinks import FailingSink, RecordingSink
from tunepilot.testing._sweep_server import SweepServer

__all__ = [
    "ControlledPrior",
    "FailingSink",
    "FakeLLM",
    "FakeOpenAIServer",
    "RecordingSink",
    "SweepServer",
]
