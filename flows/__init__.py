"""Prefect flows over upstream LUTE DAG files (``!LUTE_DAG``): a thin layer over the kernel's library API.

``dag`` (the nodes, as data), ``dag_yaml`` (reading a DAG file), ``graph`` (the runs a DAG expands
to: branches chosen, sweeps expanded), ``rules`` and ``scheduler`` (trigger rules, skip
propagation), ``validation`` (the whole flow checked before anything starts), ``show`` (the tree
``flow show`` draws) are pure and import neither Prefect nor the kernel's launch path.
``lute_dag`` is the Prefect flow (``step_loop`` its loop, ``runtime`` one run's state); ``backends``
run one step each (``local``: the kernel API, forked per step from a node server; ``slurm``:
``lute-kernel submit --wait``); ``deployments`` registers and triggers it. Never re-implements
launching or recording: lute.db stays the record.
"""
