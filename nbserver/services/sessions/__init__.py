"""Sessions: which notebook (or console, or file) is bound to which running kernel."""
