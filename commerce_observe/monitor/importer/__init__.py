"""Import history into the monitoring store (``commerce-observe import``; see docs/import.md).

A shop adopting us has months of history in its order database and warehouse, not
as our events. This package loads it: NDJSON in the store's own document shape,
or warehouse CSV aggregates (orders per product, payments per method, per bucket)
stored as aggregate documents (:mod:`commerce_observe.store.aggregates`) that
every store query and :meth:`~commerce_observe.store.queries.MetricsQuery.series`
count like the events they stand for.

Modules: ``csv_layout`` (the two CSV headers), ``csv_rows`` (rows to aggregates,
fast), ``ndjson`` (documents, checked), ``validation`` (bad rows named by file,
line and field), ``buckets`` (bucket size given or read from the data),
``writer`` (batches on a writer thread), ``progress`` (terminal only), ``job``
(one file end to end), ``sample`` (a realistic 3-month history for the demo).
"""

from commerce_observe.monitor.importer.job import FileReport, Options, import_file
from commerce_observe.monitor.importer.validation import BadInput, BadRow

__all__ = ["BadInput", "BadRow", "FileReport", "Options", "import_file"]
