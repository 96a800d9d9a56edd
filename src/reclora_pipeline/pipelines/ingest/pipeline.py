"""Wiring of the ingest pipeline."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.pipelines.ingest import nodes
from reclora_pipeline.pipelines.naming import stage_pipeline

# The DuckDB tables this pipeline writes, in the order it writes them.
INGEST_TABLES = (
    "raw_interactions", "raw_items", "raw_users", "interactions_core",
    "items", "users", "interactions", "samples",
)  # fmt: skip


def create_pipeline(**kwargs) -> Pipeline:
    """raw files -> raw_* -> interactions_core -> items/users -> interactions -> samples -> summary."""
    return stage_pipeline(
        [
            node(
                nodes.read_raw_tables,
                inputs="params:ingest",
                outputs=["raw_interactions", "raw_items", "raw_users"],
                name="read_raw_tables",
            ),
            node(nodes.describe_source, "params:ingest", "source_info", name="describe_source"),
            node(
                nodes.filter_k_core,
                inputs=["raw_interactions", "params:ingest"],
                outputs="interactions_core",
                name="filter_k_core",
            ),
            node(
                nodes.index_items,
                inputs=["interactions_core", "raw_items"],
                outputs="items",
                name="index_items",
            ),
            node(
                nodes.index_users,
                inputs=["interactions_core", "raw_users"],
                outputs="users",
                name="index_users",
            ),
            node(
                nodes.label_and_split_interactions,
                inputs=["interactions_core", "items", "users", "params:ingest"],
                outputs="interactions",
                name="label_and_split_interactions",
            ),
            node(
                nodes.build_history_samples,
                inputs=["interactions", "params:ingest"],
                outputs="samples",
                name="build_history_samples",
            ),
            node(
                nodes.summarize_ingest,
                inputs=["interactions", "items", "users", "samples"],
                outputs="ingest_summary",
                name="summarize_ingest",
            ),
        ],
        "ingest",
    )
