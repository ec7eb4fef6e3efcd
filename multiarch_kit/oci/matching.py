"""Which platforms run where: containerd's ``Only`` and ``OnlyStrict`` matchers, and :func:`runs_natively`.

A matcher knows platforms only, never index entries, registries or engines (as in containerd/platforms);
:func:`multiarch_kit.manifests.select` uses it to choose an index entry.
"""

from __future__ import annotations

from .platforms import Platform, format


def _vector(p: Platform) -> list[Platform]:
    """containerd's ``platformVector``: ``p`` then what also runs where ``p`` runs, best first."""
    def like(arch: str, variant: str) -> Platform:
        return Platform(p.os, arch, variant, p.os_version, p.os_features)

    vector = [p]
    if p.architecture == "amd64":
        level = _version(p.variant)
        if level and level > 1:
            vector += [like("amd64", f"v{v}") for v in range(level - 1, 0, -1)]
        vector.append(like("386", ""))
    elif p.architecture == "arm":
        level = _version(p.variant)
        if level and level > 5:
            vector += [like("arm", f"v{v}") for v in range(level - 1, 4, -1)]
    elif p.architecture == "arm64":
        variant = p.variant or "v8"  # a normalised arm64 leaves its default v8 unwritten
        major_s, _, minor_s = variant.removeprefix("v").partition(".")
        if not major_s.isdigit() or (minor_s and not minor_s.isdigit()):
            return vector
        major, minor = int(major_s), int(minor_s or 0)
        vector = [like("arm64", f"v{major}" + (f".{m}" if m else "")) for m in range(minor, -1, -1)]
        if major == 9:  # v9.x also runs v8.(x+5) and below
            vector += [like("arm64", "v8" + (f".{m}" if m else "")) for m in range(min(minor + 5, 9), -1, -1)]
        if major in (8, 9):  # and containerd lets every arm64 take 32-bit arm up to v8
            vector += _vector(like("arm", "v8"))
    return vector


def _version(variant: str) -> int | None:
    digits = variant.removeprefix("v")
    return int(digits) if digits.isdigit() else None


class Matcher:
    """containerd's ordered matcher: ``match`` says whether a platform is accepted; ``rank`` how well (0 is best)."""

    def __init__(self, wanted: list[Platform]):
        self.wanted = wanted

    def rank(self, p: Platform) -> int | None:
        """The index of the first wanted platform ``p`` satisfies, or None."""
        for i, w in enumerate(self.wanted):
            if (w.os, w.architecture, w.variant) == (p.os, p.architecture, p.variant) and _os_version_ok(w, p):
                return i
        return None

    def match(self, p: Platform) -> bool:
        return self.rank(p) is not None

    def __repr__(self) -> str:
        return f"Matcher({', '.join(format(w) for w in self.wanted)})"


def _os_version_ok(wanted: Platform, p: Platform) -> bool:
    # Only Windows compares OS versions (major.minor.build); elsewhere the field is ignored.
    if wanted.os != "windows" or not wanted.os_version or not p.os_version:
        return True
    return wanted.os_version.split(".")[:3] == p.os_version.split(".")[:3]


def only(p: Platform) -> Matcher:
    """containerd's ``Only``: ``p`` and the platforms containerd accepts in its place, ranked best first."""
    return Matcher(_vector(p))


def only_strict(p: Platform) -> Matcher:
    """containerd's ``OnlyStrict``: ``p`` alone (normalised, as every platform is)."""
    return Matcher([p])


def runs_natively(engine: Platform, p: Platform) -> bool:
    """Whether an engine on ``engine`` runs ``p`` without an emulator, as containerd decides it: ``only(engine)``
    accepts ``p`` (amd64 runs 386; arm64 runs arm64 and 32-bit arm up to v8).

    This is the CPU's answer. Which program the kernel actually uses also depends on its binfmt_misc handlers,
    which it asks first: :func:`multiarch_kit.emulation.emulator_for` puts the two together.
    """
    return only(engine).match(p)
