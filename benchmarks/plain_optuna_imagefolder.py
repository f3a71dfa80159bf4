"""The search a user writes without nin-search: plain Optuna + torchvision ImageFolder/DataLoader.

This is the other side of ``benchmarks/search_images.py``, written the way the PyTorch and
optuna-examples tutorials teach it (``pytorch/pytorch_simple.py``): an ``ImageFolder`` with
per-sample transforms, a stratified 80/20 split (scikit-learn's ``train_test_split``),
``DataLoader`` workers, a model class built from ``trial.suggest_*`` calls, ``trial.report`` +
``should_prune`` every epoch, TPE and the median pruner. It searches the same space as
``studies/cifar10-mini-quick.toml`` (per stage plain conv or MLP conv, kernel, widths, 1x1 depth
and widths, pooling; dropout, head; optimizer, learning rate,
weight decay, batch size, label smoothing) with the same epochs and image size. It imports nothing
from nin_search.

    .venv/bin/python benchmarks/plain_optuna_imagefolder.py --root ../shared/data/cifar10-mini \
        --timeout 300 --storage sqlite:///plain.db
"""

from __future__ import annotations

import argparse
import os

import optuna
import torch
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, Subset
from torchvision import datasets, transforms

IMAGE_SIZE = 16
EPOCHS = 4
NUM_STAGES = 3
MEAN, STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)


def conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> list[nn.Module]:
    return [
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    ]


def build_model(trial: optuna.Trial, num_classes: int) -> nn.Module:
    layers: list[nn.Module] = []
    channels = 3
    for stage in range(NUM_STAGES):
        kind = trial.suggest_categorical(f"s{stage}_type", ["plain", "mlp"])
        kernel = trial.suggest_categorical(f"s{stage}_kernel", [3, 5])
        width = trial.suggest_categorical(f"s{stage}_width", [16, 32])
        layers += conv_bn_relu(channels, width, kernel)
        channels = width
        if kind == "mlp":
            for depth in range(trial.suggest_int(f"s{stage}_mlp_depth", 1, 2)):
                mlp_width = trial.suggest_categorical(f"s{stage}_mlp_width{depth}", [16, 32])
                layers += conv_bn_relu(channels, mlp_width, 1)
                channels = mlp_width
        if stage < NUM_STAGES - 1:
            pool = trial.suggest_categorical(f"s{stage}_pool", ["max", "avg"])
            pool_class = nn.MaxPool2d if pool == "max" else nn.AvgPool2d
            layers.append(pool_class(kernel_size=3, stride=2, padding=1))
    layers.append(nn.Dropout(trial.suggest_float("dropout", 0.0, 0.3)))
    if trial.suggest_categorical("head", ["nin", "linear"]) == "nin":
        layers += [nn.Conv2d(channels, num_classes, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    else:
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(channels, num_classes)]
    return nn.Sequential(*layers)


def split(targets: list[int]) -> tuple[list[int], list[int]]:
    """Train / validation indices: stratified 80/20, seed 0 (the split nin-search makes too)."""
    indices = list(range(len(targets)))
    return train_test_split(indices, test_size=0.2, stratify=targets, random_state=0)


def make_datasets(root: str) -> tuple[Subset, Subset]:
    """The train folder, split 80/20 once; augmentation on the training side only."""
    train_transform = transforms.Compose(
        [
            transforms.Resize(IMAGE_SIZE),
            transforms.RandomCrop(IMAGE_SIZE, padding=2),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            transforms.Normalize(MEAN, STD),
        ]
    )
    eval_transform = transforms.Compose(
        [transforms.Resize(IMAGE_SIZE), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    )
    train_folder = datasets.ImageFolder(os.path.join(root, "train"), train_transform)
    val_folder = datasets.ImageFolder(os.path.join(root, "train"), eval_transform)
    train_index, val_index = split(train_folder.targets)
    return Subset(train_folder, train_index), Subset(val_folder, val_index)


def objective(trial: optuna.Trial, data: tuple[Subset, Subset], workers: int) -> float:
    model = build_model(trial, num_classes=10)
    name = trial.suggest_categorical("optimizer", ["sgd", "adamw"])
    lr = trial.suggest_float("learning_rate", 1e-3, 0.2, log=True)
    weight_decay = trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True)
    batch_size = trial.suggest_categorical("batch_size", [64, 128])
    smoothing = trial.suggest_categorical("label_smoothing", [0.0, 0.1])
    if name == "sgd":
        optimizer = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=weight_decay
        )
    else:
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    options = {"num_workers": workers, "persistent_workers": workers > 0}
    train_loader = DataLoader(data[0], batch_size, shuffle=True, drop_last=True, **options)
    val_loader = DataLoader(data[1], batch_size=1024, **options)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=EPOCHS * len(train_loader)
    )
    criterion = nn.CrossEntropyLoss(label_smoothing=smoothing)
    accuracy = 0.0
    for epoch in range(EPOCHS):
        model.train()
        for images, labels in train_loader:
            optimizer.zero_grad()
            criterion(model(images), labels).backward()
            optimizer.step()
            scheduler.step()
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for images, labels in val_loader:
                correct += (model(images).argmax(1) == labels).sum().item()
                total += len(labels)
        accuracy = correct / total
        trial.report(accuracy, epoch)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return accuracy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", required=True, help="ImageFolder root with a train/ folder")
    parser.add_argument("--timeout", type=float, required=True, help="seconds of search")
    parser.add_argument("--storage", default=None, help="Optuna storage URL")
    parser.add_argument("--study-name", default="plain-optuna")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2, help="DataLoader worker processes")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    study = optuna.create_study(
        study_name=args.study_name,
        storage=args.storage,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=args.seed),
        pruner=optuna.pruners.MedianPruner(),
        load_if_exists=True,
    )
    data = make_datasets(args.root)
    study.optimize(lambda trial: objective(trial, data, args.workers), timeout=args.timeout)
    print(f"best accuracy {study.best_value:.4f} after {len(study.trials)} trials")


if __name__ == "__main__":
    main()
