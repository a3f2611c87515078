"""Manifests: ``<hex>  <path>`` lines as ``b3sum``, ``sha256sum`` and their siblings write and
check them (GNU escaping, BSD-style lines read too).

:func:`manifest_from_results` writes the manifest of files already hashed (atomically, sorted,
paths relative to a base); :func:`verify_manifest` checks one, like ``sha256sum -c``. Hashing a
tree into a manifest in one call is :func:`parallel_file_processor.hash.write_manifest`.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _core
from .errors import ManifestError
from .output import PathLike, atomic_writer
from .progress import ProgressArg

if TYPE_CHECKING:
    import pandas as pd

    from ._core import HashResult

__all__ = ["manifest_from_results", "verify_manifest", "VerifyResult"]

_NAME_HINTS = [
    (re.compile(r"(^|[._-])(b3|blake3)", re.I), "blake3"),
    (re.compile(r"sha256", re.I), "sha256"),
    (re.compile(r"sha1", re.I), "sha1"),
    (re.compile(r"md5", re.I), "md5"),
    (re.compile(r"xxh3?_?128|xxh128", re.I), "xxh3_128"),
    (re.compile(r"xxh", re.I), "xxh3_64"),
    (re.compile(r"crc32c", re.I), "crc32c"),
]
_BY_LENGTH = {64: "blake3", 40: "sha1", 32: "md5", 16: "xxh3_64", 8: "crc32c"}
_HEX_LEN = {"blake3": 64, "b3": 64, "sha256": 64, "sha1": 40, "md5": 32, "xxh3_128": 32,
            "xxh128": 32, "xxh3_64": 16, "xxh3": 16, "xxh64": 16, "crc32c": 8}
_LINE = re.compile(r"^(\\?)([0-9a-fA-F]+) [ *](.+)$")
_BSD = re.compile(r"^(\\?)([A-Za-z0-9_-]+) \((.+)\) = ([0-9a-fA-F]+)$")


def _escape(name: str) -> tuple[str, bool]:
    """GNU coreutils' escaping: a leading backslash marks a name with \\\\ or \\n in it."""
    if "\\" in name or "\n" in name:
        return name.replace("\\", "\\\\").replace("\n", "\\n"), True
    return name, False


def _unescape(name: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), name)


def manifest_from_results(results: Iterable[HashResult], manifest_path: PathLike, *,
                          base: PathLike | None = None, overwrite: bool = True
                          ) -> tuple[Path, list[HashResult]]:
    """Write the manifest of results already hashed (see
    :func:`~parallel_file_processor.hash.write_manifest`); returns its
    path and the results left out because they have no digest."""
    manifest = Path(manifest_path).absolute()
    base_dir = os.fspath(Path(base).absolute() if base is not None else manifest.parent)
    target = os.fspath(manifest)
    failed = []
    lines = []
    for r in results:
        if r.digest is None:
            failed.append(r)
            continue
        path = os.path.abspath(r.path_str)
        if path == target:
            continue
        name, escaped = _escape(os.path.relpath(path, base_dir))
        lines.append(("\\" if escaped else "") + f"{r.digest}  {name}\n")
    lines.sort(key=lambda line: line.split("  ", 1)[1])
    with atomic_writer(manifest, overwrite=overwrite, encoding="utf-8") as f:
        f.writelines(lines)
    return manifest, failed


@dataclass
class VerifyResult:
    """The outcome of :func:`verify_manifest`, like ``sha256sum -c``."""

    manifest: Path
    algorithm: str
    #: (path as written, absolute path, status OK/FAILED/MISSING/ERROR, expected, actual)
    entries: list[tuple[str, Path, str, str, str | None]] = field(default_factory=list)
    #: (line number, text) of lines that are not manifest lines
    malformed: list[tuple[int, str]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for e in self.entries if e[2] == status)

    @property
    def ok(self) -> int:
        return self.count("OK")

    @property
    def failed(self) -> int:
        return self.count("FAILED")

    @property
    def missing(self) -> int:
        return self.count("MISSING")

    @property
    def all_ok(self) -> bool:
        return self.ok == len(self.entries) and not self.malformed

    def summary(self) -> dict[str, Any]:
        return {"manifest": str(self.manifest), "algorithm": self.algorithm,
                "entries": len(self.entries), "ok": self.ok, "failed": self.failed,
                "missing": self.missing, "errors": self.count("ERROR"),
                "malformed_lines": len(self.malformed)}

    def to_dataframe(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([(n, str(p), s, e, a) for n, p, s, e, a in self.entries],
                            columns=["name", "path", "status", "expected", "actual"])


def verify_manifest(manifest_path: PathLike, *, algorithm: str | None = None,
                    base: PathLike | None = None, workers: int | None = None,
                    progress: ProgressArg = None) -> VerifyResult:
    """Check every entry of a manifest written by this package, ``b3sum``, ``sha256sum`` or a
    sibling tool (GNU or BSD style lines): OK, FAILED (digest differs), MISSING. Malformed
    lines are reported with their line number. ``algorithm`` is guessed from the manifest's
    name, then from the digest length, when not given."""
    manifest = Path(manifest_path)
    try:
        text = manifest.read_bytes().decode("utf-8", "surrogateescape")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ManifestError(f"cannot read manifest {manifest}: {exc}") from None
    base_dir = Path(base) if base is not None else manifest.parent
    parsed: list[tuple[str, str, tuple[int, str]]] = []
    malformed: list[tuple[int, str]] = []
    bsd_algo = None
    for lineno, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _LINE.match(raw)
        if m:
            escaped, digest, name = m.groups()
            parsed.append((digest.lower(), _unescape(name) if escaped else name, (lineno, raw)))
            continue
        m = _BSD.match(raw)
        if m:
            escaped, tag, name, digest = m.groups()
            bsd_algo = bsd_algo or {"SHA256": "sha256", "SHA1": "sha1", "MD5": "md5",
                                    "BLAKE3": "blake3", "XXH3": "xxh3_64",
                                    "XXH128": "xxh3_128"}.get(tag.upper())
            parsed.append((digest.lower(), _unescape(name) if escaped else name, (lineno, raw)))
            continue
        malformed.append((lineno, raw))
    algo = algorithm or bsd_algo or _guess_algorithm(manifest, [d for d, _, _ in parsed])
    # A line whose digest cannot be this algorithm's is malformed, like any other bad line
    # (reported and counted); the rest is checked.
    want = _HEX_LEN.get(algo.lower().replace("-", "_"))
    if want is not None:
        malformed.extend((n, raw) for d, _, (n, raw) in parsed if len(d) != want)
        malformed.sort()
        parsed = [p for p in parsed if len(p[0]) == want]
    result = VerifyResult(manifest, algo, [], malformed)
    if not parsed:
        return result
    targets = [base_dir / name for _, name, _ in parsed]
    rows = _core.hash_paths([os.fspath(t) for t in targets], algo, workers=workers,
                            progress=None)
    for (expected, name, _), target, row in zip(parsed, targets, rows):
        digest, etype = row[2], row[3]
        if digest is None:
            status = "MISSING" if etype == "FileNotFoundError" else "ERROR"
        elif len(expected) != len(digest):
            status = "FAILED"
        else:
            status = "OK" if digest == expected else "FAILED"
        result.entries.append((name, target, status, expected, digest))
    return result


def _guess_algorithm(manifest: Path, digests: list[str]) -> str:
    for pattern, algo in _NAME_HINTS:
        if pattern.search(manifest.name):
            return algo
    # By the length most lines agree on (a stray line of another length is malformed).
    counts = Counter(len(d) for d in digests).most_common(2)
    if counts and (len(counts) == 1 or counts[0][1] > counts[1][1]):
        guess = _BY_LENGTH.get(counts[0][0])
        if guess:
            return guess
    raise ManifestError(f"cannot tell the algorithm of {manifest}; pass algorithm=...")
