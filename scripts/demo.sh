#!/usr/bin/env bash
# One command from a fresh clone to a running demo shop at http://127.0.0.1:8000:
# install, migrate, load the catalog fixture, index it, analyse it (cross-store links, segments), create an
# admin user, run the server.
# DEMO_PORT (default 8000) picks another port; DEMO_DATA_DIR (default example/data) another data folder.
set -euo pipefail
PORT=${DEMO_PORT:-8000}
cd "$(dirname "$0")/.."

bash scripts/install.sh
cd example
PY=../.venv/bin/python
echo "==> migrating the demo database (example/data/db.sqlite3)"
$PY manage.py migrate --noinput -v0
echo "==> loading the demo catalog (2 stores, their category trees, products)"
$PY manage.py loaddata demo_catalog -v1
echo "==> indexing (the bundled all-MiniLM-L6-v2 model, on a CPU through its ONNX export, made once into ~/.cache/semantic-catalog; unchanged rows are skipped on re-runs)"
$PY manage.py semantic_index
echo "==> cross-store analysis: category links, same-product matches, substitutes (the product page shows them)"
$PY manage.py semantic_analyze
echo "==> market segments (the Segments page): the products' vectors clustered (embedding-first), the clusters named by the LLM when its server answers (scripts/llm.sh), else by their most distinctive words"
NAMING=keywords
if $PY manage.py shell -v 0 -c "import urllib.request; from semantic_catalog.segmentation.conf import segmentation_settings; urllib.request.urlopen(segmentation_settings()['BASE_URL'].rstrip('/') + '/models', timeout=3)" >/dev/null 2>&1; then
  NAMING=llm
fi
$PY manage.py semantic_segment --index products --all --mode embedding_first --naming "$NAMING" --min-segments 6 --max-segments 12 --category "home improvement and garden products" --no-progress \
  || echo "==> (the segmentation run failed, see above; the demo goes on and the Segments page says how to run it)"
$PY manage.py semantic_status
if ! $PY manage.py shell -v 0 -c "from django.contrib.auth.models import User; raise SystemExit(not User.objects.filter(username='admin').exists())" 2>/dev/null; then
  DJANGO_SUPERUSER_PASSWORD=admin $PY manage.py createsuperuser --noinput --username admin --email admin@example.com
fi
echo "==> demo shop: http://127.0.0.1:$PORT  (admin: http://127.0.0.1:$PORT/admin, user admin / password admin)"
exec $PY manage.py runserver "127.0.0.1:$PORT"
