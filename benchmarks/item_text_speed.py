"""item_text speed on the embedded MovieLens-100K: embedders, retrieval, prompts.

Runs the ingest pipeline in a scratch workspace, then times, in this process,
the library functions the item_text nodes call:
- items/s of both embedders (SmolLM2-135M mean pooling, all-MiniLM-L6-v2) over all item descriptions;
- samples/s of semantic and recency retrieval (K=10 text side, K=60 CRM side) over all samples;
- prompts/s of rendering + tokenising, and the prompt-token statistics.
Prints one JSON line last.

    python benchmarks/item_text_speed.py [--model-folder data/06_models/smollm2-135m-instruct]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import yaml
from transformers import AutoTokenizer

from reclora_pipeline.duckdb_store import DuckDBTable, close_all, connect
from reclora_pipeline.item_text import descriptions, embeddings, language_model, prompts, retrieval
from reclora_pipeline.workspace import make_workspace, project_root, run_kedro


def timed(function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-folder", type=Path, default=project_root() / "data/06_models/smollm2-135m-instruct"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    model_folder = language_model.convert_embedded_gguf(args.model_folder)
    figures: dict[str, float] = {"torch_threads": torch.get_num_threads()}

    with tempfile.TemporaryDirectory(prefix="item_text_speed_") as scratch:
        workspace = make_workspace(scratch)
        result = run_kedro(workspace, "run", "--pipeline", "ingest", timeout=900)
        if result.returncode != 0:
            raise SystemExit(result.stderr[-4000:])
        connection = connect(workspace / "data/03_primary/reclora.duckdb")
        items = descriptions.describe_items(DuckDBTable(connection, "items").df())
        samples = connection.sql(
            "SELECT user_id, item_id, history_item_ids, history_ratings FROM samples ORDER BY sample_id"
        ).to_arrow_table()
        users = DuckDBTable(connection, "users").df()
        close_all()

    texts = items.description.tolist()
    model, tokenizer = language_model.load_causal_lm(str(model_folder))
    raw, seconds = timed(
        embeddings.mean_pooled_embeddings,
        embeddings.llm_encoder(model),
        tokenizer,
        texts,
        args.batch_size,
    )
    figures["llm_items_per_s"] = len(texts) / seconds
    encoder, sentence_tokenizer = embeddings.load_sentence_encoder()
    _, seconds = timed(
        embeddings.mean_pooled_embeddings, encoder, sentence_tokenizer, texts, args.batch_size
    )
    figures["sentence_items_per_s"] = len(texts) / seconds

    reduced = embeddings.pca_reduce(raw, 512)
    lookup = np.zeros((int(items.item_id.max()) + 1, reduced.shape[1]), dtype=np.float32)
    lookup[items.item_id.to_numpy()] = reduced
    table = retrieval.normalised_table(lookup, "cosine")
    history, lengths = retrieval.padded(samples.column("history_item_ids"), np.int64)
    targets = samples.column("item_id").to_numpy()
    for strategy, k in (("semantic", 10), ("recency", 10), ("semantic", 60), ("recency", 60)):
        _, seconds = timed(
            retrieval.select_positions, history, lengths, targets, k, strategy, table
        )
        figures[f"retrieval_{strategy}_k{k}_samples_per_s"] = len(targets) / seconds

    positions, counts = retrieval.select_positions(history, lengths, targets, 10, "semantic", table)
    chosen = retrieval.gather_lists(history, positions, counts).to_pylist()
    ratings, _ = retrieval.padded(samples.column("history_ratings"), np.float32)
    chosen_ratings = retrieval.gather_lists(ratings, positions, counts).to_pylist()
    titles = dict(zip(items.item_id, items.title, strict=True))
    profile = {
        int(u.user_id): prompts.decode_profile(u.gender, u.age, u.occupation, False)
        for u in users.itertuples()
    }
    parameters = yaml.safe_load((project_root() / "conf/base/parameters_item_text.yml").read_text())
    template = prompts.PromptTemplate.from_config("movies", parameters["item_text"]["templates"])
    chat_tokenizer = AutoTokenizer.from_pretrained(model_folder)
    (rendered, token_counts, _), seconds = timed(
        prompts.render_prompts,
        template,
        chat_tokenizer,
        [profile[int(user)] for user in samples.column("user_id").to_numpy()],
        [
            [(titles[i], r) for i, r in zip(ids, rates, strict=True)]
            for ids, rates in zip(chosen, chosen_ratings, strict=True)
        ],
        [titles[int(t)] for t in targets],
        512,
    )
    figures["prompts_per_s"] = len(rendered) / seconds
    figures["median_prompt_tokens"] = float(np.median(token_counts))
    figures["p95_prompt_tokens"] = float(np.percentile(token_counts, 95))
    figures["max_prompt_tokens"] = float(token_counts.max())
    figures["items"] = len(texts)
    figures["samples"] = len(targets)
    print(json.dumps({key: round(value, 1) for key, value in figures.items()}))


if __name__ == "__main__":
    main()
