"""The project's files: paths, shared documents, hash-checked edits."""
