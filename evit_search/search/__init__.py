"""The search: space files, budgets, the trial pipeline, the run over workers, export."""
