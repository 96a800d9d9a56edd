"""The finetune pipeline: RecLoRA, vanilla LoRA and the ablations, trained with DeepSpeed ZeRO."""

from reclora_pipeline.pipelines.finetune.pipeline import create_pipeline

__all__ = ["create_pipeline"]
