"""The offline batch job: many inputs into one JSONL/CSV/Parquet file, resumable and shardable.

``inputs`` expands files, folders, globs and manifests; ``journal`` names and tails the per-process
JSONL journals; ``job`` runs the Explainer over them. ``python -m affectllm.batch`` runs it.
"""
