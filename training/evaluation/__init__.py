"""Evaluation and selection: `genspot evaluate`, grouped CV (`genspot cv`), the operating point, plots."""
