"""Fine-tuning the LLM arms (RecLoRA, vanilla LoRA, ablations) on Yes/No prompts."""
