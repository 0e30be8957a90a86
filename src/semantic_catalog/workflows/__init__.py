"""Optional Temporal workflows for bulk embedding (``pip install django-semantic-catalog[temporal]``).

``definitions`` holds the workflows (standard library and temporalio only: Temporal's sandbox replays
them), ``activities`` the Django work they run, ``service`` starts, watches, cancels and lists runs,
``worker`` builds the worker that ``semantic_temporal_worker`` runs, ``checks`` checks the TEMPORAL
setting at startup (E030, without temporalio). Nothing else here is imported unless
Temporal is used: importing this package imports neither temporalio nor Django.
"""
