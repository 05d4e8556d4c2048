"""Contents and checkpoints: files, notebooks and directories under the root, by API path."""
