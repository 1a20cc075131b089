"""Benchmarks and the GPU check (scripts run as files); a package only so that tests and scripts
import the shared model shapes as `benchmarks.shapes`. Never imported by the library."""
