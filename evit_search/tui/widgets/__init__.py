"""The main screen's widgets: each owns its data and posts messages; the screen wires them."""

from .filter_bar import FilterBar
from .pareto_plot import ParetoPlot
from .trials_table import TrialsTable

__all__ = ["FilterBar", "ParetoPlot", "TrialsTable"]
