"""Few2Many: the small LLM training subset and the fixed valid / test subsets."""
