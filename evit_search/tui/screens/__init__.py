"""The TUI's screens, one module each: the main screen (trials table and Pareto plot), the study
picker, the candidate detail, compare, Table 6 and help. Import them from their modules: this
package imports none of them, so that opening the main screen does not load the others (the
detail screen brings plotext, the YAML copy brings yaml)."""
