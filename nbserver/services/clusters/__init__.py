"""Clusters: IPython Parallel clusters of the IPython profiles (the ``nbserver[parallel]`` extra)."""
