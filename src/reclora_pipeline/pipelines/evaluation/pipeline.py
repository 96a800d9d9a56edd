"""Wiring of the evaluation pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from reclora_pipeline.finetune.arms import ARMS
from reclora_pipeline.pipelines.evaluation import nodes
from reclora_pipeline.pipelines.naming import named_partial


def create_pipeline(**kwargs) -> Pipeline:
    """Score every LLM on the test subset, then one comparison with the CRMs, plots, MLflow."""
    scoring = [
        node(
            nodes.score_zero_shot,
            ["few2many_samples", "language_model", "params:evaluation", "params:finetune"],
            "predictions_zero_shot",
            name="score_zero_shot",
        ),
        *(
            node(
                named_partial(nodes.score_arm, arm=arm),
                [
                    "few2many_samples",
                    f"adapter_{arm}",
                    f"finetune_report_{arm}",
                    "language_model",
                    "params:evaluation",
                    "params:finetune",
                ],
                f"predictions_{arm}",
                name=f"score_{arm}",
            )
            for arm in ARMS
        ),
    ]
    predictions = {f"predictions_{name}": f"predictions_{name}" for name in nodes.LLM_MODELS}
    return pipeline(
        [
            *scoring,
            node(
                nodes.summarize_gates,
                ["few2many_samples", "adapter_reclora", "language_model", "params:finetune"],
                "gate_weights",
                name="summarize_gates",
            ),
            node(
                nodes.compare_models,
                {
                    "few2many_samples": "few2many_samples",
                    "crm_predictions": "crm_predictions",
                    "params": "params:evaluation",
                    **predictions,
                },
                [
                    "metrics",
                    "metrics_table",
                    "roc_curves_plot",
                    "reliability_curves_plot",
                    "auc_by_history_plot",
                ],
                name="compare_models",
            ),
            node(nodes.plot_gates, "gate_weights", "gate_heatmap_plot", name="plot_gates"),
            node(
                nodes.log_to_mlflow,
                [
                    "metrics",
                    "metrics_table",
                    "roc_curves_plot",
                    "reliability_curves_plot",
                    "auc_by_history_plot",
                    "gate_heatmap_plot",
                ],
                None,
                name="log_to_mlflow",
            ),
        ]
    )
