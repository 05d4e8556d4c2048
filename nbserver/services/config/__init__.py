"""``/api/config/<section>``: the frontends' JSON configuration, one document per section."""
