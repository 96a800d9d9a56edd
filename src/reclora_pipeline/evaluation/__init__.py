"""Evaluation library (no Kedro): test-set metrics with bootstrap CIs, report, figures.

Modules: metrics (AUC, LogLoss, accuracy, bootstrap intervals, paired comparison), report
(the metrics JSON document and its markdown table), plots (matplotlib figures on Agg).
"""
