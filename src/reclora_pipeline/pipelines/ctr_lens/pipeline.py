"""Wiring of the ctr_lens pipeline."""

from kedro.pipeline import Pipeline, node, pipeline

from reclora_pipeline.pipelines.ctr_lens import nodes
from reclora_pipeline.pipelines.naming import named_partial

# Every CRM is trained (the comparison table needs them all); ctr_lens.crm picks the one
# whose user representations feed the LLM.
TRAINED_CRMS = ("din", "sim", "deepfm")


def create_pipeline(**kwargs) -> Pipeline:
    """vocabulary -> one trained CRM per model -> metrics; the chosen CRM -> user_repr."""
    training = [
        node(
            named_partial(nodes.train_ctr_model, name=name),
            ["samples", "retrieved_histories", "ctr_vocabulary", "params:ctr_lens"],
            [f"ctr_checkpoint_{name}", f"ctr_metrics_{name}"],
            name=f"train_{name}",
        )
        for name in TRAINED_CRMS
    ]
    return pipeline(
        [
            node(
                named_partial(nodes.fit_ctr_vocabulary, trained=TRAINED_CRMS),
                ["items", "users", "params:ctr_lens"],
                "ctr_vocabulary",
                name="fit_ctr_vocabulary",
            ),
            *training,
            node(
                nodes.summarize_ctr_lens,
                {f"ctr_metrics_{name}": f"ctr_metrics_{name}" for name in TRAINED_CRMS},
                "ctr_lens_metrics",
                name="summarize_ctr_lens",
            ),
            node(
                nodes.compute_user_representations,
                {
                    "samples": "samples",
                    "retrieved_histories": "retrieved_histories",
                    "vocabulary": "ctr_vocabulary",
                    "params": "params:ctr_lens",
                    **{f"ctr_checkpoint_{name}": f"ctr_checkpoint_{name}" for name in TRAINED_CRMS},
                },
                "user_repr",
                name="compute_user_representations",
            ),
            node(
                nodes.score_all_samples,
                {
                    "samples": "samples",
                    "retrieved_histories": "retrieved_histories",
                    "vocabulary": "ctr_vocabulary",
                    "params": "params:ctr_lens",
                    **{f"ctr_checkpoint_{name}": f"ctr_checkpoint_{name}" for name in TRAINED_CRMS},
                },
                "crm_predictions",
                name="score_all_samples",
            ),
        ]
    )
