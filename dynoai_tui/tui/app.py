"""The Textual dashboard app: samples the engine's Snapshot on a timer, keys drive the session.

Acquisition runs in the session's threads; the app never receives a message per
sample. A ``set_interval`` timer (20 Hz) reads ``session.snapshot`` (an immutable
object swapped by reference) and, when its ``seq`` moved, applies it to the
dashboard inside ``batch_update()`` so the whole frame paints once (the memray
live-TUI pattern). Keys are ``BINDINGS`` + ``action_*`` so the footer and the
command palette list them; replay keys are hidden when there is no replay.
"""

from __future__ import annotations

import contextlib
import gc
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
from textual.app import App
from textual.binding import Binding, BindingType
from textual.command import DiscoveryHit, Hit, Hits, Provider
from textual.css.query import NoMatches

from core.dynosheet import PullSheet
from core.snapshot import RecordingInfo, Snapshot
from core.source import SourceError
from dynoai_tui import INTERRUPTED
from dynoai_tui.tui.paths import toast_path
from dynoai_tui.tui.screens.dashboard import DashboardScreen
from dynoai_tui.tui.screens.modals import (
    ConfirmScreen,
    ConstraintsScreen,
    KeysScreen,
    NoteScreen,
)
from dynoai_tui.tui.screens.pulls import PullsScreen
from dynoai_tui.tui.widgets.heatmap import Heatmap

REFRESH_HZ = 20.0
"""How often the UI samples the session's snapshot."""
FULL_GC_INTERVAL_S = 10.0
"""How often the app collects the whole heap's cyclic garbage (see :func:`tune_gc`)."""
PULL_DONE = "Pull done"
"""Title of the toast with a finished pull's summary; opening the dyno sheet (``g``),
which draws that pull, dismisses it."""


def tune_gc() -> None:
    """Keep garbage collection out of the frame budget.

    Every frame allocates thousands of short-lived strips and segments; with the
    default gen-0 threshold (700) the collector runs several times a frame and a
    gen-2 pass over the whole startup heap (Textual, numpy, the session) costs tens
    of ms. Freezing the startup objects and collecting less often keeps p99 frame
    time flat. But Textual leaves cyclic garbage that outlives a young collection
    (each restyle of a widget with component classes makes throw-away DOM nodes
    with their style caches and strips; toasts): with these thresholds it piled up
    in the oldest generation for minutes (issue 10's TUI soak: ~60 DOM nodes and
    ~20,000 objects a minute, all freed by one full collection), so the app also
    runs a full collection every :data:`FULL_GC_INTERVAL_S`. Every 10 s, not every
    minute: what waits for it is mostly Textual's strips (each holds itself in its
    own crop cache, a cycle, with seven small caches) and they come by the thousand
    every 10 s; a minute of them kept the soak's RSS ~3 MB higher, while a
    collection costs 15-30 ms between frames (``bench/bench_tui.py``: frame p99 and
    latency p99 unchanged).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


class SessionLike(Protocol):
    """What the app needs from ``core.session.Session``."""

    @property
    def snapshot(self) -> Snapshot: ...
    @property
    def recording(self) -> bool: ...
    @property
    def replay(self) -> Any: ...
    def start_recording(self, path: str | Path) -> None: ...
    def stop_recording(self) -> None: ...
    def mark(self, kind: str, text: str = "") -> str | None: ...
    def set_constraints(self, constraints: Any) -> None: ...


PALETTE: tuple[tuple[str, str, str], ...] = (
    ("Recording: start / stop", "toggle_record", "Write the raw data to a .dynolog file"),
    ("Pull: mark start / stop", "toggle_pull", "Mark a manual pull start or stop"),
    ("Marker with a note", "marker", "Add a marker with a short note to the recording"),
    ("Heatmap: next view", "cycle_view", "hits, mean AFR, AFR error, knock, dwell"),
    (
        "Heatmap: priority regions",
        "toggle_regions",
        "Overlay region priorities: red P1, yellow P2, blue P3",
    ),
    ("Constraints editor", "constraints", "Edit rpm / MAP limits, max pulls, environment"),
    ("Dyno sheet of the pulls", "pulls", "Power, torque and AFR vs rpm, last pull over the others"),
    ("Alarm bell: on / off", "toggle_bell", "Ring the terminal bell on lean-at-WOT and knock"),
    ("Replay: pause", "replay_pause", "Pause playback"),
    ("Replay: play", "replay_play", "Play on (from the start once the log has ended)"),
    ("Replay: faster", "replay_faster", "Double the playback speed"),
    ("Replay: slower", "replay_slower", "Halve the playback speed"),
    ("Replay: back 10 s", "replay_seek(-10)", "Seek back ten seconds"),
    ("Replay: forward 10 s", "replay_seek(10)", "Seek forward ten seconds"),
)
"""Command palette entries: (title, action, help)."""


class DynoCommands(Provider):
    """Command palette entries for the dashboard actions that are available now."""

    def _entries(self) -> list[tuple[str, str, str]]:
        app = self.app
        out = []
        for title, action, help_text in PALETTE:
            name = action.partition("(")[0]
            if app.check_action(name, ()) is not False:
                out.append((title, action, help_text))
        return out

    async def discover(self) -> Hits:
        for title, action, help_text in self._entries():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, help_text in self._entries():
            score = matcher.match(title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(title),
                    partial(self.app.run_action, action),
                    help=help_text,
                )


HEATMAP_LEGEND: list[tuple[str, str]] = [
    ("", ""),
    ("heatmap", "MAP kPa rows x rpm columns; v cycles its views"),
    ("12", "hits in the cell (other views: the title says what)"),
    ("green", "trusted: hits, settled dwell and lambda SE reached"),
    ("blue", "hits, not trusted yet (darker: closer)"),
    ("·", "no data in the cell"),
    ("blank", "no data, and no test reaches the cell on this engine"),
    ("5h  5k", "3-wide cells: 500-599, 5000-5999 hits"),
    ("25  12", "3-wide cells: AFR 12.5 (1x.x), dwell 1.2 s"),
    ("++  --", "more (less) than the cell shows"),
    ("◆12", "a next target cell, its value after the ◆"),
    ("[12]", "the cell the engine is in (reverse video)"),
    ("~  L", "VE view: extrapolated, locked"),
    ("blue", "VE view: not confident yet, not exported (e exports)"),
    ("o", "regions: red P1 first, yellow P2, blue P3"),
    ("⚠", "Next tests: knock was seen in cells it loads"),
    ("checked", "Next tests: each test type's prediction error (tests checked)"),
]
"""The heatmap's symbols, under the keys (QA: nothing said what "◆" or "++" meant)."""


class DynoApp(App[int]):
    """Live dashboard over a running session (or a replay)."""

    CSS_PATH = "styles/dynoai.tcss"
    TITLE = "DynoAI"
    COMMANDS: ClassVar = App.COMMANDS | {DynoCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        # Quit first, then the replay's own keys (hidden live): the footer lists keys in
        # this order and cuts the tail at 80 columns, where a replay lost "q Quit" and
        # its seek keys
        Binding("q", "quit", "Quit"),
        # second: where a tuner looks for help first (QA: "?" and "h" did nothing), shown
        # because the footer cuts its tail at 80 columns (a replay lost "c Limits" and
        # "b Bell", and read "p Pul"): the box it opens lists every key
        Binding("question_mark", "show_help_panel", "Keys", key_display="?"),
        # one key, two bindings: check_action shows the one that applies, so a paused
        # replay's footer says "Play" (it said "space Pause" while paused)
        Binding("space", "replay_pause", "Pause"),
        Binding("space", "replay_play", "Play"),
        Binding("right_square_bracket,plus", "replay_faster", "Faster", key_display="]"),
        Binding("left_square_bracket,minus", "replay_slower", "Slower", key_display="["),
        Binding("left", "replay_seek(-10)", "-10s"),
        Binding("right", "replay_seek(10)", "+10s"),
        # then what a replay uses too (the heatmap's views, the pulls), before the live keys
        Binding("r", "toggle_record", "Record"),
        Binding("v", "cycle_view", "View"),
        Binding("g", "pulls", "Pulls"),
        Binding("p", "toggle_pull", "Pull"),
        Binding("m", "marker", "Marker"),
        Binding("o", "toggle_regions", "Regions"),
        # Hidden from the footer (it is full at 80 columns); the VE view's title names it.
        Binding("e", "export_ve", "Export VE", show=False),
        Binding("c", "constraints", "Limits"),
        Binding("b", "toggle_bell", "Bell"),
        # Ctrl-C is how a tuner stops a program in a terminal (Textual's own binding only
        # said "press ctrl+q to quit"); it asks first while recording, as q does
        Binding("ctrl+c", "quit", "Quit", show=False),
    ]
    REPLAY_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"replay_pause", "replay_play", "replay_faster", "replay_slower", "replay_seek"}
    )

    def __init__(
        self,
        session: SessionLike,
        *,
        store: Any = None,
        vehicle: str = "",
        replay: bool = False,
        record_dir: str | Path | None = None,
        clock: Callable[[], float] = time.time,
        refresh_hz: float = REFRESH_HZ,
        bell: bool = True,
        replay_length_s: float | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.store = store
        self.vehicle = vehicle or getattr(getattr(session, "config", None), "name", "")
        self.replay = replay
        self.record_dir = Path(record_dir) if record_dir is not None else Path.cwd()
        self.clock = clock
        """Wall clock for recording file names (injectable so tests are deterministic)."""
        self.refresh_hz = refresh_hz
        self.dashboard = DashboardScreen(
            vehicle=self.vehicle, replay=replay, replay_length_s=replay_length_s
        )
        self.frames = 0
        """Snapshots applied so far."""
        self.shown_seq = -1
        """``seq`` of the snapshot on screen."""
        self.last_recording: RecordingInfo | None = None
        self.recordings: list[str] = []
        """Every file recorded this session, in order (the summary lists them all)."""
        """The recording most recently on screen (its path is reported after quit)."""
        self.bell_on = bell
        """Ring the terminal bell when a bell alarm (lean at WOT, knock) starts."""
        self.sheet = getattr(getattr(session, "tracker", None), "sheet", None)
        """The session's dyno sheet builder (``core.dynosheet``), if its tracker has a SheetTap."""
        self._pulls_shown = 0
        self._paused_shown = False
        """Whether the footer's space key says Play (see :meth:`_replay_paused`)."""
        self._alarms_seen: tuple[str, ...] = ()
        self._record_io = False

    async def on_mount(self) -> None:
        await self.push_screen(self.dashboard)
        ve = getattr(getattr(self.session, "config", None), "ve", None)
        if ve is not None:
            self.dashboard.query_one(Heatmap).ve_settings = ve
        self.refresh_snapshot()
        tune_gc()
        self.set_interval(1.0 / self.refresh_hz, self.refresh_snapshot, name="snapshot")
        self.set_interval(FULL_GC_INTERVAL_S, self._collect_garbage, name="full-gc")

    def _collect_garbage(self) -> None:
        gc.collect()  # Textual's old cyclic garbage (see tune_gc)

    # ---- the frame -------------------------------------------------------------

    def refresh_snapshot(self) -> bool:
        """Apply the session's newest snapshot if it changed; True when something was applied."""
        snap = self.session.snapshot
        if snap is None or snap.seq == self.shown_seq:
            return False
        self._check_pulls()
        if self._replay_paused() != self._paused_shown:  # paused at the log's end, say
            self._paused_shown = not self._paused_shown
            self.refresh_bindings()
        try:
            with self.batch_update():
                self.dashboard.apply(snap)
                heatmap = self.dashboard.query_one(Heatmap)
                if heatmap.overlay:
                    heatmap.set_priority_map(self._priority_map(snap))
        except NoMatches:
            return False  # the app is shutting down and the widgets are already gone
        self.shown_seq = snap.seq
        self.frames += 1
        if snap.recording is not None:
            self.last_recording = snap.recording
            if snap.recording.path not in self.recordings:
                self.recordings.append(snap.recording.path)
        self._after_frame(snap)
        return True

    def _check_pulls(self) -> None:
        """After each WOT pull: its one-line summary, and the pulls screen follows."""
        pulls: tuple[PullSheet, ...] = self.sheet.pulls if self.sheet is not None else ()
        if len(pulls) < self._pulls_shown:  # a replay seek restarted the run
            self._pulls_shown = 0
            self.dashboard.last_pull = self.dashboard.last_pull_short = ""
        if len(pulls) > self._pulls_shown:
            self._pulls_shown = len(pulls)
            self.dashboard.last_pull = pulls[-1].summary_line()
            self.dashboard.last_pull_short = pulls[-1].summary_line(short=True)
            # pulls already done when the dashboard opens need no toast; nor does the
            # compact layout, whose alarm line shows the pull (at 80x24 the toast sat
            # over the instruction line for 8 s, while it said what to do next), nor the
            # dyno sheet, which draws the pull (the toast sat on its table of peaks)
            if isinstance(self.screen, PullsScreen):
                self.screen.show(pulls)
            elif self.frames and not self.dashboard.has_class("-compact"):
                self.notify(pulls[-1].summary_line(), title=PULL_DONE, timeout=8)

    def _after_frame(self, snap: Snapshot) -> None:
        """The bell on a new lean-at-WOT / knock alarm."""
        from core.alarms import bell_onsets

        if self.bell_on and bell_onsets(self._alarms_seen, snap.alarms):
            self.bell()
        self._alarms_seen = snap.alarms

    def _priority_map(self, snap: Snapshot) -> np.ndarray | None:
        """Region priority per cell from the vehicle config, knock cells raised (core.coverage.regions)."""
        from core.coverage.regions import DEFAULT_REGIONS, priority_map

        config = getattr(self.session, "config", None)
        regions = getattr(config, "regions", DEFAULT_REGIONS)
        grid = snap.grid

        class _Axes:
            rpm = grid.rpm_axis
            map_kpa = grid.map_axis

        return priority_map(_Axes(), regions, grid.knock_events)

    # ---- actions ---------------------------------------------------------------

    def _replay_paused(self) -> bool:
        return bool(self.replay and getattr(getattr(self.session, "replay", None), "paused", False))

    DASHBOARD_ACTIONS: ClassVar[frozenset[str]] = frozenset(
        {"cycle_view", "toggle_regions", "export_ve", "constraints"}
    )
    """Keys for what the dashboard shows: off (and out of the footer) on the dyno sheet,
    where "v" changed the hidden heatmap's view with nothing on screen to say so (QA)."""

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in self.REPLAY_ACTIONS:
            if not (self.replay and getattr(self.session, "replay", None) is not None):
                return False
            if action == "replay_pause":
                return not self._replay_paused()
            if action == "replay_play":
                return self._replay_paused()
            return True
        if action in self.DASHBOARD_ACTIONS and self.screen is not self.dashboard:
            return False
        if action == "constraints":
            return self.store is not None
        return True

    def action_toggle_record(self) -> None:
        """Start or stop recording in a worker thread (file creation and fsync can stall)."""
        if self._record_io:
            return  # the previous start / stop is still on its way to the disk
        self._record_io = True
        self.run_worker(self._toggle_record_io, thread=True, group="io", exit_on_error=False)

    def _toggle_record_io(self) -> None:
        try:
            if self.session.recording:
                rec = self.session.snapshot.recording
                self.session.stop_recording()
                where = f"\n{toast_path(rec.path)}" if rec is not None else ""
                self._from_worker(self.notify, f"Recording saved{where}")
            else:
                stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self.clock()))
                name = f"{self.vehicle or 'dynoai'}-{stamp}.dynolog"
                path = self.record_dir / name
                self.session.start_recording(path)
                self._from_worker(self.notify, f"Recording to\n{toast_path(path)}")
        except (OSError, ValueError, SourceError) as exc:
            self._from_worker(self.notify, f"Recording failed: {exc}", severity="error")
        finally:
            self._record_io = False
            self._from_worker(self.refresh_snapshot)

    def _from_worker(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback`` on the UI thread; nothing when the app is already gone."""
        with contextlib.suppress(RuntimeError):
            self.call_from_thread(callback, *args, **kwargs)

    def action_toggle_pull(self) -> None:
        kind = "pull_stop" if self.session.snapshot.in_pull else "pull_start"
        outcome = self.session.mark(kind)
        if kind == "pull_start":
            self.notify("Pull started", timeout=2)
        else:
            # kept and counted, or why not: a pull marked at idle was dropped with only
            # "Pull stopped", the count unchanged and no sheet under g
            self.notify(outcome or "Pull stopped", timeout=5 if outcome else 2)

    def action_marker(self) -> None:
        if not (self.session.recording or self._record_io):
            # a marker lives in the recording: the note went nowhere ("Marker added")
            self.notify("Not recording: press r first, then m marks the recording", timeout=3)
            return

        def done(note: str | None) -> None:
            if note is not None:
                self.session.mark("marker", note)
                self.notify(f"Marker: {note}" if note else "Marker added", timeout=2)

        self.push_screen(NoteScreen(), done)

    def action_cycle_view(self) -> None:
        self.dashboard.query_one(Heatmap).cycle_view()
        self.dashboard.set_heatmap_title()

    def action_export_ve(self) -> None:
        """Write the VE table corrected so far (.msq with the vehicle's tune, else change %)."""
        from dynoai_tui.tui.ve_export import export_live_ve

        snap = self.session.snapshot
        if snap is None:
            return
        try:
            message = export_live_ve(
                snap.grid, getattr(self.session, "config", None), self.store, self.vehicle,
                self.record_dir, self.clock(),
            )  # fmt: skip
        except (OSError, ValueError) as exc:
            self.notify(f"VE export failed: {exc}", severity="error")
            return
        self.notify(message, timeout=6)

    def action_toggle_regions(self) -> None:
        heatmap = self.dashboard.query_one(Heatmap)
        if not heatmap.overlay and self.dashboard.snapshot is not None:
            heatmap.set_priority_map(self._priority_map(self.dashboard.snapshot))
        on = heatmap.toggle_overlay()
        self.dashboard.set_heatmap_title()
        # QA: "o" swapped colours and said nothing (at 80 columns there is no title)
        self.notify(
            "Regions on: red P1 first, yellow P2, blue P3" if on else "Regions off",
            timeout=2,
        )

    def action_constraints(self) -> None:
        from core.plan.planner import Constraints

        store = self.store
        if store is None:
            return
        vehicle = self.vehicle

        def save(constraints: Any) -> None:
            self.session.set_constraints(constraints)  # the running plan uses them at once

        def persist(constraints: Any) -> None:  # a worker thread: SQLite may wait for a lock
            try:
                store.set_constraints(vehicle, constraints)
            except ValueError as exc:  # StoreError: locked, read-only, disk full
                self._from_worker(
                    self.notify, f"Constraints NOT saved for {vehicle}: {exc}", severity="error"
                )
            else:
                self._from_worker(self.notify, f"Constraints saved for {vehicle}")

        def done(result: Any) -> None:
            if result is not None:
                self.run_worker(
                    lambda: persist(result), thread=True, group="io", exit_on_error=False
                )

        config = getattr(self.session, "config", None)
        current = store.get_constraints(vehicle) or getattr(config, "constraints", None)
        if current is None:
            current = Constraints()
        self.push_screen(ConstraintsScreen(vehicle, current, Constraints.from_mapping, save), done)

    def action_pulls(self) -> None:
        if isinstance(self.screen, PullsScreen):
            self.pop_screen()
            return
        self._dismiss_pull_toasts()
        self.push_screen(PullsScreen(self.sheet.pulls if self.sheet is not None else ()))

    def _dismiss_pull_toasts(self) -> None:
        """Dismiss the "Pull done" toasts; the others (errors, a saved file) stay.

        The dyno sheet draws the pull and lists its peaks, which is all such a toast
        says: one still up sat over the sheet for the rest of its 8 s. Textual has no
        public call to dismiss one notification (``clear_notifications`` takes the
        errors too); ``_unnotify`` is what its Toast calls when clicked. A Textual
        without it (private, so it may go) leaves the toasts to time out, as before.
        """
        unnotify = getattr(self, "_unnotify", None)
        if unnotify is None:
            return
        for notification in list(self._notifications):
            if notification.title == PULL_DONE:
                unnotify(notification, refresh=False)
        self._refresh_notifications()

    def action_toggle_bell(self) -> None:
        self.bell_on = not self.bell_on
        self.notify("Alarm bell on" if self.bell_on else "Alarm bell off", timeout=2)

    def action_show_help_panel(self) -> None:
        """The keys as a modal over the dashboard: it never squeezes the gauges; Esc closes it."""
        self.push_screen(KeysScreen(self._key_rows()))

    def _key_rows(self) -> list[tuple[str, str]]:
        rows = []
        for binding in self.BINDINGS:
            assert isinstance(binding, Binding)
            if self.check_action(binding.action.partition("(")[0], ()) is False:
                continue
            if binding.action == "show_help_panel" or binding.key == "ctrl+c":
                continue
            key = binding.key_display or binding.key.split(",")[0]
            rows.append((key, binding.description))
        rows.append(("ctrl+p", "command palette"))
        return rows + HEATMAP_LEGEND

    def _replay_call(self, method: str, *args: float) -> None:
        control = getattr(self.session, "replay", None)
        if control is None:
            return
        getattr(control, method)(*args)
        self.refresh_snapshot()

    def action_replay_pause(self) -> None:
        self._replay_call("pause")
        self.refresh_bindings()

    def action_replay_play(self) -> None:
        self._replay_call("resume")
        self.refresh_bindings()

    def action_replay_faster(self) -> None:
        self._replay_call("faster")

    def action_replay_slower(self) -> None:
        self._replay_call("slower")

    def action_replay_seek(self, delta_s: float) -> None:
        self._replay_call("seek", float(delta_s))

    async def action_quit(self) -> None:
        """Quit; while recording ask first, because quitting stops the recording."""
        if not self.session.recording:
            self.exit(0)
            return
        rec = self.session.snapshot.recording
        where = f" to {rec.path}" if rec is not None else ""

        def done(yes: bool | None) -> None:
            if yes:
                self.exit(0)

        self.push_screen(ConfirmScreen(f"Recording{where}.\nStop recording and quit?"), done)


def run_tui(
    session: Any,
    *,
    store: Any = None,
    vehicle: str = "",
    replay: bool = False,
    record_dir: str | Path | None = None,
    bell: bool = True,
    replay_length_s: float | None = None,
    next_test: Callable[[Snapshot], Snapshot] | None = None,
) -> int:
    """Start the session, run the dashboard until quit, stop the session (flushing the recording).

    A source that cannot be opened raises ``SourceError`` before the screen is
    taken over, so the CLI prints its one-line message. After the app exits the
    run summary goes to stdout, like the headless commands. ``next_test`` makes the
    summary's plan (a replay's: as ``replay --headless`` and ``dynoai plan`` make it,
    not the live plan from wherever the replay stood when quit).

    Returns:
        The process exit code (0 after a normal quit).
    """
    from dynoai_tui.commands.common import CommandError, exit_code_after
    from dynoai_tui.commands.headless import as_stored, print_summary, summary_text

    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        # piped or redirected, the dashboard wrote its escape codes into the file for as
        # long as it ran, and nothing read its keys (not even q)
        raise CommandError(
            "the dashboard needs a terminal: for logging without one use `dynoai log`, "
            "for a replay `dynoai replay FILE --headless`"
        )
    if INTERRUPTED.is_set():  # a Ctrl-C Python swallowed while textual loaded: nothing started
        raise KeyboardInterrupt
    session.start()
    app = DynoApp(
        session,
        store=store,
        vehicle=vehicle,
        replay=replay,
        record_dir=record_dir,
        bell=bell,
        replay_length_s=replay_length_s,
    )
    rec = None
    try:
        result = app.run()
    finally:
        rec = app.last_recording or session.snapshot.recording
        final = session.stop()
    final, kept = as_stored(final, session.tracker)
    if next_test is not None:
        final = next_test(final)
    paths = list(app.recordings) or ([rec.path] if rec is not None else [])
    notes = []
    if not paths and not replay:
        notes.append("nothing was recorded (r in the dashboard records)")
    if store is not None and vehicle and not replay and not session.not_saved:
        notes.append(f"the run is stored under vehicle {vehicle} (dynoai plan --vehicle {vehicle})")
    print_summary(
        summary_text(
            final,
            recording_path=paths[-1] if paths else None,
            earlier_recordings=paths[:-1],
            note="; ".join(notes),
            not_saved=session.not_saved,
            kept=kept,
        )
    )
    return int(result or 0) or exit_code_after(session, None if replay else final)
