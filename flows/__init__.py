"""Prefect flows over upstream LUTE DAG files (``!LUTE_DAG``): a thin layer over the kernel's library API.

``dag`` (the nodes, as data), ``dag_yaml`` (reading a DAG file), ``graph`` (the runs a DAG expands
to: branches chosen, sweeps expanded), ``rules`` and ``scheduler`` (trigger rules, skip
propagation), ``validation`` (the whole flow checked before anything starts), ``show`` (the tree
``flow show`` draws) are pure and import neither Prefect nor the kernel's launch path.
``lute_dag`` is the Prefect flow; ``backends`` run one node each (``local``: the kernel API in this
process's node server, ``slurm``: ``lute-kernel submit --wait``); ``deployments`` registers and
triggers it. Never re-implements launching or recording: lute.db stays the record.
"""
