"""Scoring new (user, item, time) rows with a trained arm: the predict pipeline's library."""
