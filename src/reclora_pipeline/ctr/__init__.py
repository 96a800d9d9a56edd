"""CTR models (DIN, SIM, DeepFM) used as the recommender "lens" that feeds the LLM.

Modules: features (vocab and padded tensors from Arrow), layers, din, sim, deepfm,
training (fit, score, user representations), metrics, registry.
"""
