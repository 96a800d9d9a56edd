"""Wiring of the ctr_lens pipeline."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.ctr.settings import TRAINED_CRMS
from reclora_pipeline.pipelines.ctr_lens import nodes
from reclora_pipeline.pipelines.naming import named_partial, stage_pipeline


def create_pipeline(**kwargs) -> Pipeline:
    """vocabulary -> features (built once) -> one trained CRM per model -> metrics; the lens
    recipe (few2many computes the CRMs' outputs for the rows it picks)."""
    features = ["ctr_features", "ctr_vocabulary", "params:ctr_lens"]
    # Per-CRM datasets go in positionally, in TRAINED_CRMS order (the nodes' ``names``).
    checkpoints = [f"ctr_checkpoint_{name}" for name in TRAINED_CRMS]
    metrics = [f"ctr_metrics_{name}" for name in TRAINED_CRMS]
    training = [
        node(
            named_partial(nodes.train_ctr_model, name=name),
            features,
            [checkpoint, metric],
            name=f"train_{name}",
        )
        for name, checkpoint, metric in zip(TRAINED_CRMS, checkpoints, metrics, strict=True)
    ]
    return stage_pipeline(
        [
            node(
                nodes.fit_ctr_vocabulary,
                ["items", "users"],
                "ctr_vocabulary",
                name="fit_ctr_vocabulary",
            ),
            node(
                nodes.build_ctr_features,
                [
                    "samples",
                    "interactions",
                    "item_embeddings",
                    "ctr_vocabulary",
                    "params:ctr_lens",
                ],
                "ctr_features",
                name="build_ctr_features",
            ),
            *training,
            node(
                nodes.write_lens_recipe, "params:ctr_lens", "lens_recipe", name="write_lens_recipe"
            ),
            node(
                named_partial(nodes.summarize_ctr_lens, names=TRAINED_CRMS),
                metrics,
                "ctr_lens_metrics",
                name="summarize_ctr_lens",
            ),
        ],
        "ctr_lens",
    )
