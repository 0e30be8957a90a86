"""`semantic-catalog`: the offline machine's command. Imports no Django; talks to files or HTTP.

semantic-catalog embed products.jsonl --out vectors/ [--model NAME_OR_PATH] [--batch-size 64] [--device auto]
semantic-catalog export-onnx --out onnx-model/ [--model NAME_OR_PATH] [--int8]
semantic-catalog pull URL --index products --out products.parquet --token TOKEN
semantic-catalog push URL --index products vectors/ --token TOKEN [--dry-run]
semantic-catalog evaluate products.jsonl --queries q.csv --judgments j.csv [--vectors vectors/] [--adapter a.npz]
semantic-catalog adapt products.jsonl --queries q.csv --judgments j.csv --out adapter.npz [--folds 5]
semantic-catalog analyze products.jsonl --out results/
semantic-catalog segment products.jsonl --out results/ --model NAME [--base-url URL] [--logs s3://bucket/prefix]
"""

from semantic_catalog.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
