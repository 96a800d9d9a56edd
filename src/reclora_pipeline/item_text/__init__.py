"""Text side of RecLoRA: item descriptions, item embeddings, retrieval and prompts (no Kedro)."""
