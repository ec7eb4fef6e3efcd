"""Docker Desktop's shape rehearsed on a Debian machine (``make test-desktop``), in parts with one job each:
``common`` (the rehearsal's names and small helpers), ``hub`` (Docker Hub's stand-in), ``network`` (the
engine's namespace, made and removed), ``engine`` (containerd, dockerd and the AirPlay stand-in inside it) and
``reader`` (the non-root reader and the copy of the checkout they run) and ``cost`` (what the reader's run took:
time, downloads, disk). ``scripts/rehearse_desktop.py`` puts them
together."""
