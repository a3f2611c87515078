"""The seed's :class:`ResultAggregator`: a batch's results as a DataFrame, a summary, exports.

Exports are written atomically (:mod:`.output`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .output import PathLike, atomic_writer, write_frame
from .types import BatchResult, is_dataframe, results_frame

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ResultAggregator"]


class ResultAggregator:
    """Aggregate and export batch processing results (the seed's class).

    Exports replace their file as the seed's did, but atomically (a temporary file renamed
    into place once complete); ``overwrite=False`` refuses an existing file instead.

    >>> from parallel_file_processor import ParallelProcessor
    >>> batch = ParallelProcessor(lambda x: {"double": 2 * x}).process([1, 2, 3])
    >>> ResultAggregator(batch).to_dataframe()["result_double"].tolist()
    [2, 4, 6]
    """

    def __init__(self, batch_result: BatchResult[Any]) -> None:
        self.batch_result = batch_result

    def to_dataframe(self) -> pd.DataFrame:
        """One row per item: the seed's columns (file_path, file_name, file_size, success,
        duration_seconds, error) plus status, error_type, attempts, worker_id, and the keys of
        dict results flattened as ``result_<key>`` (keys starting with ``_`` left out)."""
        return results_frame(self.batch_result.results, self.batch_result.result_keys)

    def summary(self) -> dict[str, Any]:
        """Totals, success rate, durations, throughput (files/s, MB/s), peak memory and the
        first ten errors (the seed's keys, plus more)."""
        b = self.batch_result
        durations = [r.duration_seconds for r in b.results]
        total_s = b.total_duration_seconds
        nbytes = b.total_bytes or sum(r.file_info.size_bytes for r in b.results)
        by_type: dict[str, int] = {}
        for r in b.results:
            if not r.success:
                key = r.error_type or r.status
                by_type[key] = by_type.get(key, 0) + 1
        return {
            "total_files": b.total_files,
            "successful": b.successful,
            "failed": b.failed,
            "cancelled": b.cancelled,
            "success_rate_pct": b.success_rate,
            "total_duration_seconds": total_s,
            "avg_duration_seconds": (total_s / b.total_files) if b.total_files else 0,
            "mean_item_seconds": (sum(durations) / len(durations)) if durations else 0.0,
            "max_item_seconds": max(durations, default=0.0),
            "throughput_files_per_s": (len(b.results) / total_s) if total_s > 0 else None,
            "throughput_mb_per_s": (nbytes / 1e6 / total_s) if total_s > 0 else None,
            "total_bytes": nbytes,
            "peak_memory_mb": b.peak_memory_mb,
            "worker_peak_memory_mb": dict(b.worker_peak_memory_mb),
            "interrupted": b.interrupted,
            "errors_by_type": by_type,
            "errors": b.errors[:10],
        }

    def export_csv(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write :meth:`to_dataframe` as CSV (atomically)."""
        return write_frame(self.to_dataframe(), path, overwrite=overwrite, fmt="csv")

    def export_json(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write :meth:`summary` as JSON (atomically), as the seed does."""
        with atomic_writer(path, overwrite=overwrite) as f:
            json.dump(self.summary(), f, indent=2, default=str)
            f.write("\n")
        return Path(path)

    def export_jsonl(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write one JSON object per item (JSON Lines)."""
        return write_frame(self.to_dataframe(), path, overwrite=overwrite, fmt="jsonl")

    def export_parquet(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write :meth:`to_dataframe` as Parquet (needs pyarrow)."""
        return write_frame(self.to_dataframe(), path, overwrite=overwrite, fmt="parquet")

    def export_errors_csv(self, path: PathLike, *, overwrite: bool = True) -> Path:
        """Write the failed items (path, error type, message, attempts...) so they can be
        re-run alone."""
        return write_frame(self.batch_result.errors_df(), path, overwrite=overwrite, fmt="csv")

    def combine_dataframes(self) -> pd.DataFrame:
        """Concatenate the results that are DataFrames (the seed's method)."""
        import pandas as pd

        dfs = [r for r in self.batch_result.successful_results() if is_dataframe(r)]
        if not dfs:
            return pd.DataFrame()
        return pd.concat(dfs, ignore_index=True)

