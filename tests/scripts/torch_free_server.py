"""A search server process on the ONNX encoder: indexes a few products, serves the HTTP API on a real
socket, queries it, and reports whether torch was ever imported. Run by tests/test_torch_free.py."""

import json
import os
import sys
import threading
import urllib.request
from pathlib import Path
from wsgiref.simple_server import WSGIRequestHandler, make_server

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "example"), str(ROOT / "src")]
os.environ["DJANGO_SETTINGS_MODULE"] = "demo.settings"
os.environ["DEMO_DATA_DIR"] = sys.argv[2]
os.environ["DJANGO_DEBUG"] = "0"

import django  # noqa: E402
from django.conf import settings  # noqa: E402

django.setup()
settings.SEMANTIC_CATALOG = {
    "DATA_DIR": sys.argv[2],
    "ENCODER": {"BACKEND": "semantic_catalog.engine.encoders.onnx.OnnxEncoder", "OPTIONS": {"model_dir": sys.argv[1]}},
}

from django.core.management import call_command  # noqa: E402
from django.core.wsgi import get_wsgi_application  # noqa: E402

call_command("migrate", verbosity=0)
from shop.models import Category, Product, Store  # noqa: E402

store = Store.objects.create(name="S", slug="s")
category = Category.objects.create(store=store, name="Tools")
for name in ("Cordless drill driver", "Garden hose 30 m", "Cast iron skillet", "LED light bulb"):
    Product.objects.create(name=name, price=10, store=store, category=category)


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, get_wsgi_application(), handler_class=Quiet)
threading.Thread(target=server.serve_forever, daemon=True).start()
url = f"http://127.0.0.1:{server.server_port}/api/semantic/products/search?mode=%s&q=%s"
answers = {}
for mode, query in (("semantic", "battery+powered+screwdriver"), ("hybrid", "frying+pan"), ("keyword", "hose")):
    with urllib.request.urlopen(url % (mode, query)) as response:
        answers[mode] = [hit["fields"]["name"] for hit in json.load(response)["results"]][:1]
server.shutdown()
print(
    json.dumps(
        {
            "answers": answers,
            "torch_loaded": "torch" in sys.modules,
            "sentence_transformers_loaded": "sentence_transformers" in sys.modules,
        }
    )
)
