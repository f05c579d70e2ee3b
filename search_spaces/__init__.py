"""The built-in search spaces and the Table 6 rows. Declarative YAML files; this file only makes the
folder a package, so that the wheel ships them as ``evit_search.search_spaces`` (see pyproject.toml)."""
