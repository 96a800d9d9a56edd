"""A parquet file dataset whose save never leaves a half-written file behind."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from kedro.io import AbstractDataset

from reclora_pipeline.datasets.local_file import LocalFile


class AtomicParquetDataset(LocalFile, AbstractDataset[pa.Table | pd.DataFrame, pd.DataFrame]):
    """A table as one parquet file on local disk (written to a temporary file, then renamed
    into place; during a run, published with the rest of its stage); loads as pandas."""

    def load(self) -> pd.DataFrame:
        return pq.read_table(self._readable()).to_pandas()

    def save(self, data: pa.Table | pd.DataFrame) -> None:
        table = (
            data if isinstance(data, pa.Table) else pa.Table.from_pandas(data, preserve_index=False)
        )
        self._write(lambda path: pq.write_table(table, path))
