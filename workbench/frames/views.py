"""Audit views of an events frame: activity over time, per actor, gaps.

Registers the ``df.sss`` accessor (importing :mod:`workbench.frames` does it).
Matplotlib is needed only by the ``plot_*`` methods.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, cast

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes

    from . import Source

__all__ = ["AuditAccessor", "activity"]


def _activity(frame: pd.DataFrame, freq: str, by: str, time: str) -> pd.DataFrame:
    if frame.empty:
        return pd.DataFrame(index=pd.DatetimeIndex([], tz="UTC", name=time), dtype="int64")
    labels = frame[by].astype(object).where(frame[by].notna(), "(none)").astype(str)
    counts = frame.groupby([pd.Grouper(key=time, freq=freq), labels]).size()
    table = counts.unstack(by, fill_value=0)
    table.columns = [str(c) for c in table.columns]
    return table.astype("int64")


def activity(
    source: Source | pd.DataFrame,
    freq: str = "D",
    by: str = "type",
    *,
    time: str = "recorded_at",
    chunksize: int = 200_000,
) -> pd.DataFrame:
    """Events per period (``freq``, a pandas offset such as ``"h"``, ``"D"``,
    ``"W"``) and per value of ``by`` (``type``, ``actor``, ``aggregate_type``),
    bucketed by ``time`` (``recorded_at`` or business time ``occurred_at``).

    Works a chunk at a time on a store, so it fits any size.
    """
    if isinstance(source, pd.DataFrame):
        return _activity(source, freq, by, time)
    total: pd.DataFrame | None = None
    from . import iter_events

    for chunk in iter_events(source, chunksize):
        part = _activity(chunk[[time, by]], freq, by, time)
        total = part if total is None else total.add(part, fill_value=0)
    if total is None:
        return _activity(pd.DataFrame({time: [], by: []}), freq, by, time)
    return total.fillna(0).astype("int64").sort_index()


@pd.api.extensions.register_dataframe_accessor("sss")
class AuditAccessor:
    """Audit views of an :func:`events` frame, as ``df.sss.<view>()``.

    ``time`` picks the clock: ``recorded_at`` (when the store learnt of an
    event, the default) or ``occurred_at`` (business time).

    Example:
        >>> df = events("shop.db")
        >>> df.sss.payloads()        # data as dicts
        >>> df.sss.activity("D")     # events per day and type
        >>> df.sss.actors()          # events per actor and type
        >>> df.sss.gaps()            # time since the aggregate's previous event
        >>> df.sss.plot_activity("W", time="occurred_at")
    """

    def __init__(self, frame: pd.DataFrame) -> None:
        missing = {"recorded_at", "type"} - set(frame.columns)
        if missing:
            raise AttributeError(
                f"df.sss needs a frame from frames.events (missing {', '.join(sorted(missing))})"
            )
        self._frame = frame

    def activity(
        self, freq: str = "D", by: str = "type", time: str = "recorded_at"
    ) -> pd.DataFrame:
        """Events per period and per value of ``by``."""
        return _activity(self._frame, freq, by, time)

    def payloads(self, column: str = "data") -> pd.Series:
        """The JSON text of ``data`` (or ``metadata``) as dicts."""
        return self._frame[column].map(json.loads, na_action="ignore").astype(object)

    def actors(self) -> pd.DataFrame:
        """Events per actor (rows) and type (columns), busiest actor first."""
        frame = self._frame
        actor = frame["actor"].astype(object).fillna("(none)")
        table = pd.crosstab(actor, frame["type"].astype(object))
        table = table.loc[table.sum(axis=1).sort_values(ascending=False).index]
        table.index.name = "actor"
        table.columns.name = "type"
        return table

    def gaps(self, time: str = "recorded_at") -> pd.Series:
        """For each event, the time since the previous event of its aggregate
        (``NaT`` for an aggregate's first event and for system events)."""
        frame = self._frame
        ordered = frame.sort_values("position") if "position" in frame.columns else frame
        gap = ordered.groupby("aggregate_id", dropna=True, observed=True)[time].diff()
        return gap.reindex(frame.index).rename("gap")

    def plot_activity(
        self, freq: str = "D", by: str = "type", time: str = "recorded_at", ax: Axes | None = None
    ) -> Axes:
        """A stacked bar chart of :meth:`activity` (the ten busiest values of ``by``)."""
        table = self.activity(freq, by, time)
        if table.shape[1] > 10:
            top = table.sum().sort_values(ascending=False).index
            table = pd.concat([table[top[:9]], table[top[9:]].sum(axis=1).rename("other")], axis=1)
        fine = freq.lower().lstrip("0123456789") in ("h", "min", "s")
        table.index = cast(pd.DatetimeIndex, table.index).strftime(
            "%Y-%m-%d %H:%M" if fine else "%Y-%m-%d"
        )
        ax = table.plot.bar(stacked=True, ax=ax, width=0.9, title=f"Events per {freq} by {by}")
        ax.set_xlabel(time)
        ax.set_ylabel("events")
        return ax

    def plot_actors(self, top: int = 15, ax: Axes | None = None) -> Axes:
        """A stacked horizontal bar chart of the ``top`` busiest actors."""
        table = self.actors().head(top)
        table = table.loc[:, table.sum() > 0]
        ax = table.iloc[::-1].plot.barh(stacked=True, ax=ax, title="Events per actor", legend=False)
        ax.set_xlabel("events")
        return ax

    def plot_gaps(self, time: str = "recorded_at", bins: int = 40, ax: Axes | None = None) -> Axes:
        """A histogram of :meth:`gaps`, in hours."""
        hours = self.gaps(time).dropna().dt.total_seconds() / 3600
        ax = hours.plot.hist(bins=bins, ax=ax, title="Time between events of an aggregate")
        ax.set_xlabel("hours")
        return ax
