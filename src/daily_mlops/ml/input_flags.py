"""What a prediction was made from: the input values the preprocessor could not read as given.

A scored row may hold a category the fitted preprocessor never saw (encoded as
index 0, "unknown") or a null (imputed: the median for numbers and dates, the
``__missing__`` category for categories). :class:`InputFlags` records, per
column, which rows did. It is built by one rule,
:meth:`daily_mlops.ml.preprocessing.TabularPreprocessor.input_flags`, and
rendered three ways: per row in ``/predict`` answers (:meth:`InputFlags.per_row`),
as one line per column by ``daily-mlops predict`` (:meth:`InputFlags.summary_lines`),
and as refusals when ``MLOPS_PREDICT_STRICT`` is true (:meth:`InputFlags.refusals`).

Source: the TabTransformer input convention (categorical index 0 reserved
for "unknown"), Huang et al. 2020; scikit-learn 1.9 ``OrdinalEncoder``
(``handle_unknown="use_encoded_value"``) and ``SimpleImputer``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["STRICT_FIX", "InputFlags"]

#: The fix a refusal names (``MLOPS_PREDICT_STRICT`` is :attr:`daily_mlops.settings.Settings.predict_strict`).
STRICT_FIX = ("MLOPS_PREDICT_STRICT=true refuses such rows: use a category the model knows and no nulls, "
              "or set MLOPS_PREDICT_STRICT=false to score them (read as unknown or imputed, and flagged)")

#: How many known categories a refusal shows as examples.
_KNOWN_SHOWN = 5


def _rows(n: int) -> str:
    return f"{n} row" if n == 1 else f"{n} rows"


@dataclass(frozen=True)
class InputFlags:
    """Per input column, the rows whose value was unseen (read as "unknown") or null (imputed).

    Row positions count from 0 in the order the rows were given (a ``/predict``
    body's list, the lines of a ``predict --input`` CSV).

    Attributes
    ----------
    n_rows : int
        Rows checked.
    unseen : dict of str to dict of int to str
        Per categorical column with such rows, ``{row position: value}`` for
        the non-null values the fitted preprocessor never saw; schema order.
    null : dict of str to list of int
        Per feature column with such rows, the row positions whose value was
        null (a date that did not parse with the stored format counts: it is
        read as null), ascending; schema order.
    known : dict of str to list of str
        Per column of ``unseen``, the categories the preprocessor knows.
    """

    n_rows: int
    unseen: dict[str, dict[int, str]] = field(default_factory=dict)
    null: dict[str, list[int]] = field(default_factory=dict)
    known: dict[str, list[str]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """True when any row has an unseen category or a null."""
        return bool(self.unseen or self.null)

    @property
    def flagged_rows(self) -> int:
        """Rows with at least one unseen category or null (0 to ``n_rows``)."""
        rows = {i for values in self.unseen.values() for i in values}
        rows.update(i for positions in self.null.values() for i in positions)
        return len(rows)

    def per_row(self) -> list[dict[str, Any]]:
        """One entry per row, JSON-able: ``{"unseen": {column: value}, "null": [column, ...]}`` (empty when clean).

        Returns
        -------
        list of dict, of length ``n_rows``
        """
        rows: list[dict[str, Any]] = [{"unseen": {}, "null": []} for _ in range(self.n_rows)]
        for column, values in self.unseen.items():
            for i, value in values.items():
                rows[i]["unseen"][column] = value
        for column, positions in self.null.items():
            for i in positions:
                rows[i]["null"].append(column)
        return rows

    def summary_lines(self) -> list[str]:
        """One line per flagged column and kind, with the row count (unseen categories first, then nulls).

        E.g. ``purpose: 20 rows with a category the model never saw (read as unknown), e.g. 'crypto'``
        and ``credit_amount: 1 row with a null (imputed)``.
        """
        lines = []
        for column, values in self.unseen.items():
            examples = ", ".join(repr(v) for v in list(dict.fromkeys(values.values()))[:3])
            lines.append(f"{column}: {_rows(len(values))} with a category the model never saw "
                         f"(read as unknown), e.g. {examples}")
        for column, positions in self.null.items():
            lines.append(f"{column}: {_rows(len(positions))} with a null (imputed)")
        return lines

    def refusals(self) -> list[dict[str, Any]]:
        """Each flagged (row, column) as a refusal under ``MLOPS_PREDICT_STRICT``: by row, unseen categories first.

        Returns
        -------
        list of dict
            ``row`` (position), ``column``, ``value`` (the unseen category, or
            None), ``type`` (``"unseen_category"`` or ``"null_value"``) and
            ``msg`` (names the column and the value; the fix is :data:`STRICT_FIX`).
        """
        out = []
        for column, values in self.unseen.items():
            known = self.known.get(column, [])
            shown = ", ".join(repr(k) for k in known[:_KNOWN_SHOWN]) + (", ..." if len(known) > _KNOWN_SHOWN else "")
            for i, value in values.items():
                out.append({"row": i, "column": column, "value": value, "type": "unseen_category",
                            "msg": f"column {column!r} has the category {value!r}, which the model never saw "
                                   f"(it would be read as unknown); it knows {len(known)}: {shown}"})
        for column, positions in self.null.items():
            for i in positions:
                out.append({"row": i, "column": column, "value": None, "type": "null_value",
                            "msg": f"column {column!r} is null (it would be imputed)"})
        order = {column: k for k, column in enumerate([*self.unseen, *self.null])}
        return sorted(out, key=lambda r: (r["row"], order[r["column"]]))
