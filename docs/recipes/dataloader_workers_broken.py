"""DataLoader workers, broken: NumPy is seeded, the loader is not.

``shuffle=True`` draws its order, and each worker process its seed, from torch's global
generator, which ``np.random.seed`` does not touch and nothing here seeds. The dataset's own
NumPy Generator is seeded, but every worker gets a copy of it, so which noise an item gets
depends on which worker loads it, in what order: the shuffle's. Every run trains on other
batches: the losses differ (a float64 sum over other numbers; agreeing by chance is about
1 in 2**52 per trial).
"""

import numpy as np
import optuna
import torch
from torch.utils.data import DataLoader, Dataset

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


def objective(trial: optuna.Trial) -> float:
    lr = trial.suggest_float("lr", 1e-3, 1e-1, log=True)
    model = torch.nn.Linear(1, 1)
    torch.nn.init.zeros_(model.weight)
    torch.nn.init.zeros_(model.bias)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    loader = DataLoader(NoisySine(), batch_size=8, shuffle=True, num_workers=2)
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
