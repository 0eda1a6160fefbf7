"""tunepilot: LLM-guided hyperparameter optimization on top of Optuna."""
