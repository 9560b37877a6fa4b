"""The model inputs of one batch: categorical indices, scaled numbers and labels (NumPy only)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["EncodedBatch"]


@dataclass(frozen=True)
class EncodedBatch:
    """Model inputs of one batch.

    Attributes
    ----------
    x_cat : ndarray of shape (n_rows, n_categorical), int64
        Category indices; 0 is "unknown", column ``j`` lies in
        ``[0, cardinalities_[j])``.
    x_num : ndarray of shape (n_rows, n_numeric), float32
        Robust-scaled numeric features, then 0/1 null indicators.
    y : ndarray of shape (n_rows,), int64, or None
        1 for the positive label, 0 otherwise; None when the batch had no target.
    """

    x_cat: np.ndarray
    x_num: np.ndarray
    y: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = self.x_cat.shape[0]
        assert self.x_cat.ndim == 2 and self.x_cat.dtype == np.int64, (
            f"x_cat must be int64 of shape (n, n_cat), got {self.x_cat.dtype} {self.x_cat.shape}"
        )
        assert self.x_num.ndim == 2 and self.x_num.dtype == np.float32 and self.x_num.shape[0] == n, (
            f"x_num must be float32 of shape ({n}, n_num), got {self.x_num.dtype} {self.x_num.shape}"
        )
        if self.y is not None:
            assert self.y.shape == (n,) and self.y.dtype == np.int64, (
                f"y must be int64 of shape ({n},), got {self.y.dtype} {self.y.shape}"
            )

    def __len__(self) -> int:
        return int(self.x_cat.shape[0])

    def labels(self) -> np.ndarray:
        """``y``, ndarray of shape (n_rows,), int64.

        Raises
        ------
        ValueError
            When the batch has no labels (its rows came without the target column).
        """
        if self.y is None:
            raise ValueError(f"this batch of {len(self)} rows has no labels (y is None)")
        return self.y

    def subset(self, idx: np.ndarray) -> EncodedBatch:
        """The rows ``idx`` (ndarray of int, shape (k,)) as a new batch."""
        return EncodedBatch(x_cat=self.x_cat[idx], x_num=self.x_num[idx], y=None if self.y is None else self.y[idx])

    @staticmethod
    def concat(batches: list[EncodedBatch]) -> EncodedBatch:
        """The rows of ``batches`` one after another (at least one; labels kept only when every batch has them)."""
        if not batches:
            raise ValueError("concat needs at least one batch")
        if len(batches) == 1:
            return batches[0]
        labelled = all(b.y is not None for b in batches)
        return EncodedBatch(x_cat=np.concatenate([b.x_cat for b in batches]),
                            x_num=np.concatenate([b.x_num for b in batches]),
                            y=np.concatenate([b.y for b in batches]) if labelled else None)
