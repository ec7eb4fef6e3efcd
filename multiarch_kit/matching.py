"""Which platforms run where: containerd's ``Only`` and ``OnlyStrict`` matchers.

A matcher knows platforms only, never index entries, registries or engines (as in containerd/platforms);
:func:`multiarch_kit.manifests.select` uses it to choose an index entry.
"""

from __future__ import annotations

from .platforms import Platform, format, normalize


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
        variant = p.variant or "v8"
        major_s, _, minor_s = variant.removeprefix("v").partition(".")
        if not major_s.isdigit() or (minor_s and not minor_s.isdigit()):
            return vector
        major, minor = int(major_s), int(minor_s or 0)
        vector = [like("arm64", f"v{major}" + (f".{m}" if m else "")) for m in range(minor, -1, -1)]
        if major == 9:  # v9.x also runs v8.(x+5) and below
            vector += [like("arm64", "v8" + (f".{m}" if m else "")) for m in range(min(minor + 5, 9), -1, -1)]
        if major in (8, 9):  # and containerd lets every arm64 take 32-bit arm up to v8
            vector += _vector(like("arm", "v8"))
    return [normalize(v) for v in vector]


def _version(variant: str) -> int | None:
    digits = variant.removeprefix("v")
    return int(digits) if digits.isdigit() else None


class Matcher:
    """containerd's ordered matcher: ``match`` says whether a platform is accepted; ``rank`` how well (0 is best)."""

    def __init__(self, wanted: list[Platform]):
        self.wanted = wanted

    def rank(self, p: Platform) -> int | None:
        """The index of the first wanted platform ``p`` satisfies, or None."""
        q = normalize(p)
        for i, w in enumerate(self.wanted):
            if (w.os, w.architecture, w.variant) == (q.os, q.architecture, q.variant) and _os_version_ok(w, p):
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
    return Matcher(_vector(normalize(p)))


def only_strict(p: Platform) -> Matcher:
    """containerd's ``OnlyStrict``: ``p`` alone, after normalisation."""
    return Matcher([normalize(p)])
