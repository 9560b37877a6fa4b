"""Storage: the only code that reads or writes MongoDB (client, collections, GridFS, registry, records).

Modules: :mod:`~daily_mlops.storage.mongo` (client, collections, indexes, the
embedded server), :mod:`~daily_mlops.storage.artifacts` (GridFS artifacts with
sha256), :mod:`~daily_mlops.storage.registry` (model versions),
:mod:`~daily_mlops.storage.batches` (daily batches),
:mod:`~daily_mlops.storage.events` (metrics and events),
:mod:`~daily_mlops.storage.alerts` (alerts),
:mod:`~daily_mlops.storage.reports` (the read-only queries of reports and model cards) and
:mod:`~daily_mlops.storage.deployment_dir` (the deployed model's directory).
Never imports torch. ``Database`` is the driver's database type, for
annotations elsewhere (``if TYPE_CHECKING: from daily_mlops.storage import Database``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from pymongo.database import Database

__all__ = ["Database"]
