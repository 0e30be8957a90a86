"""Settings of the latency benchmark's server: the demo project as is, plus a naive baseline endpoint.

``/naive/search?q=`` is what gluing the parts together by hand gives: encode the query on every
request (no cache) and run LanceDB's flat search (no index), then load the products from SQL.
Run by benchmarks/search_latency.py with DJANGO_SETTINGS_MODULE=latency_site.
"""

from __future__ import annotations

import os

from demo.settings import *  # noqa: F403

ROOT_URLCONF = "latency_urls"
DEBUG = False
# The server encoder's threads (search_latency.py --encoder-threads): two for the ONNX encoders, one for
# torch, the README's advice for web servers. Indexing the titles (search_latency.prepare) sets
# LATENCY_ENCODER_THREADS to use every core.
ENCODER_THREADS = int(os.environ.get("LATENCY_ENCODER_THREADS", "1"))
SEMANTIC_CATALOG["ENCODER"]["OPTIONS"]["num_threads"] = ENCODER_THREADS  # noqa: F405
if os.environ.get("LATENCY_ENCODER_BACKEND"):  # --encoder torch: the encoder's backend forced to torch
    SEMANTIC_CATALOG["ENCODER"]["OPTIONS"]["backend"] = os.environ["LATENCY_ENCODER_BACKEND"]  # noqa: F405
if os.environ.get("LATENCY_FP32_QUERIES"):  # --encoder fp32-queries: no int8 weights for queries
    SEMANTIC_CATALOG["ENCODER"]["OPTIONS"]["int8_queries"] = False  # noqa: F405
