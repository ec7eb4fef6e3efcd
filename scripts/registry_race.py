"""The race the lab's registry guard removes: HEADs on a tag while two writers re-push it. Distribution alone answers
some of those HEADs with 500; behind the guard none fail. ``make bench`` measures it on both, and
``tests/test_registry_guard.py`` holds the guard to no failure, with the same code."""

from __future__ import annotations

import hashlib
import threading

import requests

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def manifests(address: str, repo: str, n: int) -> list[bytes]:
    """``n`` image manifests (annotations differ) over one pushed config, ready to PUT."""
    config = b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}'
    digest = "sha256:" + hashlib.sha256(config).hexdigest()
    location = requests.post(f"http://{address}/v2/{repo}/blobs/uploads/", timeout=10).headers["Location"]
    requests.put(f"{location}{'&' if '?' in location else '?'}digest={digest}", data=config,
                 timeout=10).raise_for_status()
    return [('{"schemaVersion":2,"mediaType":"%s","config":{"mediaType":"application/vnd.oci.image.config.v1+json",'
             '"digest":"%s","size":%d},"layers":[],"annotations":{"n":"%d"}}'
             % (OCI_MANIFEST, digest, len(config), i)).encode() for i in range(n)]


def race(address: str, repo: str, *, puts: int = 150) -> tuple[list[tuple], int]:
    """Two writers PUT the tag ``puts`` times each while two readers HEAD it: (every failure seen, HEADs made)."""
    bodies = manifests(address, repo, 4)
    tag = f"http://{address}/v2/{repo}/manifests/latest"
    requests.put(tag, data=bodies[0], headers={"Content-Type": OCI_MANIFEST},
                 timeout=30).raise_for_status()  # the tag exists before anyone reads it
    digests = {"sha256:" + hashlib.sha256(b).hexdigest() for b in bodies}
    failures: list[tuple] = []
    heads, stop = [0], threading.Event()

    def writer(k: int) -> None:
        session = requests.Session()
        for n in range(puts):
            r = session.put(tag, data=bodies[(n + k) % 4], headers={"Content-Type": OCI_MANIFEST}, timeout=30)
            if r.status_code != 201:
                failures.append(("PUT", r.status_code, r.text[:120]))

    def reader() -> None:
        session = requests.Session()
        while not stop.is_set():
            r = session.head(tag, headers={"Accept": OCI_MANIFEST}, timeout=30)
            heads[0] += 1
            if r.status_code != 200 or r.headers.get("Docker-Content-Digest") not in digests:
                failures.append(("HEAD", r.status_code, r.headers.get("Docker-Content-Digest")))

    writers = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    readers = [threading.Thread(target=reader) for _ in range(2)]
    for t in writers + readers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    return failures, heads[0]
