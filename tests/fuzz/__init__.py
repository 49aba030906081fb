"""Coverage-guided fuzzing of the input readers (``nox -s fuzz``), and regression tests of its finds."""
