"""A small package for blarify's CALLS: a mutual recursion, a class, a cross-module cycle."""
