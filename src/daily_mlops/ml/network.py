"""The TabTransformer network for binary credit-default prediction.

Source: Huang, Khetan, Cvitkovic and Karnin, "TabTransformer: Tabular Data
Modeling Using Contextual Embeddings", 2020 (arXiv:2012.06678). As in the
FT-Transformer variant (Gorishniy et al., "Revisiting Deep Learning Models for
Tabular Data", 2021, arXiv:2106.11959) numeric features are embedded as tokens
too, so every feature, categorical or numeric, is one token the transformer
attends over. A learned ``[MASK]`` token replaces the value embedding of masked
features; it is used by the contrastive masking augmentation in
:mod:`daily_mlops.ml.training` (SCARF, Bahri et al. 2021; SAINT, Somepalli et al. 2021).

The module is independent of preprocessing: it takes integer category codes
(``0`` means unknown or missing) and already scaled numeric features.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import Tensor, nn

__all__ = ["TabTransformer"]


class TabTransformer(nn.Module):
    """TabTransformer over categorical and numeric feature tokens.

    Parameters
    ----------
    cardinalities : sequence of int
        Number of codes of each categorical column, the unknown code ``0``
        included, so column ``j`` takes values in ``[0, cardinalities[j])``.
        May be empty (no categorical columns).
    n_numeric : int
        Number of numeric columns (``>= 0``).
    d_model : int, default 32
        Width of every token embedding; must be divisible by ``nhead``.
    nhead : int, default 4
        Attention heads per encoder layer.
    num_layers : int, default 6
        Transformer encoder layers (pre-norm, ``norm_first=True``).
    dim_feedforward : int, default 64
        Hidden width of each encoder layer's feed-forward block and of the
        classification head.
    dropout : float, default 0.3
        Dropout probability in ``[0, 1)`` in the encoder and the head.
    n_classes : int, default 2
        Number of output logits.
    projection_dim : int, default 32
        Output width of the contrastive projection head (SimCLR, Chen et al. 2020).

    Raises
    ------
    ValueError
        When there are no features at all, a cardinality is below 1,
        ``n_numeric`` is negative, ``d_model`` is not divisible by ``nhead``
        or another size is out of range.

    Notes
    -----
    Categorical codes of all columns share ONE ``nn.Embedding`` over the summed
    cardinalities; a registered buffer of per-column offsets maps column ``j``'s
    code ``c`` to row ``offsets[j] + c``. Numeric feature ``k`` with value
    ``x`` becomes the token ``weight[k] * x + bias[k]``, computed for all
    features in one broadcast. A learned column embedding is added to every
    token so the encoder knows which feature a token (or a ``[MASK]``) stands
    for. Tokens are mean-pooled after the encoder.
    """

    def __init__(
        self,
        *,
        cardinalities: Sequence[int],
        n_numeric: int,
        d_model: int = 32,
        nhead: int = 4,
        num_layers: int = 6,
        dim_feedforward: int = 64,
        dropout: float = 0.3,
        n_classes: int = 2,
        projection_dim: int = 32,
    ) -> None:
        super().__init__()
        cardinalities = [int(c) for c in cardinalities]
        n_numeric = int(n_numeric)
        if any(c < 1 for c in cardinalities):
            raise ValueError(
                f"every cardinality must be >= 1 (code 0 is 'unknown'), got {cardinalities}"
            )
        if n_numeric < 0:
            raise ValueError(f"n_numeric must be >= 0, got {n_numeric}")
        if len(cardinalities) + n_numeric == 0:
            raise ValueError("the model needs at least one categorical or numeric feature, got none")
        if d_model < 1 or nhead < 1 or d_model % nhead:
            raise ValueError(f"d_model={d_model} must be a positive multiple of nhead={nhead}")
        if num_layers < 1 or dim_feedforward < 1 or projection_dim < 1 or n_classes < 2:
            raise ValueError(
                "num_layers, dim_feedforward and projection_dim must be >= 1 and n_classes >= 2, got "
                f"num_layers={num_layers}, dim_feedforward={dim_feedforward}, "
                f"projection_dim={projection_dim}, n_classes={n_classes}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")

        self._cardinalities = cardinalities
        self.n_categorical = len(cardinalities)
        self.n_numeric = n_numeric
        self.n_tokens = self.n_categorical + n_numeric
        self.d_model = int(d_model)
        self.nhead = int(nhead)
        self.num_layers = int(num_layers)
        self.dim_feedforward = int(dim_feedforward)
        self.dropout = float(dropout)
        self.n_classes = int(n_classes)
        self.projection_dim = int(projection_dim)

        # Per-column offsets into the shared categorical embedding table.
        offsets = torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("category_offsets", offsets[: self.n_categorical], persistent=True)  # (n_cat,)
        self.register_buffer(
            "category_cardinalities", torch.tensor(cardinalities, dtype=torch.long), persistent=True
        )  # (n_cat,)
        # An empty table is not allowed by nn.Embedding; one unused row keeps n_cat = 0 simple.
        self.category_embedding = nn.Embedding(max(sum(cardinalities), 1), d_model)

        self.numeric_weight = nn.Parameter(torch.randn(n_numeric, d_model) * 0.02)  # (n_num, d_model)
        self.numeric_bias = nn.Parameter(torch.zeros(n_numeric, d_model))  # (n_num, d_model)

        self.column_embedding = nn.Parameter(torch.randn(self.n_tokens, d_model) * 0.02)  # (n_tokens, d_model)
        self.mask_token = nn.Parameter(torch.randn(d_model) * 0.02)  # (d_model,)

        layer = nn.TransformerEncoderLayer(
            d_model=d_model,
            nhead=nhead,
            dim_feedforward=dim_feedforward,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = nn.Sequential(
            nn.Linear(d_model, dim_feedforward),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(dim_feedforward, n_classes),
        )
        self.projection = nn.Sequential(
            nn.Linear(d_model, d_model),
            nn.ReLU(),
            nn.Linear(d_model, projection_dim),
        )

    # ------------------------------------------------------------------ config
    @property
    def cardinalities(self) -> list[int]:
        """Codes per categorical column (``0`` = unknown included)."""
        return list(self._cardinalities)

    @property
    def config(self) -> dict[str, Any]:
        """JSON-able constructor arguments; ``from_config(config)`` rebuilds the architecture."""
        return {
            "cardinalities": list(self._cardinalities),
            "n_numeric": self.n_numeric,
            "d_model": self.d_model,
            "nhead": self.nhead,
            "num_layers": self.num_layers,
            "dim_feedforward": self.dim_feedforward,
            "dropout": self.dropout,
            "n_classes": self.n_classes,
            "projection_dim": self.projection_dim,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> "TabTransformer":
        """Build a freshly initialised network from :attr:`config`.

        Parameters
        ----------
        config : mapping
            The dict returned by :attr:`config` (e.g. read back from MongoDB).

        Returns
        -------
        TabTransformer
            Same architecture, random weights; load a ``state_dict`` next.

        Raises
        ------
        ValueError
            When a key is missing or unknown, or a value is out of range.
        """
        expected = {
            "cardinalities", "n_numeric", "d_model", "nhead", "num_layers",
            "dim_feedforward", "dropout", "n_classes", "projection_dim",
        }
        keys = set(config)
        missing, unknown = sorted(expected - keys), sorted(keys - expected)
        if missing or unknown:
            raise ValueError(
                f"TabTransformer config keys differ: missing {missing}, unknown {unknown}; "
                "use the dict stored from model.config"
            )
        return cls(**dict(config))

    @property
    def n_parameters(self) -> int:
        """Number of trainable scalar parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ----------------------------------------------------------------- forward
    def _tokens(self, x_cat: Tensor, x_num: Tensor) -> Tensor:
        """Value embeddings of every feature, ``(batch, n_tokens, d_model)``."""
        assert x_cat.dim() == 2 and x_cat.shape[1] == self.n_categorical, (
            f"x_cat must have shape (batch, {self.n_categorical}) (one code per categorical column), "
            f"got {tuple(x_cat.shape)}"
        )
        assert x_num.dim() == 2 and x_num.shape[1] == self.n_numeric, (
            f"x_num must have shape (batch, {self.n_numeric}) (one value per numeric column), "
            f"got {tuple(x_num.shape)}"
        )
        assert x_cat.shape[0] == x_num.shape[0], (
            f"x_cat and x_num must have the same number of rows, got {x_cat.shape[0]} and {x_num.shape[0]}"
        )
        batch = x_cat.shape[0]
        parts = []
        if self.n_categorical:
            assert not x_cat.is_floating_point(), f"x_cat must hold integer codes, got dtype {x_cat.dtype}"
            if x_cat.numel() and (
                bool((x_cat < 0).any()) or bool((x_cat >= self.category_cardinalities).any())
            ):
                bad = torch.nonzero((x_cat < 0) | (x_cat >= self.category_cardinalities))[0]
                column = int(bad[1])
                raise ValueError(
                    f"categorical column {column} holds code {int(x_cat[bad[0], column])}, outside "
                    f"[0, {self._cardinalities[column]}); map unseen categories to code 0"
                )
            codes = x_cat.long() + self.category_offsets  # (batch, n_cat)
            parts.append(self.category_embedding(codes))  # (batch, n_cat, d_model)
        if self.n_numeric:
            x_num = x_num.to(self.numeric_weight.dtype)
            parts.append(x_num.unsqueeze(-1) * self.numeric_weight + self.numeric_bias)  # (batch, n_num, d_model)
        tokens = torch.cat(parts, dim=1)  # (batch, n_tokens, d_model)
        assert tokens.shape == (batch, self.n_tokens, self.d_model)
        return tokens

    def encode(self, x_cat: Tensor, x_num: Tensor, mask: Tensor | None = None) -> Tensor:
        """Pooled representation of each row.

        Parameters
        ----------
        x_cat : LongTensor of shape (batch, n_cat)
            Category codes in ``[0, cardinality)``; ``0`` = unknown/missing.
        x_num : FloatTensor of shape (batch, n_num)
            Scaled numeric features.
        mask : BoolTensor of shape (batch, n_tokens), optional
            ``True`` replaces that feature's value embedding with the learned
            ``[MASK]`` token (tokens are ordered categorical first, then numeric).

        Returns
        -------
        Tensor of shape (batch, d_model)
            Mean over the encoded tokens.

        Raises
        ------
        AssertionError
            When a shape does not match the network (message names it).
        ValueError
            When a category code is outside its column's range.
        """
        tokens = self._tokens(x_cat, x_num)  # (batch, n_tokens, d_model)
        if mask is not None:
            assert mask.shape == tokens.shape[:2], (
                f"mask must have shape (batch, n_tokens) = {tuple(tokens.shape[:2])}, got {tuple(mask.shape)}"
            )
            tokens = torch.where(mask.bool().unsqueeze(-1), self.mask_token, tokens)  # (batch, n_tokens, d_model)
        tokens = tokens + self.column_embedding  # (batch, n_tokens, d_model)
        encoded = self.encoder(tokens)  # (batch, n_tokens, d_model)
        return encoded.mean(dim=1)  # (batch, d_model)

    def forward(self, x_cat: Tensor, x_num: Tensor) -> Tensor:
        """Class logits.

        Parameters
        ----------
        x_cat : LongTensor of shape (batch, n_cat)
        x_num : FloatTensor of shape (batch, n_num)

        Returns
        -------
        Tensor of shape (batch, n_classes)
            Unnormalised logits; ``softmax(-1)[:, 1]`` is the default probability.

        Raises
        ------
        AssertionError, ValueError
            As :meth:`encode`.
        """
        logits = self.head(self.encode(x_cat, x_num))  # (batch, n_classes)
        return logits

    def project(self, h: Tensor) -> Tensor:
        """Contrastive projection of pooled representations (SimCLR, Chen et al. 2020).

        Parameters
        ----------
        h : Tensor of shape (batch, d_model)
            Output of :meth:`encode`.

        Returns
        -------
        Tensor of shape (batch, projection_dim)
        """
        assert h.dim() == 2 and h.shape[1] == self.d_model, (
            f"h must have shape (batch, {self.d_model}), got {tuple(h.shape)}"
        )
        return self.projection(h)  # (batch, projection_dim)
