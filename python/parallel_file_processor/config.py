"""Job files: the seed's YAML shape, validated before any work starts.

Unknown keys and values of the wrong type are rejected with the key's path and what was
expected (``processing.max_workers: expected an integer >= 1, got 'eight'``). Relative paths
are resolved against the job file's directory, so a job runs the same from any directory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError, MissingExtraError
from .log import LEVELS
from .ratelimit import parse_rate

__all__ = ["JobConfig", "load_job", "parse_job"]

BUILTIN_PROCESSORS = ("csv_stats", "aggregate", "hash", "unzip", "file_info")
MODES = ("sequential", "thread_pool", "process_pool", "async")
#: the level of a job's log file unless ``logging.level`` says otherwise
DEFAULT_LOG_LEVEL = "info"


@dataclass
class JobConfig:
    directory: Path
    recursive: bool = True
    include_patterns: list[str] = field(default_factory=list)
    exclude_patterns: list[str] = field(default_factory=list)
    extensions: list[str] = field(default_factory=list)
    min_bytes: int = 0
    max_bytes: int | None = None
    skip_hidden: bool = False
    #: a built-in or MODULE:FUNCTION; unnamed, a job with ``output.combined_output`` merges
    #: the scanned tables into it (``aggregate``, as the seed's YAML means), else ``file_info``
    processor: str = "file_info"
    options: dict[str, Any] = field(default_factory=dict)
    mode: str = "thread_pool"
    max_workers: int | None = None
    batch_size: int | None = None
    timeout_seconds: float | None = None
    retries: int = 0
    prefetch: bool = False
    scheduler: str | None = None
    #: ``processing.checkpoint``: finished files' outcomes kept here; a re-run does new work only
    checkpoint: Path | None = None
    #: ``processing.rate_limit``: calls per second (or "100/min") for the whole run
    rate_limit: float | str | None = None
    results_csv: Path | None = None
    summary_json: Path | None = None
    combined_output: Path | None = None
    errors_csv: Path | None = None
    #: outputs are the job's own: a re-run replaces them (atomically) unless this is false
    overwrite: bool = True
    progress: bool = True
    show_eta: bool = True
    #: ``logging.file``: records of the run are appended here (failed files, retries...)
    log_file: Path | None = None
    #: ``logging.level``: ``debug``, ``info`` (default), ``warning``, ``error``
    log_level: str = DEFAULT_LOG_LEVEL
    #: where relative paths are taken from: the job file's folder, or the working directory
    #: when the scan directory exists only from there (the seed's config/job.yaml beside data/)
    base_dir: Path = field(default_factory=lambda: Path("."))
    #: the job file's folder (``MODULE:FUNCTION`` processors are also looked up here)
    job_dir: Path = field(default_factory=lambda: Path("."))


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


# key -> (checker, description) ; nested sections are dicts
_STR = (lambda v: isinstance(v, str) and v != "", "a non-empty string")
_OPT_STR = (lambda v: v is None or (isinstance(v, str) and v != ""), "a string or null")
_BOOL = (lambda v: isinstance(v, bool), "true or false")
_STR_LIST = (
    lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v),
    "a list of strings",
)
_POS_INT = (lambda v: v is None or (_is_int(v) and v >= 1), "an integer >= 1")
_NONNEG_INT = (lambda v: v is None or (_is_int(v) and v >= 0), "an integer >= 0")
_POS_NUM = (
    lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0),
    "a number > 0",
)
_MODE = (lambda v: v in MODES, f"one of {', '.join(MODES)}")
_DICT = (lambda v: isinstance(v, dict), "a mapping")


def _rate(v: Any) -> bool:
    try:
        parse_rate(v)
    except (TypeError, ValueError):
        return False
    return True


_RATE = (lambda v: v is None or _rate(v), "calls per second (a number > 0) or a string such "
         "as '100/min'")
_LEVEL = (lambda v: isinstance(v, str) and v.lower() in LEVELS, f"one of {', '.join(LEVELS)}")

SCHEMA: dict[str, Any] = {
    "scan": {
        "directory": _STR,
        "recursive": _BOOL,
        "include_patterns": _STR_LIST,
        "exclude_patterns": _STR_LIST,
        "extensions": _STR_LIST,
        "skip_hidden": _BOOL,
        "size_limits": {"min_bytes": _NONNEG_INT, "max_bytes": _NONNEG_INT},
    },
    "processing": {
        "processor": _STR,
        "options": _DICT,
        "mode": _MODE,
        "max_workers": _POS_INT,
        "batch_size": _POS_INT,
        "timeout_seconds": _POS_NUM,
        "retries": _NONNEG_INT,
        "prefetch": _BOOL,
        "scheduler": _OPT_STR,
        "checkpoint": _OPT_STR,
        "rate_limit": _RATE,
    },
    "output": {
        "results_csv": _OPT_STR,
        "summary_json": _OPT_STR,
        "combined_output": _OPT_STR,
        "errors_csv": _OPT_STR,
        "overwrite": _BOOL,
    },
    "progress": {"enabled": _BOOL, "show_eta": _BOOL},
    "logging": {"file": _STR, "level": _LEVEL},
}
REQUIRED = ("scan.directory",)


def _check(data: Any, schema: dict[str, Any], prefix: str, errors: list[str]) -> None:
    if not isinstance(data, dict):
        errors.append(f"{prefix or '<top>'}: expected a mapping, got {type(data).__name__}")
        return
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in schema:
            errors.append(f"{path}: unknown key (expected one of: {', '.join(schema)})")
            continue
        spec = schema[key]
        if isinstance(spec, dict):
            _check(value, spec, path, errors)
        else:
            ok, expected = spec
            if not ok(value):
                errors.append(f"{path}: expected {expected}, got {value!r}")


def parse_job(data: Any, base_dir: Path | str = ".") -> JobConfig:
    """Validate a job mapping (as loaded from YAML) and build a :class:`JobConfig`."""
    errors: list[str] = []
    _check(data, SCHEMA, "", errors)
    if isinstance(data, dict):
        for req in REQUIRED:
            section, key = req.split(".")
            if not isinstance(data.get(section), dict) or key not in data[section]:
                errors.append(f"{req}: required")
        proc = (
            (data.get("processing") or {}).get("processor")
            if isinstance(data.get("processing"), dict)
            else None
        )
        if isinstance(proc, str) and proc not in BUILTIN_PROCESSORS and ":" not in proc:
            errors.append(
                f"processing.processor: expected MODULE:FUNCTION or one of "
                f"{', '.join(BUILTIN_PROCESSORS)}, got {proc!r}"
            )
        opts = (data.get("processing") or {}).get("options") if isinstance(
            data.get("processing"), dict) else None
        if proc == "unzip" and not (isinstance(opts, dict) and opts.get("output_directory")):
            errors.append("processing.options.output_directory: required by the 'unzip' "
                          "processor")
        logging_s = data.get("logging")
        if isinstance(logging_s, dict) and "level" in logging_s and "file" not in logging_s:
            errors.append("logging.level: applies to logging.file, which is not set")
    if errors:
        raise ConfigError("invalid job file: " + "; ".join(errors))
    job_dir = Path(base_dir)
    scan, proc_s = data["scan"], data.get("processing", {})
    base = job_dir
    if not (job_dir / scan["directory"]).exists() and Path(scan["directory"]).exists():
        base = Path(".")  # written relative to where the job is run from, as the seed's is
    out, prog = data.get("output", {}), data.get("progress", {})
    log_s = data.get("logging", {})
    limits = scan.get("size_limits", {})

    def path(v: str | None) -> Path | None:
        return None if v is None else (base / v)

    return JobConfig(
        directory=base / scan["directory"],
        recursive=scan.get("recursive", True),
        include_patterns=scan.get("include_patterns", []),
        exclude_patterns=scan.get("exclude_patterns", []),
        extensions=scan.get("extensions", []),
        min_bytes=limits.get("min_bytes") or 0,
        max_bytes=limits.get("max_bytes"),
        skip_hidden=scan.get("skip_hidden", False),
        processor=proc_s.get("processor")
        or ("aggregate" if out.get("combined_output") else "file_info"),
        options=proc_s.get("options", {}),
        mode=proc_s.get("mode", "thread_pool"),
        max_workers=proc_s.get("max_workers"),
        batch_size=proc_s.get("batch_size"),
        timeout_seconds=proc_s.get("timeout_seconds"),
        retries=proc_s.get("retries", 0),
        prefetch=proc_s.get("prefetch", False),
        scheduler=proc_s.get("scheduler"),
        checkpoint=path(proc_s.get("checkpoint")),
        rate_limit=proc_s.get("rate_limit"),
        results_csv=path(out.get("results_csv")),
        summary_json=path(out.get("summary_json")),
        combined_output=path(out.get("combined_output")),
        errors_csv=path(out.get("errors_csv")),
        overwrite=out.get("overwrite", True),
        progress=prog.get("enabled", True),
        show_eta=prog.get("show_eta", True),
        log_file=path(log_s.get("file")),
        log_level=log_s.get("level", DEFAULT_LOG_LEVEL).lower(),
        base_dir=base,
        job_dir=job_dir,
    )


def load_job(path: Path | str) -> JobConfig:
    """Read and validate a YAML job file."""
    try:
        import yaml
    except ImportError:
        raise MissingExtraError(
            "job files need PyYAML: pip install 'parallel-file-processor[yaml]'"
        ) from None
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{p}: is a directory, not a job file (a YAML file such as "
                          "examples/job.yaml)")
    try:
        data = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        detail = " ".join(str(exc).split())
        raise ConfigError(f"{p}: not valid YAML: {detail}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a text file ({exc.reason} at byte {exc.start})") from None
    try:
        return parse_job(data, p.parent)
    except ConfigError as exc:
        raise ConfigError(f"{p}: {exc}") from None
