"""Live curves of an inversion: PSNR, gamma and loss against the iteration.

A small matplotlib figure in a Qt canvas (``FigureCanvasQTAgg``, which
follows the Qt binding napari loaded). Points are appended as progress
events arrive; the figure is redrawn at most every ``redraw_interval``
seconds by a single-shot timer, so a flood of events costs one redraw.
Use from the GUI thread only.
"""

from __future__ import annotations

import numpy as np
from qtpy.QtCore import QTimer

_KEYS = ("iteration", "psnr", "gamma", "loss")


class CurvesCanvas:
    """PSNR, gamma and loss curves of the current tile.

    Parameters
    ----------
    redraw_interval : float
        Minimum seconds between two redraws.

    Attributes
    ----------
    widget : QWidget
        The canvas, to add to a layout.
    """

    def __init__(self, redraw_interval: float = 1.0) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(3.6, 3.6), dpi=80)
        self.widget = FigureCanvasQTAgg(self.figure)
        self.widget.setMinimumHeight(260)
        ax_psnr, ax_gamma, ax_loss = self.figure.subplots(3, 1, sharex=True)
        # fixed margins: a layout engine would triple the cost of every redraw
        self.figure.subplots_adjust(left=0.16, right=0.97, top=0.93, bottom=0.12, hspace=0.15)
        self.axes = {"psnr": ax_psnr, "gamma": ax_gamma, "loss": ax_loss}
        ax_psnr.set_ylabel("PSNR (dB)")
        ax_gamma.set_ylabel("γ")
        ax_loss.set_ylabel("loss")
        ax_loss.set_yscale("log")
        ax_loss.set_xlabel("iteration")
        colors = {"psnr": "tab:blue", "gamma": "tab:purple", "loss": "tab:gray"}
        self.lines = {k: ax.plot([], [], lw=1.0, color=colors[k])[0] for k, ax in self.axes.items()}
        self._thresholds = [ax_psnr.axhline(np.nan, ls="--", lw=0.8, color=c)
                            for c in ("tab:green", "tab:red")]
        self._data: dict[str, list[float]] = {k: [] for k in _KEYS}
        self._timer = QTimer()
        self._timer.setSingleShot(True)
        self._timer.setInterval(int(redraw_interval * 1000))
        self._timer.timeout.connect(self.redraw)
        self.redraws = 0

    # ------------------------------------------------------------------ data
    @property
    def n_points(self) -> int:
        """Points currently plotted."""
        return len(self._data["iteration"])

    @property
    def last_iteration(self) -> int:
        """Iteration of the last point (0 when empty)."""
        return int(self._data["iteration"][-1]) if self._data["iteration"] else 0

    def data(self, key: str) -> np.ndarray:
        """The values of one curve (``'iteration'``, ``'psnr'``, ``'gamma'`` or ``'loss'``)."""
        return np.asarray(self._data[key], dtype=np.float64)

    def clear(self, title: str = "") -> None:
        """Remove every point; ``title`` goes over the PSNR plot."""
        self._data = {k: [] for k in _KEYS}
        self.axes["psnr"].set_title(title, fontsize=9)
        self.request_redraw()

    def set_thresholds(self, save_psnr: float | None, stop_psnr: float | None) -> None:
        """Dashed lines at the save (green) and stop (red) PSNR."""
        for line, value in zip(self._thresholds, (save_psnr, stop_psnr), strict=True):
            v = np.nan if value is None else float(value)
            line.set_ydata([v, v])
        self.request_redraw()

    def extend(self, history: dict) -> int:
        """Append the rows of ``history`` whose iteration is after the last point.

        Parameters
        ----------
        history : dict of array
            ``iteration``, ``psnr``, ``gamma``, ``loss`` (e.g. a progress
            event's batch or the columns of ``history.csv``).

        Returns
        -------
        int
            Points added.
        """
        it = np.asarray(history.get("iteration", ()), dtype=np.int64)
        if it.size == 0:
            return 0
        keep = it > self.last_iteration
        if not keep.any():
            return 0
        for k in _KEYS:
            self._data[k].extend(np.asarray(history[k])[keep].tolist())
        self.request_redraw()
        return int(keep.sum())

    # ------------------------------------------------------------------ drawing
    def apply_theme(self, theme: str) -> None:
        """Draw in the colours of napari's theme ``theme`` (background, text, frames)."""
        from napari.utils.theme import get_theme

        t = get_theme(theme)
        background, text = t.background.as_hex(), t.text.as_hex()
        self.figure.set_facecolor(background)
        for ax in self.axes.values():
            ax.set_facecolor(background)
            ax.tick_params(colors=text, which="both")
            ax.yaxis.label.set_color(text)
            ax.xaxis.label.set_color(text)
            ax.title.set_color(text)
            for spine in ax.spines.values():
                spine.set_color(text)
        self.lines["loss"].set_color(t.highlight.as_hex() if theme == "dark" else "tab:gray")
        self.theme = theme
        self.request_redraw()

    def request_redraw(self) -> None:
        """Redraw soon (at most once per interval)."""
        if not self._timer.isActive():
            self._timer.start()

    def redraw(self) -> None:
        """Redraw now."""
        x = self.data("iteration")
        for key, line in self.lines.items():
            y = self.data(key)
            if key == "loss":
                y = np.where(y > 0, y, np.nan)
            line.set_data(x, y)
        for ax in self.axes.values():
            ax.relim()
            ax.autoscale_view()
        if x.size:
            self.axes["loss"].set_xlim(0, max(float(x[-1]), 1.0))
        self.widget.draw_idle()
        self.redraws += 1
