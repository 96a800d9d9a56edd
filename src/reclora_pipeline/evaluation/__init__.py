"""Evaluation library (no Kedro): every model scored and compared on the same test rows.

Modules: rows (the Few2Many test rows, the predictions tables), llm_scoring (P(Yes) of the
base model and of each arm, RecLoRA's gate weights), gates (mean gate weight per layer),
metrics (AUC, LogLoss, accuracy, bootstrap intervals, paired comparison), comparison (all
models' metrics, comparisons and figures), report (the metrics JSON document and its
markdown table), plots (matplotlib figures on Agg), settings (the evaluation parameters).
"""
