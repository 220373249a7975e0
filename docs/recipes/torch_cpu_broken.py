"""PyTorch on the CPU, broken: the sampler is seeded, torch is not.

Each trial builds a small network and trains it a few steps. The weights start from torch's
global generator, which nothing seeds, so every run starts each trial from other weights and
ends with other losses (two float32 losses agreeing by chance: about 1 in 2**23 per trial).
"""

import optuna
import torch

SEED = 0


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    hidden = trial.suggest_int("hidden", 4, 16)
    x = torch.linspace(-1, 1, 64).unsqueeze(1)
    y = torch.sin(3 * x)
    model = torch.nn.Sequential(
        torch.nn.Linear(1, hidden), torch.nn.Tanh(), torch.nn.Linear(hidden, 1)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    for _ in range(20):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    return loss.item()


if __name__ == "__main__":
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=5)
    print(study.best_params)
