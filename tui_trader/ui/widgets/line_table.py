"""LineTable: a table drawn through Textual's Line API over a prepared row model.

Panes that change on every refresh (watchlist, positions, orders, health) use it instead of
``DataTable``: ``set_rows`` compares the new row model with the old one and refreshes only the
lines that changed, and ``render_line`` reuses a cached strip per row. Measured in DESIGN §5:
about 6 ms per frame against about 40 ms for a ``DataTable`` driven by ``update_cell``.

A pane whose rows all change at every refresh (quotes, marks) hands over
:class:`~tui_trader.ui.widgets.rows.LazyRows`: only the rows on screen are ever formatted (about 20 of 100 at
200x60).

Cells carry a *role* (``pos``, ``neg``, ``warn``, ``crit``, ``dim``, ``accent``, ``badge``); each
role is a component class styled in CSS with theme variables, so no colour lives in Python.

No scrollbar: the panes have a fixed size, and a scrollbar is one more widget the compositor
renders on every pass and cuts every line at, repainted whenever the row count changes (new
orders): about a fifth of a frame's CPU in ``profile_console --real``. When the rows do not
all fit, the header's right end says which are on screen (``21-40/101``); the wheel and the
cursor keys still scroll.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.filter import ANSIToTruecolor, LineFilter
from textual.geometry import Region, Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui_trader.ui.format import fit, fit_figures
from tui_trader.ui.widgets.rows import Column, LazyRows, Row

ROLES = ("pos", "neg", "warn", "crit", "dim", "accent", "badge", "working")
STRIP_CACHE = 128
"""Rows whose strips are kept: every visible row (≤ 60 even maximised at 200×60) plus some scrolled away;
the keys of rows scrolled away or gone age out. Each strip holds its segments and seven small caches
(≈ 4–5 KB): at 1,024 the orders and alerts tables held ≈ 2,000 strips (≈ 10 MB) by mid-session."""


class LineTable(ScrollView, can_focus=True):
    """A scrollable table with a sticky header, a row cursor and per-row strip caching."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "cursor(-10)", "Page up", show=False),
        Binding("pagedown", "cursor(10)", "Page down", show=False),
        Binding("home", "cursor(-100000)", "First", show=False),
        Binding("end", "cursor(100000)", "Last", show=False),
    ]
    """Cursor movement; the pane's own bindings act on the row under the cursor."""

    COMPONENT_CLASSES = {"line-table--header", "line-table--cursor", "line-table--empty"} | {
        f"line-table--{role}" for role in ROLES
    }

    DEFAULT_CSS = """
    LineTable { background: transparent; overflow-x: hidden; overflow-y: hidden; }
    LineTable > .line-table--header { text-style: bold; color: $text-muted; }
    LineTable > .line-table--cursor { background: $surface-lighten-1; }
    LineTable:focus > .line-table--cursor { background: $primary 40%; }
    LineTable > .line-table--empty { color: $text-muted; text-style: italic; }
    LineTable > .line-table--pos { color: $success; }
    LineTable > .line-table--neg { color: $error; }
    LineTable > .line-table--warn { color: $warning; }
    LineTable > .line-table--crit { color: $error; text-style: bold; }
    LineTable > .line-table--dim { color: $text-disabled; }
    LineTable > .line-table--accent { color: $accent; }
    LineTable > .line-table--badge { color: $secondary; text-style: bold; }
    LineTable > .line-table--working { text-style: bold; }
    """

    cursor_row: reactive[int] = reactive(0)
    """Index of the highlighted row."""

    stale: reactive[bool] = reactive(False)
    """When set, every cell is drawn dimmed: the data is not live."""

    class CursorMoved(Message):
        """The highlighted row changed."""

    def __init__(self, columns: Sequence[Column], *, empty: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.columns = tuple(columns)
        self.empty_text = empty
        self.show_cursor = True
        self.cursor_always = False
        self._rows: Sequence[Row] = ()
        self._strips: LRUCache[str, tuple[Row, bool, Strip]] = LRUCache(STRIP_CACHE)
        self._layout: tuple[int, tuple[tuple[int, int, bool, bool, bool, bool], ...]] = (-1, ())
        self._styles: dict[str, Style] = {}
        self._cell_styles: dict[tuple[bool, str, str | None], Style] = {}
        self._row_styles: dict[tuple[bool, str], dict[str | None, Style]] = {}
        """``_cell_styles`` by (cursor, row role), then cell role: one lookup per cell."""
        self._lost: str | None = None
        """The key of the row that was under the cursor and left the rows: nothing is selected until
        the cursor moves, so a key pressed for that row does not act on the one now in its place."""
        self._below = False
        """The lost row did not leave: newer rows pushed it below a view kept on the newest (:attr:`newest_first`)."""
        self.newest_first = False
        """New rows come at the top (orders, alerts): the view stays on them unless the operator scrolled away,
        and then keeps the rows the operator scrolled to (:meth:`_keep_place`), counting those that came above."""
        self._newer = 0
        """Rows that came above the view since the operator scrolled away from the top."""

    @property
    def rows(self) -> Sequence[Row]:
        """The current row model."""
        return self._rows

    @property
    def selected(self) -> Row | None:
        """The row under the cursor, if any (none while the row it was on is gone: :attr:`lost_key`)."""
        if self._lost is not None:
            return None
        return self._rows[self.cursor_row] if 0 <= self.cursor_row < len(self._rows) else None

    @property
    def lost_key(self) -> str | None:
        """The key of the row the cursor was on until it left the rows (``None``: the cursor is on a row)."""
        return self._lost

    @property
    def lost_below(self) -> bool:
        """The row of :attr:`lost_key` is still there, pushed below the view by newer rows."""
        return self._lost is not None and self._below

    @property
    def newer_above(self) -> int:
        """How many rows came above the view since the operator scrolled away from the newest (0 at the top)."""
        return self._newer if self.scroll_offset.y > 0 else 0

    def set_empty(self, text: str) -> None:
        """What the table says when it has no rows (the first line redrawn when it changed)."""
        if text != self.empty_text:
            self.empty_text = text
            if not self._rows:
                self.refresh(Region(0, 1, max(self.virtual_size.width, self.size.width), 1))

    def set_rows(self, rows: Sequence[Row]) -> None:
        """Replace the row model; only lines whose row changed are redrawn.

        A :class:`LazyRows` is kept as it is: only the rows on screen get formatted. The cursor
        stays on its row (by key) wherever the row now sorts: see :meth:`_follow_cursor`. A table
        of :attr:`newest_first` rows keeps the newest in view, or the operator's place: see
        :meth:`_keep_place`.
        """
        old, new = self._rows, rows if isinstance(rows, LazyRows | tuple) else tuple(rows)
        top = self.scroll_offset.y
        self._rows = new
        self._set_virtual_rows(len(new))
        if self.newest_first:
            self._keep_place(old, new, top)
        self._follow_cursor(old, new, pinned=self.newest_first and top == 0)
        self._refresh_changed(old, new)

    def _keep_place(self, old: Sequence[Row], new: Sequence[Row], top: int) -> None:
        """Keep the rows the operator scrolled to on screen as newer rows come above them.

        At the top the view stays there, on the newest rows. Scrolled away, the view moves down by
        the rows that came above its first row (found by key: a :class:`LazyRows` formats the rows
        up to it, only when it moved), and they are counted (:attr:`newer_above`): the new rows
        slid the operator's rows down and the cursor's row out of sight, and the view followed
        the cursor, so a pane showed rows 4-17 of 34 with the two working orders above.
        """
        if top == 0:
            self._newer = 0
            return
        if top >= len(old) or (top < len(new) and new[top].key == old[top].key):
            return
        key = old[top].key
        found = next((i for i, row in enumerate(new) if row.key == key), None)
        if found is not None and found != top:
            self._newer += max(found - top, 0)
            self.scroll_to(y=found, animate=False, immediate=True)

    def _follow_cursor(self, old: Sequence[Row], new: Sequence[Row], pinned: bool = False) -> None:
        """Move the cursor to where its row (by key) is in ``new``; mark it lost when the row is gone.

        By index, a new order sorted above the one under the cursor slid another one under it, and
        ``x`` cancelled that one. A row gone leaves the cursor at its place, drawn nowhere and
        selecting nothing, until the operator moves it; a row back (a filter cleared) takes the cursor
        back. The rows are searched only when the cursor's row moved (an order added above it): a
        :class:`LazyRows` then formats the rows up to it, once (one is not searched for a row gone).

        In a view kept on the newest rows (``pinned``) a row pushed below the view lets the cursor go
        the same way (:attr:`lost_below`): following it scrolled the newest rows out of sight.
        """
        index = self.cursor_row
        key: str | None = None
        if self._lost is None and 0 <= index < len(old):
            key = old[index].key
            if index < len(new) and new[index].key == key:
                key = None  # the row did not move
        elif self._lost is not None and not isinstance(new, LazyRows):
            key = self._lost
        if key is not None:
            found = next((i for i, row in enumerate(new) if row.key == key), None)
            if found is None:
                self._lost, self._below = key, False
            elif pinned and found >= max(self.size.height - 1, 1) or self._below and not pinned:
                self._lost, self._below = key, True  # still there, out of sight: the view does not chase it
            else:
                self._lost, self._below, index = None, False, found
        self.cursor_row = min(index, max(len(new) - 1, 0))

    def _set_virtual_rows(self, count: int) -> None:
        """Size the scrollable area for ``count`` rows and a header, without a screen layout.

        Assigning ``virtual_size`` lays out (and repaints) the whole screen, yet a pane's table
        has a box fixed by its pane: only the scroll range depends on the row count. A table of
        ``height: auto`` (in a dialog) grows with its rows, so it is laid out.
        """
        size = Size(self._content_width(), count + 1)
        if size == self.virtual_size:
            return
        height = self.styles.height
        if not self.size or (height is not None and height.is_auto):
            self.virtual_size = size  # a table sized by its rows (in a dialog) must be laid out again
            return
        self.set_reactive(LineTable.virtual_size, size)
        self._scroll_update(size)

    def _refresh_changed(self, old: Sequence[Row], new: Sequence[Row]) -> None:
        """One refresh for the changed rows on screen, runs of adjacent rows merged.

        Rows scrolled out of view are not refreshed: scrolling repaints what it exposes. A
        row that exists on one side only has changed (it appears, or its line goes blank); a
        new row count also repaints the header, whose end says which rows are shown. An order
        added below the fold (a fill in a long orders list) repaints the header alone, not
        the whole table.
        """
        top = round(self.scroll_offset.y)
        n_old, n_new = len(old), len(new)
        bottom = min(top + max(self.size.height - 1, 0), max(n_old, n_new))
        width = max(self.virtual_size.width, self.size.width)
        regions: list[Region] = [Region(0, 0, width, 1)] if n_old != n_new else []
        start = -1
        for index in range(top, bottom + 1):
            changed = index < bottom and (index >= n_old or index >= n_new or old[index] != new[index])
            if changed and start < 0:
                start = index
            elif not changed and start >= 0:
                regions.append(Region(0, start - top + 1, width, index - start))
                start = -1
        if regions:
            self.refresh(*regions)

    def action_cursor(self, delta: int) -> None:
        """Move the cursor by ``delta`` rows.

        A lost cursor (its row gone) sits between the rows around the gap: down selects the row
        that took the gone row's place, up the one above it.
        """
        if not self._rows:
            return
        target = self.cursor_row + delta
        if self._lost is not None:
            target = self.scroll_offset.y if self._below else target - (1 if delta > 0 else 0)
            self._lost, self._below = None, False
            self.refresh_lines(self.cursor_row + 1)  # drawn again with the cursor
        self.cursor_row = min(max(target, 0), len(self._rows) - 1)

    def watch_cursor_row(self, old: int, new: int) -> None:
        self.refresh_lines(old + 1)
        self.refresh_lines(new + 1)
        self.scroll_to_region_of_row(new)
        self.post_message(self.CursorMoved())

    def watch_stale(self) -> None:
        self._strips.clear()
        self._cell_styles.clear()
        self._row_styles.clear()
        self.refresh()

    def scroll_to_region_of_row(self, index: int) -> None:
        """Keep row ``index`` visible below the sticky header."""
        top = self.scroll_offset.y
        visible = max(self.size.height - 1, 1)
        if index < top:
            self.scroll_to(y=index, animate=False)
        elif index >= top + visible:
            self.scroll_to(y=index - visible + 1, animate=False)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._styles.clear()
        self._cell_styles.clear()
        self._row_styles.clear()
        self._strips.clear()

    def on_focus(self) -> None:
        if self._lost is not None and self._below:  # the cursor shows up where the operator looks: the top row
            self._lost, self._below = None, False
            self.cursor_row = self.scroll_offset.y
        self.refresh_lines(self.cursor_row + 1)

    def on_blur(self) -> None:
        self.refresh_lines(self.cursor_row + 1)

    def on_resize(self) -> None:
        self._strips.clear()
        self.virtual_size = Size(self._content_width(), len(self._rows) + 1)

    @property
    def allow_vertical_scroll(self) -> bool:
        """Scrolling is allowed whenever the rows do not fit (there is no scrollbar to say so)."""
        return self.virtual_size.height > self.size.height

    def get_line_filters(self) -> Sequence[LineFilter]:
        """The app's line filters without the ANSI-to-truecolor one.

        Every style drawn here comes from the theme through CSS, in truecolor (with an ANSI
        theme the app disables that filter anyway), so it would only copy each strip: yet the
        compositor applies it to every line of every widget it renders, changed or not (about
        one eighth of a frame's compositor time at 200x60). Other filters (``NO_COLOR``'s
        monochrome, ``TEXTUAL_FILTERS=dim``) still apply.
        """
        return [f for f in self.app.get_line_filters() if not isinstance(f, ANSIToTruecolor)]

    def render_lines(self, crop: Region) -> list[Strip]:
        """Textual's ``render_lines``, without its per-line styling when there is none to apply.

        Textual's styles cache wraps every repainted line in the widget's border, padding,
        outline, hatch, tint and opacity, and copies it into a new strip: about a third of a
        painted line's CPU, and a frame where new orders shift the whole orders table paints
        60-odd lines. A pane's table has none of these (its pane draws the border), so the
        strip :meth:`render_line` built is already what Textual would produce; it is returned
        as it is, through the same line cache, dirty lines and line filters, and its own
        caches (filters, cuts) then live as long as the row's. Any styling (the stale pane's
        ``text-opacity``, a border in a dialog, a hovered link) takes Textual's path;
        ``tests/ui/test_line_table.py`` compares the two line for line.
        """
        if not self._plain():
            return super().render_lines(crop)
        cache = self._styles_cache  # noqa: SLF001 - the same line cache and dirty lines as Textual's path
        width, height = self.region.size
        if width != cache._width:  # noqa: SLF001
            cache.clear()
            cache._width = width  # noqa: SLF001
        lines, dirty = cache._cache, cache._dirty_lines  # noqa: SLF001
        filters = self.get_line_filters()
        background = self.background_colors[1] if filters else None
        strips: list[Strip] = []
        for y in crop.line_range:
            strip = lines.get(y)
            if strip is None or y in dirty:
                strip = lines[y] = self._plain_line(y, width, height)
            for line_filter in filters:
                strip = strip.apply_filter(line_filter, background)  # type: ignore[arg-type]
            strips.append(strip)
        dirty.difference_update(crop.line_range)
        if crop.column_span != (0, width):
            x1, x2 = crop.column_span
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def _plain_line(self, y: int, width: int, height: int) -> Strip:
        """Line ``y`` as Textual's styles cache renders it for a widget without gutter or effects."""
        line = self.render_line(y) if y < height else None
        if line is not None and line.cell_length == width:
            return line
        base, background = self.background_colors
        inner = self._styles_cache.get_inner_outer(base, background)[0].rich_style  # noqa: SLF001
        return Strip.blank(width, inner) if line is None else line.adjust_cell_length(width, inner)

    def _plain(self) -> bool:
        """True when Textual's styles cache would add nothing to the lines of :meth:`render_line`.

        Checked at every render (a dozen style lookups): the styles change with classes (a stale
        pane), and a cached answer would have to follow every ancestor's opacity.
        """
        styles = self.styles
        return (
            not self.BLANK
            and self._border_title is None
            and self._border_subtitle is None
            and not any(edge for edge, _ in styles.border)
            and not any(edge for edge, _ in styles.outline)
            and not any(styles.padding)
            and styles.text_opacity == 1.0
            and not styles.tint.a
            and (not styles.has_rule("hatch") or styles.hatch == "none")
            and self.opacity == 1.0
            and not (self.auto_links and self.hover_style._link_id)  # noqa: SLF001
        )

    def render_line(self, y: int) -> Strip:
        """The header on line 0, then the rows from the scroll offset."""
        width = self.size.width
        if y == 0:
            return self._header_strip(width)
        index = self.scroll_offset.y + y - 1
        if index >= len(self._rows):
            if index == 0 and self.empty_text:
                return self._text_strip(self.empty_text, "line-table--empty", width)
            return Strip.blank(width, self._base_style())
        return self._row_strip(self._rows[index], index == self.cursor_row, width)

    def _row_strip(self, row: Row, cursor: bool, width: int) -> Strip:
        cursor = cursor and self.show_cursor and (self.has_focus or self.cursor_always) and self._lost is None
        cached = self._strips.get(row.key)
        if cached is not None and cached[0] == row and cached[1] == cursor:
            return cached[2]
        strip = self._build_row(row, cursor, width)
        if cached is not None:  # Textual's LRUCache.set keeps the value of a key it holds
            self._strips.discard(row.key)
        self._strips.set(row.key, (row, cursor, strip))
        return strip

    def _build_row(self, row: Row, cursor: bool, width: int) -> Strip:
        """The row as a strip of a few segments: a run of cells in the row's style is one segment.

        Fewer segments make every later step cheaper (Textual's line filters, the compositor's
        cuts, the terminal encoding). A styled cell is a segment of its own; the gap after
        every cell is in the row's style. This runs for every changed row on screen (most of
        a frame's lines at 10,000 ticks/s), so the loop looks styles up in one dict.
        """
        row_role = row.role
        styles = self._row_styles.get((cursor, row_role))
        if styles is None:
            styles = self._row_styles[(cursor, row_role)] = {None: self._cell_style(cursor, row_role, None)}
        base = styles[None]
        cells, roles = row.cells, row.roles
        n_cells, n_roles = len(cells), len(roles)
        segments: list[Segment] = []
        run: list[str] = []
        used = 0
        for index, cell_width, right, keep_end, cut_start, figures in self._visible(width):
            text = cells[index] if index < n_cells else ""
            if figures and len(text) > cell_width:
                text = fit_figures(text, cell_width)
            elif keep_end:
                text = text[-cell_width:].rjust(cell_width)
            elif cut_start and len(text) > cell_width > 1:
                text = "…" + text[1 - cell_width:]
            elif len(text) != cell_width:
                text = fit(text, cell_width, right=right)
            role = roles[index] if index < n_roles else ""
            style = styles.get(role)
            if style is None:
                style = styles[role] = self._cell_style(cursor, row_role, role)
            if style is base:
                run.append(text)
            else:
                if run:
                    segments.append(Segment("".join(run), base))
                    run = []
                segments.append(Segment(text, style))
            run.append(" ")
            used += cell_width + 1
        if used < width:
            run.append(" " * (width - used))
        segments.append(Segment("".join(run), base))
        return Strip(segments, used).crop(0, width) if used > width else Strip(segments, width)

    def _cell_style(self, cursor: bool, row_role: str, role: str | None) -> Style:
        """The style of a cell in ``role`` (``None``: the gaps between cells), combined once.

        ``Style`` additions are cached by rich, yet two lookups per cell add up over a frame.
        Cells (not gaps) are dimmed while the table is stale.
        """
        key = (cursor, row_role, role)
        style = self._cell_styles.get(key)
        if style is None:
            style = self._style("line-table--cursor") if cursor else self._base_style()
            if row_role:
                style += self._style(f"line-table--{row_role}")
            if role:
                style += self._style(f"line-table--{role}")
            if role is not None and self.stale:
                style += self._style("line-table--dim")
            self._cell_styles[key] = style
        return style

    def _header_strip(self, width: int) -> Strip:
        style = self._base_style() + self._style("line-table--header")
        text = "".join(fit(self.columns[index].title, cell_width, right=right) + " "
                       for index, cell_width, right, *_ in self._visible(width))
        text = text[:width].ljust(width)
        note, arrow = self._position_note()
        if note and text[-len(note) - 1:].isspace():  # only over blank header cells
            text = text[:width - len(note) - 1] + note + " "
        elif arrow and text[-1:] == " ":  # no room: an arrow in the last cell still says there is more
            text = text[:-1] + arrow
        return Strip([Segment(text, style)], width)

    def _position_note(self) -> tuple[str, str]:
        """(``21-40/101``, an arrow: ↓ more below, ↑ more above, ↕ both) when not every row fits."""
        total, visible = len(self._rows), max(self.size.height - 1, 0)
        if total <= visible or not visible:
            return "", ""
        top = round(self.scroll_offset.y)
        last = min(top + visible, total)
        arrow = "↕" if top and last < total else "↑" if top else "↓"
        return f"{top + 1}-{last}/{total}", arrow

    def _text_strip(self, text: str, component: str, width: int) -> Strip:
        style = self._base_style() + self._style(component)
        return Strip([Segment(fit(" " + text, width), style)]).crop(0, width)

    def _base_style(self) -> Style:
        """The widget's own rich style, cached until the styles change (it walks the ancestors)."""
        style = self._styles.get("")
        if style is None:
            style = self._styles[""] = self.rich_style
        return style

    def _style(self, component: str) -> Style:
        style = self._styles.get(component)
        if style is None:
            style = self._styles[component] = self.get_component_rich_style(component, partial=True)
        return style

    def column_width(self, index: int) -> int:
        """The width column ``index`` is drawn at in the table's present width (0: not drawn)."""
        return next((w for i, w, *_ in self._visible(self.size.width) if i == index), 0)

    def _visible(self, width: int) -> tuple[tuple[int, int, bool, bool, bool, bool], ...]:
        """(column index, width, right-aligned, keep end, cut start, figures) of the columns that fit in ``width``."""
        if self._layout[0] == width:
            return self._layout[1]
        chosen: set[int] = set()
        used = 0
        for index in sorted(range(len(self.columns)), key=lambda i: self.columns[i].priority):
            need = self.columns[index].width + 1
            if used + need <= width or not chosen:
                chosen.add(index)
                used += need
        spare = max(width - used, 0)
        layout = tuple(
            (i, c.width + (spare if c.flex else 0), c.right, c.keep_end, c.cut_start, c.figures)
            for i, c in enumerate(self.columns) if i in chosen
        )
        self._layout = (width, layout)
        return layout

    def _content_width(self) -> int:
        return max(self.size.width, 1)
