"""okap: a self-hosted vault for AI provider API keys that speaks OKAP."""

__version__ = "0.1.0"
