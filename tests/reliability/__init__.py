"""The reliability suite (issue 15, item 6): real ``db_worker`` processes, real writer processes and
real faults (a worker killed mid-drain, the vector store unavailable, many concurrent writes), each
ending with ``semantic_check`` finding no difference. ``cluster`` starts the processes, ``scenarios``
runs the faults (also used by benchmarks/reliability.py), ``writer`` and ``monitor`` are the child
processes' side."""
