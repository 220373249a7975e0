"""PyTorch on the CPU, fixed: torch seeded per trial, one thread count, deterministic kernels.

- ``torch.manual_seed(SEED + trial.number)`` at the top of each trial: the weights depend on
  the trial alone, not on how many numbers earlier trials drew.
- ``torch.set_num_threads(1)``: a float sum split over threads is added in another order
  when the thread count changes (another machine, another ``OMP_NUM_THREADS``).
- ``torch.use_deterministic_algorithms(True)``: an op with no deterministic kernel raises
  instead of quietly differing.
"""

import optuna
import torch

SEED = 0


def objective(trial: optuna.Trial) -> float:
    torch.manual_seed(SEED + trial.number)
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
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=5)
    print(study.best_params)
