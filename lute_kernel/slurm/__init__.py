"""Slurm submission: ``lute-kernel submit`` writes an sbatch script that runs ``lute-kernel run``.

Owns turning a Task, its config and the requested resources into a batch script (pure functions:
``resources``, ``script``), submitting it and following the job (``commands``: the one seam that
runs ``sbatch``/``scontrol``/``sacct``; ``follow``: the polling loop), and the whole path
(``submission``). Must not run Tasks itself: inside the job, ``lute-kernel run`` does, as anywhere.
"""
