"""The processed-split file format: Parquet blocks of encoded rows, written chunk by chunk (no MongoDB here).

A block is one Parquet file holding rows of one split, ascending by row
number, one row group per chunk, with the columns

* ``row`` (int64): the row's number in the day's raw batch;
* ``y`` (int64): 1 for the positive label, else 0;
* ``x_cat:<feature>`` (int64): category indices, 0 = unknown;
* ``x_num:<feature>`` (float32): scaled numbers, rounded to 6 decimals
  (what the earlier one-document-per-row storage kept, so models see the
  same inputs).

:class:`BlockSpool` collects a day's rows in batch order in a temporary file
and scatters them into one file per split; :func:`decode_block` turns a
file's bytes back into an :class:`~daily_mlops.ml.encoded.EncodedBatch`.
:mod:`daily_mlops.storage.batches` stores the files in GridFS and indexes them.

Sources: Apache Parquet via ``pyarrow.parquet`` (``ParquetWriter``,
``ParquetFile.iter_batches``, ``read_table``; https://arrow.apache.org/docs/python/parquet.html).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from daily_mlops.errors import IntegrityError

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from daily_mlops.ml.encoded import EncodedBatch

__all__ = ["BLOCK_FORMAT", "BlockSpool", "block_schema", "decode_block"]

#: ``processed.format`` in ``processing_metadata``: one Parquet file per split, the columns above.
BLOCK_FORMAT = "parquet"
#: Rows per record batch when the spooled batch is read back to be split.
READ_ROWS = 100_000


def block_schema(x_cat: list[str], x_num: list[str]) -> pa.Schema:
    """The Arrow schema of a block: ``row``, ``y``, then ``x_cat:<name>`` and ``x_num:<name>`` per feature."""
    import pyarrow as pa

    return pa.schema([("row", pa.int64()), ("y", pa.int64())]
                     + [(f"x_cat:{name}", pa.int64()) for name in x_cat]
                     + [(f"x_num:{name}", pa.float32()) for name in x_num])


class BlockSpool:
    """A day's encoded rows, appended chunk by chunk to a temporary Parquet file, then split into one file per split.

    Memory holds one chunk and the labels ``y`` (8 bytes a row, which the
    stratified split needs). Use it as a context manager: the temporary
    directory is removed on exit.

    Parameters
    ----------
    x_cat, x_num : list of str
        Feature names of the ``x_cat`` and ``x_num`` columns
        (``TabularPreprocessor.categorical_features_`` / ``numeric_features_``).
    """

    def __init__(self, *, x_cat: list[str], x_num: list[str]) -> None:
        import pyarrow.parquet as pq

        self.x_cat, self.x_num = list(x_cat), list(x_num)
        self.schema = block_schema(self.x_cat, self.x_num)
        self._dir = tempfile.TemporaryDirectory(prefix="daily-mlops-blocks-")
        self._all = Path(self._dir.name) / "all.parquet"
        self._writer: Any = pq.ParquetWriter(self._all, self.schema)
        self._y: list[np.ndarray] = []
        self.n_rows = 0

    def __enter__(self) -> BlockSpool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Remove the temporary files (idempotent)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self._dir.cleanup()

    def append(self, encoded: EncodedBatch) -> None:
        """Append the next rows.

        ``x_cat`` (n, len(x_cat)) int64, ``x_num`` (n, len(x_num)) float32, ``y`` (n,) int64.
        """
        import pyarrow as pa

        n = len(encoded)
        assert encoded.y is not None, "processed rows need labels (y)"
        assert encoded.x_cat.shape == (n, len(self.x_cat)) and encoded.x_num.shape == (n, len(self.x_num)), (
            f"chunk shapes {encoded.x_cat.shape}, {encoded.x_num.shape} do not match "
            f"{len(self.x_cat)} categorical and {len(self.x_num)} numeric features"
        )
        x_num = np.round(encoded.x_num.astype(np.float64), 6).astype(np.float32)  # (n, n_num)
        columns = [np.arange(self.n_rows, self.n_rows + n, dtype=np.int64), encoded.y]
        columns += [encoded.x_cat[:, j] for j in range(len(self.x_cat))]
        columns += [x_num[:, j] for j in range(len(self.x_num))]
        self._writer.write_table(pa.Table.from_arrays([pa.array(c) for c in columns], schema=self.schema))
        self._y.append(encoded.y)
        self.n_rows += n

    @property
    def y(self) -> np.ndarray:
        """Labels of the rows appended so far, shape (n_rows,) int64."""
        return np.concatenate(self._y) if self._y else np.empty(0, dtype=np.int64)

    def write_splits(self, splits: dict[str, np.ndarray]) -> dict[str, dict[str, Any]]:
        """Write each split's rows (ascending) to its own Parquet file; no more rows can be appended after.

        Parameters
        ----------
        splits : dict of str to ndarray of int
            Row indices per split name; together they cover every row exactly once.

        Returns
        -------
        dict
            Per split name: ``path`` (the file, removed with the spool),
            ``rows`` and ``positives`` (ints). An empty split gets a valid
            file with no rows.

        Raises
        ------
        ValueError
            When the splits do not cover every row exactly once.
        """
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is not None:
            self._writer.close()
            self._writer = None
        names = list(splits)
        code = np.full(self.n_rows, -1, dtype=np.int8)  # (n_rows,) index into names
        for i, name in enumerate(names):
            code[np.asarray(splits[name], dtype=np.int64)] = i
        if (code < 0).any() or sum(len(idx) for idx in splits.values()) != self.n_rows:
            raise ValueError(f"the splits {names} must cover each of the {self.n_rows} rows exactly once")
        out: dict[str, dict[str, Any]] = {
            name: {"path": Path(self._dir.name) / f"{name}.parquet", "rows": 0, "positives": 0} for name in names
        }
        writers = {name: pq.ParquetWriter(out[name]["path"], self.schema) for name in names}
        try:
            for batch in pq.ParquetFile(self._all).iter_batches(batch_size=READ_ROWS):
                table = pa.Table.from_batches([batch])
                row_code = code[batch.column(0).to_numpy()]  # (batch,)
                y = batch.column(1).to_numpy()
                for i, name in enumerate(names):
                    mask = row_code == i
                    if mask.any():
                        writers[name].write_table(table.filter(pa.array(mask)))
                        out[name]["rows"] += int(mask.sum())
                        out[name]["positives"] += int(y[mask].sum())
        finally:
            for writer in writers.values():
                writer.close()
        return out


def decode_block(data: bytes, *, x_cat: list[str], x_num: list[str], rows: int, what: str) -> EncodedBatch:
    """Parse a block's bytes (already sha256-checked) into an EncodedBatch.

    Parameters
    ----------
    x_cat, x_num : list of str
        The feature names the index records.
    rows : int
        The row count the index records.
    what : str
        The file, named in errors.

    Returns
    -------
    EncodedBatch
        ``x_cat`` (rows, len(x_cat)) int64, ``x_num`` (rows, len(x_num)) float32, ``y`` (rows,) int64.

    Raises
    ------
    IntegrityError
        When the bytes are not Parquet, or its columns or row count differ from the index.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    from daily_mlops.ml.encoded import EncodedBatch

    expected = block_schema(x_cat, x_num)
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (pa.ArrowInvalid, OSError) as exc:
        raise IntegrityError(f"{what} is not a readable Parquet file ({exc}); rerun preprocess_data") from exc
    if not table.schema.equals(expected) or table.num_rows != rows:
        raise IntegrityError(
            f"{what} holds {table.num_rows} rows with columns {table.schema.names[:6]}..., but its index records "
            f"{rows} rows with {expected.names[:6]}...; rerun preprocess_data for this logical date"
        )

    def stack(prefix: str, names: list[str], dtype: type) -> np.ndarray:  # (rows, len(names))
        if not names:
            return np.empty((rows, 0), dtype=dtype)
        columns = [table.column(f"{prefix}:{name}").to_numpy() for name in names]
        return np.column_stack(columns).astype(dtype, copy=False)

    return EncodedBatch(x_cat=stack("x_cat", x_cat, np.int64), x_num=stack("x_num", x_num, np.float32),
                        y=table.column("y").to_numpy().astype(np.int64, copy=False))
