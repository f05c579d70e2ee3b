"""The TUI's screens, one module each: the main screen (trials table and Pareto plot), the study
picker, the candidate detail, compare, Table 6 and help."""

from .ablation import AblationScreen
from .compare import CompareScreen
from .detail import DetailScreen
from .help import HelpScreen
from .main import MainScreen
from .picker import StudyPicker

__all__ = ["AblationScreen", "CompareScreen", "DetailScreen", "HelpScreen", "MainScreen", "StudyPicker"]
