"""nbconvert: ``/api/nbconvert`` and notebook exports (needs the ``nbserver[nbconvert]`` extra)."""
