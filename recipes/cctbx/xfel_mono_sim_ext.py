"""Stand-in for cctbx's ``xfel_mono_sim_ext`` C++ extension, which Debian bookworm does not build.

``dials.stills_process`` imports ``xfel.mono_simulation`` (for its NaveParameters step), whose package
``__init__`` loads this extension although only the package's pure-Python parts are used. Installed
into the cctbx image by recipes/cctbx.def.j2; nothing here is called.
"""
