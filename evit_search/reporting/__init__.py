"""Reports: markdown helpers, plots, the study report."""
