"""Images as content: platforms and their matching, references, the manifest model, what a reference holds,
archives and layouts on disk, and the registry's HTTP API (its client, and the guard in front of the lab's)."""
