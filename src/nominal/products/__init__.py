"""The analytics products managers, analysts and practitioners use every day.

* :mod:`~nominal.products.demand` — demand dashboard: volumes, people known to many
  agencies, duplicate interventions;
* :mod:`~nominal.products.areas` — output-area measures and GeoJSON for the map;
* :mod:`~nominal.products.tasking` and :mod:`~nominal.products.pathways` — joint
  tasking, team queues, the multi-agency meeting view, intervention pathways;
* :mod:`~nominal.products.workbench` — read-only SQL over the pseudonymised tables an
  analyst's agreements allow (``nominal.connect()`` in Python);
* :mod:`~nominal.products.benefits` — benefits realisation, unit costs, programme
  tracker and risk register;
* :mod:`~nominal.products.usage` — system usage from the audit log.

The data layer is pure functions over a DuckDB connection on a lake snapshot, so the
same code serves pages, the CLI, tests and benchmarks.
"""
