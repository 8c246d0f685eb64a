"""The warm kernel: an opt-in server (``lute-kernel serve``) that has paid the kernel's imports once.

A ``lute-kernel run`` finds the server of its own installation and environment, hands it its
command line, environment, working directory and terminal (file descriptors over a unix socket),
and the server forks a child that *is* that command — the same code as a cold ``run``, so the
same rows, output and exit codes — while the command waits and forwards its signals. Without a
server (the default) nothing changes. Stdlib only: :mod:`.client` runs before anything else.

- :mod:`.address`: where a server listens (per user, installation, Python path and Slurm job)
  and the checks that a socket there is ours.
- :mod:`.protocol`: the JSON messages, decoded strictly.
- :mod:`.client`: the ``run`` side.
- :mod:`.server`: the accept/fork/reap loop; :mod:`.child`: turning a forked child into the command.
"""
