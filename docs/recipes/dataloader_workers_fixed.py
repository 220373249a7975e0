"""DataLoader workers, fixed: a seeded ``generator``, and a ``worker_init_fn`` that derives
each worker's own seed from it.

- ``generator=torch.Generator().manual_seed(SEED + trial.number)``: the shuffle order and every
  worker's base seed come from it, so they repeat, trial by trial. This is the fix that makes
  the runs agree.
- ``worker_init_fn``: each worker reseeds its copy of the dataset's Generator from its own
  worker seed (``get_worker_info().seed``, which the loader's generator decides), so the two
  workers stop drawing the same noise, and the runs still agree. Reseeding there from the OS
  (``np.random.default_rng()``) would break them again.
"""

import numpy as np
import optuna
import torch
from torch.utils.data import DataLoader, Dataset, get_worker_info

SEED = 0


class NoisySine(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    """64 points of sin(3x), each drawn with fresh input noise (a stand-in for augmentation)."""

    def __init__(self) -> None:
        self.x = np.linspace(-1, 1, 64, dtype=np.float32)
        self.rng = np.random.default_rng(SEED)

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i] + np.float32(self.rng.normal(0, 0.05))
        return torch.tensor([x]), torch.tensor([np.sin(3 * x)])


def seed_worker(worker_id: int) -> None:
    info = get_worker_info()
    assert info is not None
    info.dataset.rng = np.random.default_rng(info.seed)  # type: ignore[attr-defined]


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    model = torch.nn.Linear(1, 1)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(
        NoisySine(),
        batch_size=8,
        shuffle=True,
        num_workers=2,
        worker_init_fn=seed_worker,
        generator=torch.Generator().manual_seed(SEED + trial.number),
    )
    total = 0.0
    for x, y in loader:
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
        total += loss.item()
    return total


if __name__ == "__main__":
    np.random.seed(SEED)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=3)
    print(study.best_params)
