"""Wiring of the evaluation pipeline."""

from kedro.pipeline import Pipeline, node

from reclora_pipeline.evaluation.comparison import FIGURES, PREDICTED_MODELS
from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.pipelines.evaluation import nodes
from reclora_pipeline.pipelines.naming import arm_samples, named_partial, stage_pipeline

PLOTS = [f"{figure}_plot" for figure in FIGURES]


def create_pipeline(**kwargs) -> Pipeline:
    """Score every LLM on the test subset, then one comparison with the CRMs, plots, MLflow."""
    scoring = [
        node(
            nodes.score_zero_shot,
            ["few2many_samples", "finetune_report_reclora", "params:evaluation"],
            "predictions_zero_shot",
            name="score_zero_shot",
        ),
        *(
            node(
                named_partial(nodes.score_arm, arm=arm),
                [
                    arm_samples(arm),
                    f"adapter_{arm}",
                    f"finetune_report_{arm}",
                    "params:evaluation",
                ],
                f"predictions_{arm}",
                name=f"score_{arm}",
            )
            for arm in ARMS
        ),
        node(
            nodes.score_lens_readout,
            ["few2many_samples", "params:evaluation"],
            "predictions_lens_readout",
            name="score_lens_readout",
        ),
    ]
    return stage_pipeline(
        [
            *scoring,
            node(
                nodes.summarize_gates,
                ["few2many_samples", "adapter_reclora", "finetune_report_reclora"],
                "gate_weights",
                name="summarize_gates",
            ),
            node(
                # The prediction tables come positionally, one per name in PREDICTED_MODELS.
                named_partial(nodes.compare_models, names=PREDICTED_MODELS),
                [
                    "few2many_samples",
                    "crm_predictions",
                    "params:evaluation",
                    *(f"predictions_{model}" for model in PREDICTED_MODELS),
                ],
                ["metrics", "metrics_table", *PLOTS],
                name="compare_models",
            ),
            node(nodes.plot_gates, "gate_weights", "gate_heatmap_plot", name="plot_gates"),
            node(
                nodes.log_to_mlflow,
                ["metrics", "metrics_table", *PLOTS, "gate_heatmap_plot"],
                None,
                name="log_to_mlflow",
            ),
        ],
        "evaluation",
    )
