"""Custom Kedro datasets of this project."""

from reclora_pipeline.datasets.atomic_json_dataset import AtomicJSONDataset
from reclora_pipeline.datasets.duckdb_table_dataset import DuckDBTableDataset
from reclora_pipeline.datasets.folder_dataset import FolderDataset
from reclora_pipeline.datasets.parquet_dataset import AtomicParquetDataset
from reclora_pipeline.datasets.report_files import AtomicTextDataset, FigureDataset
from reclora_pipeline.datasets.state_dict_dataset import StateDictDataset

__all__ = [
    "AtomicTextDataset",
    "FigureDataset",
    "AtomicJSONDataset",
    "AtomicParquetDataset",
    "DuckDBTableDataset",
    "FolderDataset",
    "StateDictDataset",
]
