"""The ORIGINAL TabTransformer of the project this one started from, as a small reference for speed comparisons.

This is a reimplementation written by us from the description of that
project's model (its code is not part of this repository); ``python -m benchmarks
training`` times it side by side with :class:`daily_mlops.ml.network.TabTransformer`
so that "N times faster than the original" is measured in one process, not quoted.
What it stands for:

* one ``nn.Embedding(cardinality, d_model)`` per categorical column and one
  ``nn.Linear(1, d_model)`` per numeric column, applied in Python loops over the
  columns and concatenated into ``(batch, n_columns, d_model)`` tokens;
* ``nn.TransformerEncoder`` of ``nn.TransformerEncoderLayer(d_model, nhead,
  dim_feedforward, dropout, batch_first=True, norm_first=True)``;
* the mean over tokens;
* the head ``Linear(d_model, 128) -> ReLU -> Dropout(0.3) -> Linear(128, 2)``;
* trained with Adam (lr 1e-4) and plain cross-entropy, batch 16, dropout 0.3 everywhere.

It is never used by the loop.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

#: The original training settings (batch size, learning rate) the speed goal compares against.
ORIGINAL_BATCH_SIZE = 16
ORIGINAL_LEARNING_RATE = 1e-4


class OriginalTabTransformer(nn.Module):
    """The original project's network (see the module docstring).

    Parameters
    ----------
    cardinalities : sequence of int
        Codes per categorical column.
    n_numeric : int
        Numeric columns.
    d_model, nhead, num_layers, dim_feedforward, dropout
        As the original: 32, 4, 6, 64, 0.3.
    """

    def __init__(self, *, cardinalities: Sequence[int], n_numeric: int, d_model: int = 32, nhead: int = 4,
                 num_layers: int = 6, dim_feedforward: int = 64, dropout: float = 0.3) -> None:
        super().__init__()
        self.embeddings = nn.ModuleList(nn.Embedding(int(c), d_model) for c in cardinalities)
        self.numeric = nn.ModuleList(nn.Linear(1, d_model) for _ in range(n_numeric))
        layer = nn.TransformerEncoderLayer(d_model, nhead, dim_feedforward, dropout, batch_first=True,
                                           norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, num_layers=num_layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.Linear(d_model, 128), nn.ReLU(), nn.Dropout(0.3), nn.Linear(128, 2))

    def forward(self, x_cat: Tensor, x_num: Tensor) -> Tensor:
        """Logits ``(batch, 2)`` of codes ``(batch, n_cat)`` and numeric values ``(batch, n_num)``."""
        tokens = [emb(x_cat[:, j]) for j, emb in enumerate(self.embeddings)]  # n_cat x (batch, d_model)
        tokens += [lin(x_num[:, k : k + 1]) for k, lin in enumerate(self.numeric)]  # n_num x (batch, d_model)
        x = torch.stack(tokens, dim=1)  # (batch, n_tokens, d_model)
        return self.head(self.encoder(x).mean(dim=1))  # (batch, 2)


def original_training_step(model: OriginalTabTransformer, optimizer: torch.optim.Optimizer, x_cat: Tensor,
                           x_num: Tensor, y: Tensor) -> float:
    """One original step: forward, plain cross-entropy, backward, Adam step; returns the loss."""
    loss = nn.functional.cross_entropy(model(x_cat, x_num), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())
