"""PyTorch on CUDA, broken: seeded everywhere, yet the GPU adds in another order each run.

The sampler and torch are seeded (the weights repeat), but three GPU habits are not
deterministic:
- ``index_add_`` (a scatter-sum, as message passing in a graph network does) adds with
  atomics, in whatever order the GPU's threads get there: 2**18 float32 values into 32 bins,
  a few low bits differ almost every call, and every trial makes 10 such calls;
- ``torch.backends.cudnn.benchmark = True`` times several convolution algorithms on the first
  batch and keeps the fastest, and different algorithms round differently;
- ``nn.AdaptiveAvgPool2d`` has no deterministic CUDA kernel for its backward pass.
"""

import optuna
import torch

SEED = 0
DEVICE = "cuda"


class Net(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, width, 3, padding=1)
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.head = torch.nn.Linear(width, 32)

    def forward(self, images: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        features = self.pool(torch.relu(self.conv(images))).flatten(1)  # (batch, width)
        messages = self.head(features).repeat(nodes.numel() // len(features), 1)
        totals = torch.zeros(32, 32, device=DEVICE).index_add_(0, nodes, messages)
        return (totals / 2**13 - 1).square().mean()  # each bin holds about 2**13 messages


def objective(trial: optuna.Trial) -> float:
    torch.manual_seed(SEED + trial.number)
    width = trial.suggest_int("width", 4, 16)
    lr = trial.suggest_float("lr", 1e-4, 1e-2, log=True)
    model = Net(width).to(DEVICE)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    images = torch.randn(64, 1, 28, 28, device=DEVICE)
    nodes = torch.randint(0, 32, (2**18,), device=DEVICE)
    for _ in range(10):
        optimizer.zero_grad()
        loss = model(images, nodes)
        loss.backward()
        optimizer.step()
    return loss.item()


if __name__ == "__main__":
    torch.backends.cudnn.benchmark = True
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=3)
    print(study.best_params)
