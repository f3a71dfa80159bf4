"""The vocabulary of nin-search: every named choice, defined once.

Config derives the values it accepts from these tables; spec, layers, model, export and
sampling look their choices up here. No torch, no Optuna: this module sits left of config.
"""

from __future__ import annotations

# --- architecture and training choices (stage kinds, pools, heads, activations, optimizers) ---

# --- samplers and pruners ---
