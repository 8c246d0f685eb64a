"""``lute-kernel db view``: a read-only terminal viewer of ``lute.db`` (Textual; upstream's dbview).

Owns the screen: one tab per Task table plus ``gen_cfg`` and ``exec_cfg``, rows newest first with
status colours (a RUNNING row whose kernel is gone shows LOST), the highlighted row's every column
(parameters, result, provenance, its header and environment) in a detail pane, a filter line, and a
refresh whenever the database changes (a flow running next door). It never writes or locks the
database: every read is one short read-only connection (`lute_kernel.db.read_table`, ``mode=ro``);
with WAL a reader never makes a writer wait; between reads it only ``stat``s the files. What rows
look like is `lute_kernel.cli.view_rows`'s.
"""

from __future__ import annotations

import functools
import inspect
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, ClassVar, Dict, List, Optional, Tuple, TypeVar

from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.css.query import NoMatches
from textual.widgets import DataTable, Footer, Header, Input, Static, TabbedContent, TabPane

from lute_kernel.cli.view_rows import RowFilter, cell, detail_table, indexed, list_columns, parse_filter, row_key
from lute_kernel.errors import InputError
from lute_kernel.file_stamps import settled

SHARED = ("gen_cfg", "exec_cfg")
VIEW_LIMIT = 5_000
"""Newest rows shown per table."""
POLL_SECONDS = 1.0

_Handler = TypeVar("_Handler", bound=Callable[..., Any])


def while_shown(handler: _Handler) -> _Handler:
    """Run a handler of the viewer only while its widgets exist.

    A message or timer still queued when the viewer closes (q, or the end of a test) is handled
    after its widgets are gone: looking one up raises NoMatches, and there is nothing to draw, so
    the handler ends quietly. While the tabs exist, a widget that is missing is a bug: it raises.
    """
    if inspect.iscoroutinefunction(handler):

        @functools.wraps(handler)
        async def guarded_async(self: DbView, *args: Any, **kwargs: Any) -> Any:
            try:
                return await handler(self, *args, **kwargs)
            except NoMatches:
                if self.shown():
                    raise
                return None

        return guarded_async  # type: ignore[return-value]

    @functools.wraps(handler)
    def guarded(self: DbView, *args: Any, **kwargs: Any) -> Any:
        try:
            return handler(self, *args, **kwargs)
        except NoMatches:
            if self.shown():
                raise
            return None

    return guarded  # type: ignore[return-value]


"""How often the files are ``stat``ed to see whether a writer committed (nothing is opened)."""

Snapshot = Dict[str, List[Dict[str, Any]]]

__all__ = ["DbView", "is_racy", "load_snapshot"]


def is_racy(signature: Optional[Tuple[Tuple[int, int], ...]], taken_ns: int) -> bool:
    """Whether a read made when ``signature`` was taken (at ``taken_ns``) may miss a later commit.

    A checkpoint rewrites pages in place, so the size alone does not move (`lute_kernel.file_stamps`).
    """
    return signature is not None and not settled((mtime or None for _, mtime in signature), taken_ns)


def load_snapshot(work_dir: Path) -> Snapshot:
    """Read every table (newest `VIEW_LIMIT` rows each) with the status a reader should see."""
    from lute_kernel import db

    snapshot: Snapshot = {}
    for table in db.table_names(work_dir):
        rows = db.read_table(work_dir, table, limit=VIEW_LIMIT)
        for row in rows:
            shown = db.display_status(row)
            if shown is not None:
                row["result.task_status"] = shown
        snapshot[table] = rows
    for table in SHARED:
        try:
            snapshot[table] = db.read_table(work_dir, table, limit=VIEW_LIMIT)
        except InputError:  # a database no run has written yet
            snapshot[table] = []
    return snapshot


class DbView(App[None]):
    """The viewer. ``poll_seconds`` is how often it looks for changes (0: never)."""

    TITLE = "lute-kernel db view"
    CSS = """
    #filter { margin: 0 1; }
    #panes { height: 1fr; }
    TabbedContent { width: 3fr; }
    #detail-pane { width: 2fr; border-left: solid $accent; padding: 0 1; }
    #status { height: 1; padding: 0 1; color: $text-muted; }
    DataTable { height: 1fr; }
    """
    AUTO_FOCUS = "DataTable"
    BINDINGS: ClassVar[List[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("r", "reload", "Refresh"),
        Binding("slash", "focus_filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
    ]

    def __init__(self, work_dir: Path, *, poll_seconds: float = POLL_SECONDS) -> None:
        super().__init__()
        self.work_dir = work_dir
        self.poll_seconds = poll_seconds
        self.snapshot: Snapshot = load_snapshot(work_dir)
        self.filter: RowFilter = RowFilter()
        self.reloads = 0
        self._signature = self._current_signature()
        self._shown: Dict[str, Dict[str, Dict[str, Any]]] = {}

    def _current_signature(self) -> Optional[Tuple[Tuple[int, int], ...]]:
        """The files' signature, noting whether a read now could miss a commit that leaves it unchanged."""
        from lute_kernel.db import change_signature

        taken = time.time_ns()
        signature = change_signature(self.work_dir)
        self._racy = is_racy(signature, taken)
        return signature

    def _tables(self) -> List[str]:
        return [*(t for t in self.snapshot if t not in SHARED), *SHARED]

    def compose(self) -> ComposeResult:
        """Lay out the header, filter, tabs with tables, the detail pane and the status line."""
        yield Header()
        yield Input(placeholder="filter: status:FAILED run:12 words…  (/ to focus, Esc to clear)", id="filter")
        with Horizontal(id="panes"):
            with TabbedContent(id="tabs"):
                for table in self._tables():
                    with TabPane(table, id=f"tab-{table}"):
                        yield DataTable(id=f"table-{table}", cursor_type="row", zebra_stripes=True)
            with VerticalScroll(id="detail-pane"):
                yield Static("Highlight a row to see every column.", id="detail")
        yield Static("", id="status")
        yield Footer()

    def on_mount(self) -> None:
        """Fill the tables and start watching the files."""
        self.sub_title = str(self.work_dir / "lute.db") + " (read-only)"
        for table in self._tables():
            self._fill(table)
        self._status()
        if self.poll_seconds > 0:
            self.set_interval(self.poll_seconds, self.check_for_changes)

    def _fill(self, table: str) -> None:
        widget = self.query_one(f"#table-{table}", DataTable)
        rows = self.snapshot.get(table, [])
        kept = widget.cursor_row if widget.row_count else 0
        current = self._cursor_key(table)  # the same row stays highlighted across refreshes
        widget.clear(columns=True)
        columns = list_columns(table, rows)
        for column, heading in columns:
            widget.add_column(heading, key=column)
        shown = [row for row in rows if self.filter.matches(row)]
        self._shown[table] = indexed(shown)
        for row in shown:
            widget.add_row(*(cell(column, row.get(column)) for column, _ in columns), key=row_key(row))
        if current is not None and current in self._shown[table]:
            widget.move_cursor(row=widget.get_row_index(current))
        elif shown:
            widget.move_cursor(row=min(kept, len(shown) - 1))

    def _status(self) -> None:
        counts = sum(len(rows) for name, rows in self.snapshot.items() if name not in SHARED)
        shown = sum(len(rows) for name, rows in self._shown.items() if name not in SHARED)
        tables = len([t for t in self.snapshot if t not in SHARED])
        moment = datetime.now().strftime("%H:%M:%S")
        filtered = f", {shown} shown by the filter" if self.filter != RowFilter() else ""
        text = f"{tables} Task tables, {counts} runs{filtered} · read {moment} · read-only, refreshes on change"
        self.query_one("#status", Static).update(text)

    def shown(self) -> bool:
        """True while the viewer's widgets exist (from its start until it closes)."""
        try:
            return self.is_running and bool(self.query("#tabs"))
        except Exception:  # no screen left at all: closed
            return False

    @while_shown
    async def reload(self) -> None:
        """Read the database again and redraw (new Task tables get a tab)."""
        self.snapshot = load_snapshot(self.work_dir)
        self.reloads += 1
        tabs = self.query_one("#tabs", TabbedContent)
        for table in self._tables():
            if not self.query(f"#table-{table}"):
                pane = TabPane(table, DataTable(id=f"table-{table}", cursor_type="row", zebra_stripes=True))
                pane.id = f"tab-{table}"
                await tabs.add_pane(pane)
        for table in self._tables():
            self._fill(table)
        self._status()
        self._refresh_detail()

    def _refresh_detail(self) -> None:
        table = self._active_table()
        self._show_detail(table, self._cursor_key(table))

    @while_shown
    async def check_for_changes(self) -> None:
        """Reload when the files' size or time changed (a writer committed), or the last read was racy."""
        if not self.shown():
            return
        racy = self._racy
        signature = self._current_signature()
        if signature != self._signature or racy:
            self._signature = signature
            await self.reload()

    @while_shown
    async def action_reload(self) -> None:
        """Read the database again now."""
        self._signature = self._current_signature()
        await self.reload()

    @while_shown
    def action_focus_filter(self) -> None:
        """Move to the filter line."""
        self.query_one("#filter", Input).focus()

    @while_shown
    def action_clear_filter(self) -> None:
        """Empty the filter."""
        self.query_one("#filter", Input).value = ""

    @while_shown
    def on_input_changed(self, event: Input.Changed) -> None:
        """Apply the filter to every table as it is typed."""
        self.filter = parse_filter(event.value)
        for table in self._tables():
            self._fill(table)
        self._status()
        self._refresh_detail()

    def _active_table(self) -> str:
        return self.query_one("#tabs", TabbedContent).active.removeprefix("tab-")

    def _show_detail(self, table: str, key: Optional[str]) -> None:
        row = self._shown.get(table, {}).get(key) if key is not None else None
        detail = self.query_one("#detail", Static)
        if row is None:
            detail.update(f"{table}: no row {'matches the filter' if self._shown.get(table) == {} else 'highlighted'}.")
        else:
            detail.update(detail_table(f"{table} #{row.get('id')}", row))

    def _cursor_key(self, table: str) -> Optional[str]:
        widget = self.query_one(f"#table-{table}", DataTable)
        if not widget.row_count:
            return None
        return str(widget.coordinate_to_cell_key(widget.cursor_coordinate).row_key.value)

    @while_shown
    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        """Show every column of the highlighted row (of the table in view)."""
        table = (event.data_table.id or "").removeprefix("table-")
        if table == self._active_table():
            self._show_detail(table, str(event.row_key.value))

    @while_shown
    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        """Show the detail of the new tab's highlighted row, and give its table the keys."""
        self._refresh_detail()
        self.query_one(f"#table-{self._active_table()}", DataTable).focus()
