"""The ORIGINAL storage pattern of a day's data, for ``python -m benchmarks storage`` to compare against.

This is a small reference reimplementation written by us from the description
in the "Performance" issue, not the original design's code. It stands for
the original design's storage stages:

* processed data: the processed frame (one row per sampled row: batch id,
  row number, split, label and one column per encoded feature) written with
  ``collection.insert_many(df.to_dict('records'))`` and read back with
  ``pd.DataFrame(list(collection.find()))``;
* raw batch: the CSV as one GridFS file (``gridfs.GridFS(db, bucket).put``),
  which both designs keep (assumed; the issue describes only the processed data).

It writes to its own collection and bucket (:data:`COLLECTION`, :data:`BUCKET`),
so it can share a database with the loop's storage without touching it.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

#: The collection the reference pattern writes the processed rows to.
COLLECTION = "original_processed_data"
#: The GridFS bucket the reference pattern writes the raw CSV to.
BUCKET = "original_raw_data"


def processed_frame(encoded, splits: dict[str, np.ndarray], *, logical_date: dt.date) -> pd.DataFrame:
    """The processed frame of a day: ``batch_id, logical_date, row, split, y, cat_<j>..., num_<j>...``."""
    n = len(encoded)
    split = np.empty(n, dtype=object)
    for name, idx in splits.items():
        split[idx] = name
    columns = {"batch_id": f"batch-{logical_date.isoformat()}", "logical_date": logical_date.isoformat(),
               "row": np.arange(n), "split": split, "y": encoded.y}
    columns |= {f"cat_{j}": encoded.x_cat[:, j] for j in range(encoded.x_cat.shape[1])}
    columns |= {f"num_{j}": encoded.x_num[:, j].astype(np.float64) for j in range(encoded.x_num.shape[1])}
    return pd.DataFrame(columns)


def store_raw(db, frame: pd.DataFrame, *, logical_date: dt.date):
    """The raw batch as one CSV file in GridFS (``GridFS.put``); returns the file id."""
    import gridfs

    return gridfs.GridFS(db, collection=BUCKET).put(frame.to_csv(index=False).encode("utf-8"),
                                                      filename=f"batch-{logical_date.isoformat()}.csv")


def store_processed(db, df: pd.DataFrame) -> None:
    """The original write: ``collection.insert_many(df.to_dict('records'))``."""
    db[COLLECTION].insert_many(df.to_dict("records"))


def load_processed(db) -> pd.DataFrame:
    """The original read: ``pd.DataFrame(list(collection.find()))``."""
    return pd.DataFrame(list(db[COLLECTION].find()))
