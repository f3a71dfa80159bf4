"""Dominated-curve pruning in a plain Optuna study with two objectives: accuracy and size.

A one-hidden-layer perceptron (scikit-learn) learns the digits one epoch at a time. The
objectives are its validation accuracy (maximize) and its number of weights (minimize), which
is known before training. Optuna's ``trial.report`` and ``trial.should_prune`` raise in a study
with several objectives; this pruner stops a trial as soon as enough cheaper finished trials
were more accurate at the same epoch. Runs in a few seconds on a CPU and gives the same trials
every run.
"""

from __future__ import annotations

from pathlib import Path

import optuna
import optunahub
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier

# Once published in the registry: module = optunahub.load_module("pruners/dominated")
module = optunahub.load_local_module(
    package="pruners/dominated", registry_root=str(Path(__file__).resolve().parents[2])
)

EPOCHS = 10
N_TRIALS = 30
CLASSES = list(range(10))

digits = load_digits()  # 1,797 8x8 images, grey levels 0..16
train_x, val_x, train_y, val_y = train_test_split(
    digits.data / 16.0, digits.target, test_size=0.25, random_state=0, stratify=digits.target
)

pruner = module.DominatedCurvePruner(min_dominators=2, margin=0.01, n_warmup_steps=1)


def objective(trial: optuna.Trial) -> tuple[float, int]:
    hidden = trial.suggest_int("hidden", 2, 64, log=True)
    learning_rate = trial.suggest_float("learning_rate", 1e-4, 1e-1, log=True)
    n_params = (64 + 1) * hidden + (hidden + 1) * len(CLASSES)  # known before training
    model = MLPClassifier(
        hidden_layer_sizes=(hidden,), learning_rate_init=learning_rate, random_state=trial.number
    )
    for epoch in range(1, EPOCHS + 1):
        model.partial_fit(train_x, train_y, classes=CLASSES)  # one epoch
        accuracy = model.score(val_x, val_y)
        # Where a single-objective study would call trial.report and trial.should_prune:
        if pruner.should_prune(trial, epoch, accuracy, costs={"n_params": n_params}):
            raise optuna.TrialPruned(f"dominated at epoch {epoch}")
    return accuracy, n_params


optuna.logging.set_verbosity(optuna.logging.WARNING)
study = optuna.create_study(
    directions=["maximize", "minimize"], sampler=module.MultiObjectiveTPESampler(seed=0)
)
study.optimize(objective, n_trials=N_TRIALS)

pruned = study.get_trials(states=(optuna.trial.TrialState.PRUNED,))
epochs = sum(len(trial.intermediate_values) for trial in study.trials)
print(f"{len(pruned)} of {len(study.trials)} trials pruned; {epochs} of {N_TRIALS * EPOCHS} epochs")
print("Pareto front (accuracy, n_params):")
for trial in sorted(study.best_trials, key=lambda trial: -trial.values[0]):
    print(f"  trial {trial.number}: {trial.values[0]:.3f}, {trial.values[1]:,.0f}")
