"""Classification heads on pooled features: a linear probe (MAE's
linear-probing recipe: a BatchNorm without affine, then one linear layer)
and an MLP."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn

from perception.registry import MODELS


def _pre_norm(norm: str | None, channels: int) -> nn.Module:
    if norm is None:
        return nn.Identity()
    if norm == 'BN':  # MAE's linear probe: whitening, no affine
        return nn.BatchNorm1d(channels, affine=False, eps=1e-6)
    if norm == 'LN':
        return nn.LayerNorm(channels)
    raise ValueError(f"norm must be 'BN', 'LN' or None, got {norm!r}")


@MODELS.register_module()
class LinearClsHead(nn.Module):
    """Pooled features (B, in_channels) -> logits (B, num_classes).

    Args:
        in_channels: feature size.
        num_classes: number of classes.
        norm: 'BN' (the linear-probe recipe), 'LN' or None before the layer.
        dropout: dropout before the layer.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 norm: str | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        self.norm = _pre_norm(norm, in_channels)
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.fc = nn.Linear(in_channels, self.num_classes)
        nn.init.trunc_normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): (B, in_channels). Returns: (B, num_classes)."""
        return self.fc(self.dropout(self.norm(x)))


@MODELS.register_module()
class MLPClsHead(nn.Module):
    """Pooled features -> hidden layers (Linear, GELU, dropout) -> logits.

    Args:
        in_channels: feature size.
        num_classes: number of classes.
        hidden_channels: size of each hidden layer.
        norm: 'BN', 'LN' or None on the input.
        dropout: dropout after each hidden layer.
    """

    def __init__(self, in_channels: int, num_classes: int,
                 hidden_channels: Sequence[int] = (256, ),
                 norm: str | None = 'LN', dropout: float = 0.1) -> None:
        super().__init__()
        self.num_classes = int(num_classes)
        layers: list[nn.Module] = [_pre_norm(norm, in_channels)]
        width = in_channels
        for hidden in hidden_channels:
            layers += [nn.Linear(width, int(hidden)), nn.GELU(),
                       nn.Dropout(dropout)]
            width = int(hidden)
        layers.append(nn.Linear(width, self.num_classes))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        """Args: x (Tensor): (B, in_channels). Returns: (B, num_classes)."""
        return self.mlp(x)
