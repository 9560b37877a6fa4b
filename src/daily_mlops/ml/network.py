"""The TabTransformer network for binary credit-default prediction.

Source: Huang, Khetan, Cvitkovic and Karnin, "TabTransformer: Tabular Data
Modeling Using Contextual Embeddings", 2020 (arXiv:2012.06678). Two layouts
(``architecture``):

* ``"ft"`` (default): as in the FT-Transformer variant (Gorishniy et al.,
  "Revisiting Deep Learning Models for Tabular Data", 2021, arXiv:2106.11959)
  numeric features are embedded as tokens too, so every feature is one token the
  transformer attends over; the encoded tokens are mean-pooled.
* ``"tab"``: the paper's layout: only categorical columns are tokens; the
  encoded tokens are flattened and concatenated with the layer-normed numeric
  features before the head. Attention then costs ``n_cat ** 2`` instead of
  ``(n_cat + n_num) ** 2``, which matters for wide tables.

A learned ``[MASK]`` token (``"tab"``: also a learned value per numeric column)
replaces masked features; it is used by the contrastive masking augmentation in
:mod:`daily_mlops.ml.training` (SCARF, Bahri et al. 2021; SAINT, Somepalli et al. 2021).

The module is independent of preprocessing: it takes integer category codes
(``0`` means unknown or missing) and already scaled numeric features.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from daily_mlops.ml._layers import FastDropout, encoder_layer

__all__ = ["ARCHITECTURES", "AUTO_TAB_MIN_FEATURES", "TabTransformer", "resolve_architecture"]

#: The two layouts: numeric features as tokens (``"ft"``) or joined after the transformer (``"tab"``).
ARCHITECTURES = ("ft", "tab")
#: ``architecture="auto"`` builds ``"tab"`` from this many feature columns on, else ``"ft"``: with ``"ft"`` every
#: feature is a token and attention grows with the square of their number (the bundled data's 20 features stay
#: ``"ft"``; the 104 features of ``scripts/make_wide_table.py`` take ``"tab"``, see ``python -m benchmarks wide``).
AUTO_TAB_MIN_FEATURES = 32


def resolve_architecture(architecture: str, n_features: int) -> str:
    """The architecture ``architecture`` stands for with ``n_features`` feature columns: ``"ft"`` or ``"tab"``.

    ``"auto"`` is ``"tab"`` when ``n_features >= AUTO_TAB_MIN_FEATURES``, else ``"ft"``; ``"ft"`` and
    ``"tab"`` are returned as they are.

    Raises
    ------
    ValueError
        When ``architecture`` is none of ``"ft"``, ``"tab"``, ``"auto"``.
    """
    if architecture == "auto":
        return "tab" if n_features >= AUTO_TAB_MIN_FEATURES else "ft"
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {[*ARCHITECTURES, 'auto']}, got {architecture!r}")
    return architecture


class TabTransformer(nn.Module):
    """TabTransformer over categorical (and, with ``architecture="ft"``, numeric) feature tokens.

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
        Dropout probability in ``[0, 1)`` of the classification head's hidden layer
        (and of the encoder unless ``encoder_dropout`` is given).
    n_classes : int, default 2
        Number of output logits.
    projection_dim : int, default 32
        Output width of the contrastive projection head (SimCLR, Chen et al. 2020).
    architecture : {"ft", "tab", "auto"}, default "ft"
        Numeric features as tokens (``"ft"``) or joined after the transformer (``"tab"``); see the module docstring.
        ``"auto"``: :func:`resolve_architecture` of the feature count (the resolved name is stored).
    encoder_dropout : float, optional
        Dropout probability in ``[0, 1)`` inside the encoder layers (both block
        outputs and the feed-forward hidden layer; not the attention probabilities,
        see :func:`daily_mlops.ml._layers.encoder_layer`); default: ``dropout``.
        ``0`` draws no random numbers, the fastest CPU path (dropout masks are the
        dearest part of a step after the matrix products, see :func:`daily_mlops.ml._layers.dropout`).

    Raises
    ------
    ValueError
        When there are no features at all, a cardinality is below 1,
        ``n_numeric`` is negative, ``d_model`` is not divisible by ``nhead``,
        ``architecture`` is unknown or another size is out of range.

    Notes
    -----
    Categorical codes of all columns share ONE ``nn.Embedding`` over the summed
    cardinalities; a registered buffer of per-column offsets maps column ``j``'s
    code ``c`` to row ``offsets[j] + c``. With ``"ft"``, numeric feature ``k``
    with value ``x`` becomes the token ``weight[k] * x + bias[k]``, computed for
    all features in one broadcast. A learned column embedding is added to every
    token so the encoder knows which feature a token (or a ``[MASK]``) stands
    for. The encoder weights live in ``self.encoder`` (an ``nn.TransformerEncoder``,
    so stored ``state_dict`` keys keep their names); its forward is
    :func:`daily_mlops.ml._layers.encoder_layer` per layer, then the final layer norm.
    """

    #: Registered buffers (``register_buffer`` makes them attributes that mypy cannot see).
    category_offsets: Tensor  # (n_cat,) first embedding row of each categorical column
    category_cardinalities: Tensor  # (n_cat,)

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
        architecture: str = "ft",
        encoder_dropout: float | None = None,
    ) -> None:
        super().__init__()
        encoder_dropout = dropout if encoder_dropout is None else encoder_dropout
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
        for name, value in (("dropout", dropout), ("encoder_dropout", encoder_dropout)):
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        architecture = resolve_architecture(architecture, len(cardinalities) + n_numeric)

        self._cardinalities = cardinalities
        self.architecture = architecture
        self.n_categorical = len(cardinalities)
        self.n_numeric = n_numeric
        #: Features a mask addresses (categorical first, then numeric).
        self.n_features = self.n_categorical + n_numeric
        #: Tokens the transformer attends over.
        self.n_tokens = self.n_features if architecture == "ft" else self.n_categorical
        self.d_model = int(d_model)
        self.nhead = int(nhead)
        self.num_layers = int(num_layers)
        self.dim_feedforward = int(dim_feedforward)
        self.dropout = float(dropout)
        self.encoder_dropout = float(encoder_dropout)
        self.n_classes = int(n_classes)
        self.projection_dim = int(projection_dim)
        #: Width of :meth:`encode`'s output: ``d_model`` ("ft"), ``n_cat * d_model + n_num`` ("tab").
        self.representation_dim = (
            self.d_model if architecture == "ft" else self.n_categorical * self.d_model + n_numeric
        )

        # Per-column offsets into the shared categorical embedding table.
        offsets = torch.tensor([0, *cardinalities[:-1]], dtype=torch.long).cumsum(0)
        self.register_buffer("category_offsets", offsets[: self.n_categorical], persistent=True)  # (n_cat,)
        self.register_buffer(
            "category_cardinalities", torch.tensor(cardinalities, dtype=torch.long), persistent=True
        )  # (n_cat,)
        # An empty table is not allowed by nn.Embedding; one unused row keeps n_cat = 0 simple.
        self.category_embedding = nn.Embedding(max(sum(cardinalities), 1), d_model)

        if architecture == "ft":
            self.numeric_weight = nn.Parameter(torch.randn(n_numeric, d_model) * 0.02)  # (n_num, d_model)
            self.numeric_bias = nn.Parameter(torch.zeros(n_numeric, d_model))  # (n_num, d_model)
        else:
            self.numeric_norm = nn.LayerNorm(n_numeric) if n_numeric else nn.Identity()
            self.numeric_mask = nn.Parameter(torch.zeros(n_numeric))  # (n_num,) value of a masked numeric feature

        self.column_embedding = nn.Parameter(torch.randn(self.n_tokens, d_model) * 0.02)  # (n_tokens, d_model)
        self.mask_token = nn.Parameter(torch.randn(d_model) * 0.02)  # (d_model,)

        layer = nn.TransformerEncoderLayer(
            d_model=d_model,
            nhead=nhead,
            dim_feedforward=dim_feedforward,
            dropout=encoder_dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=num_layers, norm=nn.LayerNorm(d_model), enable_nested_tensor=False
        )
        self.head = nn.Sequential(
            nn.Linear(self.representation_dim, dim_feedforward),
            nn.GELU(),
            FastDropout(dropout),
            nn.Linear(dim_feedforward, n_classes),
        )
        self.projection = nn.Sequential(
            nn.Linear(self.representation_dim, d_model),
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
            "architecture": self.architecture,
            "encoder_dropout": self.encoder_dropout,
        }

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> TabTransformer:
        """Build a freshly initialised network from :attr:`config`.

        A config stored before ``architecture`` and ``encoder_dropout`` existed
        (without those keys) rebuilds the network it described: numeric tokens
        (``"ft"``) and ``dropout`` in the encoder too.

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
        optional = {"architecture", "encoder_dropout"}
        keys = set(config)
        missing, unknown = sorted(expected - keys), sorted(keys - expected - optional)
        if missing or unknown:
            raise ValueError(
                f"TabTransformer config keys differ: missing {missing}, unknown {unknown}; "
                "use the dict stored from model.config"
            )
        return cls(**dict(config))  # a missing key takes the default, which is the old network

    @property
    def n_parameters(self) -> int:
        """Number of trainable scalar parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    # ----------------------------------------------------------------- forward
    def _check_inputs(self, x_cat: Tensor, x_num: Tensor) -> None:
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
        if self.n_categorical:
            assert not x_cat.is_floating_point(), f"x_cat must hold integer codes, got dtype {x_cat.dtype}"
            outside = (x_cat < 0) | (x_cat >= self.category_cardinalities)  # (batch, n_cat)
            if x_cat.numel() and bool(outside.any()):
                bad = torch.nonzero(outside)[0]
                column = int(bad[1])
                raise ValueError(
                    f"categorical column {column} holds code {int(x_cat[bad[0], column])}, outside "
                    f"[0, {self._cardinalities[column]}); map unseen categories to code 0"
                )

    def _transform(self, tokens: Tensor) -> Tensor:
        """The encoder layers and final layer norm, ``(batch, n, d_model) -> (batch, n, d_model)``."""
        for layer in self.encoder.layers:
            tokens = encoder_layer(layer, tokens, self.encoder_dropout, self.training)
        norm = self.encoder.norm
        if not isinstance(norm, nn.LayerNorm):  # set in __init__; the encoder types it ``Module | None``
            raise TypeError(f"the encoder's final norm must be an nn.LayerNorm, got {type(norm).__name__}")
        return F.layer_norm(tokens, (self.d_model,), norm.weight, norm.bias, norm.eps)

    def encode(self, x_cat: Tensor, x_num: Tensor, mask: Tensor | None = None) -> Tensor:
        """Representation of each row (input of the head and of the projection).

        Parameters
        ----------
        x_cat : LongTensor of shape (batch, n_cat)
            Category codes in ``[0, cardinality)``; ``0`` = unknown/missing.
        x_num : FloatTensor of shape (batch, n_num)
            Scaled numeric features.
        mask : BoolTensor of shape (batch, n_features), optional
            ``True`` replaces that feature with the learned ``[MASK]`` token
            (``"tab"``: a numeric feature with its learned mask value); features
            are ordered categorical first, then numeric.

        Returns
        -------
        Tensor of shape (batch, representation_dim)
            ``"ft"``: mean over the encoded tokens (``d_model``). ``"tab"``: the
            flattened encoded categorical tokens, then the layer-normed numeric features.

        Raises
        ------
        AssertionError
            When a shape does not match the network (message names it).
        ValueError
            When a category code is outside its column's range.
        """
        self._check_inputs(x_cat, x_num)
        batch = x_cat.shape[0]
        if mask is not None:
            assert mask.shape == (batch, self.n_features), (
                f"mask must have shape (batch, n_features) = {(batch, self.n_features)}, got {tuple(mask.shape)}"
            )
            mask = mask.bool().unsqueeze(-1)  # (batch, n_features, 1)
        x_num = x_num.to(self.mask_token.dtype)
        parts = []
        if self.n_categorical:
            parts.append(self.category_embedding(x_cat.long() + self.category_offsets))  # (batch, n_cat, d_model)
        if self.architecture == "ft":
            if self.n_numeric:
                parts.append(x_num.unsqueeze(-1) * self.numeric_weight + self.numeric_bias)  # (batch, n_num, d_model)
            tokens = torch.cat(parts, dim=1)  # (batch, n_tokens, d_model)
            if mask is not None:
                tokens = torch.where(mask, self.mask_token, tokens)
            return self._transform(tokens + self.column_embedding).mean(dim=1)  # (batch, d_model)
        flat = []
        if self.n_categorical:
            tokens = parts[0]
            if mask is not None:
                tokens = torch.where(mask[:, : self.n_categorical], self.mask_token, tokens)
            flat.append(self._transform(tokens + self.column_embedding).flatten(1))  # (batch, n_cat * d_model)
        if self.n_numeric:
            if mask is not None:
                x_num = torch.where(mask[:, self.n_categorical :, 0], self.numeric_mask, x_num)
            flat.append(self.numeric_norm(x_num))  # (batch, n_num)
        return torch.cat(flat, dim=1)  # (batch, representation_dim)

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
        """Contrastive projection of row representations (SimCLR, Chen et al. 2020).

        Parameters
        ----------
        h : Tensor of shape (batch, representation_dim)
            Output of :meth:`encode`.

        Returns
        -------
        Tensor of shape (batch, projection_dim)
        """
        assert h.dim() == 2 and h.shape[1] == self.representation_dim, (
            f"h must have shape (batch, {self.representation_dim}), got {tuple(h.shape)}"
        )
        return self.projection(h)  # (batch, projection_dim)
