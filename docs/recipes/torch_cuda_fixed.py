"""PyTorch on CUDA, fixed: deterministic kernels, a fixed cuBLAS workspace, no autotuning.

- ``CUBLAS_WORKSPACE_CONFIG=:4096:8``, set before torch starts CUDA: cuBLAS then splits its
  matrix products the same way every time (without it, deterministic mode refuses them).
- ``torch.use_deterministic_algorithms(True)``: ``index_add_`` and the convolutions take
  their deterministic paths, and an op with no deterministic kernel raises instead of
  quietly differing.
- ``cudnn.benchmark = False`` and ``cudnn.deterministic = True``: one convolution algorithm,
  chosen by rule, not by a timing.
- ``nn.AdaptiveAvgPool2d(1)``, which would raise under deterministic mode, becomes
  ``x.mean(dim=(2, 3))``: the same global average, with a deterministic backward.
"""

import os

os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # before torch starts CUDA

import optuna
import torch

SEED = 0
DEVICE = "cuda"


class Net(torch.nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, width, 3, padding=1)
        self.head = torch.nn.Linear(width, 32)

    def forward(self, images: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
        features = torch.relu(self.conv(images)).mean(dim=(2, 3))  # (batch, width)
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
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False
    torch.backends.cudnn.deterministic = True
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.TPESampler(seed=SEED))
    study.optimize(objective, n_trials=3)
    print(study.best_params)
